"""Attended transfer (RFC 5589 §7, REFER with Replaces, RFC 3891) against real peers on
127.0.0.1, through Kamailio (registrar + proxy).

baresip 1.0.0 (Debian 12) has no attended transfer and no Replaces support at all (no
``atransfer`` command, no "Replaces" in its binary or in libre 1.1.0): as transferee it calls
the Refer-To URI, and as target it treats an INVITE with Replaces as a new call. So each test
says which peer plays which role:

- transferor: our phone (alice); transferee baresip (bob); target baresip (carol).
- target: our phone (carol), in a call with baresip (bob), which stands for the transferor's
  side of the replaced dialog; SIPp plays the transferee and sends the INVITE with Replaces.
  (baresip as transferee cannot: it puts the whole Refer-To URI, ``?Replaces=`` and all, into
  its INVITE's To header and sends no Replaces header.)
- transferee: our phone (bob); transferor a second phone of ours (alice); target baresip (carol),
  which takes our INVITE with Replaces as a plain new call (alice then ends her leg to it).
- transferee again, with a transferor that is not ours: SIPp calls our phone (bob) and REFERs
  it to baresip (carol) with a Replaces; bob's INVITE must carry that Replaces to carol.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory, peers_required
from test_softphone_sip import account, ended, expect, make_phone, state

from softphone import lab
from softphone.lab.sipp import Sipp
from softphone.phone import events as pe
from softphone.phone.phone import Phone
from softphone.sip.message import SipRequest, SipResponse, parse_message

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


def traced(phone: Phone, call_id: str, direction: str, first: str) -> SipRequest | SipResponse:
    """The first message of ``call_id`` our phone ``direction`` ("sent"/"received") whose first
    line starts with ``first``, parsed without its body (the trace keeps the text only)."""
    for message in phone.sip_flow(call_id):
        if message.direction == direction and message.first_line.startswith(first):
            head = re.split(r"\r?\n\r?\n", message.text, maxsplit=1)[0]
            lines = [ln for ln in head.splitlines() if not ln.lower().startswith("content-length")]
            return parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    raise AssertionError(f"no {first!r} {direction} in {call_id}")


def udp_port(phone: Phone) -> int:
    running = phone._running  # the port the kernel picked for sip_port=0
    assert running is not None
    return next(a.port for a in running.transport.listeners() if a.transport == "udp")


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
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    make_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Our phone carol is in a call with baresip bob; SIPp (the transferee) calls carol with
    Replaces naming that call: carol answers without ringing, then hangs up on bob."""
    bob = await asyncio.to_thread(baresip_factory, "bob", "udp", True, True)
    carol = await make_phone(account(kamailio, user="carol"))  # no auto-answer
    await expect(carol, lambda e: isinstance(e, pe.Registered))
    to_bob = await carol.dial("sip:bob@lab.test")
    await expect(carol, state(to_bob, "established"))
    invite, ok = (
        traced(carol, to_bob, "sent", "INVITE "),
        traced(carol, to_bob, "received", "SIP/2.0 200"),
    )
    # The tags as the target matches them (RFC 3891 §3): to-tag is carol's own.
    replaces = f"{to_bob};to-tag={invite.from_.tag};from-tag={ok.to.tag}"
    bob_mark = bob.mark()

    sipp = Sipp(
        tmp_path / "sipp",
        "replacing",
        ("127.0.0.1", udp_port(carol)),
        rate=1,
        calls=1,
        service="carol",
        call_ms=1000,
        keys={"replaces": replaces},
        recv_timeout_ms=8000,
        timeout_s=20,
    )
    with peers_required():
        await asyncio.to_thread(sipp.start)
    try:
        seen: list[pe.PhoneEvent] = []
        new = await expect(
            carol,
            lambda e: (
                isinstance(e, pe.CallStateChanged)
                and e.call_id != to_bob
                and e.state == "established"
            ),
            timeout_s=XFER_S,
            seen=seen,
        )
        assert isinstance(new, pe.CallStateChanged) and "load@example.net" in new.remote
        # No ringing here: carol never called answer(), and no 180 went out.
        sent = [m.first_line for m in carol.sip_flow(new.call_id) if m.direction == "sent"]
        assert not any(" 180 " in line for line in sent) and any(" 200 " in line for line in sent)
        if not any(isinstance(e, pe.CallEnded) and e.call_id == to_bob for e in seen):
            await expect(carol, ended(to_bob))
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", XFER_S, None, bob_mark)
        assert traced(carol, to_bob, "sent", "BYE ") is not None  # carol hung up on bob
        result = await asyncio.to_thread(sipp.wait, XFER_S)
    finally:
        sipp.stop()
    assert result.successful == 1 and result.failed == 0
    await expect(carol, ended(new.call_id))  # SIPp's BYE after its pause


async def test_attended_transfer_as_transferee(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, make_phone: Callable[..., Any]
) -> None:
    """Our phone bob, transferred by our phone alice, calls baresip carol with Replaces."""
    carol = await asyncio.to_thread(baresip_factory, "carol", "udp", True, True)
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
    to_carol = await alice.dial("sip:carol@lab.test")
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
    assert invite.headers.get("Referred-By") == "<sip:alice@lab.test>"
    await with_peer(carol, "CALL_ESTABLISHED", "bob@lab.test", carol_mark)
    done = await expect(alice, final_transfer(to_bob), timeout_s=XFER_S)
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    await expect(bob, ended(to_bob))  # the old call is over for the transferee too
    for call_id in (to_bob, to_carol):
        if alice.call(call_id).state != "ended":
            await expect(alice, ended(call_id))
    assert bob.call(new.call_id).state == "established"


async def test_attended_transfer_as_transferee_of_sipp(
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    make_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """SIPp (transferor) calls our phone bob and REFERs it to baresip carol with Replaces."""
    carol = await asyncio.to_thread(baresip_factory, "carol", "udp", True, True)
    bob = await make_phone(account(kamailio, user="bob"), auto_answer=True)
    await expect(bob, lambda e: isinstance(e, pe.Registered))
    carol_mark = carol.mark()
    sipp = Sipp(
        tmp_path / "sipp",
        "refer_replaces",
        ("127.0.0.1", udp_port(bob)),
        rate=1,
        calls=1,
        service="bob",
        keys={
            "target": "sip:carol@lab.test",
            "replaces": "xfer-9%40example.net%3Bto-tag%3Dc1%3Bfrom-tag%3Dx1",
        },
        recv_timeout_ms=8000,
        timeout_s=20,
    )
    with peers_required():
        await asyncio.to_thread(sipp.start)
    try:
        first = await expect(bob, lambda e: isinstance(e, pe.IncomingCall), timeout_s=XFER_S)
        assert isinstance(first, pe.IncomingCall)
        new = await expect(
            bob,
            lambda e: (
                isinstance(e, pe.CallStateChanged)
                and e.call_id != first.call_id
                and e.state == "established"
            ),
            timeout_s=XFER_S,
        )
        assert isinstance(new, pe.CallStateChanged) and "carol@lab.test" in new.remote
        invite = traced(bob, new.call_id, "sent", "INVITE ")
        assert invite.headers.get("Replaces") == "xfer-9@example.net;to-tag=c1;from-tag=x1"
        assert invite.headers.get("Referred-By") == "<sip:transferor@example.net>"
        await with_peer(carol, "CALL_ESTABLISHED", "bob@lab.test", carol_mark)
        result = await asyncio.to_thread(sipp.wait, XFER_S)
    finally:
        sipp.stop()
    # SIPp got 202, NOTIFY 100 and a final NOTIFY 200, and its BYE ended the old call.
    assert result.successful == 1 and result.failed == 0
    await expect(bob, ended(first.call_id))
    assert bob.call(new.call_id).state == "established"
