"""The forwarding policy's table: what each setting does to a call, at each moment."""

from __future__ import annotations

import itertools

import pytest

from softphone.config_forwarding import Forwarding
from softphone.phone.forwarding import CONDITIONS, RULES, Action, Decision, Trigger, decide

ALWAYS, BUSY, NO_ANSWER = "sip:always@x", "sip:busy@x", "sip:later@x"
EVERYTHING = Forwarding(always=ALWAYS, busy=BUSY, no_answer=NO_ANSWER, do_not_disturb=True)


def test_nothing_set_rings_and_keeps_ringing() -> None:
    assert decide(Trigger.ARRIVED, Forwarding()) == Decision(action=Action.RING)
    assert decide(Trigger.ARRIVED, Forwarding(), busy=True).action is Action.RING  # waiting
    assert decide(Trigger.NO_ANSWER, Forwarding()).action is Action.KEEP_RINGING
    refused = decide(Trigger.USER_BUSY, Forwarding())
    assert (refused.action, refused.status) == (Action.REFUSE, 486)


def test_forward_always_comes_first_even_with_do_not_disturb() -> None:
    decision = decide(Trigger.ARRIVED, EVERYTHING, busy=True)
    assert decision == Decision(
        action=Action.FORWARD,
        status=302,
        target=ALWAYS,
        diversion="unconditional",
        reason=f"forwarded to {ALWAYS} (always)",
    )


@pytest.mark.parametrize("status", [486, 603])
def test_do_not_disturb_refuses_with_the_chosen_status(status: int) -> None:
    settings = Forwarding(busy=BUSY, do_not_disturb=True, dnd_response=status)  # type: ignore[arg-type]
    decision = decide(Trigger.ARRIVED, settings, busy=True)
    words = {486: "Busy Here", 603: "Decline"}[status]
    assert decision == Decision(
        action=Action.REFUSE, status=status, reason=f"do not disturb ({status} {words})"
    )


def test_busy_forwards_only_while_another_call_is_in_progress() -> None:
    settings = Forwarding(busy=BUSY)
    assert decide(Trigger.ARRIVED, settings, busy=False).action is Action.RING
    decision = decide(Trigger.ARRIVED, settings, busy=True)
    assert (decision.action, decision.target, decision.diversion) == (
        Action.FORWARD,
        BUSY,
        "user-busy",
    )
    # the user refusing it as busy forwards it too
    assert decide(Trigger.USER_BUSY, settings).target == BUSY


def test_no_answer_rings_for_its_time_then_forwards() -> None:
    settings = Forwarding(no_answer=NO_ANSWER, no_answer_after_s=7)
    assert decide(Trigger.ARRIVED, settings) == Decision(action=Action.RING, ring_for_s=7)
    decision = decide(Trigger.NO_ANSWER, settings)
    assert (decision.action, decision.status, decision.target, decision.diversion) == (
        Action.FORWARD,
        302,
        NO_ANSWER,
        "no-answer",
    )
    assert decision.reason == f"forwarded to {NO_ANSWER} (no answer)"


def test_the_table_decides_every_trigger_for_every_combination() -> None:
    assert {c for _, c, _ in RULES} <= set(CONDITIONS)
    for trigger in Trigger:
        assert [c for t, c, _ in RULES if t is trigger][-1] == "otherwise"
    for always, busy_to, later, dnd, busy in itertools.product(
        (None, ALWAYS), (None, BUSY), (None, NO_ANSWER), (False, True), (False, True)
    ):
        settings = Forwarding(always=always, busy=busy_to, no_answer=later, do_not_disturb=dnd)
        for trigger in Trigger:
            decision = decide(trigger, settings, busy=busy)
            if decision.action is Action.FORWARD:
                assert decision.target is not None and decision.status == 302
            if decision.action is Action.REFUSE:
                assert decision.status in (486, 603)


def test_voicemail_takes_the_unanswered_call_after_its_own_time() -> None:
    settings = Forwarding(voicemail=True, voicemail_after_s=9)
    assert decide(Trigger.ARRIVED, settings) == Decision(action=Action.RING, ring_for_s=9)
    assert decide(Trigger.NO_ANSWER, settings) == Decision(
        action=Action.VOICEMAIL, reason="voicemail"
    )
    # forward on no answer comes first, with its own time
    both = Forwarding(voicemail=True, no_answer=NO_ANSWER, no_answer_after_s=4)
    assert decide(Trigger.ARRIVED, both).ring_for_s == 4
    assert decide(Trigger.NO_ANSWER, both).action is Action.FORWARD


def test_do_not_disturb_with_voicemail_answers_at_once_and_forward_always_still_wins() -> None:
    settings = Forwarding(voicemail=True, do_not_disturb=True)
    assert decide(Trigger.ARRIVED, settings).action is Action.VOICEMAIL
    assert decide(Trigger.ARRIVED, settings, busy=True).action is Action.VOICEMAIL
    always = Forwarding(voicemail=True, do_not_disturb=True, always=ALWAYS)
    assert decide(Trigger.ARRIVED, always).action is Action.FORWARD
    assert settings.summary() == "DND, voicemail at once"
    assert Forwarding(voicemail=True, voicemail_after_s=15).summary() == "voicemail after 15 s"
