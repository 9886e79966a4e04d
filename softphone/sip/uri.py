"""SIP, SIPS, tel and other URIs (RFC 3261 §19.1, §25.1; RFC 3966).

Values are held %-unescaped and escaped again on output, so ``str(SipUri.parse(t))`` is
equivalent to ``t`` (§19.1.4) though not always byte-identical (``%6c`` comes back as ``l``).
Every parse failure raises :class:`ParseError`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import string
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from softphone.sip.errors import ParseError

Param: TypeAlias = tuple[str, str | None]

# RFC 3261 §25.1 character classes.
_ALPHANUM: Final = frozenset(string.ascii_letters + string.digits)
_UNRESERVED: Final = _ALPHANUM | frozenset("-_.!~*'()")
_USER_CHARS: Final = _UNRESERVED | frozenset("&=+$,;?/")  # user-unreserved
_PASSWORD_CHARS: Final = _UNRESERVED | frozenset("&=+$,")
_PARAM_CHARS: Final = _UNRESERVED | frozenset("[]/:&+$")  # param-unreserved
_HEADER_CHARS: Final = _UNRESERVED | frozenset("[]/?:+$")  # hnv-unreserved
# A host label: letters, digits and "-"; "_" is not in the ABNF but accepted (liberal).
_LABEL: Final = re.compile(r"[A-Za-z0-9_-]+")
_HEXDIG: Final = frozenset(string.hexdigits)
# RFC 3966 §3: visual separators and the characters of a tel number.
_VISUAL_SEPARATORS: Final = frozenset("-.()")
_TEL_GLOBAL_CHARS: Final = frozenset(string.digits) | _VISUAL_SEPARATORS
_TEL_LOCAL_CHARS: Final = _HEXDIG | frozenset("*#") | _VISUAL_SEPARATORS
_TEL_PNAME_CHARS: Final = _ALPHANUM | frozenset("-")

_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")

# §19.1.4: these parameters must appear in both URIs or in neither. "transport" is not in the
# rule's list, but the section's own examples (sip:bob@biloxi.com vs ...;transport=udp) treat it
# so, as do most stacks; we follow the examples.
_SIGNIFICANT_PARAMS: Final = frozenset({"user", "ttl", "method", "maddr", "transport"})


def _unescape(text: str, allowed: frozenset[str], what: str) -> str:
    """Undo %HEX escapes (§25.1 ``escaped``) after checking every character is allowed.

    Raw non-ASCII characters are accepted (liberal). Escapes that are not UTF-8 survive via
    surrogateescape, so :func:`_escape` gives the same octets back.
    """
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "%":
            hexpair = text[i + 1 : i + 3]
            if len(hexpair) != 2 or not all(h in _HEXDIG for h in hexpair):
                raise ParseError(f"bad %-escape in {what}: {text!r}")
            out.append(int(hexpair, 16))
            i += 3
            continue
        if c in allowed:
            out.append(ord(c))
        elif c >= "\x80" and not "\ud800" <= c <= "\udfff":
            out += c.encode("utf-8")
        else:
            raise ParseError(f"invalid character {c!r} in {what}: {text!r}")
        i += 1
    return out.decode("utf-8", errors="surrogateescape")


def _escape(text: str, safe: frozenset[str]) -> str:
    """%HEX-escape every character of ``text`` outside ``safe`` (as UTF-8 octets)."""
    parts: list[str] = []
    for c in text:
        if c in safe:
            parts.append(c)
        else:
            parts.extend(f"%{b:02X}" for b in c.encode("utf-8", errors="surrogateescape"))
    return "".join(parts)


def _check_no_space(text: str, what: str) -> None:
    for c in text:
        if c <= " " or c == "\x7f":
            raise ParseError(f"whitespace or control character in {what}: {text!r}")


def parse_port(text: str) -> int:
    """``port = 1*DIGIT`` (§25.1), limited to 0..65535."""
    if not text or len(text) > 5 or not text.isascii() or not text.isdigit():
        raise ParseError(f"bad port {text!r}")
    port = int(text)
    if port > 65535:
        raise ParseError(f"port out of range: {port}")
    return port


def _check_hostname(host: str) -> None:
    """``hostname / IPv4address`` (§25.1); labels may also contain "_" (liberal)."""
    if not host:
        raise ParseError("empty host")
    labels = (host[:-1] if host.endswith(".") else host).split(".")
    for label in labels:
        if _LABEL.fullmatch(label) is None:
            raise ParseError(f"bad host {host!r}")
        if label[0] == "-" or label[-1] == "-":
            raise ParseError(f"bad host {host!r}")
    if all(label.isdigit() for label in labels):
        # A dotted all-digit host must be an IPv4address, not a hostname.
        if (
            len(labels) != 4
            or host.endswith(".")
            or any(len(lb) > 3 or int(lb) > 255 for lb in labels)
        ):
            raise ParseError(f"bad IPv4 address {host!r}")


def _check_ipv6(host: str) -> None:
    if "%" in host:
        raise ParseError(f"bad IPv6 address {host!r}")
    try:
        ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise ParseError(f"bad IPv6 address {host!r}") from exc


def parse_host_port(text: str) -> tuple[str, int | None]:
    """``hostport = host [ ":" port ]`` (§25.1); IPv6 comes back without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        _check_ipv6(host)
        if not rest:
            return host, None
        if rest[0] != ":":
            raise ParseError(f"junk after IPv6 reference {text!r}")
        return host, parse_port(rest[1:])
    host, colon, port_text = text.partition(":")
    _check_hostname(host)
    return host, parse_port(port_text) if colon else None


def format_host(host: str) -> str:
    """Bracket IPv6 literals (§19.1.1)."""
    return f"[{host}]" if ":" in host else host


def find_param(params: tuple[Param, ...], name: str) -> str | None:
    wanted = name.lower()
    for key, value in params:
        if key.lower() == wanted:
            return "" if value is None else value
    return None


def set_param(params: tuple[Param, ...], name: str, value: str | None) -> tuple[Param, ...]:
    wanted = name.lower()
    out: list[Param] = []
    done = False
    for param in params:
        if param[0].lower() == wanted:
            if not done:
                out.append((name, value))
                done = True
        else:
            out.append(param)
    if not done:
        out.append((name, value))
    return tuple(out)


def drop_param(params: tuple[Param, ...], name: str) -> tuple[Param, ...]:
    wanted = name.lower()
    return tuple(p for p in params if p[0].lower() != wanted)


def _param_map(params: tuple[Param, ...]) -> dict[str, str]:
    """Lower-cased name -> lower-cased value ("" for a flag); the first occurrence wins."""
    out: dict[str, str] = {}
    for name, value in params:
        out.setdefault(name.lower(), (value or "").lower())
    return out


def _parse_uri_params(text: str, allowed: frozenset[str], what: str) -> tuple[Param, ...]:
    """``*( ";" pname [ "=" pvalue ] )`` with ``text`` starting at the first ";"."""
    params: list[Param] = []
    for piece in text[1:].split(";"):
        if not piece:
            raise ParseError(f"empty {what} parameter")
        name, eq, value = piece.partition("=")
        if not name or (eq and not value):
            raise ParseError(f"bad {what} parameter {piece!r}")
        params.append(
            (_unescape(name, allowed, what), _unescape(value, allowed, what) if eq else None)
        )
    return tuple(params)


def _format_params(params: tuple[Param, ...], safe: frozenset[str]) -> str:
    return "".join(
        f";{_escape(name, safe)}" + ("" if value is None else f"={_escape(value, safe)}")
        for name, value in params
    )


@dataclass(frozen=True, slots=True)
class SipUri:
    """``SIP-URI`` / ``SIPS-URI`` (RFC 3261 §19.1.1, grammar §25.1)."""

    scheme: Literal["sip", "sips"] = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        m = _SCHEME_RE.match(text)
        scheme = m.group(1).lower() if m else ""
        if m is None or scheme not in ("sip", "sips"):
            raise ParseError(f"not a sip: or sips: URI: {text[:80]!r}")
        rest = text[m.end() :]
        _check_no_space(rest, "URI")
        user = password = None
        # §25.1: "@" cannot appear unescaped anywhere but after userinfo, while user itself
        # may hold ";", "?" and "/" (RFC 4475 §3.1.1.9), so split on "@" first.
        at = rest.find("@")
        if at >= 0:
            user_text, colon, password_text = rest[:at].partition(":")
            if not user_text:
                raise ParseError(f"empty user part in {text!r}")
            user = _unescape(user_text, _USER_CHARS, "user part")
            if colon:
                password = _unescape(password_text, _PASSWORD_CHARS, "password")
            rest = rest[at + 1 :]
        rest, qmark, header_text = rest.partition("?")
        if rest.startswith("["):
            end = rest.find("]") + 1
            if end == 0:
                raise ParseError(f"unterminated IPv6 reference in {text!r}")
            semi = rest.find(";", end)
        else:
            semi = rest.find(";")
        host_text, param_text = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
        host, port = parse_host_port(host_text)
        params = _parse_uri_params(param_text, _PARAM_CHARS, "URI") if param_text else ()
        headers: list[tuple[str, str]] = []
        if qmark:
            for piece in header_text.split("&"):
                hname, eq, hvalue = piece.partition("=")
                if not hname or not eq:
                    raise ParseError(f"bad URI header {piece!r}")
                headers.append(
                    (
                        _unescape(hname, _HEADER_CHARS, "URI header"),
                        _unescape(hvalue, _HEADER_CHARS, "URI header"),
                    )
                )
        return cls(
            scheme="sips" if scheme == "sips" else "sip",
            user=user,
            password=password,
            host=host,
            port=port,
            params=params,
            headers=tuple(headers),
        )

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_CHARS))
            if self.password is not None:
                parts += [":", _escape(self.password, _PASSWORD_CHARS)]
            parts.append("@")
        parts += [self.host_port, _format_params(self.params, _PARAM_CHARS)]
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    f"{_escape(n, _HEADER_CHARS)}={_escape(v, _HEADER_CHARS)}"
                    for n, v in self.headers
                )
            )
        return "".join(parts)

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return find_param(self.params, name) is not None

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        return dataclasses.replace(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        return dataclasses.replace(self, params=drop_param(self.params, name))

    def replace(self, **changes: Any) -> SipUri:
        return dataclasses.replace(self, **changes)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return None if value is None else value.lower()

    @property
    def host_port(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def aor(self) -> SipUri:
        return SipUri(scheme=self.scheme, user=self.user, host=self.host)

    def matches(self, other: object) -> bool:
        """URI equivalence, RFC 3261 §19.1.4."""
        if not isinstance(other, SipUri):
            return False
        # sip and sips never match; userinfo is case-sensitive; host is not; a port (or
        # user part) present in only one URI breaks the match even if it is the default.
        if (self.scheme, self.user, self.password, self.port) != (
            other.scheme,
            other.user,
            other.password,
            other.port,
        ):
            return False
        if _host_key(self.host) != _host_key(other.host):
            return False
        mine, theirs = _param_map(self.params), _param_map(other.params)
        for name in mine.keys() | theirs.keys():
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in _SIGNIFICANT_PARAMS:
                return False
        # URI headers are never ignored: the same set on both sides (names case-insensitive).
        return sorted((n.lower(), v) for n, v in self.headers) == sorted(
            (n.lower(), v) for n, v in other.headers
        )


def _host_key(host: str) -> str:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return host.lower()
    return host.lower()


@dataclass(frozen=True, slots=True)
class TelUri:
    """``tel:`` URI (RFC 3966 §3); ``number`` keeps its visual separators as written."""

    number: str
    params: tuple[Param, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TelUri:
        m = _SCHEME_RE.match(text)
        if m is None or m.group(1).lower() != "tel":
            raise ParseError(f"not a tel: URI: {text[:80]!r}")
        rest = text[m.end() :]
        _check_no_space(rest, "tel URI")
        number, semi, param_text = rest.partition(";")
        # global-number-digits = "+" *phonedigit DIGIT *phonedigit; local numbers may also
        # use hex digits, "*" and "#" (RFC 3966 §3).
        is_global = number.startswith("+")
        digits = number[1:] if is_global else number
        allowed = _TEL_GLOBAL_CHARS if is_global else _TEL_LOCAL_CHARS
        if not all(c in allowed for c in digits) or all(c in _VISUAL_SEPARATORS for c in digits):
            raise ParseError(f"bad telephone number {number!r}")
        params = _parse_uri_params(semi + param_text, _PARAM_CHARS, "tel") if semi else ()
        for name, _ in params:
            if not all(c in _TEL_PNAME_CHARS for c in name):
                raise ParseError(f"bad tel parameter name {name!r}")
        return cls(number=number, params=params)

    def __str__(self) -> str:
        return f"tel:{self.number}{_format_params(self.params, _PARAM_CHARS)}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def matches(self, other: object) -> bool:
        """RFC 3966 §4: separators ignored, case-insensitive, same parameter set."""
        if not isinstance(other, TelUri):
            return False
        return _tel_key(self.number) == _tel_key(other.number) and _param_map(
            self.params
        ) == _param_map(other.params)


def _tel_key(number: str) -> str:
    return "".join(c for c in number if c not in _VISUAL_SEPARATORS).lower()


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other ``absoluteURI`` (§25.1: http:, mailto:, urn:, ...), kept as written."""

    text: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        m = _SCHEME_RE.match(text)
        if m is None or m.end() == len(text):
            raise ParseError(f"not an absolute URI: {text[:80]!r}")
        _check_no_space(text, "URI")
        for c in '<>"':
            if c in text:
                raise ParseError(f"invalid character {c!r} in URI {text[:80]!r}")
        return cls(text=text)

    def __str__(self) -> str:
        return self.text

    def matches(self, other: object) -> bool:
        return isinstance(other, AbsoluteUri) and other.text == self.text


Uri: TypeAlias = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse any URI, dispatching on its scheme (case-insensitive)."""
    m = _SCHEME_RE.match(text)
    if m is None:
        raise ParseError(f"not a URI (no scheme): {text[:80]!r}")
    scheme = m.group(1).lower()
    if scheme in ("sip", "sips"):
        return SipUri.parse(text)
    if scheme == "tel":
        return TelUri.parse(text)
    return AbsoluteUri.parse(text)
