"""Attended transfer (RFC 5589 §7, REFER with Replaces, RFC 3891) against real peers on
127.0.0.1, through Kamailio (registrar + proxy).

baresip 1.0.0 (Debian 12) has no attended transfer and no Replaces support at all (no
``atransfer`` command, no "Replaces" in its binary or in libre 1.1.0): as transferee it calls
the Refer-To URI, and as target it treats an INVITE with Replaces as a new call. So each test
says which peer plays which role:

- transferor: our phone (alice); transferee baresip (bob); target baresip (carol).
- target: our phone (carol); transferor a second phone of ours (alice); transferee baresip (bob),
  which carries the Refer-To's Replaces into its INVITE.
- transferee: our phone (bob); transferor a second phone of ours (alice); target baresip (carol).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from lab_support import BaresipFactory
from test_softphone_sip import account, ended, expect, make_phone, state

from softphone import lab
from softphone.phone import events as pe
from softphone.phone.phone import Phone

pytestmark = pytest.mark.interop

__all__ = ["make_phone"]  # the fixture, shared with test_softphone_sip.py

XFER_S = 15.0  # the REFER, the new call and the NOTIFYs, each bounded by STEP_S


def final_transfer(call_id: str) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.TransferProgressed) and e.final and e.call_id == call_id


async def with_peer(peer: lab.Baresip, event: str, uri: str, since: int) -> dict[str, Any]:
    """``peer``'s first ``event`` since ``since`` about a call with ``uri``."""
    return await asyncio.to_thread(
        peer.wait_event, event, XFER_S, lambda e: uri in str(e.get("peeruri")), since
    )


def received_invite(phone: Phone, call_id: str) -> str:
    """The INVITE that opened ``call_id``, as our phone received it."""
    for message in phone.sip_flow(call_id):
        if message.direction == "received" and message.first_line.startswith("INVITE "):
            return message.text
    raise AssertionError(f"no INVITE received for {call_id}")


async def test_attended_transfer_as_transferor(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    """Our phone transfers baresip bob (held) to baresip carol; bob and carol end up talking."""
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    carol = await asyncio.to_thread(baresip_factory, "carol", "udp", True, True)
    phone = await make_phone(account(kamailio))
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    to_bob = await phone.dial("sip:bob@lab.test")
    await expect(phone, state(to_bob, "established"))
    await phone.hold(to_bob)
    await expect(phone, state(to_bob, "held"))
    to_carol = await phone.dial("sip:carol@lab.test")
    await expect(phone, state(to_carol, "established"))
    bob_mark, carol_mark = bob.mark(), carol.mark()

    await phone.attended_transfer(to_bob, to_carol)
    seen: list[pe.PhoneEvent] = []
    done = await expect(phone, final_transfer(to_bob), timeout_s=XFER_S, seen=seen)
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    # bob called carol: both baresips show the call with each other.
    await with_peer(carol, "CALL_ESTABLISHED", "bob@lab.test", carol_mark)
    await with_peer(bob, "CALL_ESTABLISHED", "carol@lab.test", bob_mark)
    # Both our legs ended (RFC 5589 §7.1).
    for call_id in (to_bob, to_carol):
        if not any(isinstance(e, pe.CallEnded) and e.call_id == call_id for e in seen):
            await expect(phone, ended(call_id), seen=seen)
    assert all(phone.call(c).state == "ended" for c in (to_bob, to_carol))
    # ... and bob and carol are still talking after we left.
    calls_at_carol = await asyncio.to_thread(carol.list_calls)
    assert "bob@lab.test" in calls_at_carol and "alice@lab.test" not in calls_at_carol


async def test_attended_transfer_to_us_as_target(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    """baresip bob, transferred by our phone alice, calls our phone carol with Replaces: carol
    takes the call without ringing and hangs up on alice (RFC 3891 §3)."""
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    alice = await make_phone(account(kamailio, user="alice"))
    carol = await make_phone(account(kamailio, user="carol"))  # no auto-answer
    for phone in (alice, carol):
        await expect(phone, lambda e: isinstance(e, pe.Registered))
    to_bob = await alice.dial("sip:bob@lab.test")
    await expect(alice, state(to_bob, "established"))
    await alice.hold(to_bob)
    await expect(alice, state(to_bob, "held"))
    to_carol = await alice.dial("sip:carol@lab.test")
    await expect(carol, lambda e: isinstance(e, pe.IncomingCall) and e.call_id == to_carol)
    await carol.answer(to_carol)
    await expect(alice, state(to_carol, "established"))
    bob_mark = bob.mark()

    await alice.attended_transfer(to_bob, to_carol)
    # carol never calls answer(): the replacing call comes up by itself.
    dbg: list[pe.PhoneEvent] = []
    try:
      new = await expect(
        carol,
        lambda e: (
            isinstance(e, pe.CallStateChanged) and e.call_id != to_carol and e.state == "established"
        ),
        timeout_s=XFER_S, seen=dbg,
      )
    except TimeoutError:
        print("EVENTS", dbg)
        for f in carol.sip_flows():
            for m in carol.sip_flow(f.flow_id):
                print(m.direction, m.text[:1500])
        raise
    assert isinstance(new, pe.CallStateChanged) and "bob@lab.test" in new.remote
    invite = received_invite(carol, new.call_id)
    assert f"Replaces: {to_carol};" in invite  # baresip carried the Refer-To's header over
    await expect(carol, ended(to_carol))  # carol hung up on alice once bob's call was up
    done = await expect(alice, final_transfer(to_bob), timeout_s=XFER_S)
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    await expect(alice, ended(to_bob))
    assert alice.call(to_carol).state == "ended"
    await with_peer(bob, "CALL_ESTABLISHED", "carol@lab.test", bob_mark)
    assert carol.call(new.call_id).state == "established"
