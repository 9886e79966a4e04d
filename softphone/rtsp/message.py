"""RTSP 1.0 messages and the byte-stream parser (RFC 2326 §4, §6, §7, §10.12).

``RtspRequest`` / ``RtspResponse`` parse from one whole message and serialize with ``bytes()``;
a well-formed CRLF message without folded headers comes back byte for byte.

``RtspConnection`` is shaped like h11: ``receive_data()`` buffers what the socket read and
``next_event()`` returns one ``RtspResponse``, one ``RtspRequest`` (the server may send ANNOUNCE,
GET_PARAMETER, OPTIONS, REDIRECT... §10), one ``InterleavedFrame`` (``$`` framing, §10.12) or
``NEED_DATA``. It is liberal in what real servers send (bare LF line ends, folded headers,
stray line ends between messages) and bounded: a head or body over ``max_size`` (1 MiB) raises
ParseError. ``next_event`` raises only ParseError; after one the stream cannot be
resynchronised and the driver closes the connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final, Literal, NamedTuple, TypeAlias

from softphone.rtsp.errors import LocalProtocolError, ParseError

__all__ = [
    "MAX_SIZE",
    "NEED_DATA",
    "RTSP_VERSION",
    "Headers",
    "InterleavedFrame",
    "NeedData",
    "RtspConnection",
    "RtspMessage",
    "RtspRequest",
    "RtspResponse",
    "parse_message",
    "reason_phrase",
]

RTSP_VERSION: Final = "RTSP/1.0"
MAX_SIZE: Final = 1024 * 1024  # bytes, for a message head and for a body each
_VERSION: Final = re.compile(r"RTSP/[0-9]\.[0-9]")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 2326 §15.1 token
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what no header line may contain

# RFC 2326 §7.1.1 status codes (and the HTTP ones it reuses).
_REASONS: Final[dict[int, str]] = {
    100: "Continue", 200: "OK", 201: "Created", 250: "Low on Storage Space",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    303: "See Other", 305: "Use Proxy", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Time-out",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Large",
    415: "Unsupported Media Type", 451: "Parameter Not Understood",
    452: "Conference Not Found", 453: "Not Enough Bandwidth", 454: "Session Not Found",
    455: "Method Not Valid in This State", 456: "Header Field Not Valid for Resource",
    457: "Invalid Range", 458: "Parameter Is Read-Only", 459: "Aggregate operation not allowed",
    460: "Only aggregate operation allowed", 461: "Unsupported transport",
    462: "Destination unreachable", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Time-out",
    505: "RTSP Version not supported", 551: "Option not supported",
}  # fmt: skip


def reason_phrase(status: int) -> str:
    """The RFC 2326 §7.1.1 Reason-Phrase of ``status`` ("" for codes it does not list)."""
    return _REASONS.get(status, "")


class _Line(NamedTuple):
    name: str
    value: str


def _checked(name: str, value: str) -> _Line:
    if _TOKEN.fullmatch(name) is None:
        raise LocalProtocolError(f"header name must be a token: {name!r}")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"line break in the {name} header value")
    return _Line(name, value.strip(" \t"))


class Headers:
    """Ordered multi-map of header lines, names compared case-insensitively (RFC 2326 §4.2).

    Names and values are kept as written, so parse -> bytes round-trips.
    """

    __slots__ = ("_lines",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._lines: list[_Line] = [_checked(n, v) for n, v in items]

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        key = name.lower()
        return next((ln.value for ln in self._lines if ln.name.lower() == key), None)

    def get_all(self, name: str) -> list[str]:
        """Every line of ``name``, in order (not split at commas)."""
        key = name.lower()
        return [ln.value for ln in self._lines if ln.name.lower() == key]

    def add(self, name: str, value: str) -> None:
        self._lines.append(_checked(name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one, where the first one was (else at the end)."""
        key = name.lower()
        index = next((i for i, ln in enumerate(self._lines) if ln.name.lower() == key), None)
        self.remove(name)
        self._lines.insert(len(self._lines) if index is None else index, _checked(name, value))

    def remove(self, name: str) -> None:
        key = name.lower()
        self._lines = [ln for ln in self._lines if ln.name.lower() != key]

    def copy(self) -> Headers:
        headers = Headers()
        headers._lines = list(self._lines)
        return headers

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (tuple(ln) for ln in self._lines)  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self] == [(n.lower(), v) for n, v in other]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


@dataclass(slots=True, kw_only=True)
class _Message:
    """What requests and responses share: headers and a body (RFC 2326 §4)."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = RTSP_VERSION

    @property
    def cseq(self) -> int:
        """The CSeq (RFC 2326 §12.17); raises ParseError when missing or not a number."""
        value = self.headers.get("CSeq")
        if value is None:
            raise ParseError("message has no CSeq header")
        # quirk: trailing whitespace after the number ("CSeq: 3 "); the value is stripped.
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 10:
            raise ParseError(f"bad CSeq {value[:20]!r}")
        return int(text)

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters (RFC 2326 §12.16)."""
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value is not None else None

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        has_length = False
        for name, value in self.headers:
            if name.lower() == "content-length":
                if has_length:
                    continue
                has_length = True
                value = str(len(self.body))  # §12.14: it must match what we send
            lines.append(f"{name}: {value}")
        if self.body and not has_length:
            lines.append(f"Content-Length: {len(self.body)}")
        head = "".join(f"{line}\r\n" for line in lines) + "\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass(slots=True, kw_only=True)
class RtspRequest(_Message):
    """``Method SP Request-URI SP RTSP-Version`` (RFC 2326 §6.1), headers and a body."""

    method: str
    uri: str

    @classmethod
    def parse(cls, data: bytes) -> RtspRequest:
        message = parse_message(data)
        if not isinstance(message, RtspRequest):
            raise ParseError("expected a request, got a response")
        return message

    def __bytes__(self) -> bytes:
        if _TOKEN.fullmatch(self.method) is None or not self.uri or " " in self.uri:
            raise LocalProtocolError(f"bad request line {self.method!r} {self.uri!r}")
        return self._serialize(f"{self.method} {self.uri} {self.version}")


@dataclass(slots=True, kw_only=True)
class RtspResponse(_Message):
    """``RTSP-Version SP Status-Code SP Reason-Phrase`` (RFC 2326 §7.1), headers and a body."""

    status: int
    reason: str = ""

    @classmethod
    def parse(cls, data: bytes) -> RtspResponse:
        message = parse_message(data)
        if not isinstance(message, RtspResponse):
            raise ParseError("expected a response, got a request")
        return message

    def __bytes__(self) -> bytes:
        if not 100 <= self.status <= 999:
            raise LocalProtocolError(f"status code out of range: {self.status}")
        return self._serialize(f"{self.version} {self.status} {self.reason}")


RtspMessage: TypeAlias = RtspRequest | RtspResponse


@dataclass(frozen=True, slots=True, kw_only=True)
class InterleavedFrame:
    """``$ <channel> <length:16> <data>``: RTP/RTCP inside the RTSP connection (RFC 2326 §10.12)."""

    channel: int
    data: bytes

    def __bytes__(self) -> bytes:
        if not 0 <= self.channel <= 255 or len(self.data) > 0xFFFF:
            raise LocalProtocolError(
                f"interleaved frame out of range: channel {self.channel}, {len(self.data)} bytes"
            )
        return b"$" + bytes([self.channel]) + len(self.data).to_bytes(2, "big") + self.data


class NeedData(Enum):
    """``next_event`` has nothing whole to hand back yet."""

    NEED_DATA = auto()


NEED_DATA: Final = NeedData.NEED_DATA
ConnectionEvent: TypeAlias = (
    RtspRequest | RtspResponse | InterleavedFrame | Literal[NeedData.NEED_DATA]
)


# --------------------------------------------------------------------------------------------
# Parsing


def _head_lines(head: str) -> list[str]:
    """Lines of a message head: CRLF or bare LF ends; folded lines joined (RFC 2326 §4.2,
    RFC 2616 §2.2 LWS)."""
    lines: list[str] = []
    for raw in head.split("\n"):
        # quirk: bare LF line ends (embedded servers); RFC 2326 §4 wants CRLF.
        line = raw[:-1] if raw.endswith("\r") else raw
        if _CONTROL.search(line):
            raise ParseError(f"control character in header line {line[:40]!r}")
        if line[:1] in (" ", "\t") and len(lines) > 1:
            # quirk: folded header lines (obsolete in HTTP, still sent by some cameras).
            lines[-1] = lines[-1].rstrip(" \t") + " " + line.strip(" \t")
            continue
        lines.append(line)
    return lines


def _parse_headers(lines: list[str]) -> Headers:
    parsed: list[_Line] = []
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")  # liberal: whitespace before the colon
        if not colon or _TOKEN.fullmatch(name) is None:
            raise ParseError(f"bad header line {line[:40]!r}")
        parsed.append(_Line(name, value.strip(" \t")))
    headers = Headers()
    headers._lines = parsed
    return headers


def _content_length(headers: Headers, max_size: int) -> int:
    values = {v.strip() for v in headers.get_all("Content-Length")}
    if not values:
        # RFC 2326 §4.3: without Content-Length the body is empty (no chunked encoding).
        return 0
    if len(values) > 1:
        raise ParseError("conflicting Content-Length headers")
    text = values.pop()
    if not text.isascii() or not text.isdigit():
        raise ParseError(f"bad Content-Length {text[:20]!r}")
    length = int(text)
    if length > max_size:
        raise ParseError(f"body of {length} bytes exceeds the {max_size} byte limit")
    return length


def _parse_head(head: bytes) -> RtspMessage:
    """Start line and headers, body empty (RFC 2326 §4, §6.1, §7.1)."""
    text = head.decode("utf-8", "surrogateescape")
    lines = _head_lines(text)
    start = lines[0].strip(" \t") if lines else ""
    headers = _parse_headers(lines[1:])
    if start.startswith("RTSP/"):
        version, _, rest = start.partition(" ")
        status_text, _, reason = rest.strip(" ").partition(" ")
        if _VERSION.fullmatch(version) is None:
            raise ParseError(f"bad RTSP version in status line {start[:40]!r}")
        if len(status_text) != 3 or not status_text.isascii() or not status_text.isdigit():
            raise ParseError(f"bad status code in status line {start[:40]!r}")
        status = int(status_text)
        if status < 100:
            raise ParseError(f"status code out of range: {status}")
        return RtspResponse(
            status=status, reason=reason.strip(" "), headers=headers, version=version
        )
    parts = start.split()
    if len(parts) != 3 or _VERSION.fullmatch(parts[2]) is None:
        raise ParseError(f"not an RTSP request or status line: {start[:40]!r}")
    method, uri, version = parts
    if _TOKEN.fullmatch(method) is None:
        raise ParseError(f"bad method {method[:20]!r}")
    return RtspRequest(method=method, uri=uri, headers=headers, version=version)


def _find_head_end(buf: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(end of the head, start of the body): the first empty line, CRLF or bare LF."""
    found = [
        (pos + 1, pos + 1 + len(pattern) - 1)
        for pattern in (b"\n\r\n", b"\n\n")
        if (pos := buf.find(pattern, start)) >= 0
    ]
    return min(found) if found else None


def parse_message(data: bytes, *, max_size: int = MAX_SIZE) -> RtspMessage:
    """Parse exactly one whole message (head, then a body of Content-Length bytes)."""
    end = _find_head_end(data)
    if end is None:
        raise ParseError("message head is not terminated by an empty line")
    head_end, body_start = end
    if head_end > max_size:
        raise ParseError(f"message head exceeds the {max_size} byte limit")
    message = _parse_head(data[:head_end])
    length = _content_length(message.headers, max_size)
    body = data[body_start:]
    if len(body) != length:
        raise ParseError(f"body has {len(body)} bytes, Content-Length says {length}")
    message.body = bytes(body)
    return message


class RtspConnection:
    """Cuts the byte stream of one RTSP connection into messages and interleaved frames."""

    def __init__(self, *, max_size: int = MAX_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_size
        self._scanned = 0  # bytes of a partial head already searched for its end
        self._head: tuple[RtspMessage, int, int] | None = None  # message, body start, length
        self._failed: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet handed out."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> ConnectionEvent:
        """The next whole message or frame, else NEED_DATA; raises only ParseError."""
        if self._failed is not None:
            raise ParseError(f"connection unusable after an earlier error: {self._failed}")
        try:
            return self._next_event()
        except ParseError as exc:
            self._failed = exc
            raise

    def _next_event(self) -> ConnectionEvent:
        buf = self._buffer
        if self._head is None and self._scanned == 0:
            # quirk: a CRLF before an interleaved "$" frame, and stray line ends between
            # messages (RFC 2326 §10.12 leaves them undefined; live555 and cameras send them).
            skip = 0
            while skip < len(buf) and buf[skip] in b"\r\n":
                skip += 1
            del buf[:skip]
            if not buf:
                return NEED_DATA
            if buf[0] == 0x24:  # "$", RFC 2326 §10.12
                if len(buf) < 4:
                    return NEED_DATA
                length = int.from_bytes(buf[2:4], "big")
                if len(buf) < 4 + length:
                    return NEED_DATA
                frame = InterleavedFrame(channel=buf[1], data=bytes(buf[4 : 4 + length]))
                del buf[: 4 + length]
                return frame
            if not (0x41 <= buf[0] <= 0x5A or 0x61 <= buf[0] <= 0x7A):
                raise ParseError(f"expected an RTSP message or a $ frame, got {bytes(buf[:8])!r}")
        if self._head is None:
            end = _find_head_end(buf, max(0, self._scanned - 2))
            if end is None:
                self._scanned = len(buf)
                if len(buf) > self._max:
                    raise ParseError(f"message head exceeds the {self._max} byte limit")
                return NEED_DATA
            head_end, body_start = end
            if head_end > self._max:
                raise ParseError(f"message head exceeds the {self._max} byte limit")
            message = _parse_head(bytes(buf[:head_end]))
            self._head = (message, body_start, _content_length(message.headers, self._max))
        message, body_start, length = self._head
        if len(buf) < body_start + length:
            return NEED_DATA
        message.body = bytes(buf[body_start : body_start + length])
        del buf[: body_start + length]
        self._head = None
        self._scanned = 0
        return message
