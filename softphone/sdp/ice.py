"""ICE in SDP (RFC 8839): ``a=ice-ufrag``, ``a=ice-pwd``, ``a=candidate``, ``a=ice-lite``,
``a=ice-options`` and ``a=end-of-candidates``, read from and written to a media description.

Sans-IO: the ICE agent itself (connectivity checks, TURN) lives in transport/ice.py; this module
only says what a description carries. A malformed ICE line is an :class:`IceParseError` with the
line's text, never a crash; a candidate with a transport or type we do not know is skipped, as
RFC 8839 §5.1 asks ("MUST be ignored").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from softphone.sdp.errors import SdpError
from softphone.sdp.session import MediaDescription, SessionDescription

__all__ = [
    "CANDIDATE_TYPES",
    "IceCandidate",
    "IceDescription",
    "IceParseError",
    "ice_attributes",
    "ice_of",
]

CANDIDATE_TYPES: Final = ("host", "srflx", "prflx", "relay")
_ICE_CHARS: Final = re.compile(r"[A-Za-z0-9+/]+")  # RFC 8839 §5.1 ice-char
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 8866 token
MAX_CANDIDATES: Final = 64  # per media description: bounds the checks one SDP can cause


class IceParseError(SdpError):
    """An ICE attribute that does not follow RFC 8839's grammar."""


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """One ``a=candidate`` (RFC 8839 §5.1)."""

    foundation: str
    component: int
    transport: str  # "UDP" (spelled as received; compared case-insensitively)
    priority: int
    address: str
    port: int
    type: str  # one of CANDIDATE_TYPES
    related_address: str | None = None
    related_port: int | None = None

    @classmethod
    def parse(cls, value: str) -> IceCandidate | None:
        """The candidate in an ``a=candidate`` value; None for a transport or candidate type
        we do not use (skipped, RFC 8839 §5.1). IceParseError when malformed."""
        tokens = value.split()
        if len(tokens) < 8:
            raise IceParseError(f"candidate {value!r}: fewer than 8 fields")
        foundation, component, transport, priority, address, port, typ, kind = tokens[:8]
        if not _ICE_CHARS.fullmatch(foundation) or len(foundation) > 32:
            raise IceParseError(f"candidate {value!r}: foundation must be 1-32 ice-chars")
        if not (component.isdigit() and len(component) <= 3 and 1 <= int(component) <= 256):
            raise IceParseError(f"candidate {value!r}: component must be 1-256")
        if not _TOKEN.fullmatch(transport):
            raise IceParseError(f"candidate {value!r}: transport is not a token")
        if not (priority.isdigit() and len(priority) <= 10 and 1 <= int(priority) < 2**31):
            raise IceParseError(f"candidate {value!r}: priority must be 1 to 2^31-1")
        _check_port(port, value)
        if typ != "typ":
            raise IceParseError(f"candidate {value!r}: expected 'typ' after the port")
        related_address: str | None = None
        related_port: int | None = None
        rest = tokens[8:]
        if len(rest) % 2:
            raise IceParseError(f"candidate {value!r}: an extension without a value")
        for name, ext in zip(rest[::2], rest[1::2], strict=True):
            if name == "raddr":
                related_address = ext
            elif name == "rport":
                _check_port(ext, value)
                related_port = int(ext)
        if (related_address is None) != (related_port is None):
            # RFC 8839 §5.1: raddr and rport go together; half of them says nothing.
            related_address = related_port = None
        if transport.upper() != "UDP" or kind not in CANDIDATE_TYPES:
            return None
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return None  # an FQDN or mDNS name (RFC 8839 §5.1 allows them): not resolved here
        return cls(
            foundation=foundation,
            component=int(component),
            transport=transport,
            priority=int(priority),
            address=address,
            port=int(port),
            type=kind,
            related_address=related_address,
            related_port=related_port,
        )

    def __str__(self) -> str:
        text = (
            f"{self.foundation} {self.component} {self.transport} {self.priority}"
            f" {self.address} {self.port} typ {self.type}"
        )
        if self.related_address is not None and self.related_port is not None:
            text += f" raddr {self.related_address} rport {self.related_port}"
        return text


def _check_port(text: str, value: str) -> None:
    if not (text.isdigit() and len(text) <= 5 and int(text) <= 65535):
        raise IceParseError(f"candidate {value!r}: {text!r} is not a port")


@dataclass(frozen=True, slots=True)
class IceDescription:
    """What one side says about ICE for a media stream."""

    ufrag: str
    pwd: str
    candidates: tuple[IceCandidate, ...] = ()
    lite: bool = False
    end_of_candidates: bool = True
    options: tuple[str, ...] = ()


def _credential(name: str, value: str | None, low: int) -> str:
    if value is None or not _ICE_CHARS.fullmatch(value) or not low <= len(value) <= 256:
        raise IceParseError(f"{name} must be {low}-256 ice-chars (not {value!r})")
    return value


def ice_of(sdp: SessionDescription, m: MediaDescription) -> IceDescription | None:
    """The ICE of media description ``m`` (ufrag, pwd and ice-lite may sit at session level,
    RFC 8839 §5.3-5.4); None when the description does not do ICE (no candidate, no ufrag)."""
    ufrag = m.attribute("ice-ufrag") or sdp.attribute("ice-ufrag")
    pwd = m.attribute("ice-pwd") or sdp.attribute("ice-pwd")
    lines = m.attribute_all("candidate")
    if ufrag is None and pwd is None and not lines:
        return None
    if ufrag is None or pwd is None:
        raise IceParseError("a=candidate without a=ice-ufrag and a=ice-pwd (RFC 8839 §5.4)")
    candidates: list[IceCandidate] = []
    for line in lines:
        if line is None:
            raise IceParseError("a=candidate without a value")
        candidate = IceCandidate.parse(line)
        if candidate is not None and len(candidates) < MAX_CANDIDATES:
            candidates.append(candidate)
    options = m.attribute("ice-options") or sdp.attribute("ice-options") or ""
    return IceDescription(
        ufrag=_credential("ice-ufrag", ufrag, 4),
        pwd=_credential("ice-pwd", pwd, 22),
        candidates=tuple(candidates),
        lite=m.has_attribute("ice-lite") or sdp.has_attribute("ice-lite"),
        end_of_candidates=m.has_attribute("end-of-candidates")
        or sdp.has_attribute("end-of-candidates")
        or "trickle" not in options.split(),
        options=tuple(options.split()),
    )


def ice_attributes(ice: IceDescription) -> list[tuple[str, str | None]]:
    """The media-level attributes that say ``ice`` (RFC 8839 §5): credentials, candidates,
    end-of-candidates (we gather everything before the offer or answer goes out)."""
    out: list[tuple[str, str | None]] = [("ice-ufrag", ice.ufrag), ("ice-pwd", ice.pwd)]
    if ice.options:
        out.append(("ice-options", " ".join(ice.options)))
    if ice.lite:
        out.append(("ice-lite", None))
    out.extend(("candidate", str(c)) for c in ice.candidates)
    if ice.end_of_candidates:
        out.append(("end-of-candidates", None))
    return out
