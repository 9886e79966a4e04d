"""The parts of the user agent and the seams between them: the re-offer sub-table and glare
(RFC 3261 §14), the INVITE restarted through the call table (§8.1.3.4, §22.2), one answer to a
challenge for every kind of request (§22.2), and methods installed by a part (§8.2.1)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, call_up, make_peer

from softphone.auth.digest import make_challenge, verify_authorization
from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.call import (
    REOFFER_TRANSITIONS,
    Call,
    CallState,
    Reoffer,
    ReofferInput,
    ReofferState,
)
from softphone.sip.context import MethodTable, UaContext
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.transaction import ServerTransaction
from softphone.sip.uri import SipUri

HOLD = OFFER.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendonly\r\n")
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, REFER, NOTIFY, INFO, MESSAGE"


def respond(
    req: SipRequest,
    status: int,
    *,
    to_tag: str = "far",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A response from some element on the path, built from the request as §8.2.6 says."""
    headers = Headers()
    for via in req.headers.get_lines("Via"):
        headers.add("Via", via)
    to = req.headers.get_lines("To")[0]
    headers.add("From", req.headers.get_lines("From")[0])
    headers.add("To", to if req.to.tag else f"{to};tag={to_tag}")
    headers.add("Call-ID", req.call_id)
    headers.add("CSeq", str(req.cseq))
    for name, value in extra:
        headers.add(name, value)
    return bytes(SipResponse(status=status, reason="x", headers=headers))


def sent_requests(peer: Peer) -> list[tuple[SipRequest, Address]]:
    out = []
    for data, dest in peer.ua.messages_to_send():
        msg = parse_message(data)
        assert isinstance(msg, SipRequest)
        out.append((msg, dest))
    return out


# --- the re-offer sub-table ----------------------------------------------------------------------
def test_every_reoffer_state_input_pair_transitions_or_raises() -> None:
    for state, inp in itertools.product(ReofferState, ReofferInput):
        sub = Reoffer(state=state)
        if (state, inp) in REOFFER_TRANSITIONS:
            assert sub.allows(inp)
            assert sub.apply(inp) is REOFFER_TRANSITIONS[(state, inp)]
            assert sub.state is REOFFER_TRANSITIONS[(state, inp)]
        else:
            assert not sub.allows(inp)
            with pytest.raises(LocalProtocolError):
                sub.apply(inp)
            assert sub.state is state


def test_theirs_is_taken_only_when_ours_is_not_in_flight() -> None:
    # §14.2: a re-INVITE arriving while ours (or an earlier one of theirs) is pending gets 491;
    # while we wait to retry after glare, theirs goes first (§14.1).
    taken = {s for s in ReofferState if (s, ReofferInput.RECV_OFFER) in REOFFER_TRANSITIONS}
    assert taken == {ReofferState.IDLE, ReofferState.GLARE_WAIT}


def test_the_call_keeps_no_reoffer_flags_beside_the_sub_state() -> None:
    names = set(Call.__dataclass_fields__)
    assert "reoffer" in names
    assert not names & {"reoffer_client", "reoffer_server_tx", "reoffer_request", "glare_retries"}


# --- glare (§14.1) -------------------------------------------------------------------------------
def crossed_reoffers() -> tuple[Network, Peer, Peer, str, str]:
    alice = make_peer("alice", "127.0.0.1", seed=1)  # alice places the call: she owns the Call-ID
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(alice, bob)
    call_id, bob_call = call_up(net, alice, bob)
    net.run_until(40.0)  # the INVITE transactions are gone; only glare deadlines will remain
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)
    from_alice, from_bob = alice.ua.messages_to_send(), bob.ua.messages_to_send()
    for (data, _), (other, _) in zip(from_alice, from_bob, strict=True):  # they cross
        bob.received.append(data)
        bob.events += bob.ua.receive_message(data, alice.address, net.now)
        alice.received.append(other)
        alice.events += alice.ua.receive_message(other, bob.address, net.now)
    net.flush()
    return net, alice, bob, call_id, bob_call


def test_crossing_reinvites_get_491_and_wait_by_who_owns_the_call_id() -> None:
    net, alice, bob, _, _ = crossed_reoffers()
    assert [m[:11] for m in alice.received if m.startswith(b"SIP/2.0 491")] == [b"SIP/2.0 491"]
    assert [m[:11] for m in bob.received if m.startswith(b"SIP/2.0 491")] == [b"SIP/2.0 491"]
    assert alice.of(ev.ReofferReceived) == [] and bob.of(ev.ReofferReceived) == []
    # The glare deadline is the earliest timer left (the ACKed 491s leave Timer I at T4 = 5 s).
    alice_wait = alice.ua.get_timer()
    bob_wait = bob.ua.get_timer()
    assert alice_wait is not None and 2.1 <= alice_wait - net.now <= 4.0
    assert bob_wait is not None and 0.0 <= bob_wait - net.now <= 2.0


def test_while_waiting_to_retry_theirs_is_taken_and_ours_goes_after_it() -> None:
    net, alice, bob, call_id, bob_call = crossed_reoffers()

    def reinvites() -> list[SipRequest]:
        msgs = [parse_message(m) for m in bob.received if m.startswith(b"INVITE")]
        return [m for m in msgs if isinstance(m, SipRequest) and m.to.tag]

    assert len(reinvites()) == 1  # the one that crossed bob's
    start = net.now
    alice_at = alice.ua.get_timer()
    assert alice_at is not None
    net.run_until(start + 2.05)  # bob's wait (0-2 s) is over, alice's (2.1-4 s) is not
    (theirs,) = alice.of(ev.ReofferReceived)  # taken, not 491: alice is only waiting
    assert theirs.sdp == ANSWER
    # Alice's phone has not answered when her own wait ends: hers waits a T1 more, unsent.
    net.run_until(alice_at)
    assert len(reinvites()) == 1
    assert alice.ua.get_timer() == pytest.approx(alice_at + 0.5)
    alice.ua.answer_reoffer(call_id, sdp=OFFER, now=net.now)
    net.flush()
    assert bob.of(ev.ReofferAnswered) == [ev.ReofferAnswered(call_id=bob_call, sdp=OFFER)]
    net.run_until(alice_at + 0.5)  # now hers goes again, with the same offer
    assert len(reinvites()) == 2 and reinvites()[-1].body == HOLD
    bob.ua.answer_reoffer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()
    assert alice.of(ev.ReofferAnswered) == [ev.ReofferAnswered(call_id=call_id, sdp=ANSWER)]
    assert alice.of(ev.ReofferFailed) == [] and bob.of(ev.ReofferFailed) == []


def test_reinvite_while_ours_is_in_flight_gets_491() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(alice, bob)
    call_id, bob_call = call_up(net, alice, bob)
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    net.flush()  # bob has it and has not answered: his own re-offer must wait
    with pytest.raises(LocalProtocolError):
        bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)
    with pytest.raises(LocalProtocolError):
        alice.ua.answer_reoffer(call_id, sdp=OFFER, now=net.now)  # nothing of bob's to answer


# --- the INVITE restarted through the call table -------------------------------------------------
def test_invite_challenged_then_redirected_restarts_with_new_branch_and_cseq() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1, password="alicepw")
    bob = make_peer("bob", "127.0.0.2", seed=2)
    proxy = Address("udp", "127.0.0.5", 5060)  # challenges, then redirects to bob
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.5"), sdp=OFFER, now=0.0)
    ((first, dest),) = sent_requests(alice)
    assert dest == proxy
    challenge = make_challenge(realm="proxy.test", nonce="n1")
    alice.events += alice.ua.receive_message(
        respond(first, 407, extra=[("Proxy-Authenticate", challenge)]), proxy, 0.0
    )
    sent = sent_requests(alice)
    assert [r.method for r, _ in sent] == ["ACK", "INVITE"]  # ACK of the 407, then again
    second, dest = sent[1]
    assert dest == proxy and second.uri == first.uri
    assert alice.ua.call_state(call_id) is CallState.CALLING
    assert second.cseq.seq == first.cseq.seq + 1
    assert second.top_via.branch != first.top_via.branch
    value = second.headers.get("Proxy-Authorization")
    assert value is not None and verify_authorization(value, password="alicepw", method="INVITE")
    contact = [("Contact", "<sip:proxy@127.0.0.5>")]
    alice.events += alice.ua.receive_message(respond(second, 180, extra=contact), proxy, 0.1)
    assert alice.ua.call_state(call_id) is CallState.PROCEEDING
    redirect = [("Contact", "<sip:bob@127.0.0.2>")]
    alice.events += alice.ua.receive_message(respond(second, 302, extra=redirect), proxy, 0.2)
    assert alice.ua.call_state(call_id) is CallState.CALLING  # RESTART from PROCEEDING
    sent = sent_requests(alice)
    assert [r.method for r, _ in sent] == ["ACK", "INVITE"]
    third, dest = sent[1]
    assert dest == bob.address and str(third.uri) == "sip:bob@127.0.0.2"
    assert third.cseq.seq == second.cseq.seq + 1
    assert len({first.top_via.branch, second.top_via.branch, third.top_via.branch}) == 3
    assert "Proxy-Authorization" not in third.headers  # those credentials were for the proxy
    assert alice.of(ev.CallFailed) == []
    net = Network(alice, bob)
    bob.events += bob.ua.receive_message(bytes(third), alice.address, 0.2)
    bob.ua.answer(bob.of(ev.IncomingCall)[0].call_id, sdp=ANSWER, now=0.2)
    net.flush()
    assert alice.of(ev.CallAnswered) == [ev.CallAnswered(call_id=call_id, sdp=ANSWER)]
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED


# --- one answer to a challenge, for every request -------------------------------------------------
class Challenger:
    """A proxy between alice and bob that answers ``method`` requests of alice's with 407
    ``times`` times (the same realm each time, never stale), then lets them through."""

    def __init__(self, net: Network, alice: Peer, method: str, *, times: int) -> None:
        self.net, self.alice, self.method, self.times = net, alice, method, times
        self.seen: list[SipRequest] = []
        net.drop = self.intercept

    def intercept(self, data: bytes, dest: Address) -> bool:
        if dest != Address("udp", "127.0.0.2", 5060) or not data.startswith(self.method.encode()):
            return False
        req = parse_message(data)
        assert isinstance(req, SipRequest)
        if self.method == "INVITE" and not req.to.tag:
            return False  # only the re-INVITE
        self.seen.append(req)
        if len(self.seen) > self.times:
            return False
        nonce = f"n{len(self.seen)}"
        challenge = make_challenge(realm="proxy.test", nonce=nonce)
        resp = respond(req, 407, extra=[("Proxy-Authenticate", challenge)])
        self.alice.events += self.alice.ua.receive_message(resp, dest, self.net.now)
        return True

    def assert_answered_once(self) -> None:
        first, second = self.seen
        assert "Proxy-Authorization" not in first.headers
        value = second.headers.get("Proxy-Authorization")
        assert value is not None
        assert verify_authorization(value, password="alicepw", method=self.method)
        assert 'nonce="n1"' in value
        assert second.cseq.seq == first.cseq.seq + 1 and second.cseq.method == self.method
        assert second.top_via.branch != first.top_via.branch
        assert second.call_id == first.call_id


def challenged_call(method: str, times: int) -> tuple[Network, Peer, Peer, str, str, Challenger]:
    alice = make_peer("alice", "127.0.0.1", seed=1, password="alicepw")
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(alice, bob)
    call_id, bob_call = call_up(net, alice, bob)
    return net, alice, bob, call_id, bob_call, Challenger(net, alice, method, times=times)


def test_bye_challenged_is_answered_once_with_credentials() -> None:
    net, alice, bob, call_id, bob_call, proxy = challenged_call("BYE", times=1)
    alice.ua.hangup(call_id, net.now)
    net.flush()
    proxy.assert_answered_once()
    assert alice.of(ev.CallEnded) == [
        ev.CallEnded(call_id=call_id, by="local", status=200, reason="hung up here")
    ]
    assert bob.of(ev.CallEnded)[0].call_id == bob_call


def test_refer_challenged_is_answered_once_with_credentials() -> None:
    net, alice, bob, call_id, bob_call, proxy = challenged_call("REFER", times=1)
    alice.ua.refer(call_id, SipUri(user="carol", host="127.0.0.3"), net.now)
    net.flush()
    proxy.assert_answered_once()
    assert bob.of(ev.TransferRequested)[0].call_id == bob_call
    assert alice.of(ev.TransferProgressed)[0] == ev.TransferProgressed(
        call_id=call_id, status=202, reason="Accepted", final=False
    )


def test_reinvite_challenged_is_answered_once_with_credentials() -> None:
    net, alice, bob, call_id, bob_call, proxy = challenged_call("INVITE", times=1)
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    net.flush()
    proxy.assert_answered_once()
    assert proxy.seen[1].body == HOLD
    bob.ua.answer_reoffer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()
    assert alice.of(ev.ReofferAnswered) == [ev.ReofferAnswered(call_id=call_id, sdp=ANSWER)]
    assert alice.of(ev.ReofferFailed) == []


def test_bye_challenged_again_for_the_same_realm_ends_it() -> None:
    net, alice, _, call_id, _, proxy = challenged_call("BYE", times=99)
    alice.ua.hangup(call_id, net.now)
    net.flush()
    assert len(proxy.seen) == 2  # answered once; the second 407 is a refusal (§22.2)
    (ended,) = alice.of(ev.CallEnded)
    assert ended.by == "local" and ended.status == 407
    assert alice.ua.call_state(call_id) is CallState.TERMINATED


def test_refer_challenged_again_for_the_same_realm_ends_it() -> None:
    net, alice, bob, call_id, _, proxy = challenged_call("REFER", times=99)
    alice.ua.refer(call_id, SipUri(user="carol", host="127.0.0.3"), net.now)
    net.flush()
    assert len(proxy.seen) == 2
    assert alice.of(ev.TransferProgressed) == [
        ev.TransferProgressed(call_id=call_id, status=407, reason="x", final=True)
    ]
    assert bob.of(ev.TransferRequested) == []


def test_reinvite_challenged_again_for_the_same_realm_ends_it() -> None:
    net, alice, bob, call_id, _, proxy = challenged_call("INVITE", times=99)
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    net.flush()
    assert len(proxy.seen) == 2
    (failed,) = alice.of(ev.ReofferFailed)
    assert failed.call_id == call_id and failed.status == 407
    assert bob.of(ev.ReofferReceived) == []
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED  # a failed re-offer keeps the call
    alice.ua.reoffer(call_id, sdp=OFFER, now=net.now)  # and the next one may go
    net.flush()
    assert proxy.seen[2].body == OFFER


def test_a_reinvite_answered_481_ends_the_call_saying_it_was_lost() -> None:
    """§14.1: the dialog is gone on the far side; the BYE we send then is not a hang-up of
    ours, and the call's end says so."""
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(alice, bob)
    call_id, _ = call_up(net, alice, bob)

    def lost(data: bytes, dest: Address) -> bool:
        if not data.startswith(b"INVITE"):
            return False
        req = parse_message(data)
        assert isinstance(req, SipRequest)
        if not req.to.tag:
            return False
        resp = respond(req, 481)
        alice.events += alice.ua.receive_message(resp, dest, net.now)
        return True

    net.drop = lost
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    net.flush()
    (ended,) = alice.of(ev.CallEnded)
    assert ended.reason.startswith("the call was lost: 481 ")
    assert alice.ua.call_state(call_id) is CallState.TERMINATED


# --- methods installed by a part -----------------------------------------------------------------
class Subscriptions:
    """A part as a later module would be: SUBSCRIBE in and out of a dialog, PUBLISH only outside
    one, PING only inside one."""

    def __init__(self, ctx: UaContext) -> None:
        self.ctx = ctx
        self.seen: list[tuple[str, str | None]] = []

    def install(self, methods: MethodTable) -> None:
        methods.register_method("SUBSCRIBE", in_dialog=self.in_dialog, out_of_dialog=self.outside)
        methods.register_method("PUBLISH", out_of_dialog=self.outside)
        methods.register_method("PING", in_dialog=self.in_dialog)

    def in_dialog(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        self.seen.append((req.method, call.call_id))
        return self.ctx.reply(tx, req, 200, now)

    def outside(self, req: SipRequest, tx: ServerTransaction, now: float) -> list[ev.Event]:
        self.seen.append((req.method, None))
        return self.ctx.reply(tx, req, 200, now)


def ask(peer: Peer, method: str, *, dialog: SipRequest | None = None, n: int = 0) -> SipResponse:
    """Send ``method`` to ``peer`` from outside (a stranger) or inside the dialog ``dialog`` (an
    in-dialog request of the caller's whose headers are reused, its CSeq + ``n``); returns the
    response."""
    cseq = 100 + n if dialog is None else dialog.cseq.seq + n
    if dialog is None:
        head = (
            f"{method} sip:bob@127.0.0.2 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{method.lower()}{cseq}\r\n"
            "From: <sip:stranger@192.0.2.1>;tag=s1\r\nTo: <sip:bob@127.0.0.2>\r\n"
            f"Call-ID: {method.lower()}@192.0.2.1\r\n"
        )
        source = Address("udp", "192.0.2.1", 5060)
    else:
        head = (
            f"{method} {dialog.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method.lower()}{cseq}\r\n"
            f"From: {dialog.headers.get_lines('From')[0]}\r\n"
            f"To: {dialog.headers.get_lines('To')[0]}\r\n"
            f"Call-ID: {dialog.call_id}\r\n"
        )
        source = Address("udp", "127.0.0.1", 5060)
    data = (
        head + f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:x@192.0.2.1>\r\nContent-Length: 0\r\n\r\n"
    )
    peer.events += peer.ua.receive_message(data.encode(), source, 0.0)
    responses = [parse_message(d) for d, _ in peer.ua.messages_to_send()]
    (resp,) = [r for r in responses if isinstance(r, SipResponse) and r.cseq.method == method]
    return resp


def test_an_installed_method_is_in_allow_and_reaches_its_handlers_as_declared() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    part = bob.ua.add_part(Subscriptions)
    net = Network(alice, bob)
    _, bob_call = call_up(net, alice, bob)
    ack = next(parse_message(m) for m in bob.received if m.startswith(b"ACK"))
    assert isinstance(ack, SipRequest)

    allow = f"{ALLOW}, SUBSCRIBE, PUBLISH, PING"
    options = ask(bob, "OPTIONS")
    assert options.status == 200 and options.headers.get_lines("Allow") == [allow]

    assert ask(bob, "SUBSCRIBE").status == 200
    assert ask(bob, "SUBSCRIBE", dialog=ack, n=1).status == 200
    assert ask(bob, "PUBLISH").status == 200
    assert ask(bob, "PUBLISH", dialog=ack, n=2).status == 405  # not declared in a dialog
    assert ask(bob, "PING").status == 481  # not declared outside one (§12.2.2)
    assert ask(bob, "PING", dialog=ack, n=3).status == 200
    assert part.seen == [
        ("SUBSCRIBE", None),
        ("SUBSCRIBE", bob_call),
        ("PUBLISH", None),
        ("PING", bob_call),
    ]
    # Nobody installed DO; and alice, who has no such part, knows no SUBSCRIBE.
    refused = ask(bob, "DO")
    assert refused.status == 405 and refused.headers.get_lines("Allow") == [allow]
    assert ask(bob, "DO", dialog=ack, n=4).status == 405
    refused = ask(alice, "SUBSCRIBE")
    assert refused.status == 405 and refused.headers.get_lines("Allow") == [ALLOW]
    assert bob.ua.call_state(bob_call) is CallState.CONFIRMED


def test_a_method_side_has_one_handler() -> None:
    methods = MethodTable()
    methods.register_method("SUBSCRIBE", out_of_dialog=lambda req, tx, now: [])
    methods.register_method("SUBSCRIBE", in_dialog=lambda req, tx, call, now: [])  # the other side
    with pytest.raises(LocalProtocolError):
        methods.register_method("SUBSCRIBE", out_of_dialog=lambda req, tx, now: [])
    assert methods.allow == "SUBSCRIBE"
