"""The user agent core against other user agent cores over a fake network, clock walked by
argument (no sockets, no sleeps). Peers' views are asserted as well as the caller's."""

from __future__ import annotations

import itertools
import logging

import pytest
from sip_support import (
    ANSWER,
    OFFER,
    Network,
    Peer,
    Registrar,
    call_up,
    exchange,
    make_peer,
    registering_alice,
)

from softphone.auth.digest import Algorithm
from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.call import CALL_TRANSITIONS, Call, CallInput, CallState
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.message import SipResponse, parse_message
from softphone.sip.registration import REG_TRANSITIONS, RegInput, Registration, RegState
from softphone.sip.ua import redact
from softphone.sip.uri import SipUri


@pytest.fixture
def pair() -> tuple[Network, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    return Network(alice, bob), alice, bob


# --- calls ----------------------------------------------------------------------------------------
def test_call_is_set_up_and_torn_down_by_the_caller(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    assert bob.of(ev.IncomingCall)[0].sdp == OFFER
    assert [type(e) for e in alice.events] == [ev.CallProgressed, ev.CallAnswered]
    assert alice.of(ev.CallAnswered) == [ev.CallAnswered(call_id=call_id, sdp=ANSWER)]
    assert bob.of(ev.CallConfirmed) == [ev.CallConfirmed(call_id=bob_call)]
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED
    alice.ua.hangup(call_id, net.now)
    net.flush()
    assert bob.of(ev.CallEnded) == [
        ev.CallEnded(call_id=bob_call, by="remote", status=200, reason="remote hung up")
    ]
    # Why the call ended, in words (the BYE's "200 OK" would say nothing).
    assert alice.of(ev.CallEnded) == [
        ev.CallEnded(call_id=call_id, by="local", status=200, reason="hung up here")
    ]
    assert alice.ua.call_state(call_id) is CallState.TERMINATED


def test_callee_hangs_up(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    bob.ua.hangup(bob_call, net.now)
    net.flush()
    assert alice.of(ev.CallEnded) == [
        ev.CallEnded(call_id=call_id, by="remote", status=200, reason="remote hung up")
    ]
    assert bob.of(ev.CallEnded)[0].by == "local"


def test_invite_retransmissions_are_absorbed_and_2xx_retransmitted_until_ack(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    # Drop alice's first ACK: bob retransmits the 200, alice ACKs again, bob confirms once.
    dropped: list[bytes] = []

    def drop_first_ack(data: bytes, dest: Address) -> bool:
        if data.startswith(b"ACK") and not dropped:
            dropped.append(data)
            return True
        return False

    net.drop = drop_first_ack
    _, bob_call = call_up(net, alice, bob)
    assert bob.of(ev.CallConfirmed) == []
    net.run_until(1.0)
    assert bob.of(ev.CallConfirmed) == [ev.CallConfirmed(call_id=bob_call)]
    assert len(alice.of(ev.CallAnswered)) == 1  # the retransmitted 2xx is not a second answer
    assert len(dropped) == 1


def test_callee_rejects_busy(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    net.flush()
    bob.ua.reject(bob.of(ev.IncomingCall)[0].call_id, status=486, now=net.now)
    net.flush()
    (failed,) = alice.of(ev.CallFailed)
    assert failed.call_id == call_id and failed.status == 486 and "busy" in failed.reason.lower()
    assert (failed.phrase, failed.no_response) == ("Busy Here", False)
    # the non-2xx was ACKed by alice's transaction: bob stops retransmitting
    assert any(m.startswith(b"ACK ") for m in bob.received)
    net.run_until(40.0)
    assert sum(1 for m in alice.received if m.startswith(b"SIP/2.0 486")) == 1


def test_cancel_before_answer(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    net.flush()
    bob.ua.ring(bob.of(ev.IncomingCall)[0].call_id, net.now)
    net.flush()
    alice.ua.hangup(call_id, net.now)
    net.flush()
    assert alice.of(ev.CallFailed) == [
        ev.CallFailed(call_id=call_id, status=487, reason="cancelled", phrase="Request Terminated")
    ]
    assert bob.of(ev.CallFailed)[0].status == 487
    assert any(m.startswith(b"CANCEL ") for m in bob.received)


def test_cancel_waits_for_a_provisional_response(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    alice.ua.cancel(call_id, 0.0)  # nothing came back yet: the CANCEL must wait (§9.1)
    sent = alice.ua.messages_to_send()
    assert [d.split(b" ", 1)[0] for d, _ in sent] == [b"INVITE"]
    for data, _ in sent:
        bob.events += bob.ua.receive_message(data, alice.address, 0.0)
    net.flush()  # bob's 100 Trying releases the CANCEL
    assert any(m.startswith(b"CANCEL ") for m in bob.received)
    assert alice.of(ev.CallFailed)[0].status == 487


def test_cancel_200_race_acks_then_byes(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    net.flush()
    bob_call = bob.of(ev.IncomingCall)[0].call_id
    bob.ua.answer(bob_call, sdp=ANSWER, now=net.now)  # the 200 is on its way...
    alice.ua.cancel(call_id, net.now)  # ...while alice cancels
    net.flush()
    methods = [m.split(b" ", 1)[0] for m in bob.received]
    assert b"CANCEL" in methods and b"ACK" in methods and b"BYE" in methods
    assert methods.index(b"ACK") < methods.index(b"BYE")
    assert bob.of(ev.CallEnded)[0].by == "remote"
    assert alice.ua.call_state(call_id) is CallState.TERMINATED
    assert alice.of(ev.CallAnswered) == []
    (ended,) = alice.of(ev.CallEnded)
    assert ended.reason == "cancelled here (answered as the CANCEL went out)"


def test_invite_times_out_with_a_clear_reason() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    net = Network(alice)
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.9"), sdp=OFFER, now=0.0)
    net.run_until(40.0)
    (failed,) = alice.of(ev.CallFailed)
    assert failed.call_id == call_id and failed.status == 408
    assert failed.no_response and failed.phrase == ""  # no 408 came: Timer B fired
    assert "127.0.0.9:5060" in failed.reason
    assert (
        len([d for d, _ in net.undeliverable if d.startswith(b"INVITE")]) == 7
    )  # A: 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5


def test_hold_and_resume_from_either_side(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    hold = OFFER.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendonly\r\n")
    alice.ua.reoffer(call_id, sdp=hold, now=net.now)
    net.flush()
    (reoffer,) = bob.of(ev.ReofferReceived)
    assert reoffer.sdp == hold
    bob.ua.answer_reoffer(
        bob_call, sdp=ANSWER.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=recvonly\r\n"), now=net.now
    )
    net.flush()
    assert alice.of(ev.ReofferAnswered)[0].sdp is not None
    assert b"a=recvonly" in alice.of(ev.ReofferAnswered)[0].sdp  # type: ignore[operator]
    # and bob resumes the other way
    bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()
    alice.ua.answer_reoffer(call_id, sdp=OFFER, now=net.now)
    net.flush()
    assert bob.of(ev.ReofferAnswered) == [ev.ReofferAnswered(call_id=bob_call, sdp=OFFER)]
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED


def test_reinvite_glare_gets_491_and_both_retry(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    alice.ua.reoffer(call_id, sdp=OFFER, now=net.now)
    bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)
    net.flush()  # the re-INVITEs cross: at least one side answers 491 (§14.2)
    assert any(m.startswith(b"SIP/2.0 491") for m in alice.received + bob.received)
    answered = {"alice": 0, "bob": 0}
    for _ in range(20):  # the retries are spread out (§14.1); the phone answers each re-offer
        for peer, cid in ((alice, call_id), (bob, bob_call)):
            if len(peer.of(ev.ReofferReceived)) > answered[peer.name]:
                peer.ua.answer_reoffer(cid, sdp=OFFER, now=net.now)
                answered[peer.name] += 1
        net.run_until(net.now + 0.5)
    assert len(alice.of(ev.ReofferAnswered)) == 1 and len(bob.of(ev.ReofferAnswered)) == 1
    assert alice.of(ev.ReofferFailed) == [] and bob.of(ev.ReofferFailed) == []


def test_blind_transfer_transferor_and_transferee(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    carol = SipUri(user="carol", host="127.0.0.3")
    alice.ua.refer(call_id, carol, net.now)
    net.flush()
    (asked,) = bob.of(ev.TransferRequested)
    assert asked.call_id == bob_call and asked.target == str(carol)
    assert alice.of(ev.TransferProgressed)[:2] == [
        ev.TransferProgressed(call_id=call_id, status=202, reason="Accepted", final=False),
        ev.TransferProgressed(call_id=call_id, status=100, reason="Trying", final=False),
    ]
    bob.ua.notify_transfer(bob_call, status=200, reason="OK", now=net.now)
    net.flush()
    assert alice.of(ev.TransferProgressed)[-1] == ev.TransferProgressed(
        call_id=call_id, status=200, reason="OK", final=True
    )
    notify = [parse_message(m) for m in alice.received if m.startswith(b"NOTIFY")][-1]
    assert (notify.headers.get("Subscription-State") or "").startswith("terminated")


# --- checks on incoming requests -----------------------------------------------------------------
def raw_request(
    method: str,
    uri: str,
    *,
    to_tag: str | None = None,
    extra: str = "",
    body: bytes = b"",
    version: str = "SIP/2.0",
    call_id: str = "x1@192.0.2.1",
) -> bytes:
    to = "<sip:bob@127.0.0.2>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} {uri} {version}\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{abs(hash((method, uri, extra))) % 10**8};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:scanner@192.0.2.1>;tag=s1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:scanner@192.0.2.1:5060>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def answer_to(bob: Peer, data: bytes, source: Address | None = None) -> SipResponse:
    source = source or Address("udp", "192.0.2.1", 5060)
    bob.events += bob.ua.receive_message(data, source, 0.0)
    out = bob.ua.messages_to_send()
    assert out, "the request got no response"
    resp = parse_message(out[-1][0])
    assert isinstance(resp, SipResponse)
    return resp


@pytest.mark.parametrize(
    ("data", "status", "header"),
    [
        (raw_request("OPTIONS", "sip:bob@127.0.0.2"), 200, ("Allow", "INVITE")),
        (
            raw_request(
                "INVITE", "sip:100@127.0.0.2", body=OFFER, extra="Content-Type: application/sdp\r\n"
            ),
            404,
            None,
        ),
        (raw_request("SUBSCRIBE", "sip:bob@127.0.0.2"), 405, ("Allow", "REFER")),
        (
            raw_request("OPTIONS", "sip:bob@127.0.0.2", extra="Require: precondition\r\n"),
            420,
            ("Unsupported", "precondition"),
        ),
        (
            raw_request(
                "INVITE", "sip:bob@127.0.0.2", body=b"hi", extra="Content-Type: text/plain\r\n"
            ),
            415,
            ("Accept", "application/sdp"),
        ),
        (raw_request("BYE", "sip:bob@127.0.0.2", to_tag="nope"), 481, None),
        (raw_request("BYE", "sip:bob@127.0.0.2"), 481, None),
        (raw_request("OPTIONS", "sip:bob@127.0.0.2", version="SIP/3.0"), 505, None),
        (
            raw_request("INVITE", "sip:bob@127.0.0.2", extra="Max-Forwards: 0\r\n").replace(
                b"Max-Forwards: 70\r\n", b""
            ),
            483,
            None,
        ),
    ],
)
def test_incoming_request_checks(data: bytes, status: int, header: tuple[str, str] | None) -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    resp = answer_to(bob, data)
    assert resp.status == status
    if header is not None:
        assert header[1] in (resp.headers.get_all(header[0]) or [""])[0] + " ".join(
            resp.headers.get_all(header[0])
        )
    assert resp.to.tag  # §8.2.6.2
    assert bob.of(ev.IncomingCall) == []


def test_scanner_invite_never_rings() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    resp = answer_to(
        bob,
        raw_request(
            "INVITE", "sip:1000@127.0.0.2", body=OFFER, extra="Content-Type: application/sdp\r\n"
        ),
    )
    assert resp.status == 404 and bob.events == []


def test_an_invite_without_contact_is_malformed_before_it_is_misrouted() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    data = raw_request(
        "INVITE", "sip:1000@127.0.0.2", body=OFFER, extra="Content-Type: application/sdp\r\n"
    ).replace(b"Contact: <sip:scanner@192.0.2.1:5060>\r\n", b"")
    resp = answer_to(bob, data)
    assert (resp.status, resp.reason) == (400, "Missing Contact") and bob.events == []


def registered_bob(seed: int = 2, *, only_from_proxy: bool = False) -> Peer:
    """bob@lab.test, registered through 127.0.0.10:5070 (a registrar that rewrites the
    Request-URI to the Contact it holds)."""
    bob = make_peer(
        "bob",
        "127.0.0.2",
        seed=seed,
        registrar=SipUri(host="127.0.0.10", port=5070),
        outbound=Address("udp", "127.0.0.10", 5070),
        password="bobpw",
        only_from_proxy=only_from_proxy,
    )
    bob.ua.register("bob", 0.0)
    exchange(bob, Registrar(password="bobpw"), 0.0)
    assert bob.of(ev.Registered)
    bob.events.clear()
    return bob


@pytest.mark.parametrize(
    ("uri", "rings"),
    [
        ("sip:bob@127.0.0.2:5060", True),  # the Contact we registered: what the registrar sends
        ("sip:bob@lab.test", True),  # our address of record, from a proxy that does not rewrite
        ("sip:bob@192.0.2.77", False),  # our user at another host: someone bypassed the registrar
        ("sip:127.0.0.2", False),  # no user: a scan of our address
        ("sip:admin@127.0.0.2", False),  # a guessed user
    ],
)
def test_a_registered_account_rings_only_for_its_contact_or_address_of_record(
    uri: str, rings: bool
) -> None:
    bob = registered_bob()
    resp = answer_to(
        bob, raw_request("INVITE", uri, body=OFFER, extra="Content-Type: application/sdp\r\n")
    )
    assert bool(bob.of(ev.IncomingCall)) is rings
    assert resp.status == (100 if rings else 404)


PROXY = Address("udp", "127.0.0.10", 5070)
STRANGERS = [
    Address("udp", "192.0.2.1", 5060),  # elsewhere
    Address("udp", "127.0.0.10", 5071),  # the proxy's host, another port: a phone beside it
    Address("udp", "127.0.0.2", 5070),  # ourselves, the proxy's port
    Address("tcp", "198.51.100.9", 5070),
]


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS", "REFER", "SUBSCRIBE"])
@pytest.mark.parametrize("uri", ["sip:bob@127.0.0.2:5060", "sip:bob@lab.test", "sip:x@127.0.0.2"])
def test_only_from_proxy_refuses_out_of_dialog_requests_from_anywhere_else(
    method: str, uri: str
) -> None:
    """403 without ringing for every request that did not come through the registrar/proxy,
    whatever it asks for; the same requests from the proxy are treated as before."""
    extra = "Content-Type: application/sdp\r\n" if method == "INVITE" else ""
    body = OFFER if method == "INVITE" else b""
    for source in STRANGERS:
        bob = registered_bob(only_from_proxy=True)
        resp = answer_to(bob, raw_request(method, uri, extra=extra, body=body), source)
        assert resp.status == 403 and bob.events == [], (source, resp.status)
    guarded = registered_bob(only_from_proxy=True)
    open_one = registered_bob(only_from_proxy=False)
    data = raw_request(method, uri, extra=extra, body=body)
    through_proxy, without_option = (
        answer_to(guarded, data, PROXY),
        answer_to(open_one, data, PROXY),
    )
    assert (through_proxy.status, through_proxy.reason) == (
        without_option.status,
        without_option.reason,
    )
    assert guarded.events == open_one.events


def test_without_only_from_proxy_a_direct_call_still_rings() -> None:
    bob = registered_bob(only_from_proxy=False)
    data = raw_request(
        "INVITE", "sip:bob@127.0.0.2:5060", body=OFFER, extra="Content-Type: application/sdp\r\n"
    )
    assert answer_to(bob, data, STRANGERS[0]).status == 100 and bob.of(ev.IncomingCall)


def test_only_from_proxy_leaves_requests_inside_a_dialog_alone() -> None:
    """A BYE or re-INVITE comes from the far end's Contact once the dialog exists (unless the
    proxy record-routes): the check is for requests that start something."""
    bob = registered_bob(only_from_proxy=True)
    resp = answer_to(bob, raw_request("BYE", "sip:bob@127.0.0.2:5060", to_tag="t1"), STRANGERS[0])
    assert resp.status == 481  # no such dialog, as without the option


def test_only_from_proxy_for_no_account_refuses_only_when_every_account_has_it() -> None:
    from softphone.sip.account import accepts_source

    def account(name: str, guarded: bool, port: int) -> AccountConfig:
        return AccountConfig(
            name=name,
            aor=SipUri(user=name, host="lab.test"),
            username=name,
            registrar=SipUri(host="127.0.0.10", port=port),
            outbound=None if port % 2 else Address("udp", "127.0.0.10", port),
            only_from_proxy=guarded,
        )

    both = [account("a", True, 5070), account("b", True, 5081)]
    assert accepts_source(both, None, Address("udp", "127.0.0.10", 5070))
    assert accepts_source(both, None, Address("udp", "127.0.0.10", 5081))  # registrar by IP
    assert not accepts_source(both, None, Address("udp", "127.0.0.10", 5099))
    one = [account("a", True, 5070), account("b", False, 5080)]
    assert accepts_source(one, None, Address("udp", "192.0.2.1", 5060))
    assert not accepts_source(one, one[0], Address("udp", "192.0.2.1", 5060))
    assert accepts_source(one, one[1], Address("udp", "192.0.2.1", 5060))
    assert accepts_source([], None, Address("udp", "192.0.2.1", 5060))


def test_a_peer_to_peer_account_takes_direct_calls_to_its_address() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    resp = answer_to(
        bob,
        raw_request(
            "INVITE", "sip:127.0.0.2", body=OFFER, extra="Content-Type: application/sdp\r\n"
        ),
    )
    assert resp.status == 100 and len(bob.of(ev.IncomingCall)) == 1


def test_responses_go_to_received_and_rport() -> None:
    """RFC 3581: the response goes back to the source IP and port, not to the Via's sent-by."""
    bob = make_peer("bob", "127.0.0.2", seed=2)
    data = raw_request("OPTIONS", "sip:bob@127.0.0.2")
    bob.ua.receive_message(data, Address("udp", "198.51.100.7", 40123), 0.0)
    ((out, dest),) = bob.ua.messages_to_send()
    assert dest == Address("udp", "198.51.100.7", 40123)
    via = parse_message(out).top_via
    assert via.received == "198.51.100.7" and via.rport == 40123


def test_response_without_rport_goes_to_sent_by_port_at_source_ip() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    data = raw_request("OPTIONS", "sip:bob@127.0.0.2").replace(b";rport", b"")
    bob.ua.receive_message(data, Address("udp", "198.51.100.7", 40123), 0.0)
    ((_, dest),) = bob.ua.messages_to_send()
    assert dest == Address("udp", "198.51.100.7", 5060)


def test_malformed_request_with_usable_headers_gets_400() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    data = raw_request("OPTIONS", "sip:bob@127.0.0.2").replace(
        b"Content-Length: 0", b"Content-Length: 500"
    )
    with pytest.raises(ParseError):
        bob.ua.receive_message(data, Address("udp", "192.0.2.1", 5060), 0.0)
    ((out, dest),) = bob.ua.messages_to_send()
    resp = parse_message(out)
    assert isinstance(resp, SipResponse) and resp.status == 400
    assert resp.call_id == "x1@192.0.2.1" and dest == Address("udp", "192.0.2.1", 5060)


def test_malformed_request_whose_response_would_be_malformed_is_dropped() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    data = raw_request("OPTIONS", "sip:bob@127.0.0.2").replace(
        b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"
    )
    with pytest.raises(ParseError):
        bob.ua.receive_message(data, Address("udp", "192.0.2.1", 5060), 0.0)
    assert bob.ua.messages_to_send() == []


def test_garbage_is_dropped_without_reply() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    with pytest.raises(ParseError):
        bob.ua.receive_message(
            b"\x16\x03\x01 not sip at all", Address("udp", "192.0.2.1", 5060), 0.0
        )
    assert bob.ua.messages_to_send() == []


def test_second_call_while_in_a_call_is_call_waiting(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    carol = make_peer("carol", "127.0.0.3", seed=3)
    net.peers[(carol.address.host, carol.address.port)] = carol
    call_up(net, alice, bob)
    carol.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=net.now)
    net.flush()
    first, second = bob.of(ev.IncomingCall)
    assert not first.replaces_call and second.replaces_call


# --- registration ---------------------------------------------------------------------------------
def test_register_answers_the_challenge_and_refreshes(caplog: pytest.LogCaptureFixture) -> None:
    alice, registrar = registering_alice(), Registrar()
    with caplog.at_level(logging.DEBUG, logger="softphone.wire"):
        alice.ua.register("alice", 0.0, expires=120)
        exchange(alice, registrar, 0.0)
    assert (
        "Authorization: <redacted>" in caplog.text and "response=" not in caplog.text
    )  # the wire log
    assert alice.of(ev.Registered) == [
        ev.Registered(account="alice", expires=120, contact="sip:alice@127.0.0.1:5060")
    ]
    first, second = registrar.requests
    assert "Authorization" not in first.headers and "Authorization" in second.headers
    assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
    assert b"<redacted>" in redact(bytes(second)) and b"response=" not in redact(bytes(second))
    # the refresh is due half way through a short interval (transaction timers end first)
    while (at := alice.ua.get_timer()) is not None and at < 60.0:
        alice.events += alice.ua.handle_timer(at)
    assert alice.ua.messages_to_send() == []
    assert alice.ua.get_timer() == pytest.approx(60.0)
    alice.events += alice.ua.handle_timer(60.0)
    exchange(alice, registrar, 60.0)
    assert len(alice.of(ev.Registered)) == 2
    assert registrar.requests[-1].call_id == first.call_id  # same Call-ID for refreshes (§10.2.4)


def test_register_answers_the_strongest_challenge_whatever_the_order() -> None:
    # RFC 8760 §2.4: a registrar offers SHA-256 beside MD5 for old phones; we take SHA-256.
    alice = registering_alice()
    registrar = Registrar(algorithms=(Algorithm.MD5, Algorithm.SHA256))
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    assert len(alice.of(ev.Registered)) == 1
    answer = registrar.requests[1].headers.get("Authorization") or ""
    assert "algorithm=SHA-256" in answer and 'nonce="n1-SHA-256"' in answer


def test_a_registrar_restart_is_answered_once_and_the_refresh_succeeds() -> None:
    # The refresh carries credentials for the old nonce; the restarted registrar challenges
    # them with a new nonce and no stale=true. That is not a refusal of our password.
    alice, registrar = registering_alice(), Registrar()
    alice.ua.register("alice", 0.0, expires=120)
    exchange(alice, registrar, 0.0)
    registrar.restart()
    alice.events += alice.ua.handle_timer(60.0)
    exchange(alice, registrar, 60.0)
    assert [type(e) for e in alice.events] == [ev.Registered, ev.Registered]
    refresh, answer = registrar.requests[-2:]
    assert 'nonce="n1-MD5"' in (refresh.headers.get("Authorization") or "")
    assert "-g1" in (answer.headers.get("Authorization") or "")


def test_a_second_challenge_to_fresh_credentials_is_a_refusal_even_after_a_restart() -> None:
    # A registrar that answers a wrong password with 401 again: answered once (the pre-emptive
    # credentials were stale), then refused; the next attempt starts with no stale credentials.
    alice = registering_alice(password="wrong")
    registrar = Registrar(password="alicepw", refused=401)
    alice.ua.register("alice", 0.0, expires=120)
    exchange(alice, registrar, 0.0)
    (failed,) = alice.of(ev.RegistrationFailed)
    assert failed.status == 401 and len(registrar.requests) == 2
    alice.events += alice.ua.handle_timer(failed.retry_in_s)
    exchange(alice, registrar, failed.retry_in_s)
    assert "Authorization" not in registrar.requests[2].headers  # the cache was dropped
    assert len(alice.of(ev.RegistrationFailed)) == 2 and len(registrar.requests) == 4


def test_register_423_retries_with_min_expires() -> None:
    alice, registrar = registering_alice(), Registrar(min_expires=300)
    alice.ua.register("alice", 0.0, expires=30)
    exchange(alice, registrar, 0.0)
    assert [r.headers.get("Expires") for r in registrar.requests] == ["30", "30", "300"]
    assert "Authorization" in registrar.requests[-1].headers  # pre-authenticated retry
    assert alice.of(ev.Registered)[0].expires == 300


def test_wrong_password_fails_once_and_retries_later_with_backoff() -> None:
    alice, registrar = registering_alice(password="wrong"), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    (failed,) = alice.of(ev.RegistrationFailed)
    assert failed.status == 403 and failed.retry_in_s == 30.0 and "password" in failed.reason
    assert len(registrar.requests) == 2  # no loop of challenges
    alice.ua.handle_timer(30.0)
    exchange(alice, registrar, 30.0)
    assert alice.of(ev.RegistrationFailed)[-1].retry_in_s == 60.0  # backoff doubles


def test_unregister_sends_expires_zero() -> None:
    alice, registrar = registering_alice(), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    assert alice.ua.unregister("alice", 1.0)
    exchange(alice, registrar, 1.0)
    assert registrar.requests[-1].headers.get("Expires") == "0"
    assert alice.of(ev.Unregistered) == [ev.Unregistered(account="alice")]
    assert alice.ua.registration_state("alice") is RegState.IDLE


def test_nat_address_learned_from_via_is_registered() -> None:
    alice = registering_alice()
    registrar = Registrar(public=Address("udp", "203.0.113.5", 62000))
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    assert [e.contact for e in alice.of(ev.Registered)] == ["sip:alice@203.0.113.5:62000"]
    assert str(registrar.requests[-1].contacts[0].uri) == "sip:alice@203.0.113.5:62000"
    # The first REGISTER's binding (the private address) is removed by the one that registers
    # the learned address: left in place, the registrar would fork every call to it too.
    assert list(registrar.bindings) == ["sip:alice@203.0.113.5:62000"]
    alice.ua.handle_timer(3600.0)  # the refresh carries only the binding in use
    exchange(alice, registrar, 3600.0)
    assert [str(c.uri) for c in registrar.requests[-1].contacts] == ["sip:alice@203.0.113.5:62000"]
    assert list(registrar.bindings) == ["sip:alice@203.0.113.5:62000"]


# --- state tables --------------------------------------------------------------------------------
def test_every_call_state_input_pair_transitions_or_raises() -> None:
    acct = AccountConfig(name="a", aor=SipUri(user="a", host="h"), username="a")
    for state, inp in itertools.product(CallState, CallInput):
        call = Call(
            call_id="c",
            account=acct,
            outgoing=True,
            state=state,
            invite=None,  # type: ignore[arg-type]
            dest=Address("udp", "127.0.0.1", 5060),
            local_tag="t",
        )
        if (state, inp) in CALL_TRANSITIONS:
            assert call.apply(inp) is CALL_TRANSITIONS[(state, inp)]
        else:
            with pytest.raises(LocalProtocolError):
                call.apply(inp)


def test_every_registration_state_input_pair_transitions_or_raises() -> None:
    acct = AccountConfig(name="a", aor=SipUri(user="a", host="h"), username="a")
    for state, inp in itertools.product(RegState, RegInput):
        reg = Registration(account=acct, call_id="c", from_tag="f", cseq=1, expires=60, state=state)
        if (state, inp) in REG_TRANSITIONS:
            assert reg.apply(inp) is REG_TRANSITIONS[(state, inp)]
        else:
            with pytest.raises(LocalProtocolError):
                reg.apply(inp)


def test_incoming_call_hands_over_the_callers_uri_apart_from_the_display_name() -> None:
    """What a caller sends in From (a display name, the tag) stays out of the URI to call back."""
    alice = make_peer("alice", "127.0.0.1", seed=1, display_name="Liddell, Alice")
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(alice, bob)
    alice.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    net.flush()
    (incoming,) = bob.of(ev.IncomingCall)
    assert incoming.remote_uri == "sip:alice@127.0.0.1:5060"
    assert incoming.remote_display == "Liddell, Alice"
    assert incoming.remote == '"Liddell, Alice" <sip:alice@127.0.0.1:5060>'
