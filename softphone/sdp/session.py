"""SDP session descriptions (RFC 8866, which obsoletes RFC 4566): parse and serialize.

The parser is liberal where real peers are sloppy and strict where the text is not SDP at all:

- CRLF or bare LF line ends; trailing spaces and tabs are dropped; blank lines are skipped.
- ``s=`` and ``t=`` may be missing (IP cameras omit them); serialization puts them back.
- Lines the model has no field for (``i= u= e= p= r= z= k=`` and unknown letters) are kept, in
  order, in ``other`` and written back in their RFC 8866 §5 slot, so well-formed CRLF text
  round-trips byte for byte: ``bytes(SessionDescription.parse(data)) == data``.
- Anything that is not ``<letter>=<value>``, a first line other than ``v=``, a missing ``o=`` or a
  number that is not a number raises SdpParseError with the line number.
- ``parse(text, lenient=True)`` is for RTSP DESCRIBE bodies from IP cameras (RFC 2326 §C): the
  text must still start with ``v=``, but a missing ``o=`` gets a placeholder origin, unreadable
  ``t=`` / ``c=`` / ``b=`` / ``a=`` lines are dropped, ``c=IN <address>`` is read as IP4/IP6,
  spaces around the ``/`` of ``a=rtpmap`` are removed, and an ``m=`` section whose ``m=`` line
  cannot be read is skipped whole. SIP keeps the strict default.

Attribute *values* are not validated at parse time: the helpers (``rtpmaps``, ``fmtp``, ``ptime``...)
skip what they cannot read, so one odd ``a=`` line never makes a whole call fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from softphone.sdp.errors import SdpParseError

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
]

_NUMBER: Final = re.compile(r"[0-9]{1,30}")
_PTIME: Final = re.compile(r"([0-9]{1,6})(?:\.[0-9]*)?")
_LETTERS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# RFC 8866 §5: the order of the lines in a description. Lines we keep verbatim in ``other`` are
# written in their slot; letters not listed here go last in their section.
_SESSION_ORDER: Final = "vosiuepcbtrzka"
_MEDIA_ORDER: Final = "micbka"


def _number(token: str, *, what: str, line: int | None) -> int:
    if _NUMBER.fullmatch(token) is None:
        raise SdpParseError(f"{what} is not a number: {token!r}", line=line)
    return int(token)


class Direction(Enum):
    """Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1). The value is the attribute name."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        return _BY_FLAGS[(sends, receives)]

    @property
    def sends(self) -> bool:
        return _FLAGS[self][0]

    @property
    def receives(self) -> bool:
        return _FLAGS[self][1]

    def reversed(self) -> Direction:
        """The same stream seen from the other end: sendonly <-> recvonly."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)

    def intersect(self, other: Direction) -> Direction:
        """What both allow: ``SENDRECV ∩ SENDONLY == SENDONLY``, ``SENDONLY ∩ RECVONLY == INACTIVE``."""
        return Direction.from_flags(
            sends=self.sends and other.sends, receives=self.receives and other.receives
        )


_FLAGS: Final[dict[Direction, tuple[bool, bool]]] = {  # (sends, receives)
    Direction.SENDRECV: (True, True),
    Direction.SENDONLY: (True, False),
    Direction.RECVONLY: (False, True),
    Direction.INACTIVE: (False, False),
}
_BY_FLAGS: Final[dict[tuple[bool, bool], Direction]] = {v: k for k, v in _FLAGS.items()}
_DIRECTION_NAMES: Final[dict[str, Direction]] = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 8866 §6.6).

    ``encoding`` keeps the case it was written in; compare with ``codec_matches`` or ``.lower()``.
    """

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1

    @classmethod
    def parse(cls, value: str, *, line: int | None = None) -> RtpMap:
        pt_text, _, rest = value.strip().partition(" ")
        parts = rest.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpParseError(f"bad rtpmap {value!r}", line=line)
        payload_type = _number(pt_text, what="payload type", line=line)
        if payload_type > 127:
            raise SdpParseError(f"payload type {payload_type} out of range", line=line)
        channels = _number(parts[2], what="channels", line=line) if len(parts) == 3 else 1
        return cls(
            payload_type,
            parts[0],
            _number(parts[1], what="clock rate", line=line),
            channels,
        )

    def __str__(self) -> str:
        # The channel count is omitted when it is 1 (RFC 3551 §4.1 / RFC 8866 §6.6).
        tail = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


# RFC 3551 §6, tables 4 and 5: payload types with a static meaning, usable without a=rtpmap.
STATIC_PAYLOAD_TYPES: Final[dict[int, RtpMap]] = {
    m.payload_type: m
    for m in (
        RtpMap(0, "PCMU", 8000),
        RtpMap(3, "GSM", 8000),
        RtpMap(4, "G723", 8000),
        RtpMap(5, "DVI4", 8000),
        RtpMap(6, "DVI4", 16000),
        RtpMap(7, "LPC", 8000),
        RtpMap(8, "PCMA", 8000),
        RtpMap(9, "G722", 8000),  # 16 kHz audio, 8000 in SDP for historical reasons (§4.5.2)
        RtpMap(10, "L16", 44100, 2),
        RtpMap(11, "L16", 44100),
        RtpMap(12, "QCELP", 8000),
        RtpMap(13, "CN", 8000),
        RtpMap(14, "MPA", 90000),
        RtpMap(15, "G728", 8000),
        RtpMap(16, "DVI4", 11025),
        RtpMap(17, "DVI4", 22050),
        RtpMap(18, "G729", 8000),
        RtpMap(25, "CelB", 90000),
        RtpMap(26, "JPEG", 90000),
        RtpMap(28, "nv", 90000),
        RtpMap(31, "H261", 90000),
        RtpMap(32, "MPV", 90000),
        RtpMap(33, "MP2T", 90000),
        RtpMap(34, "H263", 90000),
    )
}


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <address>[/<ttl>][/<number of addresses>]`` (RFC 8866 §5.7).

    ``ttl`` only exists for IP4 multicast; ``count`` is the number of addresses of a multicast
    group. For address types other than IP4/IP6 the address is kept as written, suffix included.
    """

    address: str
    addr_type: str = "IP4"
    net_type: str = "IN"
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP6`` for an address with a colon, else ``IN IP4``."""
        return cls(address, "IP6" if ":" in address else "IP4")

    @classmethod
    def parse(cls, value: str, *, line: int | None = None) -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise SdpParseError(f"c= needs 3 fields, got {value!r}", line=line)
        net_type, addr_type, address = parts
        ttl: int | None = None
        count: int | None = None
        if addr_type in ("IP4", "IP6") and "/" in address:
            address, *suffix = address.split("/")
            numbers = [_number(s, what="c= suffix", line=line) for s in suffix]
            if addr_type == "IP4" and len(numbers) <= 2:
                ttl, count = numbers[0], (numbers[1] if len(numbers) == 2 else None)
            elif addr_type == "IP6" and len(numbers) == 1:
                count = numbers[0]
            else:
                raise SdpParseError(f"bad c= address suffix in {value!r}", line=line)
        if not address:
            raise SdpParseError("c= has an empty address", line=line)
        return cls(address, addr_type, net_type, ttl, count)

    @property
    def is_null(self) -> bool:
        """``0.0.0.0``: RFC 2543 hold; send no RTP or RTCP there (RFC 3264 §8.4)."""
        return self.address in ("0.0.0.0", "::")

    def __str__(self) -> str:
        suffix = "".join(f"/{n}" for n in (self.ttl, self.count) if n is not None)
        return f"{self.net_type} {self.addr_type} {self.address}{suffix}"


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (RFC 8866 §5.2)."""

    username: str
    session_id: str
    session_version: int
    net_type: str
    addr_type: str
    address: str

    @classmethod
    def parse(cls, value: str, *, line: int | None = None) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpParseError(f"o= needs 6 fields, got {value!r}", line=line)
        version = _number(parts[2], what="session version", line=line)
        return cls(parts[0], parts[1], version, parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


# What a lenient parse puts in place of a missing o= line (RFC 8866 §5.2 fields, all unknown).
_PLACEHOLDER_ORIGIN: Final = Origin("-", "0", 0, "IN", "IP4", "0.0.0.0")
_RTPMAP_SLASH: Final = re.compile(r"[ \t]*/[ \t]*")


def _lenient_value(kind: str, value: str, *, line: int) -> str:
    """For ``parse(lenient=True)``: the value to use, repaired, or SdpParseError to drop it."""
    if kind == "v":
        raise SdpParseError("a second v= line", line=line)
    if kind == "m":
        MediaDescription.parse_media_line(value, line=line)
    elif kind == "t":
        # quirk: "t=now-" and other non-numeric times (the model keeps numbers only).
        parts = value.split()
        if len(parts) != 2 or not all(_NUMBER.fullmatch(p) for p in parts):
            raise SdpParseError(f"bad t= line {value!r}", line=line)
    elif kind == "c":
        parts = value.split()
        if len(parts) == 2 and parts[0] == "IN":
            # quirk: "c=IN 192.0.2.1" without the address type.
            return str(Connection.for_address(parts[1]))
        Connection.parse(value, line=line)
    elif kind == "o":
        Origin.parse(value, line=line)
    elif kind == "b":
        _parse_bandwidth(value, line=line)
    elif kind == "a":
        _parse_attribute(value, line=line)
        name, _, rest = value.partition(":")
        if name.lower() == "rtpmap":
            # quirk: spaces around the clock rate ("a=rtpmap:96 H264/90000 /1").
            return f"{name}:{_RTPMAP_SLASH.sub('/', rest.strip())}"
    return value


def _parse_attribute(value: str, *, line: int) -> tuple[str, str | None]:
    # RFC 8866 §5.13: a=<attribute> or a=<attribute>:<value>
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpParseError("a= line without an attribute name", line=line)
    return (name, rest if colon else None)


def _parse_bandwidth(value: str, *, line: int) -> tuple[str, str]:
    # RFC 8866 §5.8: b=<bwtype>:<bandwidth>
    bwtype, colon, bandwidth = value.partition(":")
    if not colon or not bwtype:
        raise SdpParseError(f"bad b= line {value!r}", line=line)
    return (bwtype, bandwidth)


def _find(attributes: list[tuple[str, str | None]], name: str) -> Iterator[str | None]:
    wanted = name.lower()
    return (v for n, v in attributes if n.lower() == wanted)


def _direction_in(attributes: list[tuple[str, str | None]]) -> Direction | None:
    for name, value in attributes:
        if value is None and (d := _DIRECTION_NAMES.get(name.lower())) is not None:
            return d
    return None


def _ordered(order: str, slots: dict[str, list[str]], other: list[tuple[str, str]]) -> list[str]:
    """Merge field lines (``slots``, by letter) and verbatim ``other`` lines in RFC order."""
    lines: list[str] = []
    for letter in order:
        lines += slots.get(letter, [])
        lines += [f"{k}={v}" for k, v in other if k == letter]
    lines += [f"{k}={v}" for k, v in other if k not in order]
    return lines


@dataclass(slots=True)
class MediaDescription:
    """One ``m=`` section (RFC 8866 §5.14) and the lines that follow it."""

    media: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    bandwidths: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    port_count: int | None = None  # m=video 49170/2 ...: the "/2"
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, k=, extra c=, unknown

    @classmethod
    def parse_media_line(cls, value: str, *, line: int | None = None) -> MediaDescription:
        # m=<media> <port>[/<number of ports>] <proto> <fmt> ...
        parts = value.split()
        if len(parts) < 3:
            raise SdpParseError(f"m= needs media, port and proto, got {value!r}", line=line)
        port_text, slash, count_text = parts[1].partition("/")
        port = _number(port_text, what="port", line=line)
        if port > 65535:
            raise SdpParseError(f"port {port} out of range", line=line)
        count = _number(count_text, what="port count", line=line) if slash else None
        return cls(parts[0], port, parts[2], parts[3:], port_count=count)

    # -- attributes ---------------------------------------------------------------------------

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name`` (None if absent or a flag; see ``has_attribute``)."""
        return next(_find(self.attributes, name), None)

    def attribute_all(self, name: str) -> list[str | None]:
        return list(_find(self.attributes, name))

    def has_attribute(self, name: str) -> bool:
        return next(_find(self.attributes, name), False) is not False

    @property
    def explicit_direction(self) -> Direction | None:
        return _direction_in(self.attributes)

    @property
    def direction(self) -> Direction:
        """This section's direction attribute, SENDRECV when absent (RFC 8866 §6.7).

        The session-level fallback is ``SessionDescription.direction_of``.
        """
        return self.explicit_direction or Direction.SENDRECV

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux`` (RFC 5761 §5.1.1)."""
        return self.has_attribute("rtcp-mux")

    @property
    def rtcp_port(self) -> int | None:
        """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""
        value = self.attribute("rtcp")
        if value is None or not value.split():
            return None
        token = value.split()[0]
        return int(token) if _NUMBER.fullmatch(token) and int(token) <= 65535 else None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (RFC 8866 §6.4); a fraction is truncated."""
        value = self.attribute("ptime")
        match = _PTIME.fullmatch(value.strip()) if value is not None else None
        return int(match.group(1)) if match else None

    @property
    def control(self) -> str | None:
        """``a=control`` (RFC 2326 §C.1.1 / RFC 7826 §D.1.1), for RTSP."""
        return self.attribute("control")

    # -- RTP formats --------------------------------------------------------------------------

    def payload_types(self) -> list[int]:
        """The numeric formats of the m= line, in order (RTP payload types)."""
        return [int(f) for f in self.formats if _NUMBER.fullmatch(f) and int(f) <= 127]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> RtpMap for the formats of the m= line, in m= order.

        From ``a=rtpmap`` (RFC 8866 §6.6), else the RFC 3551 static assignment. Payload types
        with neither, and rtpmap lines that cannot be read, are left out.
        """
        declared: dict[int, RtpMap] = {}
        for value in _find(self.attributes, "rtpmap"):
            try:
                rtpmap = RtpMap.parse(value or "")
            except SdpParseError:
                continue
            declared.setdefault(rtpmap.payload_type, rtpmap)
        result: dict[int, RtpMap] = {}
        for pt in self.payload_types():
            if (found := declared.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)) is not None:
                result.setdefault(pt, found)
        return result

    def fmtp_text(self, pt: int) -> str | None:
        """The parameters of ``a=fmtp:<pt> <parameters>`` as written (RFC 8866 §6.15)."""
        for value in _find(self.attributes, "fmtp"):
            head, _, params = (value or "").strip().partition(" ")
            if head == str(pt):
                return params.strip()
        return None

    def fmtp(self, pt: int) -> dict[str, str]:
        """``a=fmtp:96 useinbandfec=1; stereo=0`` -> ``{"useinbandfec": "1", "stereo": "0"}``.

        Parameters are split on ``;`` and at the first ``=`` (base64 values keep theirs). A
        parameter without ``=`` maps to ``""``: telephone-event's ``0-16`` gives ``{"0-16": ""}``.
        An empty or missing fmtp gives ``{}``.
        """
        params: dict[str, str] = {}
        for part in (self.fmtp_text(pt) or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key.strip():
                params[key.strip()] = value.strip()
        return params

    # -- serialization ------------------------------------------------------------------------

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        m_line = " ".join([f"m={self.media}", port, self.proto, *self.formats])
        slots = {
            "m": [m_line],
            "c": [f"c={self.connection}"] if self.connection is not None else [],
            "b": [f"b={t}:{v}" for t, v in self.bandwidths],
            "a": [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes],
        }
        return _ordered(_MEDIA_ORDER, slots, self.other)


@dataclass(slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP description (RFC 8866 §5). ``str()`` and ``bytes()`` give CRLF text."""

    origin: Origin
    version: int = 0
    session_name: str = "-"  # "" is written "s= " (RFC 8866 §5.3)
    connection: Connection | None = None
    timing: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    bandwidths: list[tuple[str, str]] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= r= z= k= unknown

    @classmethod
    def parse(cls, text: str | bytes, *, lenient: bool = False) -> SessionDescription:
        """Parse SDP text. Raises only SdpParseError. See the module docstring for ``lenient``."""
        if isinstance(text, bytes):
            # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
            text = text.decode("utf-8", "surrogateescape")
        version: int | None = None
        origin: Origin | None = None
        session_name: str | None = None
        connection: Connection | None = None
        timing: list[tuple[int, int]] = []
        bandwidths: list[tuple[str, str]] = []
        attributes: list[tuple[str, str | None]] = []
        other: list[tuple[str, str]] = []
        media: list[MediaDescription] = []
        skipping_media = False  # lenient: inside an m= section whose m= line was unreadable

        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip(" \t\r")
            if not line:
                continue
            try:
                if "\r" in line or "\x00" in line:
                    raise SdpParseError("CR or NUL inside a line", line=number)
                # RFC 8866 §5: <type>=<value>, <type> exactly one case-significant letter.
                if len(line) < 2 or line[1] != "=" or line[0] not in _LETTERS:
                    raise SdpParseError(f"not a <type>=<value> line: {line[:40]!r}", line=number)
            except SdpParseError:
                if lenient and version is not None:
                    continue
                raise
            kind, value = line[0], line[2:]

            if version is None:  # §5.1: v= comes first
                if kind != "v":
                    raise SdpParseError("a description must start with v=", line=number)
                version = _number(value, what="v=", line=number)
                continue
            if kind == "m":
                skipping_media = False
            elif skipping_media:
                continue
            if lenient:
                try:
                    value = _lenient_value(kind, value, line=number)
                except SdpParseError:
                    # quirk (IP cameras): unreadable lines are dropped; an unreadable m= line
                    # drops its whole section.
                    skipping_media = kind == "m"
                    continue
            if kind == "v":
                raise SdpParseError("a second v= line", line=number)
            elif kind == "m":
                media.append(MediaDescription.parse_media_line(value, line=number))
            elif media:  # §5.14: lines after m= belong to that media section
                section = media[-1]
                if kind == "c" and section.connection is None:
                    section.connection = Connection.parse(value, line=number)
                elif kind == "b":
                    section.bandwidths.append(_parse_bandwidth(value, line=number))
                elif kind == "a":
                    section.attributes.append(_parse_attribute(value, line=number))
                else:
                    section.other.append((kind, value))
            elif kind == "o" and origin is None:
                origin = Origin.parse(value, line=number)
            elif kind == "s" and session_name is None:
                session_name = value.strip()
            elif kind == "c" and connection is None:
                connection = Connection.parse(value, line=number)
            elif kind == "b":
                bandwidths.append(_parse_bandwidth(value, line=number))
            elif kind == "t":  # §5.9: t=<start-time> <stop-time>
                parts = value.split()
                if len(parts) != 2:
                    raise SdpParseError(f"t= needs 2 fields, got {value!r}", line=number)
                start, stop = (_number(p, what="t= time", line=number) for p in parts)
                timing.append((start, stop))
            elif kind == "a":
                attributes.append(_parse_attribute(value, line=number))
            else:
                other.append((kind, value))

        if version is None:
            raise SdpParseError("empty description")
        if origin is None and lenient:
            origin = _PLACEHOLDER_ORIGIN  # quirk: cameras that leave out o=
        if origin is None:
            raise SdpParseError("missing o= line")
        return cls(
            version=version,
            origin=origin,
            session_name="-" if session_name is None else session_name,
            connection=connection,
            timing=timing or [(0, 0)],
            bandwidths=bandwidths,
            attributes=attributes,
            media=media,
            other=other,
        )

    # -- queries ------------------------------------------------------------------------------

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level ``a=name``."""
        return next(_find(self.attributes, name), None)

    def attribute_all(self, name: str) -> list[str | None]:
        return list(_find(self.attributes, name))

    def has_attribute(self, name: str) -> bool:
        return next(_find(self.attributes, name), False) is not False

    def media_address(self, m: MediaDescription) -> str | None:
        """Where the media of ``m`` goes: its own c=, else the session's (RFC 8866 §5.7)."""
        connection = m.connection or self.connection
        return connection.address if connection is not None else None

    def direction_of(self, m: MediaDescription) -> Direction:
        """``m``'s direction attribute, else the session-level one, else SENDRECV (§6.7)."""
        return m.explicit_direction or _direction_in(self.attributes) or Direction.SENDRECV

    def first_media(self, kind: str) -> MediaDescription | None:
        """The first section whose media is ``kind`` ("audio", "video"...), enabled or not."""
        return next((m for m in self.media if m.media.lower() == kind.lower()), None)

    # -- serialization ------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The lines of the description, in RFC 8866 §5 order, without line ends."""
        slots = {
            "v": [f"v={self.version}"],
            "o": [f"o={self.origin}"],
            "s": [f"s={self.session_name or ' '}"],
            "c": [f"c={self.connection}"] if self.connection is not None else [],
            "b": [f"b={t}:{v}" for t, v in self.bandwidths],
            "t": [f"t={start} {stop}" for start, stop in self.timing or [(0, 0)]],
            "a": [f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes],
        }
        lines = _ordered(_SESSION_ORDER, slots, self.other)
        for m in self.media:
            lines += m.lines()
        return lines

    def __str__(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines())

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")
