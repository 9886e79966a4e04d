"""Reliable provisional responses and PRACK (RFC 3262), both sides, over the fake network with
the clock walked by argument."""

from __future__ import annotations

import itertools

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, make_peer

from softphone.auth.digest import make_challenge
from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.prack import NO_PRACK
from softphone.sip.reliable import (
    RELIABLE_TRANSITIONS,
    PrackServer,
    RAck,
    ReliableInput,
    ReliableState,
)
from softphone.sip.uri import SipUri

BOB = SipUri(user="bob", host="127.0.0.2", port=5060)
ALICE_ADDR = Address("udp", "127.0.0.1", 5060)


def parsed(data: list[bytes]) -> list[SipRequest | SipResponse]:
    return [parse_message(d) for d in data]


def sent_by(peer: Peer, net: Network, what: str) -> list[SipRequest | SipResponse]:
    """What ``peer``'s counterpart received that starts with ``what`` ("PRACK", "SIP/2.0 180")."""
    others = [p for p in net.peers.values() if p is not peer]
    return [parse_message(m) for p in others for m in p.received if m.startswith(what.encode())]


@pytest.fixture
def pair() -> tuple[Network, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1, prack="required")
    bob = make_peer("bob", "127.0.0.2", seed=2)
    return Network(alice, bob), alice, bob


def ring(net: Network, alice: Peer, bob: Peer) -> tuple[str, str]:
    call_id = alice.ua.invite(None, BOB, sdp=OFFER, now=net.now)
    net.flush()
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.ring(incoming.call_id, net.now)
    net.flush()
    return call_id, incoming.call_id


# --- both sides together --------------------------------------------------------------------------
def test_reliable_ringing_is_pracked_in_the_early_dialog(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = ring(net, alice, bob)
    (invite,) = sent_by(alice, net, "INVITE")
    assert invite.headers.get_all("Require") == ["100rel"]
    assert {"100rel", "timer"} <= set(invite.headers.get_all("Supported"))
    (ringing,) = sent_by(bob, net, "SIP/2.0 180")
    assert ringing.headers.get_all("Require") == ["100rel"]
    rseq = int(ringing.headers.get("RSeq") or "0")
    assert rseq >= 1
    (prack,) = sent_by(alice, net, "PRACK")
    assert isinstance(prack, SipRequest)
    # §7.2: RAck names the 1xx's RSeq and the INVITE's CSeq; the PRACK is in the early dialog.
    assert prack.headers.get("RAck") == f"{rseq} {invite.cseq.seq} INVITE"
    assert prack.to.tag == ringing.to.tag and prack.cseq.seq == invite.cseq.seq + 1
    assert [r.status for r in sent_by(bob, net, "SIP/2.0 200") if r.cseq.method == "PRACK"] == [200]
    assert [type(e) for e in alice.events] == [ev.CallProgressed]
    net.run_until(10.0)  # PRACKed: bob does not retransmit the 180
    assert len(sent_by(bob, net, "SIP/2.0 180")) == 1
    bob.ua.answer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()
    assert alice.of(ev.CallAnswered) == [ev.CallAnswered(call_id=call_id, sdp=ANSWER)]
    assert bob.ua.call_state(bob_call) is CallState.CONFIRMED


def test_a_lost_prack_brings_the_1xx_again_which_is_pracked_once_more_not_processed_twice(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    lost: list[bytes] = []

    def lose_first_prack(data: bytes, dest: Address) -> bool:
        """The first PRACK transaction is lost, its own retransmissions too."""
        if not data.startswith(b"PRACK"):
            return False
        branch = parse_message(data).top_via.branch
        if not lost or parse_message(lost[0]).top_via.branch == branch:
            lost.append(data)
            return True
        return False

    net.drop = lose_first_prack
    call_id, bob_call = ring(net, alice, bob)
    # bob answers at once: the 2xx waits for the PRACK (§3)
    bob.ua.answer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()
    assert alice.of(ev.CallAnswered) == []
    assert bob.ua.call_state(bob_call) is CallState.INCOMING
    net.run_until(0.6)  # T1: the 180 again; alice PRACKs it again (a new transaction)
    assert len(sent_by(bob, net, "SIP/2.0 180")) == 2
    assert len(alice.of(ev.CallProgressed)) == 1  # the retransmission is not processed again
    assert len(sent_by(alice, net, "PRACK")) == 1  # the second one arrived
    assert alice.of(ev.CallAnswered) == [ev.CallAnswered(call_id=call_id, sdp=ANSWER)]
    assert bob.of(ev.CallConfirmed) == [ev.CallConfirmed(call_id=bob_call)]


def test_no_prack_at_all_rejects_the_call_with_500_after_64_t1(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    dropped: list[bytes] = []
    net.drop = lambda data, dest: data.startswith(b"PRACK") and not dropped.append(data)
    _call_id, bob_call = ring(net, alice, bob)
    net.run_until(31.9)
    # §3: T1, then doubling: sent at 0 and again at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert len(sent_by(bob, net, "SIP/2.0 180")) == 7
    assert bob.of(ev.CallFailed) == []
    net.run_until(32.1)
    assert bob.of(ev.CallFailed) == [
        ev.CallFailed(call_id=bob_call, status=500, reason=NO_PRACK, no_response=True)
    ]
    assert alice.of(ev.CallFailed)[0].status == 500
    assert len(alice.of(ev.CallProgressed)) == 1
    # alice PRACKed the first 180 and, once, its first retransmission: two PRACK transactions
    # (each retransmitting itself), both for the same RSeq.
    sent = parsed(dropped)
    assert len({m.top_via.branch for m in sent}) == 2
    assert len({m.headers.get("RAck") for m in sent}) == 1


def test_a_second_ring_waits_for_the_first_ones_prack(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    held: list[bytes] = []
    net.drop = lambda data, dest: data.startswith(b"PRACK") and not held.append(data)
    _call_id, bob_call = ring(net, alice, bob)
    bob.ua.ring(bob_call, net.now, status=183)
    net.flush()
    assert sent_by(bob, net, "SIP/2.0 183") == []  # §3: one unacknowledged reliable 1xx at a time
    net.drop = lambda data, dest: False
    net.run_until(0.6)  # the 180's retransmission is PRACKed: the 183 goes, RSeq one higher
    (r180,) = {int(r.headers.get("RSeq") or 0) for r in sent_by(bob, net, "SIP/2.0 180")}
    (r183,) = [int(r.headers.get("RSeq") or 0) for r in sent_by(bob, net, "SIP/2.0 183")]
    assert r183 == r180 + 1
    assert [e.status for e in alice.of(ev.CallProgressed)] == [180, 183]


# --- the caller against raw responses -------------------------------------------------------------
def lone_alice(prack: str = "supported") -> tuple[Peer, SipRequest]:
    alice = make_peer("alice", "127.0.0.1", seed=1, prack=prack)  # type: ignore[arg-type]
    alice.ua.invite(None, BOB, sdp=OFFER, now=0.0)
    (data, _), *_ = alice.ua.messages_to_send()
    invite = parse_message(data)
    assert isinstance(invite, SipRequest)
    return alice, invite


def response(
    invite: SipRequest, status: int, extra: list[tuple[str, str]], body: bytes = b""
) -> bytes:
    headers = Headers()
    for name in ("Via", "From", "Call-ID", "CSeq"):
        headers.add(name, invite.headers.get_lines(name)[0])
    headers.add("To", invite.headers.get_lines("To")[0] + ";tag=bobtag")
    headers.add("Contact", "<sip:bob@127.0.0.2>")
    for name, value in extra:
        headers.add(name, value)
    if body:
        headers.add("Content-Type", "application/sdp")
    return bytes(SipResponse(status=status, reason="x", headers=headers, body=body))


def pracks(alice: Peer) -> list[SipRequest]:
    out = [parse_message(d) for d, _ in alice.ua.messages_to_send()]
    return [m for m in out if isinstance(m, SipRequest) and m.method == "PRACK"]


def test_reliable_183_with_sdp_is_early_media_and_is_pracked() -> None:
    alice, invite = lone_alice()
    events = alice.ua.receive_message(
        response(invite, 183, [("Require", "100rel"), ("RSeq", "7")], ANSWER), ALICE_ADDR, 0.1
    )
    assert events == [ev.CallProgressed(call_id=invite.call_id, status=183, reason="x", sdp=ANSWER)]
    (prack,) = pracks(alice)
    assert prack.headers.get("RAck") == f"7 {invite.cseq.seq} INVITE"
    assert str(prack.uri) == "sip:bob@127.0.0.2"  # the early dialog's remote target


def test_retransmitted_and_out_of_order_reliable_1xx() -> None:
    alice, invite = lone_alice()
    first = response(invite, 180, [("Require", "100rel"), ("RSeq", "7")])
    assert len(alice.ua.receive_message(first, ALICE_ADDR, 0.1)) == 1
    assert len(pracks(alice)) == 1
    # the same RSeq again: PRACKed once more, not processed; a third time: nothing
    assert alice.ua.receive_message(first, ALICE_ADDR, 0.6) == []
    assert len(pracks(alice)) == 1
    assert alice.ua.receive_message(first, ALICE_ADDR, 1.6) == []
    assert pracks(alice) == []
    # RSeq 9 after 7 skips one: dropped unacknowledged (§4); 8 is the next
    skipped = response(invite, 183, [("Require", "100rel"), ("RSeq", "9")])
    assert alice.ua.receive_message(skipped, ALICE_ADDR, 2.0) == []
    assert pracks(alice) == []
    nxt = response(invite, 183, [("Require", "100rel"), ("RSeq", "8")])
    assert len(alice.ua.receive_message(nxt, ALICE_ADDR, 2.1)) == 1
    assert [p.headers.get("RAck") for p in pracks(alice)] == [f"8 {invite.cseq.seq} INVITE"]


@pytest.mark.parametrize("rseq", [None, "abc", "0", "99999999999"])
def test_a_reliable_1xx_without_a_usable_rseq_is_taken_as_unreliable(
    rseq: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    alice, invite = lone_alice()
    extra = [("Require", "100rel")] + ([("RSeq", rseq)] if rseq is not None else [])
    events = alice.ua.receive_message(response(invite, 180, extra), ALICE_ADDR, 0.1)
    assert [type(e) for e in events] == [ev.CallProgressed]
    assert pracks(alice) == []
    assert "RSeq" in caplog.text


def test_off_sends_no_supported_100rel_and_prack_required_sends_require() -> None:
    _, invite = lone_alice("off")
    assert "100rel" not in invite.headers.get_all("Supported")
    assert invite.headers.get_all("Require") == []
    _, invite = lone_alice("required")
    assert invite.headers.get_all("Require") == ["100rel"]


# --- the callee against raw requests --------------------------------------------------------------
def raw_invite(extra: str) -> bytes:
    return (
        "INVITE sip:bob@127.0.0.2 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKraw1;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.2>\r\n"
        "Call-ID: raw1@127.0.0.1\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.1:5060>\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def raw_prack(to_tag: str, rack: str | None, cseq: int = 11) -> bytes:
    rack_line = f"RAck: {rack}\r\n" if rack is not None else ""
    return (
        "PRACK sip:bob@127.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKprack{cseq};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"To: <sip:bob@127.0.0.2>;tag={to_tag}\r\n"
        f"Call-ID: raw1@127.0.0.1\r\nCSeq: {cseq} PRACK\r\n{rack_line}Content-Length: 0\r\n\r\n"
    ).encode()


def responses(peer: Peer) -> list[SipResponse]:
    out = [parse_message(d) for d, _ in peer.ua.messages_to_send()]
    return [m for m in out if isinstance(m, SipResponse)]


def test_pracks_that_match_nothing_or_are_malformed_get_481_or_400() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    bob.events += bob.ua.receive_message(raw_invite("Require: 100rel\r\n"), ALICE_ADDR, 0.0)
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.ring(incoming.call_id, 0.0)
    *_, ringing = responses(bob)
    tag, rseq = ringing.to.tag or "", int(ringing.headers.get("RSeq") or 0)
    cases = [
        (raw_prack(tag, None, 11), 400, "Missing RAck"),
        (raw_prack(tag, "one 10 INVITE", 12), 400, "Bad RAck"),
        (raw_prack(tag, f"{rseq + 1} 10 INVITE", 13), 481, None),  # no such RSeq
        (raw_prack(tag, f"{rseq} 9 INVITE", 14), 481, None),  # another INVITE's
        (raw_prack("nosuchtag", f"{rseq} 10 INVITE", 15), 481, None),  # no such dialog
        (raw_prack(tag, f"{rseq} 10 INVITE", 16), 200, None),
        (raw_prack(tag, f"{rseq} 10 INVITE", 17), 481, None),  # PRACKed already
    ]
    for data, status, reason in cases:
        bob.ua.receive_message(data, ALICE_ADDR, 0.1)
        (resp,) = [r for r in responses(bob) if r.cseq.method == "PRACK"]
        assert resp.status == status, data
        if reason is not None:
            assert resp.reason == reason
    assert bob.ua.call_state(incoming.call_id) is CallState.INCOMING


def test_100rel_off_refuses_an_invite_requiring_it_and_required_refuses_one_without() -> None:
    off = make_peer("bob", "127.0.0.2", seed=2, prack="off")
    off.events += off.ua.receive_message(raw_invite("Require: 100rel\r\n"), ALICE_ADDR, 0.0)
    (resp,) = [r for r in responses(off) if r.status >= 200]
    assert (resp.status, resp.headers.get("Unsupported")) == (420, "100rel")
    required = make_peer("bob", "127.0.0.2", seed=2, prack="required")
    required.events += required.ua.receive_message(raw_invite(""), ALICE_ADDR, 0.0)
    (resp,) = [r for r in responses(required) if r.status >= 200]
    assert (resp.status, resp.headers.get("Require")) == (421, "100rel")
    assert off.events == [] and required.events == []
    # "required" and an INVITE that supports it: the 180 is reliable
    required.events += required.ua.receive_message(
        raw_invite("Supported: 100rel\r\n").replace(b"raw1", b"raw2"), ALICE_ADDR, 0.0
    )
    (incoming,) = required.of(ev.IncomingCall)
    responses(required)
    required.ua.ring(incoming.call_id, 0.0)
    (ringing,) = responses(required)
    assert ringing.headers.get("Require") == "100rel" and ringing.headers.get("RSeq")


# --- pieces --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "1 2", "1 2 INVITE x", "a 2 INVITE", "1 -2 INVITE"])
def test_malformed_rack_is_a_remote_protocol_error(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        RAck.parse(text)


def test_rack_round_trip() -> None:
    assert str(RAck.parse(" 776656  1 invite ")) == "776656 1 INVITE"


def test_every_reliable_state_input_pair_transitions_or_raises() -> None:
    for state, inp in itertools.product(ReliableState, ReliableInput):
        record = PrackServer(state=state)
        if (state, inp) in RELIABLE_TRANSITIONS:
            assert record.apply(inp) is RELIABLE_TRANSITIONS[(state, inp)]
        else:
            with pytest.raises(LocalProtocolError):
                record.apply(inp)


def test_a_challenged_prack_is_sent_again_with_credentials() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1, password="alicepw")
    alice.ua.invite(None, BOB, sdp=OFFER, now=0.0)
    (data, _), *_ = alice.ua.messages_to_send()
    invite = parse_message(data)
    assert isinstance(invite, SipRequest)
    ringing = response(invite, 180, [("Require", "100rel"), ("RSeq", "1")])
    alice.ua.receive_message(ringing, ALICE_ADDR, 0.1)
    (prack,) = pracks(alice)
    assert prack.headers.get("Proxy-Authorization") is None
    headers = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        headers.add(name, prack.headers.get_lines(name)[0])
    headers.add("Proxy-Authenticate", make_challenge(realm="lab.test", nonce="n1"))
    challenge = SipResponse(status=407, reason="Proxy Authentication Required", headers=headers)
    alice.ua.receive_message(bytes(challenge), ALICE_ADDR, 0.2)
    (again,) = pracks(alice)
    assert again.headers.get("RAck") == prack.headers.get("RAck")
    assert again.cseq.seq == prack.cseq.seq + 1
    assert 'realm="lab.test"' in (again.headers.get("Proxy-Authorization") or "")


def test_a_cancel_while_the_1xx_waits_for_its_prack_stops_its_retransmissions(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    net.drop = lambda data, dest: data.startswith(b"PRACK")
    call_id, bob_call = ring(net, alice, bob)
    bob.ua.answer(bob_call, sdp=ANSWER, now=net.now)  # held for the PRACK that never comes
    alice.ua.hangup(call_id, net.now)
    net.flush()
    assert bob.of(ev.CallFailed)[0].status == 487
    assert alice.of(ev.CallFailed)[0].reason == "cancelled"
    net.run_until(40.0)
    assert len(sent_by(bob, net, "SIP/2.0 180")) == 1  # no retransmission after the 487
    # the held answer never went: the only 200 is the CANCEL's
    assert [r.cseq.method for r in sent_by(bob, net, "SIP/2.0 200")] == ["CANCEL"]
