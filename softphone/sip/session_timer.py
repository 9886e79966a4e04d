"""Session timers (RFC 4028), the pure part: header values, who refreshes, and the per-call
state table. sans-IO: no clock is read; the part that drives it (sip/session_refresh.py) hands
``now`` in and arms deadlines.

A session refresh is a re-INVITE or an UPDATE carrying ``Session-Expires``; each 2xx to one
restarts the interval (§10). ``refresher=uac`` names the *sender of that request* (§7.4, §9),
so who refreshes is worked out again at every refresh, from our side of the transaction.

The refresher refreshes at half the interval (§10); the other side, without a refresh, ends the
session ``min(32, SE/3)`` seconds before it expires (§10: BYE, then the call is over).

    state         input            next          side effect (session_refresh.py)
    OFF           AGREED_WE        WE_REFRESH    deadlines: half time, expiry
    OFF           AGREED_THEY      THEY_REFRESH  deadline: expiry (minus the margin)
    WE_REFRESH    HALF_TIME        REFRESHING    UPDATE (peer allows it) or re-INVITE
    REFRESHING    REFRESH_FAILED   WE_REFRESH    491: retry soon; others: wait for expiry
    any live      AGREED_*         WE_/THEY_     deadlines again from now
    any live      AGREED_NONE      OFF           deadlines cleared
    any live      EXPIRY           EXPIRED       BYE, CallEnded("session expired")
    any           CALL_ENDED       OFF           deadlines cleared
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Final, Literal

from softphone.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError
from softphone.sip.headers import parse_header_params, split_header_values
from softphone.sip.message import SipMessage

MIN_SE_S: Final = 90  # §4: no Min-SE below 90 s
DEFAULT_SESSION_EXPIRES_S: Final = 1800  # §4: the recommended interval
MAX_422_RETRIES: Final = 2  # §7.4 retries with each larger Min-SE; a loop ends here
Refresher = Literal["uac", "uas"]


# --- header values (§4, §5) ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionExpires:
    """``Session-Expires: delta-seconds [;refresher=uac|uas]`` (§4)."""

    interval_s: int
    refresher: Refresher | None = None

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        head, _, rest = text.partition(";")
        head = head.strip()
        if not head.isdigit() or len(head) > 10:
            raise RemoteProtocolError(
                f"Session-Expires {text!r} is not a number of seconds", status_hint=400
            )
        refresher: Refresher | None = None
        try:
            params = parse_header_params(";" + rest, "Session-Expires") if rest else ()
        except ParseError as exc:
            raise RemoteProtocolError(f"Session-Expires {text!r}: {exc}", status_hint=400) from exc
        for name, value in params:
            if name.lower() == "refresher":
                low = (value or "").lower()
                if low not in ("uac", "uas"):
                    raise RemoteProtocolError(
                        f"Session-Expires refresher {value!r} is neither uac nor uas",
                        status_hint=400,
                    )
                refresher = "uac" if low == "uac" else "uas"
        return cls(int(head), refresher)

    def __str__(self) -> str:
        return str(self.interval_s) + (f";refresher={self.refresher}" if self.refresher else "")


def session_expires_of(msg: SipMessage) -> SessionExpires | None:
    """The message's Session-Expires, None without one; RemoteProtocolError when malformed."""
    text = msg.headers.get("Session-Expires")
    return None if text is None else SessionExpires.parse(text)


def min_se_of(msg: SipMessage) -> int | None:
    """The message's Min-SE (§5), None without one; RemoteProtocolError when malformed."""
    text = msg.headers.get("Min-SE")
    if text is None:
        return None
    head = text.partition(";")[0].strip()
    if not head.isdigit() or len(head) > 10:
        raise RemoteProtocolError(f"Min-SE {text!r} is not a number of seconds", status_hint=400)
    return int(head)


def has_option(msg: SipMessage, header: str, tag: str) -> bool:
    """Whether ``header`` (Supported, Require) lists the option tag ``tag``."""
    return any(
        v.strip().lower() == tag
        for line in msg.headers.get_lines(header)
        for v in split_header_values(line)
    )


# --- negotiation (§7 as UAC, §9 as UAS) ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Agreement:
    """A session timer both sides hold to: ``refresher`` from the request's point of view."""

    interval_s: int
    refresher: Refresher


@dataclass(frozen=True, slots=True)
class TooSmall:
    """§9: the request's Session-Expires is below what we accept: 422 with this Min-SE."""

    min_se_s: int


def request_headers(
    interval_s: int, min_se_s: int, *, refresher: Refresher | None = None
) -> list[tuple[str, str]]:
    """What a request that may set up or refresh a session timer carries (§7.1, §7.4)."""
    headers = [("Session-Expires", str(SessionExpires(interval_s, refresher)))]
    if min_se_s != MIN_SE_S:  # §5: absent means 90
        headers.append(("Min-SE", str(min_se_s)))
    return headers


def uas_agreement(
    request: SipMessage, *, wanted_s: int, min_se_s: int
) -> Agreement | TooSmall | None:
    """§9: what we answer a request (INVITE, re-INVITE, UPDATE) with: an agreement, a 422, or
    None (no session timer: we do not want one and the request asks for none).

    ``wanted_s`` is our interval (0: we do not want one), ``min_se_s`` the smallest we accept."""
    asked = session_expires_of(request)
    their_min = min_se_of(request) or MIN_SE_S
    uac_supports = has_option(request, "Supported", "timer") or has_option(
        request, "Require", "timer"
    )
    if asked is None and not wanted_s:
        return None
    if asked is not None and asked.interval_s < min_se_s:
        if uac_supports:
            return TooSmall(min_se_s)
        asked = SessionExpires(min_se_s, asked.refresher)  # §9: a proxy's value, made larger
    interval = wanted_s if asked is None else min(asked.interval_s, wanted_s or asked.interval_s)
    interval = max(interval, their_min, min_se_s)
    if asked is not None and asked.refresher is not None:
        refresher = asked.refresher
    else:
        # §9: the UAS picks; a UAC that does not know the extension cannot refresh.
        refresher = "uac" if uac_supports else "uas"
    return Agreement(interval, refresher)


def uas_response_headers(request: SipMessage, agreement: Agreement) -> list[tuple[str, str]]:
    """§9: the 2xx says the interval and the refresher; Require: timer when the UAC knows the
    extension (and it must, when the UAC refreshes)."""
    headers = [("Session-Expires", str(SessionExpires(agreement.interval_s, agreement.refresher)))]
    if has_option(request, "Supported", "timer") or has_option(request, "Require", "timer"):
        headers.append(("Require", "timer"))
    return headers


def uac_agreement(response: SipMessage) -> Agreement | None:
    """§7.2: the 2xx to our request sets the timer; without Session-Expires there is none. A
    2xx that names no refresher leaves it to us, the sender (the safe side: we refresh)."""
    answered = session_expires_of(response)
    if answered is None:
        return None
    return Agreement(answered.interval_s, answered.refresher or "uac")


def retry_interval(response: SipMessage, sent_s: int) -> int | None:
    """§7.4: the interval to ask for after a 422: its Min-SE, when that is larger than what we
    asked for; None when the 422 gives nothing to retry with."""
    try:
        min_se = min_se_of(response)
    except RemoteProtocolError:
        return None
    if min_se is None or min_se <= sent_s:
        return None
    return min_se


def expiry_margin_s(interval_s: int) -> float:
    """§10: the side that does not refresh gives up this long before the session expires."""
    return min(32.0, interval_s / 3)


# --- the per-call state table -------------------------------------------------------------------
class SessionTimerState(Enum):
    OFF = auto()
    WE_REFRESH = auto()  # we are the refresher, waiting for half time
    REFRESHING = auto()  # our refresh is out
    THEY_REFRESH = auto()  # the peer refreshes; we watch for expiry
    EXPIRED = auto()  # no refresh came in time: the call is being ended


class SessionTimerInput(Enum):
    AGREED_WE = auto()  # a 2xx (sent or received) made us the refresher
    AGREED_THEY = auto()  # a 2xx made the peer the refresher
    AGREED_NONE = auto()  # a refresh's 2xx turned the timer off
    HALF_TIME = auto()
    REFRESH_FAILED = auto()
    EXPIRY = auto()
    CALL_ENDED = auto()


ST, SI = SessionTimerState, SessionTimerInput
_LIVE: Final = (ST.WE_REFRESH, ST.REFRESHING, ST.THEY_REFRESH)
SESSION_TIMER_TRANSITIONS: Final[
    dict[tuple[SessionTimerState, SessionTimerInput], SessionTimerState]
] = {
    (ST.OFF, SI.AGREED_WE): ST.WE_REFRESH,
    (ST.OFF, SI.AGREED_THEY): ST.THEY_REFRESH,
    (ST.OFF, SI.AGREED_NONE): ST.OFF,
    (ST.OFF, SI.CALL_ENDED): ST.OFF,
    (ST.WE_REFRESH, SI.HALF_TIME): ST.REFRESHING,
    (ST.REFRESHING, SI.REFRESH_FAILED): ST.WE_REFRESH,
    (ST.EXPIRED, SI.CALL_ENDED): ST.OFF,
    **{(s, SI.AGREED_WE): ST.WE_REFRESH for s in _LIVE},
    **{(s, SI.AGREED_THEY): ST.THEY_REFRESH for s in _LIVE},
    **{(s, SI.AGREED_NONE): ST.OFF for s in _LIVE},
    **{(s, SI.EXPIRY): ST.EXPIRED for s in _LIVE},
    **{(s, SI.CALL_ENDED): ST.OFF for s in _LIVE},
}


@dataclass(slots=True)
class SessionTimer:
    """One call's session timer."""

    state: SessionTimerState = SessionTimerState.OFF
    interval_s: int = 0
    expires_at: float | None = None  # when the session expires without a refresh
    peer_allows_update: bool = False  # the peer's Allow lists UPDATE: refresh with it (§9)
    retries_422: int = 0

    def allows(self, inp: SessionTimerInput) -> bool:
        return (self.state, inp) in SESSION_TIMER_TRANSITIONS

    def apply(self, inp: SessionTimerInput) -> SessionTimerState:
        nxt = SESSION_TIMER_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"session timer: {inp.name} in {self.state.name}")
        self.state = nxt
        return nxt

    @property
    def running(self) -> bool:
        return self.state in _LIVE
