"""An account's NAT traversal options in the config file, beside ``stun_server`` (config.py):
ICE (RFC 8445) and a TURN relay (RFC 8656) with its long-term credentials (RFC 8489 §9.2).

    stun_server = "stun.example.com"        # server-reflexive candidates (and, without ICE,
                                            # the public address for the SDP)
    turn_server = "turn.example.com:3478"   # relay candidates
    turn_username = "alice"
    turn_password = "secret"
    ice = true                              # default: on when a STUN or TURN server is set

Reading a config loads no network module; phone/ice.py turns these into an ICE agent per call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "NAT_KEYS",
    "NatError",
    "NatTraversal",
    "nat_to_dict",
    "parse_host_port",
    "parse_nat",
]

NAT_KEYS: Final = frozenset({"turn_server", "turn_username", "turn_password", "ice"})


class NatError(ValueError):
    """A NAT traversal key of an account is wrong; the message names the key."""


def parse_host_port(text: str, default_port: int = 3478) -> tuple[str, int] | None:
    """``HOST[:PORT]`` (an IPv6 literal in brackets) as (host, port), or None when malformed."""
    found = re.fullmatch(r"\s*(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]]+))(?::(\d{1,5}))?\s*", text)
    if found is None:
        return None
    port = int(found.group(3)) if found.group(3) else default_port
    if not 0 < port < 65536:
        return None
    return found.group(1) or found.group(2), port


@dataclass(frozen=True, slots=True, kw_only=True)
class NatTraversal:
    """ICE and TURN settings of one account. ``ice`` None: on when a STUN or TURN server is
    set (see :meth:`ice_enabled`)."""

    turn_server: str | None = None
    turn_username: str | None = None
    turn_password: str | None = None
    ice: bool | None = None

    def ice_enabled(self, stun_server: str | None) -> bool:
        if self.ice is not None:
            return self.ice
        return stun_server is not None or self.turn_server is not None


def parse_nat(raw: Mapping[str, Any]) -> NatTraversal:
    """The NAT keys of one ``[[account]]`` table; NatError names a wrong one."""
    turn_server = raw.get("turn_server")
    if turn_server is not None and (
        not isinstance(turn_server, str) or parse_host_port(turn_server) is None
    ):
        raise NatError(f'turn_server must be "HOST[:PORT]" (not {turn_server!r})')
    credentials: dict[str, str | None] = {}
    for key in ("turn_username", "turn_password"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise NatError(f"{key} must be a non-empty string")
        credentials[key] = value
    if turn_server is not None and None in credentials.values():
        # RFC 8656 §9: a TURN server authenticates every allocation (long-term credentials).
        raise NatError("turn_server needs turn_username and turn_password")
    if turn_server is None and any(v is not None for v in credentials.values()):
        raise NatError("turn_username and turn_password need a turn_server")
    ice = raw.get("ice")
    if ice is not None and not isinstance(ice, bool):
        raise NatError(f"ice must be true or false (not {ice!r})")
    if ice is False and turn_server is not None:
        raise NatError("turn_server is used through ICE: it needs ice = true (or no ice key)")
    return NatTraversal(
        turn_server=turn_server,
        turn_username=credentials["turn_username"],
        turn_password=credentials["turn_password"],
        ice=ice,
    )


def nat_to_dict(nat: NatTraversal) -> dict[str, object]:
    """The keys to write back for ``nat`` (none for the defaults)."""
    out: dict[str, object] = {}
    for key in ("turn_server", "turn_username", "turn_password", "ice"):
        value = getattr(nat, key)
        if value is not None:
            out[key] = value
    return out
