"""Forwarding and do-not-disturb between Phones on 127.0.0.1: the caller gets the 302 with the
target in Contact (and the Diversion naming us) and follows it (RFC 3261 §8.1.3.4) to the
target, a third phone; or the caller gets do-not-disturb's status. The forwarding phone's call
ends with the outcome the history keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from phone_support import expect, port_of, started

from softphone.config import Account, Config
from softphone.config_forwarding import Forwarding
from softphone.phone import events as pe
from softphone.phone.phone import Phone
from softphone.phone.text import describe
from softphone.sip.uri import SipUri


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


def alice(forwarding: Forwarding) -> Config:
    """A peer-to-peer account ``alice`` (she takes calls for her user at any host)."""
    uri = SipUri.parse("sip:alice@127.0.0.1")
    return Config(accounts=(Account(name="alice", uri=uri, forwarding=forwarding),))


async def target(phones: list[Phone], seed: str) -> tuple[Phone, str]:
    """The phone calls are forwarded to, and its URI."""
    carol = await started(seed=seed)
    phones.append(carol)
    return carol, f"sip:softphone@127.0.0.1:{port_of(carol)}"


async def reaches(carol: Phone) -> pe.IncomingCall:
    incoming = await expect(carol, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    return incoming


async def ended(phone: Phone) -> pe.CallEnded:
    end = await expect(phone, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(end, pe.CallEnded)
    return end


def received_final(phone: Phone, call_id: str) -> str:
    """The final response the caller received to its INVITE, whole."""
    (final,) = [
        m
        for m in phone.sip_flow(call_id)
        if m.direction == "received"
        and m.first_line.startswith("SIP/2.0 ")
        and not m.first_line.startswith("SIP/2.0 1")
    ]
    return final.text


async def test_forward_always_answers_302_and_the_caller_reaches_the_target(
    phones: list[Phone],
) -> None:
    carol, to = await target(phones, "f0")
    callee = await started(alice(Forwarding(always=to, do_not_disturb=True)), seed="fa")
    caller = await started(seed="fb")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    ours = await ended(callee)
    assert (ours.status, ours.outcome, ours.answered) == (302, "forwarded", False)
    assert ours.reason == f"forwarded to {to} (always)"
    assert describe(ours) == f"call forwarded to {to} (always)"
    incoming = await reaches(carol)
    assert incoming.call_id == call_id  # the caller followed the redirect
    text = received_final(caller, call_id)
    assert text.startswith("SIP/2.0 302 Moved Temporarily\n")
    assert f"\nContact: <{to}>\n" in text
    assert "\nDiversion: <sip:alice@127.0.0.1>;reason=unconditional;counter=1\n" in text


@pytest.mark.parametrize("status", [486, 603])
async def test_do_not_disturb_refuses_with_its_status(phones: list[Phone], status: int) -> None:
    forwarding = Forwarding(do_not_disturb=True, dnd_response=status)  # type: ignore[arg-type]
    callee = await started(alice(forwarding), seed="fc")
    caller = await started(seed="fd")
    phones += [callee, caller]
    await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    theirs, ours = await ended(caller), await ended(callee)
    assert theirs.status == status
    assert (ours.status, ours.outcome) == (status, "rejected")
    assert ours.reason.startswith(f"do not disturb ({status} ")
    assert describe(ours).startswith("call refused: do not disturb")


async def test_no_answer_forwards_after_its_seconds_of_ringing(phones: list[Phone]) -> None:
    carol, to = await target(phones, "f1")
    callee = await started(alice(Forwarding(no_answer=to, no_answer_after_s=1)), seed="fe")
    caller = await started(seed="ff")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "ringing")
    rang_at = caller.call(call_id).started_at
    ours = await ended(callee)
    assert (ours.outcome, ours.reason) == ("forwarded", f"forwarded to {to} (no answer)")
    await reaches(carol)
    text = received_final(caller, call_id)
    assert f"\nContact: <{to}>\n" in text and ";reason=no-answer;" in text
    forwarded_at = next(
        m.at for m in caller.sip_flow(call_id) if m.first_line.startswith("SIP/2.0 302")
    )
    first_at = caller.sip_flow(call_id)[0].at
    assert forwarded_at - first_at >= 1.0, "forwarded before the call rang its second"
    assert rang_at is not None


async def test_an_answered_call_is_not_forwarded_later(phones: list[Phone]) -> None:
    carol, to = await target(phones, "f2")
    callee = await started(alice(Forwarding(no_answer=to, no_answer_after_s=1)), seed="fg")
    caller = await started(seed="fh")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    incoming = await reaches(callee)
    await callee.answer(incoming.call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    # past the no-answer time the call is still up, and nothing reached the target
    with pytest.raises(TimeoutError):
        await expect(caller, lambda e: isinstance(e, pe.CallEnded), timeout_s=1.5)
    assert caller.call(call_id).state == "established"
    assert carol.next_event_nowait() is None


async def test_busy_forwards_a_refusal_as_busy_and_a_second_call(phones: list[Phone]) -> None:
    carol, to = await target(phones, "f3")
    callee = await started(alice(Forwarding(busy=to)), seed="fi")
    first, second = await started(seed="fj"), await started(seed="fk")
    phones += [callee, first, second]
    port = port_of(callee)
    # not busy: the call rings; the user refuses it as busy, and it is forwarded instead
    call_id = await first.dial(f"sip:alice@127.0.0.1:{port}")
    await callee.reject((await reaches(callee)).call_id, status=486)
    assert (await ended(callee)).reason == f"forwarded to {to} (busy)"
    assert (await reaches(carol)).call_id == call_id
    await first.hangup(call_id)
    await ended(first)
    # a refusal with another status is a refusal
    call_id = await first.dial(f"sip:alice@127.0.0.1:{port}")
    await callee.reject((await reaches(callee)).call_id, status=603)
    assert (await ended(first)).status == 603
    # a call in progress: the next one is forwarded without ringing here
    call_id = await first.dial(f"sip:alice@127.0.0.1:{port}")
    await callee.answer((await reaches(callee)).call_id)
    await expect(first, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    call_id = await second.dial(f"sip:alice@127.0.0.1:{port}")
    assert (await reaches(carol)).call_id == call_id
    assert ";reason=user-busy;" in received_final(second, call_id)
