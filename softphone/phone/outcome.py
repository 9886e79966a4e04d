"""How a call ended, in the words a person (or a script) needs: the ``outcome`` of
:class:`~softphone.phone.events.CallEnded`.

The SIP status alone does not say it. A 408 from a proxy means nobody answered, while a 408 the
transaction assumed because no response came at all (Timer B, RFC 3261 §17.1.1.2 and §8.1.3.1)
means the network failed us; a 486 on a call we made means the callee is busy, and on a call we
received it means we refused it. :func:`call_outcome` decides from the direction, whether the
call was answered, the final status (RFC 3261 §21) and whether a response came at all.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["OUTCOMES", "OUTCOME_WORDS", "Outcome", "call_outcome"]

Outcome = Literal[
    "answered",  # talked, then either side hung up
    "busy",  # 486 Busy Here, 600 Busy Everywhere (our call)
    "declined",  # 603 Decline: the callee refused it (our call)
    "not_found",  # 404 Not Found, 410 Gone, 604 Does Not Exist Anywhere (our call)
    "no_answer",  # 408 / 480 from the far side: nobody picked up (our call)
    "network",  # no response at all, a transport error, 502 / 503 / 504 on the way (our call)
    "cancelled",  # we hung up before the callee answered (our call, 487)
    "missed",  # the caller gave up before we answered, or nobody answered here (their call)
    "rejected",  # we refused the call (their call: our 486 / 600 / 603, do-not-disturb)
    "forwarded",  # we sent the caller elsewhere (their call: our 3xx, phone/forwarding.py)
    "voicemail",  # the answering machine took it (their call: phone/answering_machine.py)
    "failed",  # anything else; the status and its explanation say what
]
OUTCOMES: Final = frozenset(get_args(Outcome))

# The words of the human line ("call failed: busy (SIP 486 Busy Here)").
OUTCOME_WORDS: Final[dict[Outcome, str]] = {
    "answered": "answered",
    "busy": "busy",
    "declined": "declined",
    "not_found": "no such user or number",
    "no_answer": "no answer",
    "network": "network problem",
    "cancelled": "cancelled",
    "missed": "missed",
    "rejected": "rejected",
    "forwarded": "forwarded",
    "voicemail": "voicemail",
    "failed": "failed",
}

_OUTGOING: Final[dict[int, Outcome]] = {
    486: "busy",
    600: "busy",
    603: "declined",
    404: "not_found",
    410: "not_found",
    604: "not_found",
    408: "no_answer",
    480: "no_answer",
    487: "cancelled",
    502: "network",
    503: "network",
    504: "network",
}
_INCOMING: Final[dict[int, Outcome]] = {
    486: "rejected",
    600: "rejected",
    603: "rejected",
    0: "missed",
    408: "missed",
    480: "missed",  # do-not-disturb answers 480: the call is missed, not failed
    487: "missed",
    301: "forwarded",
    302: "forwarded",
}


def call_outcome(
    *,
    direction: Literal["outgoing", "incoming"],
    answered: bool,
    status: int,
    no_response: bool = False,
) -> Outcome:
    """The outcome of a call that ended with final ``status`` (``no_response``: none came)."""
    if answered:
        return "answered"
    if direction == "incoming":
        return _INCOMING.get(status, "network" if no_response else "failed")
    if no_response:
        return "network"
    return _OUTGOING.get(status, "failed")
