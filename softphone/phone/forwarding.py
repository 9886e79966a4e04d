"""What happens to an incoming call: ring, forward it, refuse it (do not disturb), or let the
answering machine take it (voicemail). Pure: the
account's settings (softphone/config_forwarding.py) and what is going on in, a
:class:`Decision` out. softphone/phone/call_routing.py carries it out.

Forwarding answers the INVITE with 302 Moved Temporarily and the target in Contact (RFC 3261
§21.3.3, §8.3: a redirect server's answer; the caller, or its proxy, tries the target). The
302 also names us and why in a Diversion header (RFC 5806 §4: ``unconditional``,
``user-busy``, ``no-answer``), which PBXs show to the target.

The decision is made at three moments (:class:`Trigger`): when the INVITE arrives, when it has
rung its no-answer time (``forward_no_answer_after``, else ``voicemail_after``), and when the user refuses it as busy. :data:`RULES`
is the table, read top to bottom for the trigger: the first rule whose condition holds decides.
Forwarding always comes before do-not-disturb: a forwarded call does not disturb, and the
caller reaches someone. With voicemail on, do-not-disturb sends callers to the answering
machine at once rather than refusing them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from softphone.config_forwarding import DND_RESPONSE_NAMES, Forwarding

__all__ = ["RULES", "Action", "Decision", "Trigger", "decide"]

MOVED_TEMPORARILY: Final = 302


class Trigger(Enum):
    ARRIVED = "arrived"  # a new INVITE
    NO_ANSWER = "no-answer"  # it rang forward_no_answer_after seconds, unanswered
    USER_BUSY = "user-busy"  # the user refused it as busy (486)


class Action(Enum):
    RING = "ring"
    FORWARD = "forward"  # 302 with the target in Contact
    REFUSE = "refuse"  # a final 4xx/6xx: do-not-disturb's status, or the user's 486
    VOICEMAIL = "voicemail"  # the answering machine answers (phone/answering_machine.py)
    KEEP_RINGING = "keep-ringing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do. ``status``: the response to send (FORWARD: 302; REFUSE: 486 or 603);
    ``target``: where a FORWARD sends the caller; ``diversion``: the RFC 5806 reason;
    ``reason``: the call's outcome in words for the history ("forwarded to sip:bob@x (busy)");
    ``ring_for_s``: a RING that forwards after this many seconds unanswered."""

    action: Action
    status: int | None = None
    target: str | None = None
    diversion: str | None = None
    reason: str = ""
    ring_for_s: int | None = None


Condition = Callable[[Forwarding, bool], bool]  # (settings, another call in progress)
CONDITIONS: Final[Mapping[str, Condition]] = {
    "forward always": lambda f, busy: f.always is not None,
    "do not disturb, voicemail": lambda f, busy: f.do_not_disturb and f.voicemail,
    "do not disturb": lambda f, busy: f.do_not_disturb,
    "busy, forward busy": lambda f, busy: busy and f.busy is not None,
    "forward busy": lambda f, busy: f.busy is not None,
    "forward no answer": lambda f, busy: f.no_answer is not None,
    "voicemail": lambda f, busy: f.voicemail,
    "otherwise": lambda f, busy: True,
}

# (trigger, condition, action); for each trigger, the first rule whose condition holds.
T, A = Trigger, Action
RULES: Final[tuple[tuple[Trigger, str, Action], ...]] = (
    (T.ARRIVED, "forward always", A.FORWARD),
    (T.ARRIVED, "do not disturb, voicemail", A.VOICEMAIL),
    (T.ARRIVED, "do not disturb", A.REFUSE),
    (T.ARRIVED, "busy, forward busy", A.FORWARD),
    (T.ARRIVED, "otherwise", A.RING),
    (T.NO_ANSWER, "forward no answer", A.FORWARD),
    (T.NO_ANSWER, "voicemail", A.VOICEMAIL),
    (T.NO_ANSWER, "otherwise", A.KEEP_RINGING),
    (T.USER_BUSY, "forward busy", A.FORWARD),
    (T.USER_BUSY, "otherwise", A.REFUSE),
)

# Where a FORWARD goes, and its RFC 5806 §4 diversion reason, by the condition that chose it.
_FORWARDS: Final[Mapping[str, tuple[Callable[[Forwarding], str | None], str, str]]] = {
    "forward always": (lambda f: f.always, "unconditional", "always"),
    "busy, forward busy": (lambda f: f.busy, "user-busy", "busy"),
    "forward busy": (lambda f: f.busy, "user-busy", "busy"),
    "forward no answer": (lambda f: f.no_answer, "no-answer", "no answer"),
}


def decide(trigger: Trigger, settings: Forwarding, *, busy: bool = False) -> Decision:
    """The decision for ``trigger`` on an account with ``settings``; ``busy``: another call is
    in progress (ringing, dialling, talking or held)."""
    for when, condition, action in RULES:
        if when is trigger and CONDITIONS[condition](settings, busy):
            return _decision(action, condition, settings)
    raise AssertionError(f"no rule for {trigger}")  # every trigger ends with "otherwise"


def _decision(action: Action, condition: str, settings: Forwarding) -> Decision:
    match action:
        case Action.FORWARD:
            where, diversion, why = _FORWARDS[condition]
            target = where(settings)
            return Decision(
                action=action,
                status=MOVED_TEMPORARILY,
                target=target,
                diversion=diversion,
                reason=f"forwarded to {target} ({why})",
            )
        case Action.REFUSE if condition == "do not disturb":
            status = settings.dnd_response
            return Decision(
                action=action,
                status=status,
                reason=f"do not disturb ({status} {DND_RESPONSE_NAMES[status]})",
            )
        case Action.REFUSE:
            return Decision(action=action, status=486, reason="486 Busy Here (refused as busy)")
        case Action.RING:
            after = None
            if settings.no_answer is not None:
                after = settings.no_answer_after_s
            elif settings.voicemail:
                after = settings.voicemail_after_s
            return Decision(action=action, ring_for_s=after)
        case Action.VOICEMAIL:
            return Decision(action=action, reason="voicemail")
        case Action.KEEP_RINGING:
            return Decision(action=action)
