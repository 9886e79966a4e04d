"""Linphone's console client (linphonec, liblinphone 5.1, Debian 12 ``linphone-cli``) against
our phone through the lab Kamailio on 127.0.0.1: the roles baresip 1.0 cannot play.

- transferee: our phone alice transfers linphonec bob (held) to linphonec carol with REFER +
  Replaces (RFC 5589 §7): bob's INVITE to carol carries a Replaces header (RFC 3891) and carol
  swaps its call with alice for the one with bob.
- target: our phone bob, transferred by our phone alice, calls linphonec carol with Replaces:
  carol takes it without ringing and hangs up on alice.
- reliable provisional responses (RFC 3262) both ways: linphonec requiring 100rel as caller
  and as callee, our phone's trace showing the RSeq and the PRACK.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from lab_support import LinphoneFactory
from test_attended_transfer import XFER_S, final_transfer, traced
from test_softphone_sip import account, ended, expect, make_phone, state

from softphone import lab
from softphone.lab.linphone import CallEventKind, Linphone
from softphone.phone import events as pe
from softphone.phone.phone import Phone
from softphone.sip.session_timer import has_option

pytestmark = pytest.mark.interop

__all__ = ["make_phone"]  # the fixture, shared with test_softphone_sip.py


async def linphone_event(
    peer: Linphone, kind: CallEventKind, since: int, peer_uri: str | None = None
) -> Any:
    return await asyncio.to_thread(
        lambda: peer.wait_event(kind, XFER_S, peer=peer_uri, since=since)
    )


def sent_with_replaces(messages: str) -> list[str]:
    """The INVITEs with a Replaces header among the SIP messages a linphonec logged."""
    invites = re.findall(r"^INVITE sip:.*?(?=\n\s*\n)", messages, re.S | re.M)
    return [i for i in invites if re.search(r"^Replaces: ", i, re.M)]


# --------------------------------------------------------------------------- attended transfer


async def test_linphonec_as_transferee_sends_replaces_to_the_target(
    kamailio: lab.Kamailio, linphone_factory: LinphoneFactory, make_phone: Callable[..., Any]
) -> None:
    """Our phone alice transfers linphonec bob (held) to linphonec carol: bob calls carol with
    Replaces naming alice's call with carol, carol takes it in place of that call."""
    bob = await asyncio.to_thread(linphone_factory, "bob", auto_answer=True, sip_trace=True)
    carol = await asyncio.to_thread(linphone_factory, "carol")
    alice = await make_phone(account(kamailio, user="alice"))
    await expect(alice, lambda e: isinstance(e, pe.Registered))
    to_bob = await alice.dial("sip:bob@lab.test")
    await expect(alice, state(to_bob, "established"))
    await alice.hold(to_bob)
    await expect(alice, state(to_bob, "held"))
    carol_mark = carol.mark()
    to_carol = await alice.dial("sip:carol@lab.test")
    incoming = await linphone_event(carol, CallEventKind.INCOMING, carol_mark, "alice@lab.test")
    await asyncio.to_thread(carol.answer, incoming.call)
    await expect(alice, state(to_carol, "established"))
    bob_mark, carol_mark = bob.mark(), carol.mark()

    await alice.attended_transfer(to_bob, to_carol)
    seen: list[pe.PhoneEvent] = []
    done = await expect(alice, final_transfer(to_bob), timeout_s=XFER_S, seen=seen)
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    # bob's INVITE to carol named alice's dialog with carol (RFC 3891 §3: the target's tags).
    await linphone_event(bob, CallEventKind.CONNECTED, bob_mark, "carol@lab.test")
    invite = traced(alice, to_carol, "sent", "INVITE ")
    ok = traced(alice, to_carol, "received", "SIP/2.0 200")
    replacing = sent_with_replaces(bob.sip_messages(bob_mark))
    assert replacing, "bob sent no INVITE with Replaces"
    header = re.search(r"^Replaces: (.*)$", replacing[0], re.M)
    assert header is not None
    assert header.group(1).strip().startswith(to_carol + ";")
    assert f"to-tag={ok.to.tag}" in header.group(
        1
    ) and f"from-tag={invite.from_.tag}" in header.group(1)
    # carol: the new call with bob is up and her call with alice ended.
    await linphone_event(carol, CallEventKind.STREAMS_RUNNING, carol_mark, "bob@lab.test")
    await linphone_event(carol, CallEventKind.ENDED, carol_mark, "alice@lab.test")
    for call_id in (to_bob, to_carol):
        if not any(isinstance(e, pe.CallEnded) and e.call_id == call_id for e in seen):
            await expect(alice, ended(call_id), seen=seen)
    # carol hung up on alice herself (Replaces, RFC 3891 §3): alice received that BYE.
    assert any(
        m.direction == "received" and m.first_line.startswith("BYE ")
        for m in alice.sip_flow(to_carol)
    )
    table = await asyncio.to_thread(carol.calls)
    assert "bob@lab.test" in table and "alice@lab.test" not in table


async def test_linphonec_as_target_takes_our_replaces_by_itself(
    kamailio: lab.Kamailio, linphone_factory: LinphoneFactory, make_phone: Callable[..., Any]
) -> None:
    """Our phone bob, transferred by our phone alice, calls linphonec carol with Replaces:
    carol accepts it by herself (no answer command; liblinphone 5.1 does send a 180 first, then
    its 200 at once, as RFC 3891 §3 lets it) and ends her call with alice."""
    carol = await asyncio.to_thread(linphone_factory, "carol")
    alice = await make_phone(account(kamailio, user="alice"))
    bob = await make_phone(account(kamailio, user="bob"))
    for phone in (alice, bob):
        await expect(phone, lambda e: isinstance(e, pe.Registered))
    to_bob = await alice.dial("sip:bob@lab.test")
    await expect(bob, lambda e: isinstance(e, pe.IncomingCall) and e.call_id == to_bob)
    await bob.answer(to_bob)
    await expect(alice, state(to_bob, "established"))
    await alice.hold(to_bob)
    await expect(alice, state(to_bob, "held"))
    carol_mark = carol.mark()
    to_carol = await alice.dial("sip:carol@lab.test")
    incoming = await linphone_event(carol, CallEventKind.INCOMING, carol_mark, "alice@lab.test")
    await asyncio.to_thread(carol.answer, incoming.call)
    await expect(alice, state(to_carol, "established"))
    carol_mark = carol.mark()

    await alice.attended_transfer(to_bob, to_carol)
    new = await expect(
        bob,
        lambda e: (
            isinstance(e, pe.CallStateChanged) and e.call_id != to_bob and e.state == "established"
        ),
        timeout_s=XFER_S,
    )
    assert isinstance(new, pe.CallStateChanged) and "carol@lab.test" in new.remote
    invite = traced(bob, new.call_id, "sent", "INVITE ")
    assert (invite.headers.get("Replaces") or "").startswith(f"{to_carol};")
    # carol took bob's call in, connected it, and nobody told her to answer (linphonec echoes
    # the commands it reads: her only "answer" was for alice's call; its echo may come out
    # after the mark on a loaded machine, so the whole output is counted).
    received = [m.first_line for m in bob.sip_flow(new.call_id) if m.direction == "received"]
    assert any(line.startswith("SIP/2.0 200") for line in received), received
    await linphone_event(carol, CallEventKind.STREAMS_RUNNING, carol_mark, "bob@lab.test")
    kinds = [e.kind for e in carol.events(carol_mark) if "bob@lab.test" in e.peer]
    assert kinds[:2] == [CallEventKind.INCOMING, CallEventKind.CONNECTED], kinds
    answers = [
        line for line in carol.lines() if line.removeprefix("linphonec> ").startswith("answer")
    ]
    assert len(answers) == 1, answers
    # carol hung up on alice (RFC 3891 §3), and alice's transfer finished.
    await expect(alice, ended(to_carol), timeout_s=XFER_S)
    assert any(
        m.direction == "received" and m.first_line.startswith("BYE ")
        for m in alice.sip_flow(to_carol)
    )
    await linphone_event(carol, CallEventKind.ENDED, carol_mark, "alice@lab.test")
    assert bob.call(new.call_id).state == "established"


# --------------------------------------------------------------------------- 100rel and timers


def prack_answered(phone: Phone, call_id: str) -> str | None:
    """The status line of the response to a PRACK our phone sent in ``call_id``, if any."""
    for m in phone.sip_flow(call_id):
        if m.direction == "received" and re.search(r"^CSeq: *\d+ PRACK", m.text, re.M | re.I):
            return m.first_line
    return None


async def test_linphonec_answering_with_100rel_gets_our_prack(
    kamailio: lab.Kamailio, linphone_factory: LinphoneFactory, make_phone: Callable[..., Any]
) -> None:
    """We call linphonec bob, which wants 100rel: its 180 is reliable (Require: 100rel and
    RSeq, RFC 3262 §3), our phone PRACKs it and bob answers the PRACK with 200."""
    bob = await asyncio.to_thread(linphone_factory, "bob", rel100="mandatory", sip_trace=True)
    alice = await make_phone(account(kamailio, user="alice"))
    await expect(alice, lambda e: isinstance(e, pe.Registered))
    mark = bob.mark()
    call_id = await alice.dial("sip:bob@lab.test")
    incoming = await linphone_event(bob, CallEventKind.INCOMING, mark, "alice@lab.test")
    await expect(alice, state(call_id, "ringing"))
    ringing = traced(alice, call_id, "received", "SIP/2.0 180")
    assert ringing.headers.get("RSeq") is not None
    assert has_option(ringing, "Require", "100rel")
    prack = traced(alice, call_id, "sent", "PRACK ")
    assert prack.headers.get("RAck") == f"{ringing.headers.get('RSeq')} {ringing.cseq.seq} INVITE"
    # Answer only once bob has answered the PRACK: liblinphone 5.1 refuses (501) a PRACK
    # that arrives after its 200 to the INVITE.
    await asyncio.to_thread(
        bob.wait_for, r"\[server\] \[PRACK\] transaction .* to \[COMPLETED\]", XFER_S, mark
    )
    await asyncio.to_thread(bob.answer, incoming.call)
    await expect(alice, state(call_id, "established"))
    assert (prack_answered(alice, call_id) or "").startswith("SIP/2.0 200")
    await alice.hangup(call_id)
    await linphone_event(bob, CallEventKind.ENDED, mark, "alice@lab.test")


async def test_linphonec_calling_with_100rel_and_a_timer_pracks_our_ringing(
    kamailio: lab.Kamailio, linphone_factory: LinphoneFactory, make_phone: Callable[..., Any]
) -> None:
    """linphonec bob calls us supporting 100rel and asking for a 90 s session timer; our
    account requires 100rel, so our 180 is reliable: bob PRACKs it, and our 200 carries the
    session interval (RFC 4028 §9)."""
    bob = await asyncio.to_thread(linphone_factory, "bob", rel100="mandatory", session_expires_s=90)
    alice = await make_phone(replace(account(kamailio, user="alice"), prack="required"))
    await expect(alice, lambda e: isinstance(e, pe.Registered))
    mark = bob.mark()
    await asyncio.to_thread(bob.call, "sip:alice@lab.test")
    incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    call_id = incoming.call_id
    invite = traced(alice, call_id, "received", "INVITE ")
    assert has_option(invite, "Supported", "100rel")
    assert (invite.headers.get("Session-Expires") or "").startswith("90")
    await linphone_event(bob, CallEventKind.RINGING, mark, "alice@lab.test")
    ringing = traced(alice, call_id, "sent", "SIP/2.0 180")
    assert ringing.headers.get("RSeq") is not None
    assert has_option(ringing, "Require", "100rel")
    prack = await prack_received(alice, call_id)
    assert prack.headers.get("RAck") == f"{ringing.headers.get('RSeq')} {invite.cseq.seq} INVITE"
    await alice.answer(call_id)
    await expect(alice, state(call_id, "established"))
    await linphone_event(bob, CallEventKind.STREAMS_RUNNING, mark, "alice@lab.test")
    ok = [
        m
        for m in alice.sip_flow(call_id)
        if m.direction == "sent"
        and m.first_line.startswith("SIP/2.0 200")
        and re.search(r"^CSeq: *\d+ INVITE", m.text, re.M | re.I)
    ]
    assert ok and re.search(r"^Session-Expires: *90\b", ok[-1].text, re.M | re.I), ok
    await asyncio.to_thread(bob.terminate)
    await expect(alice, ended(call_id))


async def prack_received(phone: Phone, call_id: str) -> Any:
    """The PRACK our phone received in ``call_id``, waiting for it (bounded) on the trace: it
    makes no phone event of its own."""
    async with asyncio.timeout(XFER_S):
        while True:
            try:
                return traced(phone, call_id, "received", "PRACK ")
            except AssertionError:
                await asyncio.sleep(0.05)  # a look at the trace; bounded by the timeout above
