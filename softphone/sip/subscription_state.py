"""The life of a subscription of ours (RFC 6665 §4.1.2, §4.1.3) as data, sans-IO: the states,
the inputs, the table :data:`SUB_TRANSITIONS`, the event packages we subscribe to
(:data:`PACKAGES`) and how a Subscription-State header becomes an input. Everything that decides
the next state lives here; what entering a state does (a SUBSCRIBE going out, a deadline) is in
sip/subscription.py beside the requests and responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final, TypeAlias

from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.dialog import Dialog
from softphone.sip.dialog_info import DIALOG_INFO_TYPE, DialogInfo, DialogView
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest
from softphone.sip.message_summary import MESSAGE_SUMMARY_TYPE, MessageSummary
from softphone.sip.pidf import PIDF_TYPE, PresenceDocument
from softphone.sip.uri import SipUri

__all__ = [
    "DEFAULT_EXPIRES",
    "PACKAGES",
    "REFUSALS",
    "SUB_TRANSITIONS",
    "Document",
    "EventPackage",
    "SubInput",
    "SubState",
    "Subscription",
    "SubscriptionState",
    "refresh_delay",
    "retry_delay",
]

Document: TypeAlias = PresenceDocument | DialogInfo | MessageSummary

RETRY_MIN_S: Final = 30.0
RETRY_MAX_S: Final = 1800.0
QUICK_RESTARTS: Final = 3  # deactivated/timeout restarts in a row before backing off
DEFAULT_EXPIRES: Final = 3600  # RFC 3856 §6.4, RFC 4235 §3.3, RFC 3842 §4.3 all suggest an hour
# Final responses after which trying again would get the same answer.
REFUSALS: Final = frozenset({400, 403, 404, 405, 410, 416, 420, 484, 488, 489, 501, 603, 604, 606})


@dataclass(frozen=True, slots=True)
class EventPackage:
    """An event package we subscribe to: the body types its NOTIFYs carry (the first is the
    one we Accept), how a body is read, and whether NOTIFYs outside a subscription are taken."""

    name: str
    accept: tuple[str, ...]
    parse: Callable[[bytes], Document]
    unsolicited: bool = False


PACKAGES: Final[dict[str, EventPackage]] = {
    "presence": EventPackage("presence", (PIDF_TYPE,), PresenceDocument.parse),
    "dialog": EventPackage("dialog", (DIALOG_INFO_TYPE,), DialogInfo.parse),
    "message-summary": EventPackage(
        "message-summary", (MESSAGE_SUMMARY_TYPE,), MessageSummary.parse, unsolicited=True
    ),
}


class SubState(Enum):
    SUBSCRIBING = auto()
    PENDING = auto()
    ACTIVE = auto()
    WAITING = auto()
    UNSUBSCRIBING = auto()
    TERMINATED = auto()


class SubInput(Enum):
    ACCEPTED = auto()  # a 2xx to our SUBSCRIBE
    REFUSED = auto()  # a final failure worth no retry (REFUSALS)
    FAILED = auto()  # any other failure, a timeout, a transport error
    GONE = auto()  # 481: the notifier has no such subscription
    NOTIFY_PENDING = auto()
    NOTIFY_ACTIVE = auto()
    TERMINATED_RETRY_NOW = auto()  # reason deactivated or timeout (§4.1.3)
    TERMINATED_RETRY_LATER = auto()  # probation, an unknown reason, none
    TERMINATED_FINAL = auto()  # rejected, noresource, giveup, invariant
    TIMER_N = auto()  # no NOTIFY 64*T1 after the 2xx (§4.1.2.4)
    REFRESH_DUE = auto()
    RETRY_DUE = auto()
    UNSUBSCRIBE = auto()  # ours: Expires: 0
    RESTART = auto()  # ours: a new dialog now (the registrar came back)


S, SI = SubState, SubInput
_LIVE = (S.PENDING, S.ACTIVE)
# RFC 6665 §4.1.2 (subscriber), §4.1.3 (Subscription-State reasons). A pair not listed is a bug
# of ours: Subscription.apply raises LocalProtocolError.
SUB_TRANSITIONS: Final[dict[tuple[SubState, SubInput], SubState]] = {
    (S.SUBSCRIBING, SI.ACCEPTED): S.SUBSCRIBING,  # now wait for the first NOTIFY (Timer N)
    (S.SUBSCRIBING, SI.REFUSED): S.TERMINATED,
    (S.SUBSCRIBING, SI.FAILED): S.WAITING,
    (S.SUBSCRIBING, SI.GONE): S.WAITING,
    (S.SUBSCRIBING, SI.NOTIFY_PENDING): S.PENDING,
    (S.SUBSCRIBING, SI.NOTIFY_ACTIVE): S.ACTIVE,
    (S.SUBSCRIBING, SI.TERMINATED_RETRY_NOW): S.SUBSCRIBING,
    (S.SUBSCRIBING, SI.TERMINATED_RETRY_LATER): S.WAITING,
    (S.SUBSCRIBING, SI.TERMINATED_FINAL): S.TERMINATED,
    (S.SUBSCRIBING, SI.TIMER_N): S.WAITING,
    (S.SUBSCRIBING, SI.UNSUBSCRIBE): S.TERMINATED,  # its NOTIFYs will get 481
    (S.SUBSCRIBING, SI.RESTART): S.SUBSCRIBING,
    **{
        (live, inp): nxt
        for live in _LIVE
        for inp, nxt in (
            (SI.ACCEPTED, live),
            (SI.REFUSED, S.TERMINATED),
            (SI.FAILED, S.WAITING),
            (SI.GONE, S.SUBSCRIBING),
            (SI.NOTIFY_PENDING, S.PENDING),
            (SI.NOTIFY_ACTIVE, S.ACTIVE),
            (SI.TERMINATED_RETRY_NOW, S.SUBSCRIBING),
            (SI.TERMINATED_RETRY_LATER, S.WAITING),
            (SI.TERMINATED_FINAL, S.TERMINATED),
            (SI.REFRESH_DUE, live),
            (SI.UNSUBSCRIBE, S.UNSUBSCRIBING),
            (SI.RESTART, S.SUBSCRIBING),
        )
    },
    (S.WAITING, SI.RETRY_DUE): S.SUBSCRIBING,
    (S.WAITING, SI.RESTART): S.SUBSCRIBING,
    (S.WAITING, SI.UNSUBSCRIBE): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.ACCEPTED): S.UNSUBSCRIBING,  # now wait for the final NOTIFY
    (S.UNSUBSCRIBING, SI.REFUSED): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.FAILED): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.GONE): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.NOTIFY_PENDING): S.UNSUBSCRIBING,  # sent before our Expires: 0 arrived
    (S.UNSUBSCRIBING, SI.NOTIFY_ACTIVE): S.UNSUBSCRIBING,
    (S.UNSUBSCRIBING, SI.TERMINATED_RETRY_NOW): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.TERMINATED_RETRY_LATER): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.TERMINATED_FINAL): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.TIMER_N): S.TERMINATED,
    (S.UNSUBSCRIBING, SI.UNSUBSCRIBE): S.UNSUBSCRIBING,
    (S.TERMINATED, SI.UNSUBSCRIBE): S.TERMINATED,
}
_TERMINATED_INPUT: Final = {
    "deactivated": SI.TERMINATED_RETRY_NOW,
    "timeout": SI.TERMINATED_RETRY_NOW,
    "probation": SI.TERMINATED_RETRY_LATER,
    "rejected": SI.TERMINATED_FINAL,
    "noresource": SI.TERMINATED_FINAL,
    "giveup": SI.TERMINATED_FINAL,
    "invariant": SI.TERMINATED_FINAL,
}


def refresh_delay(expires: int) -> float:
    """When to refresh a subscription granted ``expires`` s: half way for short ones, a minute
    before the end for long ones, never sooner than 1 s."""
    return max(expires / 2 if expires <= 240 else expires - 60, 1.0)


def retry_delay(failures: int) -> float:
    """The wait before attempt ``failures + 1``: 30 s doubling to 30 min."""
    return float(min(RETRY_MIN_S * 2 ** max(failures - 1, 0), RETRY_MAX_S))


@dataclass(slots=True)
class Subscription:
    """One subscription of ours. ``call_id``/``local_tag`` name its current dialog (a new one
    each time it starts over); ``cseq`` is that of our latest SUBSCRIBE, whose responses alone
    count."""

    id: str
    account: AccountConfig
    target: SipUri
    package: EventPackage
    expires: int
    hop: Address
    state: SubState = SubState.SUBSCRIBING
    call_id: str = ""
    local_tag: str = ""
    cseq: int = 0
    request: SipRequest | None = None  # the initial SUBSCRIBE of the current dialog
    dialog: Dialog | None = None
    view: DialogView = field(default_factory=DialogView)
    expires_at: float | None = None  # when the notifier's copy runs out, as last told
    failures: int = 0
    quick_restarts: int = 0
    auth_attempts: int = 0

    def apply(self, inp: SubInput) -> SubState:
        nxt = SUB_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"subscription {self.id}: {inp.name} in {self.state.name}")
        self.state = nxt
        return nxt

    def next_cseq(self) -> int:
        self.cseq = self.dialog.next_seq() if self.dialog is not None else self.cseq + 1
        return self.cseq


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A Subscription-State header (§8.2.3)."""

    value: str
    reason: str | None
    expires: int | None
    retry_after: int | None

    @classmethod
    def parse(cls, text: str) -> SubscriptionState:
        value, *params = text.split(";")
        found: dict[str, str] = {}
        for param in params:
            name, _, param_value = param.partition("=")
            found[name.strip().lower()] = param_value.strip().strip('"')
        return cls(
            value=value.strip().lower(),
            reason=found.get("reason", "").lower() or None,
            expires=number(found.get("expires")),
            retry_after=number(found.get("retry-after")),
        )

    def input(self, quick_restarts: int) -> SubInput:
        if self.value == "pending":
            return SI.NOTIFY_PENDING
        if self.value != "terminated":
            return SI.NOTIFY_ACTIVE  # active, or an extension value (§4.1.3: treat as active)
        inp = _TERMINATED_INPUT.get(self.reason or "", SI.TERMINATED_RETRY_LATER)
        if inp is SI.TERMINATED_RETRY_NOW and quick_restarts >= QUICK_RESTARTS:
            return SI.TERMINATED_RETRY_LATER
        return inp


def number(text: str | None) -> int | None:
    """A header parameter's whole number, None when absent or not one."""
    return int(text) if text is not None and text.isdigit() else None
