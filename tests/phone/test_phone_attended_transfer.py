"""Attended transfer between three phones on 127.0.0.1 (no registrar): alice the transferor,
bob the transferee, carol the target (RFC 5589 §7, RFC 3891). Waits are bounded, no sleeps."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from phone_support import Seen, ended, port_of, started, state

from softphone.phone import events as pe
from softphone.phone import sip_events
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone

STEP_S = 10.0


@pytest.fixture
async def trio() -> AsyncIterator[tuple[Phone, Phone, Phone, int, int]]:
    alice = await started(seed="alice")
    bob = await started(seed="bob", auto_answer=True)
    carol = await started(seed="carol")  # answers only by hand, or a replacing call
    ports = port_of(bob), port_of(carol)
    port_of(alice)
    yield alice, bob, carol, *ports
    for phone in (alice, bob, carol):
        await phone.stop()


async def test_attended_transfer_between_three_phones(
    trio: tuple[Phone, Phone, Phone, int, int],
) -> None:
    alice, bob, carol, bob_port, carol_port = trio
    a, b, c = Seen(alice), Seen(bob), Seen(carol)
    to_bob = await alice.dial(f"sip:softphone@127.0.0.1:{bob_port}")
    await a.until(state(to_bob, "established"), "bob answers")
    await alice.hold(to_bob)
    await a.until(state(to_bob, "held"), "bob held")
    to_carol = await alice.dial(f"sip:softphone@127.0.0.1:{carol_port}")
    await c.until(lambda e: isinstance(e, pe.IncomingCall) and e.call_id == to_carol, "rings")
    await carol.answer(to_carol)
    await a.until(state(to_carol, "established"), "carol answers")

    await alice.attended_transfer(to_bob, to_carol)

    # bob calls carol; carol's phone takes it without anyone answering.
    new = await b.until(
        lambda e: (
            isinstance(e, pe.CallStateChanged) and e.call_id != to_bob and e.state == "established"
        ),
        "bob's new call",
    )
    assert isinstance(new, pe.CallStateChanged) and f":{carol_port}" in new.remote
    await c.until(state(new.call_id, "established"), "carol has bob")
    replaced = await c.until(lambda e: isinstance(e, pe.Notice) and "replaces" in e.text, "notice")
    assert isinstance(replaced, pe.Notice)
    await c.until(ended(to_carol), "carol hung up on alice")
    # alice hears it worked and leaves both calls; bob's old call ends.
    done = await a.until(
        lambda e: isinstance(e, pe.TransferProgressed) and e.final, "transfer outcome"
    )
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    await a.until(ended(to_bob), "alice left bob")
    await a.until(ended(to_carol), "alice's call with carol ended")
    await b.until(ended(to_bob), "bob's old call ended")
    assert bob.call(new.call_id).state == "established"
    assert carol.call(new.call_id).state == "established"
    assert not any(isinstance(e, pe.CallEnded) and e.call_id == new.call_id for e in b.events)
    # No alert at carol: the replacing call is not a new call for the person.
    assert not any(isinstance(e, pe.IncomingCall) and e.call_id == new.call_id for e in c.events)


async def test_attended_transfer_needs_two_established_calls(
    trio: tuple[Phone, Phone, Phone, int, int],
) -> None:
    alice, _bob, _carol, bob_port, carol_port = trio
    a = Seen(alice)
    to_bob = await alice.dial(f"sip:softphone@127.0.0.1:{bob_port}")
    await a.until(state(to_bob, "established"), "bob answers")
    ringing = await alice.dial(f"sip:softphone@127.0.0.1:{carol_port}")
    with pytest.raises(PhoneError, match="two different calls"):
        await alice.attended_transfer(to_bob, to_bob)
    with pytest.raises(PhoneError, match="not established"):
        await alice.attended_transfer(to_bob, ringing)
    with pytest.raises(PhoneError, match="no call"):
        await alice.attended_transfer(to_bob, "nonexistent")
    assert alice.call(to_bob).state == "established"


def invite_with_replaces(port: int, replaces: str, branch: str) -> tuple[int, str]:
    """Send one INVITE with ``replaces`` from a plain UDP socket; the final status and reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        me = sock.getsockname()[1]
        sock.sendto(
            (
                f"INVITE sip:softphone@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:x@127.0.0.1:{me}>;tag=x1\r\n"
                f"To: <sip:softphone@127.0.0.1:{port}>\r\n"
                f"Call-ID: {branch}@127.0.0.1\r\n"
                "CSeq: 1 INVITE\r\n"
                f"Contact: <sip:x@127.0.0.1:{me}>\r\n"
                f"Replaces: {replaces}\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        for _ in range(5):  # a 100 Trying may come first
            status_line = sock.recv(65536).decode().split("\r\n", 1)[0]
            _, code, reason = status_line.split(" ", 2)
            if int(code) >= 200:
                return int(code), reason
    raise AssertionError("no final response")


@pytest.mark.parametrize(
    ("replaces", "status", "words"),
    [
        ("nothing@here;to-tag=a;from-tag=b", 481, "does not exist"),
        ("abc;to-tag=a", 400, "Bad Replaces"),
        ("abc;to-tag=a;from-tag=b;early-only=1", 400, "Bad Replaces"),
    ],
)
async def test_bad_or_unknown_replaces_is_refused_and_nothing_rings(
    trio: tuple[Phone, Phone, Phone, int, int], replaces: str, status: int, words: str
) -> None:
    _alice, _bob, carol, _bob_port, carol_port = trio
    got = await asyncio.to_thread(invite_with_replaces, carol_port, replaces, f"r{status}")
    assert got[0] == status and words.lower() in got[1].lower()
    assert list(carol.calls) == []  # no call was made of it: nothing rang


async def test_the_transferee_ends_the_old_call_when_the_transferor_stays(
    trio: tuple[Phone, Phone, Phone, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transferor that never hangs up after the NOTIFY 200: the transferee ends the old call
    itself after the grace time (here shortened)."""
    monkeypatch.setattr(sip_events, "calls_to_end", lambda calls, info: [])  # alice stays
    monkeypatch.setattr(sip_events, "TRANSFERRED_CALL_GRACE_S", 0.2)
    alice, bob, carol, bob_port, carol_port = trio
    a, b = Seen(alice), Seen(bob)
    to_bob = await alice.dial(f"sip:softphone@127.0.0.1:{bob_port}")
    await a.until(state(to_bob, "established"), "bob answers")
    to_carol = await alice.dial(f"sip:softphone@127.0.0.1:{carol_port}")
    await Seen(carol).until(lambda e: isinstance(e, pe.IncomingCall), "carol rings")
    await carol.answer(to_carol)
    await a.until(state(to_carol, "established"), "carol answers")
    await alice.attended_transfer(to_bob, to_carol)
    done = await a.until(lambda e: isinstance(e, pe.TransferProgressed) and e.final, "outcome")
    assert isinstance(done, pe.TransferProgressed) and done.status == 200
    await b.until(ended(to_bob), "bob ends the old call himself")
    # bob's BYE ended it: alice sees the far end hang up, she did not.
    gone = await a.until(ended(to_bob), "alice's leg to bob ended by bob")
    assert isinstance(gone, pe.CallEnded) and "remote" in gone.reason
