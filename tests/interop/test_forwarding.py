"""Forwarding and do-not-disturb against the real peers on 127.0.0.1: bob's baresip calls alice
(our phone) through Kamailio.

- forwarding always: our 302 (the target in Contact) reaches bob through Kamailio, and bob's
  baresip follows it (RFC 3261 §8.1.3.4) to the target, carol's baresip; carol answers and bob
  talks to her;
- do-not-disturb: bob's call is refused with the chosen status (486 or 603), which reaches him;
- no answer: after the second given, the ringing call is forwarded the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from lab_support import BaresipFactory
from test_softphone_sip import account, ended, expect, make_phone, state, wait_log, wait_peer

from softphone import lab
from softphone.config_forwarding import Forwarding
from softphone.phone import events as pe
from softphone.phone.phone import Phone

pytestmark = pytest.mark.interop
__all__ = ["make_phone"]  # the fixture, used by name

CAROL = f"sip:carol@{lab.DOMAIN}"
ALICE = f"sip:alice@{lab.DOMAIN}"


async def alice_with(
    kamailio: lab.Kamailio, make_phone: Callable[..., Any], forwarding: Forwarding
) -> Phone:
    phone: Phone = await make_phone(dataclasses.replace(account(kamailio), forwarding=forwarding))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    return phone


async def forwarded_call(phone: Phone) -> tuple[pe.IncomingCall, pe.CallEnded]:
    incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall))
    end = await expect(phone, ended())
    assert isinstance(incoming, pe.IncomingCall) and isinstance(end, pe.CallEnded)
    assert end.call_id == incoming.call_id
    return incoming, end


async def test_baresip_follows_forward_always_to_the_target(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    carol = await asyncio.to_thread(baresip_factory, "carol")
    bob = await asyncio.to_thread(baresip_factory, "bob")
    phone = await alice_with(kamailio, make_phone, Forwarding(always=CAROL))
    bob_mark, carol_mark, log_mark = bob.mark(), carol.mark(), kamailio.mark()
    await asyncio.to_thread(bob.dial, ALICE)
    incoming, end = await forwarded_call(phone)
    assert (end.status, end.outcome, end.reason) == (
        302,
        "forwarded",
        f"forwarded to {CAROL} (always)",
    )
    # Kamailio relayed our 302 to bob, and bob's baresip called the target itself
    await wait_log(kamailio, rf"LAB RELAYED-REPLY 302 INVITE ci={incoming.call_id}", log_mark)
    await wait_log(kamailio, rf"LAB REQUEST INVITE bob->carol .* ci={incoming.call_id}", log_mark)
    ringing = await wait_peer(carol, "CALL_INCOMING", carol_mark)
    assert ringing["peeruri"] == "sip:bob@lab.test"
    await asyncio.to_thread(carol.accept)
    await wait_peer(bob, "CALL_ESTABLISHED", bob_mark)
    await asyncio.to_thread(bob.hangup)
    await wait_peer(carol, "CALL_CLOSED", carol_mark)
    sent = [m for m in phone.sip_flow(incoming.call_id) if m.direction == "sent"]
    (redirect,) = [m for m in sent if m.first_line.startswith("SIP/2.0 302")]
    assert f"\nContact: <{CAROL}>\n" in redirect.text
    assert f"\nDiversion: <{ALICE}>;reason=unconditional;counter=1\n" in redirect.text


@pytest.mark.parametrize(("status", "phrase"), [(486, "Busy Here"), (603, "Decline")])
async def test_do_not_disturb_refuses_baresip_with_the_chosen_status(
    status: int,
    phrase: str,
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    make_phone: Callable[..., Any],
) -> None:
    bob = await asyncio.to_thread(baresip_factory, "bob")
    dnd = Forwarding(do_not_disturb=True, dnd_response=status)  # type: ignore[arg-type]
    phone = await alice_with(kamailio, make_phone, dnd)
    bob_mark, log_mark = bob.mark(), kamailio.mark()
    await asyncio.to_thread(bob.dial, ALICE)
    incoming, end = await forwarded_call(phone)
    assert (end.status, end.outcome) == (status, "rejected")
    assert end.reason == f"do not disturb ({status} {phrase})"
    await wait_log(kamailio, rf"LAB RELAYED-REPLY {status} INVITE ci={incoming.call_id}", log_mark)
    closed = await wait_peer(bob, "CALL_CLOSED", bob_mark)
    assert str(status) in str(closed.get("param")), closed
    # it never rang here
    assert not any(m.first_line.startswith("SIP/2.0 180") for m in phone.sip_flow(incoming.call_id))


async def test_no_answer_forwards_baresip_after_its_second(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    carol = await asyncio.to_thread(baresip_factory, "carol")
    bob = await asyncio.to_thread(baresip_factory, "bob")
    phone = await alice_with(kamailio, make_phone, Forwarding(no_answer=CAROL, no_answer_after_s=1))
    carol_mark, log_mark = carol.mark(), kamailio.mark()
    await asyncio.to_thread(bob.dial, ALICE)
    incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await expect(phone, state(incoming.call_id, "ringing"))
    end = await expect(phone, ended(incoming.call_id))
    assert isinstance(end, pe.CallEnded) and (end.status, end.outcome) == (302, "forwarded")
    await wait_log(kamailio, rf"LAB RELAYED-REPLY 302 INVITE ci={incoming.call_id}", log_mark)
    ringing = await wait_peer(carol, "CALL_INCOMING", carol_mark)
    assert ringing["peeruri"] == "sip:bob@lab.test"
    flow = phone.sip_flow(incoming.call_id)
    rang = next(m.at for m in flow if m.first_line.startswith("SIP/2.0 180"))
    moved = next(m.at for m in flow if m.first_line.startswith("SIP/2.0 302"))
    assert moved - rang >= 1.0 - 0.05, "forwarded before it rang its second"
    assert ";reason=no-answer;" in next(
        m.text for m in flow if m.first_line.startswith("SIP/2.0 302")
    )
    await asyncio.to_thread(bob.hangup)
