"""Two Phones talking directly on 127.0.0.1 (no registrar): what the façade promises front
ends — do-not-disturb, rejection, call waiting, answering — over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from phone_support import expect, port_of, started

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.errors import AddressError, NetworkError, PhoneError
from softphone.phone.phone import Phone
from softphone.phone.text import describe
from softphone.sip.uri import SipUri


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


async def test_do_not_disturb_answers_480(phones: list[Phone]) -> None:
    callee = await started(Config(do_not_disturb=True), seed="a")
    caller = await started(seed="b")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    end = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
    assert (
        isinstance(end, pe.CallEnded)
        and end.call_id == call_id
        and end.status == 480
        and not end.answered
    )
    # The callee's side: the call is shown (for the history: a missed call) and ends at once,
    # without ever ringing.
    seen: list[pe.PhoneEvent] = []
    await expect(callee, lambda e: seen.append(e) or isinstance(e, pe.CallEnded))
    assert [type(e) for e in seen] == [pe.IncomingCall, pe.CallStateChanged, pe.CallEnded], seen
    incoming, changed, ended = seen
    assert isinstance(incoming, pe.IncomingCall) and not incoming.waiting
    assert changed == pe.CallStateChanged(
        call_id=incoming.call_id, state="ended", direction="incoming", remote=incoming.remote
    )
    assert isinstance(ended, pe.CallEnded) and ended.call_id == incoming.call_id
    assert (ended.status, ended.answered) == (480, False)


async def test_reject_busy_and_answer(phones: list[Phone]) -> None:
    callee = await started(seed="c")
    caller = await started(seed="d")
    phones += [callee, caller]
    target = f"sip:softphone@127.0.0.1:{port_of(callee)}"
    await caller.dial(target)
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await callee.reject(incoming.call_id, status=486)
    end = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(end, pe.CallEnded) and end.status == 486 and "busy" in end.reason.lower()
    # and a second call is answered
    call_id = await caller.dial(target)
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await callee.answer(incoming.call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    assert (
        caller.call(call_id).media is not None
        and caller.call(call_id).media.codec.encoding == "opus"
    )  # type: ignore[union-attr]
    with pytest.raises(PhoneError, match="not ringing"):
        await callee.answer(incoming.call_id)


async def test_second_call_is_call_waiting(phones: list[Phone]) -> None:
    callee = await started(auto_answer=True, seed="e")
    first, second = await started(seed="f"), await started(seed="g")
    phones += [callee, first, second]
    target = f"sip:softphone@127.0.0.1:{port_of(callee)}"
    await first.dial(target)
    await expect(first, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    waiting_seen = []

    def waiting(e: pe.PhoneEvent) -> bool:
        if isinstance(e, pe.IncomingCall):
            waiting_seen.append(e.waiting)
        return len(waiting_seen) == 2

    await second.dial(target)
    await expect(callee, waiting)
    assert waiting_seen == [False, True]
    await expect(second, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    # the callee sees it established once the ACK arrives
    await expect(callee, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    assert len([c for c in callee.calls if c.state == "established"]) == 2


async def test_dialling_garbage_says_why(phones: list[Phone]) -> None:
    phone = await started(seed="h")
    phones.append(phone)
    with pytest.raises(AddressError, match="not a valid SIP address"):
        await phone.dial("sip:")


async def test_user_agent_names_the_product_without_its_version(phones: list[Phone]) -> None:
    # An exact version tells a scanner which known bugs to try; a configured string is sent as is.
    callee = await started(Config(user_agent="desk 7"), seed="a")
    caller = await started(seed="b")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await callee.answer(incoming.call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    invite = caller.sip_flow(call_id)[0]
    assert invite.first_line.startswith("INVITE ") and "\nUser-Agent: softphone\n" in invite.text
    answered = next(m for m in caller.sip_flow(call_id) if m.first_line == "SIP/2.0 200 OK")
    assert "\nServer: desk 7\n" in answered.text


async def test_a_host_no_server_answers_for_is_a_network_error(phones: list[Phone]) -> None:
    phone = await started(seed="m")  # its DNS knows no names at all
    phones.append(phone)
    with pytest.raises(NetworkError, match=r"cannot find the server for sip:bob@nowhere\.test"):
        await phone.dial("sip:bob@nowhere.test")


def named_caller(name: str) -> Config:
    """A peer-to-peer account that sends a display name in From (as baresip, Linphone and most
    desk phones do)."""
    return Config(
        accounts=(Account(name="bob", uri=SipUri.parse("sip:bob@127.0.0.1"), display_name=name),)
    )


async def test_a_named_caller_arrives_as_name_and_uri_apart(phones: list[Phone]) -> None:
    callee = await started(seed="i")
    caller = await started(named_caller("Builder, Bob"), seed="j")
    phones += [callee, caller]
    await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    caller_uri = "sip:bob@127.0.0.1"  # its address of record, as From carries it
    assert (incoming.remote, incoming.display_name) == (caller_uri, "Builder, Bob")
    call = callee.call(incoming.call_id)
    assert (call.remote, call.display_name) == (caller_uri, "Builder, Bob")
    assert describe(incoming) == f"incoming call from Builder, Bob <{caller_uri}>"


@pytest.mark.parametrize(
    ("status", "outcome", "line", "callee_outcome"),
    [
        (603, "declined", "call failed: declined (SIP 603 Decline)", "rejected"),
        (486, "busy", "call failed: busy (SIP 486 Busy Here)", "rejected"),
        (404, "not_found", "call failed: no such user or number (SIP 404 Not Found)", "failed"),
        (480, "no_answer", "call failed: no answer (SIP 480 Temporarily Unavailable)", "missed"),
        (503, "network", "call failed: network problem (SIP 503 Service Unavailable)", "failed"),
        (
            488,
            "failed",
            "call failed: no common codec or media format (SIP 488 Not Acceptable Here)",
            "failed",
        ),
    ],
)
async def test_a_refused_call_reads_in_plain_words_with_the_status_after(
    phones: list[Phone], status: int, outcome: str, line: str, callee_outcome: str
) -> None:
    callee = await started(seed="k")
    caller = await started(seed="l")
    phones += [callee, caller]
    await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await callee.reject(incoming.call_id, status=status)
    theirs = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
    ours = await expect(callee, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(theirs, pe.CallEnded) and isinstance(ours, pe.CallEnded)
    assert (theirs.status, theirs.outcome) == (status, outcome)
    assert describe(theirs) == line
    # On the side that refused it, a refusal by the person is "rejected", not "busy".
    assert ours.outcome == callee_outcome
