"""SIP requests and responses: parse from bytes, serialize with ``bytes()`` (RFC 3261 §7, §25).

``parse_message`` is liberal where RFC 3261 allows it (line folding, bare LF line ends, compact
names, whitespace before the colon) and strict where a wrong guess would be harmful (start line,
Content-Length, the mandatory headers of §8.1.1). A well-formed message without folding comes
back byte for byte: ``bytes(parse_message(x)) == x``. Every failure raises :class:`ParseError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import (
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    parse_contacts,
    split_header_values,
)
from softphone.sip.uri import SipUri, Uri, parse_uri

MAX_MESSAGE_SIZE: Final = 65536
MAX_HEADER_LINES: Final = 256
_MAX_EXPIRES: Final = 2**32 - 1  # delta-seconds, §20.19
_MAX_MAX_FORWARDS: Final = 255  # §20.22

# Headers whose values are comma-separated lists (§7.3.1: "header-name: value *(, value)").
# Everything else, notably the auth headers and Date whose values contain commas, stays whole.
_LIST_HEADERS: Final = frozenset(
    name.lower()
    for name in (
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Content-Encoding", "Content-Language", "Allow-Events", "Path", "Service-Route",
        "In-Reply-To", "Call-Info", "Alert-Info", "Error-Info", "Warning",
        "P-Asserted-Identity", "P-Preferred-Identity", "P-Associated-URI", "Security-Client",
        "Security-Server", "Security-Verify", "Reason", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "History-Info", "Recv-Info", "Accept-Resource-Priority",
        "Resource-Priority",
    )
)  # fmt: skip

_VERSION_RE: Final = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_REASONS: Final[dict[int, str]] = {
    # RFC 3261 §21
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    # Later RFCs
    199: "Early Dialog Terminated",  # RFC 6228
    202: "Accepted",  # RFC 3265
    204: "No Notification",  # RFC 5839
    412: "Conditional Request Failed",  # RFC 3903
    417: "Unknown Resource-Priority",  # RFC 4412
    422: "Session Interval Too Small",  # RFC 4028
    428: "Use Identity Header",  # RFC 4474
    429: "Provide Referrer Identity",  # RFC 3892
    430: "Flow Failed",  # RFC 5626
    433: "Anonymity Disallowed",  # RFC 5079
    439: "First Hop Lacks Outbound Support",  # RFC 5626
    440: "Max-Breadth Exceeded",  # RFC 5393
    469: "Bad Info Package",  # RFC 6086
    470: "Consent Needed",  # RFC 5360
    489: "Bad Event",  # RFC 3265
    494: "Security Agreement Required",  # RFC 3329
    580: "Precondition Failure",  # RFC 3312
    607: "Unwanted",  # RFC 8197
    608: "Rejected",  # RFC 8688
}  # fmt: skip
_CLASS_REASONS: Final = {
    1: "Provisional", 2: "Success", 3: "Redirection", 4: "Client Error", 5: "Server Error",
    6: "Global Failure",
}  # fmt: skip


def reason_phrase(status: int) -> str:
    """The default Reason-Phrase for ``status`` (§21), or a generic one for its class."""
    if not 100 <= status <= 699:
        raise LocalProtocolError(f"status code out of range: {status}")
    return _REASONS.get(status) or _CLASS_REASONS[status // 100]


@functools.lru_cache(maxsize=1024)
def _key(name: str) -> str:
    """The name every spelling of a header compares by. Cached: a message looks its headers
    up many times, and the names peers use are few (a scanner's odd names only evict)."""
    return canonical_name(name).lower()


# Header values parse to frozen records, so one parse per distinct text serves every look-up of
# it: a transaction reads its request's Via, From, To and CSeq many times, and retransmissions
# and the messages of one dialog repeat the same values. Bounded: a scanner's unique values only
# evict.
_SPACE: Final = re.compile(r"\s")  # str.isspace() characters
_parse_via = functools.lru_cache(maxsize=4096)(Via.parse)
_parse_name_addr = functools.lru_cache(maxsize=4096)(NameAddr.parse)
_parse_cseq = functools.lru_cache(maxsize=1024)(CSeq.parse)


# One header line: (name, value, raw, key). value is without surrounding whitespace, folding
# undone; raw is the line exactly as received, or None when built or changed by us; key is
# _key(name), computed once per line. A plain tuple, not a NamedTuple: the cyclic garbage
# collector stops tracking an exact tuple of strings, and a phone under load keeps tens of
# thousands of lines alive (finished transactions keep their messages for 32 s), which every
# full collection would otherwise walk.
_Line: TypeAlias = tuple[str, str, str | None, str]


def _checked_line(name: str, value: str) -> _Line:
    if not is_token(name):
        raise LocalProtocolError(f"header name must be a token: {name!r}")
    if "\r" in value or "\n" in value:
        raise LocalProtocolError(f"line break in {name} header value")
    return (name, value.strip(" \t"), None, _key(name))


class Headers:
    """Ordered multi-map of header lines; names compared case-insensitively with compact forms
    equivalent to long ones; stores name and value exactly as written so parse->bytes round-trips.
    """

    __slots__ = ("_lines",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._lines: list[_Line] = [_checked_line(n, v) for n, v in items]

    @classmethod
    def _from_lines(cls, lines: list[_Line]) -> Headers:
        headers = cls()
        headers._lines = lines
        return headers

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        key = _key(name)
        lines = [value for _, value, _, k in self._lines if k == key]
        if key not in _LIST_HEADERS:
            return lines
        return [item for value in lines for item in split_header_values(value)]

    def get_lines(self, name: str) -> list[str]:
        key = _key(name)
        return [value for _, value, _, k in self._lines if k == key]

    def add(self, name: str, value: str) -> None:
        self._lines.append(_checked_line(name, value))

    def prepend(self, name: str, value: str) -> None:
        line = _checked_line(name, value)
        key = _key(name)
        index = next((i for i, ln in enumerate(self._lines) if ln[3] == key), 0)
        self._lines.insert(index, line)

    def set(self, name: str, value: str) -> None:
        line = _checked_line(name, value)
        key = _key(name)
        index = next((i for i, ln in enumerate(self._lines) if ln[3] == key), None)
        self.remove(name)
        self._lines.insert(len(self._lines) if index is None else index, line)

    def remove(self, name: str) -> None:
        key = _key(name)
        self._lines = [line for line in self._lines if line[3] != key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(line[3] == key for line in self._lines)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for name, value, _, _ in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def copy(self) -> Headers:
        return Headers._from_lines(list(self._lines))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for _, v, _, k in self._lines] == [(k, v) for _, v, _, k in other._lines]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def _serialize(self, body_length: int) -> list[str]:
        """Header lines for the wire, with Content-Length forced to ``body_length`` (§20.14)."""
        out: list[str] = []
        seen_length = False
        for name, value, raw, key in self._lines:
            if key == "content-length":
                seen_length = True
                if value != str(body_length):
                    out.append(f"{name}: {body_length}")
                    continue
            out.append(raw if raw is not None else f"{name}: {value}")
        if not seen_length:
            out.append(f"Content-Length: {body_length}")
        return out


class _MessageBase:
    """Typed accessors shared by requests and responses; each parses on access and raises
    ParseError when the header is malformed or (for the mandatory ones) missing."""

    headers: Headers
    body: bytes

    def _single(self, name: str) -> str:
        lines = self.headers.get_lines(name)
        if not lines:
            raise ParseError(f"missing {name} header")
        if len(lines) > 1:
            raise ParseError(f"more than one {name} header")
        return lines[0]

    @property
    def call_id(self) -> str:
        value = self._single("Call-ID")
        # callid = word [ "@" word ] (§25.1); we only insist on no whitespace (liberal)
        if not value or _SPACE.search(value) is not None:
            raise ParseError(f"bad Call-ID {value!r}")
        return value

    @property
    def cseq(self) -> CSeq:
        return _parse_cseq(self._single("CSeq"))

    def _name_addr(self, name: str) -> NameAddr:
        value = self._single(name)
        try:
            return _parse_name_addr(value)
        except ParseError as exc:
            raise ParseError(f"malformed {name} header: {exc}") from exc

    @property
    def from_(self) -> NameAddr:
        return self._name_addr("From")

    @property
    def to(self) -> NameAddr:
        return self._name_addr("To")

    @property
    def vias(self) -> list[Via]:
        try:
            return [_parse_via(v) for v in self.headers.get_all("Via")]
        except ParseError as exc:
            raise ParseError(f"malformed Via header: {exc}") from exc

    @property
    def top_via(self) -> Via:
        first = self.headers.get("Via")
        if first is None:
            raise ParseError("missing Via header")
        try:
            return _parse_via(first)
        except ParseError as exc:
            raise ParseError(f"malformed Via header: {exc}") from exc

    @property
    def contacts(self) -> list[NameAddr]:
        out: list[NameAddr] = []
        for line in self.headers.get_lines("Contact"):
            parsed = parse_contacts(line)
            if parsed == "*":
                raise ParseError("Contact: * where a list of contacts is expected")
            out += parsed
        return out

    def _name_addrs(self, name: str) -> list[NameAddr]:
        return [NameAddr.parse(v) for v in self.headers.get_all(name)]

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._name_addrs("Record-Route")

    @property
    def routes(self) -> list[NameAddr]:
        return self._name_addrs("Route")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip(" \t").lower()

    def _number(self, name: str, maximum: int) -> int | None:
        if name not in self.headers:
            return None
        value = self._single(name)
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise ParseError(f"bad {name} value {value!r}")
        number = int(value)
        if number > maximum:
            raise ParseError(f"{name} value {number} is above {maximum}")
        return number

    @property
    def expires(self) -> int | None:
        return self._number("Expires", _MAX_EXPIRES)

    @property
    def max_forwards(self) -> int | None:
        return self._number("Max-Forwards", _MAX_MAX_FORWARDS)

    def _check_mandatory(self) -> None:
        """§8.1.1: To, From, CSeq, Call-ID, Via must be present and well-formed (§20)."""
        _ = self.to, self.from_, self.call_id, self.cseq, self.top_via, self.vias


@dataclass(eq=False)
class SipRequest(_MessageBase):
    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"
    # The Request-URI as received, so an untouched request serializes byte for byte.
    _uri_text: tuple[Uri, str] | None = field(default=None, init=False, repr=False)

    @classmethod
    def parse(cls, data: bytes) -> SipRequest:
        message = parse_message(data)
        if not isinstance(message, SipRequest):
            raise ParseError("expected a request, got a response")
        return message

    def __bytes__(self) -> bytes:
        if self._uri_text is not None and self._uri_text[0] is self.uri:
            uri_text = self._uri_text[1]
        else:
            uri_text = str(self.uri)
        return _serialize(f"{self.method} {uri_text} {self.version}", self.headers, self.body)


@dataclass(eq=False)
class SipResponse(_MessageBase):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @classmethod
    def parse(cls, data: bytes) -> SipResponse:
        message = parse_message(data)
        if not isinstance(message, SipResponse):
            raise ParseError("expected a response, got a request")
        return message

    def __bytes__(self) -> bytes:
        return _serialize(
            f"{self.version} {self.status:03d} {self.reason}", self.headers, self.body
        )


SipMessage: TypeAlias = SipRequest | SipResponse


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    """§7: start-line, header lines, empty line, body; Content-Length always right."""
    lines = [start_line, *headers._serialize(len(body)), "", ""]
    return "\r\n".join(lines).encode("utf-8", errors="surrogateescape") + body


def _split_head(data: bytes) -> tuple[str, list[_Line], int]:
    """Split off the start line and header lines; returns them and where the body starts.

    CRLF and bare LF both end a line; a line starting with SP/HT continues the previous
    header (§7.3.1 folding, undone to one SP).
    """
    pos, n = 0, len(data)
    while pos < n and data[pos : pos + 1] in (b"\r", b"\n"):
        pos += 1  # §7.5: CRLFs before the start line are ignored
    if pos == n:
        raise ParseError("empty message")
    start_line: str | None = None
    lines: list[_Line] = []
    count = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ParseError("message head is not ended by an empty line")
        raw_bytes = data[pos : nl - 1 if nl > pos and data[nl - 1] == 0x0D else nl]
        pos = nl + 1
        if not raw_bytes:
            break
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"message head is not UTF-8: {exc}") from exc
        if "\r" in raw:
            raise ParseError("bare CR inside a header line")
        if start_line is None:
            start_line = raw
            continue
        count += 1
        if count > MAX_HEADER_LINES:
            raise ParseError(f"more than {MAX_HEADER_LINES} header lines")
        if raw[0] in " \t":
            if not lines:
                raise ParseError("continuation line before the first header")
            prev = lines[-1]
            head, tail = prev[1].rstrip(" \t"), raw.strip(" \t")
            value = f"{head} {tail}" if head and tail else head or tail
            lines[-1] = (prev[0], value, None, prev[3])
            continue
        colon = raw.find(":")
        if colon < 0:
            raise ParseError(f"header line without a colon: {raw[:60]!r}")
        name = raw[:colon].rstrip(" \t")
        if not is_token(name):
            raise ParseError(f"bad header name {name[:60]!r}")
        lines.append((name, raw[colon + 1 :].strip(" \t"), raw, _key(name)))
    if start_line is None:
        raise ParseError("empty message")
    return start_line, lines, pos


def _body(data: bytes, headers: Headers, start: int) -> bytes:
    """§18.3 / §20.14: Content-Length bytes of body; extra datagram octets are ignored."""
    lengths = headers.get_lines("Content-Length")
    if not lengths:
        return data[start:]
    if len(lengths) > 1:
        raise ParseError("more than one Content-Length header")
    text = lengths[0]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ParseError(f"bad Content-Length {text!r}")
    length = int(text)
    available = len(data) - start
    if length > available:
        raise ParseError(f"Content-Length {length} exceeds the {available} body bytes received")
    return data[start : start + length]


def _parse_request_line(line: str) -> tuple[str, Uri, str]:
    """``Method SP Request-URI SP SIP-Version`` (§7.1): exactly one SP between parts."""
    parts = line.split(" ")
    if len(parts) != 3:
        raise ParseError(f"malformed request line {line[:80]!r}")
    method, uri_text, version = parts
    if not is_token(method):
        raise ParseError(f"bad method {method!r}")
    if not _VERSION_RE.fullmatch(version):
        raise ParseError(f"bad SIP version {version!r}")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        raise ParseError("Request-URI must not carry URI headers (§19.1.1)")
    return method, uri, version


def _parse_status_line(line: str) -> tuple[str, int, str]:
    """``SIP-Version SP Status-Code SP Reason-Phrase`` (§7.2); the reason may be empty."""
    version, _sp, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not _VERSION_RE.fullmatch(version):
        raise ParseError(f"bad SIP version {version!r}")
    if len(code) != 3 or not code.isascii() or not code.isdigit():
        raise ParseError(f"bad status code {code[:20]!r}")
    status = int(code)
    if not 100 <= status <= 699:
        raise ParseError(f"status code {status} out of range 100..699")
    if any((c < " " and c != "\t") or c == "\x7f" for c in reason):
        raise ParseError("control character in Reason-Phrase")
    return version, status, reason


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message (a whole datagram, or one frame from StreamFramer)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError(
            f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}", status_hint=513
        )
    start_line, lines, body_start = _split_head(data)
    headers = Headers._from_lines(lines)
    body = _body(data, headers, body_start)
    message: SipMessage
    if start_line[:4].upper() == "SIP/":
        version, status, reason = _parse_status_line(start_line)
        message = SipResponse(
            status=status, reason=reason, headers=headers, body=body, version=version
        )
        message._check_mandatory()
    else:
        method, uri, version = _parse_request_line(start_line)
        request = SipRequest(method=method, uri=uri, headers=headers, body=body, version=version)
        request._uri_text = (uri, start_line.split(" ")[1])
        request._check_mandatory()
        # §8.2 / §20.16: the CSeq method matches the request method.
        if request.cseq.method != method:
            raise ParseError(
                f"CSeq method {request.cseq.method!r} does not match request method {method!r}"
            )
        message = request
    return message
