"""RTSP URLs (RFC 2326 §3.2) and the resolution of ``a=control`` / Content-Base (§C.1.1).

``RtspUrl.parse("rtsp://user:p%40ss@cam.local:8554/live?ch=1")`` keeps the user information
percent-decoded apart from the rest; ``str(url)`` is the Request-URI we send and never carries
credentials, so it is safe to log and to use as the Digest ``uri`` (RFC 2326 §D.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import unquote

from softphone.rtsp.errors import ParseError

__all__ = ["DEFAULT_PORTS", "RtspUrl", "redact"]

# RFC 2326 §3.2: "If the port is empty or not given, port 554 is assumed"; rtsps uses 322
# (IANA; RFC 7826 §4.2).
DEFAULT_PORTS: Final[dict[str, int]] = {"rtsp": 554, "rtsps": 322}

_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_CHARS: Final = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+")
_IPV6_CHARS: Final = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?")
_PERCENT: Final = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
# A Content-Base or control written without its scheme: "10.0.0.5:554/live/" or "cam.local/x".
_SCHEMELESS: Final = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}(/.*)?|"
    r"[0-9]{1,3}(\.[0-9]{1,3}){3}(/.*)?"
)


def redact(text: str) -> str:
    """``text`` (a URL, or what a person typed for one, with or without its scheme) with any
    user information replaced by ``***``: safe to show and to log."""
    match = _SCHEME.match(text)
    start = match.end() if match else 0
    end = len(text)
    for stop in "/?":
        if (found := text.find(stop, start)) >= 0:
            end = min(end, found)
    at = text.rfind("@", start, end)
    return text if at < 0 else f"{text[:start]}***@{text[at + 1 :]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RtspUrl:
    """An ``rtsp://`` or ``rtsps://`` URL. ``host`` holds IPv6 literals without brackets;
    ``path`` includes the query (``"/live?ch=1"``) and may be empty."""

    scheme: str
    host: str
    port: int
    path: str = ""
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> RtspUrl:
        """Parse an absolute RTSP URL; raises ParseError (never echoing a password)."""
        shown = redact(text)
        if any(c in text for c in "\r\n\t ") or not text.isprintable():
            raise ParseError(f"RTSP URL contains whitespace or control characters: {shown!r}")
        match = _SCHEME.match(text)
        if match is None:
            raise ParseError(f"not an absolute URL (expected rtsp://host/...): {shown!r}")
        scheme = match.group(1).lower()
        if scheme not in DEFAULT_PORTS:
            raise ParseError(f"unsupported URL scheme {scheme!r} (expected rtsp or rtsps)")
        rest = text[match.end() :]
        # The authority ends at the first "/" or "?" (RFC 3986 §3.2). A "#" is not special:
        # RTSP has no fragments, and users type it in passwords.
        end = len(rest)
        for stop in "/?":
            if (found := rest.find(stop)) >= 0:
                end = min(end, found)
        authority, path = rest[:end], rest[end:]
        if path.startswith("?"):
            path = "/" + path
        # quirk: passwords with a raw "@" (rtsp://admin:p@ss@cam/) are common; the host starts
        # after the LAST "@".
        userinfo, at, hostport = authority.rpartition("@")
        username: str | None = None
        password: str | None = None
        if at:
            user_text, colon, pass_text = userinfo.partition(":")
            username = _unquote(user_text, shown)
            password = _unquote(pass_text, shown) if colon else None
        host, port = _parse_hostport(hostport, scheme, shown)
        return cls(
            scheme=scheme, host=host, port=port, path=path, username=username, password=password
        )

    @property
    def default_port(self) -> bool:
        return self.port == DEFAULT_PORTS[self.scheme]

    @property
    def netloc(self) -> str:
        """``host[:port]`` as written in the URL (brackets around IPv6), port only if not default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.default_port else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"

    def __repr__(self) -> str:
        # Never show the password, not even in tracebacks and logs.
        user = f", username={self.username!r}" if self.username is not None else ""
        return f"RtspUrl({str(self)!r}{user})"

    def without_credentials(self) -> RtspUrl:
        return replace(self, username=None, password=None)

    def join(self, control: str) -> RtspUrl:
        """Resolve an ``a=control`` value or a Content-Base against this URL (RFC 2326 §C.1.1).

        - ``"*"`` or empty: this URL (aggregate control of the whole presentation).
        - an absolute ``rtsp://`` / ``rtsps://`` URL: that URL.
        - ``"/path"``: that path on this host.
        - relative (``"trackID=1"``): appended after a ``/`` as FFmpeg, live555 and gortsplib do,
          not the RFC 3986 dot-segment merge: cameras send ``Content-Base: .../Channels/101``
          without the trailing slash and expect ``.../Channels/101/trackID=1``.

        Credentials carry over when the result is on the same host (any port), never to another.
        """
        control = control.strip()
        if control in ("", "*"):
            return self
        if any(c in control for c in " \t") or not control.isprintable():
            raise ParseError(f"control contains whitespace or control characters: {control!r}")
        if _SCHEME.match(control):
            joined = RtspUrl.parse(control)
        elif control.startswith("/"):
            joined = replace(self, path=control, username=None, password=None)
        elif _SCHEMELESS.fullmatch(control):
            # quirk: Content-Base without a scheme ("10.0.0.5:554/live/"): take ours.
            joined = RtspUrl.parse(f"{self.scheme}://{control}")
        else:
            path = self.path if self.path.endswith("/") else self.path + "/"
            joined = replace(self, path=path + control, username=None, password=None)
        if joined.username is None and joined.host.lower() == self.host.lower():
            joined = replace(joined, username=self.username, password=self.password)
        return joined


def _unquote(text: str, shown: str) -> str:
    """Percent-decode user information (RFC 3986 §2.1) as UTF-8; a stray ``%`` is an error."""
    if _PERCENT.fullmatch(text) is None:
        raise ParseError(f"bad percent-encoding in the user information of {shown!r}")
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ParseError(f"user information of {shown!r} is not UTF-8") from None


def _parse_hostport(hostport: str, scheme: str, shown: str) -> tuple[str, int]:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise ParseError(f"unterminated IPv6 literal in {shown!r}")
        host, after = hostport[1:close], hostport[close + 1 :]
        if not _IPV6_CHARS.fullmatch(host) or ":" not in host:
            raise ParseError(f"bad IPv6 literal [{host}] in {shown!r}")
        if after and not after.startswith(":"):
            raise ParseError(f"junk after the IPv6 literal in {shown!r}")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
        if host and not _HOST_CHARS.fullmatch(host):
            raise ParseError(f"bad host {host!r} in {shown!r}")
    if not host:
        raise ParseError(f"RTSP URL has no host: {shown!r}")
    if port_text is None or port_text == "":  # "rtsp://h:/x" means the default port (§3.2)
        return host, DEFAULT_PORTS[scheme]
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ParseError(f"bad port {port_text!r} in {shown!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ParseError(f"port {port} out of range in {shown!r}")
    return host, port
