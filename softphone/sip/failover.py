"""Failing over between an account's servers (RFC 3263 §4.3), sans-IO.

The phone layer resolves an account's outbound hop into every target RFC 3263 gives, in the
order to try them (NAPTR order, SRV priority and RFC 2782 weighted choice, then each target's
addresses). A REGISTER or an INVITE goes to the first target that is not held down; when that
target fails, the same request goes in a new transaction to the next one (§4.3: "the client
SHOULD create a new request, which is identical to the previous, but has a different value of
the Via branch ID"). What counts as failing:

- a transport error, or the transaction timing out (RFC 3261 §8.1.3.1, §17.1.1.2 Timer B/F):
  the target answered nothing;
- a 503 Service Unavailable (RFC 3261 §21.5.4): the server is overloaded or in maintenance.

A failed target is held down (skipped while others remain) for :data:`HOLD_DOWN_S`, or for as
long as a 503's Retry-After asks (RFC 3261 §20.33). When every target is held down, the one that
comes back first is tried anyway: a request is never refused without being sent somewhere.
:class:`TargetHealth` remembers this per target, shared by every account of the user agent, with
the time passed in by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Final

from softphone.sip.address import Address
from softphone.sip.message import SipResponse

__all__ = [
    "FAILOVER_STATUS",
    "HOLD_DOWN_S",
    "TargetHealth",
    "fails_over",
    "failure_text",
    "retry_after_s",
]

logger = logging.getLogger(__name__)

HOLD_DOWN_S: Final = 300.0  # how long a target that failed is skipped
FAILOVER_STATUS: Final = 503  # RFC 3263 §4.3 / RFC 3261 §21.5.4
MAX_RETRY_AFTER_S: Final = 24 * 3600.0  # a Retry-After beyond a day is held to a day

TargetKey = tuple[str, str, int]


def _key(target: Address) -> TargetKey:
    return (target.transport, target.host, target.port)


def fails_over(resp: SipResponse | None) -> bool:
    """Whether this outcome of a request sends it to the next target: no response at all (a
    timeout or a transport error), or 503."""
    return resp is None or resp.status == FAILOVER_STATUS


def retry_after_s(resp: SipResponse | None) -> float | None:
    """``Retry-After: delta-seconds [comment] *(; params)`` (RFC 3261 §20.33) of a response,
    or None when it has none that reads."""
    if resp is None:
        return None
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    token = value.split("(", 1)[0].split(";", 1)[0].strip()
    if not token.isascii() or not token.isdigit():
        return None
    return min(float(token), MAX_RETRY_AFTER_S)


def failure_text(resp: SipResponse | None, reason: str) -> str:
    """Why a server is left, in a few words: "did not answer", "answered 503 ...", or the
    transport's reason."""
    if resp is not None:
        return f"answered {resp.status} {resp.reason}"
    if reason.startswith("no answer"):
        return "did not answer"
    return f"could not be reached ({reason})"


class TargetHealth:
    """Targets that failed lately, each with the time it may be tried again."""

    def __init__(self, hold_down_s: float = HOLD_DOWN_S) -> None:
        self.hold_down_s = hold_down_s
        self._until: dict[TargetKey, float] = {}

    def failed(self, target: Address, now: float, *, hold_s: float | None = None) -> float:
        """``target`` failed at ``now``: skip it for ``hold_s`` (default: the hold-down).
        Returns when it may be tried again."""
        until = now + (self.hold_down_s if hold_s is None else hold_s)
        self._until[_key(target)] = max(until, self._until.get(_key(target), until))
        logger.info("holding down %s until %.1f", target.host_port, until)
        return until

    def usable(self, target: Address, now: float) -> bool:
        until = self._until.get(_key(target))
        if until is not None and until <= now:
            del self._until[_key(target)]  # its hold-down is over: it is a target like any other
            return True
        return until is None

    def held_until(self, target: Address) -> float | None:
        return self._until.get(_key(target))

    def first(self, targets: Sequence[Address], now: float) -> Address | None:
        """Where a new request goes: the first usable target in order; when all are held
        down, the one whose hold-down ends first. None for no targets."""
        for target in targets:
            if self.usable(target, now):
                return target
        if not targets:
            return None
        return min(targets, key=lambda t: self._until.get(_key(t), now))

    def next_after(
        self, targets: Sequence[Address], tried: Collection[Address], now: float
    ) -> Address | None:
        """The next usable target not yet tried for this request, in order; None when there is
        none left (the failure is then the request's outcome)."""
        done = {_key(t) for t in tried}
        for target in targets:
            if _key(target) not in done and self.usable(target, now):
                return target
        return None
