"""An account's call signalling options in the config file: reliable provisional responses
(``prack``, RFC 3262) and the session timer (``session_expires``, RFC 4028).

Spelled in the config file's words: softphone.sip.reliable.PRACK_MODES and
softphone.sip.session_timer.MIN_SE_S say the same (tests/test_config_session.py checks they
agree), but reading a config loads no SIP module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

PrackMode: TypeAlias = Literal["off", "supported", "required"]
PRACK_MODES: Final[tuple[PrackMode, ...]] = ("off", "supported", "required")
DEFAULT_PRACK: Final[PrackMode] = "supported"
MIN_SE_S: Final = 90  # RFC 4028 §4: no session interval below 90 s
MAX_SESSION_EXPIRES_S: Final = 86400
DEFAULT_SESSION_EXPIRES_S: Final = 1800  # RFC 4028 §4's recommendation


class CallOptionError(ValueError):
    """A ``prack`` or ``session_expires`` the config cannot take; the text says why."""


def parse_call_options(raw: Mapping[str, Any]) -> tuple[PrackMode, int]:
    """``prack`` and ``session_expires`` of one ``[[account]]`` table, defaults filled in."""
    prack = raw.get("prack", DEFAULT_PRACK)
    if prack not in PRACK_MODES:
        raise CallOptionError(f"prack must be one of {', '.join(PRACK_MODES)} (not {prack!r})")
    interval = raw.get("session_expires", DEFAULT_SESSION_EXPIRES_S)
    if (
        not isinstance(interval, int)
        or isinstance(interval, bool)
        or not (interval == 0 or MIN_SE_S <= interval <= MAX_SESSION_EXPIRES_S)
    ):
        raise CallOptionError(
            "session_expires must be 0 (no session timer) or a whole number of seconds from"
            f" {MIN_SE_S} (RFC 4028's smallest) to {MAX_SESSION_EXPIRES_S}, not {interval!r}"
        )
    return prack, interval
