"""Typed SIP header values: names, name-addr, Via, CSeq (RFC 3261 §7.3, §20, §25.1).

Header parameters (``;tag=..``, ``;branch=..``) are kept as written: a quoted-string value keeps
its quotes (``+sip.instance="<urn:uuid:...>"``), since quoted and token values can differ in
meaning (RFC 3840). Every parse failure raises :class:`ParseError`.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.uri import (
    Param,
    Uri,
    drop_param,
    find_param,
    format_host,
    parse_host_port,
    parse_port,
    parse_uri,
    set_param,
)

# RFC 3261 §7.3.3 compact forms, plus RFC 3265 (o, u), RFC 3515 (r), RFC 3892 (b),
# RFC 4028 (x).
COMPACT_FORMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "i": "Call-ID",
        "m": "Contact",
        "e": "Content-Encoding",
        "l": "Content-Length",
        "c": "Content-Type",
        "f": "From",
        "s": "Subject",
        "k": "Supported",
        "t": "To",
        "v": "Via",
        "o": "Event",
        "r": "Refer-To",
        "b": "Referred-By",
        "u": "Allow-Events",
        "x": "Session-Expires",
    }
)

# Names whose registered spelling is not plain Title-Case.
_SPECIAL_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        name.lower(): name
        for name in (
            "Call-ID",
            "CSeq",
            "WWW-Authenticate",
            "MIME-Version",
            "RAck",
            "RSeq",
            "SIP-ETag",
            "SIP-If-Match",
            "Min-SE",
            "Content-ID",
        )
    }
)

# §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
# gen-value = token / host / quoted-string; host adds "[", "]" and ":" (IPv6).
_GEN_VALUE_CHARS: Final = TOKEN_CHARS | frozenset("[]:")
_WSP: Final = " \t"


_TOKEN: Final = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # TOKEN_CHARS, matched in C


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def canonical_name(name: str) -> str:
    """The registered spelling of a header name; compact forms expand (§7.3.3)."""
    if len(name) == 1 and name.lower() in COMPACT_FORMS:
        return COMPACT_FORMS[name.lower()]
    special = _SPECIAL_NAMES.get(name.lower())
    if special is not None:
        return special
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _read_quoted(text: str, start: int) -> tuple[int, str]:
    """Read ``quoted-string`` at ``text[start] == '"'`` (§25.1).

    Returns (index after the closing quote, unescaped content).
    """
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1, "".join(out)
        if c == "\\":
            # quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            if i + 1 >= n or text[i + 1] in "\r\n" or text[i + 1] > "\x7f":
                raise ParseError(f"bad quoted-pair in {text!r}")
            out.append(text[i + 1])
            i += 2
            continue
        if c in "\r\n":
            raise ParseError(f"line break in quoted string {text!r}")
        out.append(c)
        i += 1
    raise ParseError(f"unterminated quoted string in {text!r}")


def split_header_values(value: str) -> list[str]:
    """Split a list-valued header on commas outside quotes and <...> (§7.3.1).

    Elements are stripped; empty ones are dropped (``a,,b`` -> ``["a", "b"]``).
    """
    if "," not in value:  # one element: most headers, most of the time
        piece = value.strip(_WSP)
        return [piece] if piece else []
    out: list[str] = []
    start, i, n = 0, 0, len(value)
    in_angle = False
    while i < n:
        c = value[i]
        if c == '"':
            try:
                i = _read_quoted(value, i)[0]
            except ParseError:
                i = n  # unbalanced quote: the rest is one element; its parser will complain
            continue
        if c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == "," and not in_angle:
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    return [piece.strip(_WSP) for piece in out if piece.strip(_WSP)]


def parse_header_params(text: str, what: str) -> tuple[Param, ...]:
    """``*( SEMI generic-param )`` (§25.1), SEMI/EQUAL allowing whitespace either side."""
    params: list[Param] = []
    i, n = 0, len(text)

    def skip_ws(j: int) -> int:
        while j < n and text[j] in _WSP:
            j += 1
        return j

    i = skip_ws(i)
    while i < n:
        if text[i] != ";":
            raise ParseError(f"unexpected {text[i : i + 20]!r} in {what} parameters")
        i = skip_ws(i + 1)
        start = i
        while i < n and text[i] in TOKEN_CHARS:
            i += 1
        name = text[start:i]
        if not name:
            raise ParseError(f"empty parameter in {what}")
        i = skip_ws(i)
        value: str | None = None
        if i < n and text[i] == "=":
            i = skip_ws(i + 1)
            start = i
            if i < n and text[i] == '"':
                i = _read_quoted(text, i)[0]
            else:
                while i < n and text[i] in _GEN_VALUE_CHARS:
                    i += 1
            value = text[start:i]
            if not value:
                raise ParseError(f"parameter {name!r} of {what} has an empty value")
            i = skip_ws(i)
        params.append((name, value))
    return tuple(params)


def format_header_params(params: tuple[Param, ...]) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def _checked_param(name: str, value: str | None) -> tuple[str, str | None]:
    """Refuse header params that would corrupt the message when written (our misuse)."""
    if not is_token(name):
        raise LocalProtocolError(f"header parameter name must be a token: {name!r}")
    if value is not None:
        quoted = len(value) >= 2 and value[0] == value[-1] == '"'
        if not value or (not quoted and not all(c in _GEN_VALUE_CHARS for c in value)):
            raise LocalProtocolError(
                f"header parameter value must be a token, host or quoted string: {value!r}"
            )
        if any(c in "\r\n" for c in value):
            raise LocalProtocolError(f"line break in header parameter value {value!r}")
    return name, value


def _format_display_name(name: str) -> str:
    """Tokens go out as they are; anything else as a quoted-string (§25.1 display-name)."""
    words = name.split(" ")
    if name and all(is_token(w) for w in words):
        return name
    # CR and LF cannot be escaped in a quoted-pair; never let them into the message.
    cleaned = name.replace("\r", " ").replace("\n", " ")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``name-addr / addr-spec`` plus header parameters (§20.10, §20.20, §20.39, ...)."""

    uri: Uri
    display_name: str | None = None
    params: tuple[Param, ...] = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        s = text.strip(_WSP)
        if not s:
            raise ParseError("empty name-addr")
        display: str | None
        if s[0] == '"':
            end, display = _read_quoted(s, 0)
            rest = s[end:].lstrip(_WSP)
            if not rest.startswith("<"):
                raise ParseError(f"quoted display name not followed by <URI>: {text!r}")
        else:
            lt, semi = s.find("<"), s.find(";")
            if lt < 0 or 0 <= semi < lt:
                return cls._parse_addr_spec(s)
            words = s[:lt].split()
            for word in words:
                # display-name = *(token LWS) / quoted-string; non-ASCII accepted (liberal)
                if not all(c in TOKEN_CHARS or c > "\x7f" for c in word):
                    raise ParseError(f"display name must be quoted: {s[:lt].strip()!r}")
            display = " ".join(words) or None
            rest = s[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise ParseError(f"missing '>' in {text!r}")
        uri_text = rest[1:gt]
        if uri_text != uri_text.strip(_WSP):
            raise ParseError(f"whitespace inside <...> in {text!r}")
        uri = parse_uri(uri_text)
        return cls(
            uri=uri, display_name=display, params=parse_header_params(rest[gt + 1 :], "name-addr")
        )

    @classmethod
    def _parse_addr_spec(cls, s: str) -> NameAddr:
        # §20.10: without <>, the URI ends at the first ";" and what follows are header
        # parameters; a URI with ",", "?" or ";" of its own MUST be in <>.
        semi = s.find(";")
        uri_text = (s if semi < 0 else s[:semi]).rstrip(_WSP)
        for c in ",?":
            if c in uri_text:
                raise ParseError(f"URI containing {c!r} must be enclosed in <>: {s!r}")
        uri = parse_uri(uri_text)
        params = parse_header_params(s[semi:], "name-addr") if semi >= 0 else ()
        return cls(uri=uri, params=params)

    def __str__(self) -> str:
        display = "" if self.display_name is None else _format_display_name(self.display_name) + " "
        return f"{display}<{self.uri}>{format_header_params(self.params)}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        name, value = _checked_param(name, value)
        return dataclasses.replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        return dataclasses.replace(self, params=drop_param(self.params, name))

    @property
    def tag(self) -> str | None:
        return self.param("tag")


@dataclass(frozen=True, slots=True)
class Via:
    """One ``via-parm`` (§20.42, grammar §25.1; rport RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    version: str = "2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        # sent-protocol = protocol-name SLASH protocol-version SLASH transport, SLASH = SWS "/" SWS
        parts = text.split("/", 2)
        if len(parts) != 3:
            raise ParseError(f"bad Via sent-protocol: {text[:80]!r}")
        name, version = parts[0].strip(_WSP), parts[1].strip(_WSP)
        if name.upper() != "SIP" or not is_token(version):
            raise ParseError(f"bad Via sent-protocol: {text[:80]!r}")
        rest = parts[2].lstrip(_WSP)
        i = 0
        while i < len(rest) and rest[i] in TOKEN_CHARS:
            i += 1
        transport, rest = rest[:i], rest[i:]
        if not transport or not rest[:1].isspace():
            raise ParseError(f"bad Via transport: {text[:80]!r}")
        semi = rest.find(";")
        host, port = _parse_sent_by((rest if semi < 0 else rest[:semi]).strip(_WSP))
        params = parse_header_params(rest[semi:], "Via") if semi >= 0 else ()
        rport = find_param(params, "rport")
        if rport:
            parse_port(rport)
        return cls(
            transport=transport.upper(), host=host, port=port, params=params, version=version
        )

    def __str__(self) -> str:
        return (
            f"SIP/{self.version}/{self.transport} {self.sent_by}{format_header_params(self.params)}"
        )

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> Via:
        name, value = _checked_param(name, value)
        return dataclasses.replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> Via:
        return dataclasses.replace(self, params=drop_param(self.params, name))

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received") or None

    @property
    def rport(self) -> int | None:
        value = self.param("rport")
        return int(value) if value else None

    @property
    def sent_by(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"


def _parse_sent_by(text: str) -> tuple[str, int | None]:
    """``sent-by = host [ COLON port ]`` where COLON = SWS ":" SWS (§25.1)."""
    if text.startswith("["):
        end = text.find("]") + 1
        host_text, after = text[:end], text[end:].strip(_WSP) if end else ""
        if end == 0 or (after and after[0] != ":"):
            raise ParseError(f"bad Via sent-by: {text!r}")
        colon, port_text = after[:1], after[1:]
    else:
        host_text, colon, port_text = text.partition(":")
    host_text, port_text = host_text.rstrip(_WSP), port_text.strip(_WSP)
    host, _ = parse_host_port(host_text)
    return host, parse_port(port_text) if colon else None


_MAX_CSEQ: Final = 2**31


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq = 1*DIGIT LWS Method`` (§20.16); the number is below 2**31 (§8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2:
            raise ParseError(f"bad CSeq {text!r}")
        number, method = parts
        if not number.isascii() or not number.isdigit() or len(number) > 12:
            raise ParseError(f"bad CSeq number {number!r}")
        seq = int(number)
        if seq >= _MAX_CSEQ:
            raise ParseError(f"CSeq number {seq} is not below 2**31")
        if not is_token(method):
            raise ParseError(f"bad CSeq method {method!r}")
        return cls(seq=seq, method=method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_contacts(value: str) -> list[NameAddr] | Literal["*"]:
    """A Contact header value: a list of name-addrs, or ``*`` (REGISTER only, §10.2.2)."""
    if value.strip(_WSP) == "*":
        return "*"
    items = split_header_values(value)
    if not items:
        raise ParseError("empty Contact header")
    return [NameAddr.parse(item) for item in items]
