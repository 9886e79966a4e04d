"""UPDATE received (RFC 3311) in early and confirmed dialogs: refreshes, offers, and §5.2's
collisions (491, 500 with Retry-After), and UPDATEs that match nothing (481)."""

from __future__ import annotations

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, call_up, make_peer

from softphone.sip import events as ev
from softphone.sip.call import CallState, ReofferState
from softphone.sip.dialog import Dialog
from softphone.sip.message import SipResponse, parse_message
from softphone.sip.uri import SipUri

HOLD = OFFER.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendonly\r\n")
BOB = SipUri(user="bob", host="127.0.0.2", port=5060)


@pytest.fixture
def pair() -> tuple[Network, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    return Network(alice, bob), alice, bob


def build_update(dialog: Dialog, *, body: bytes = b"", extra: str = "") -> bytes:
    """An UPDATE from alice's side of ``dialog``."""
    req = dialog.build_request("UPDATE")
    req.headers.prepend("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKup{req.cseq.seq}")
    req.headers.add("Max-Forwards", "70")
    req.headers.add("Contact", "<sip:alice@127.0.0.1:5060>")
    for line in filter(None, extra.split("\r\n")):
        name, _, value = line.partition(":")
        req.headers.add(name, value.strip())
    if body:
        req.headers.add("Content-Type", "application/sdp")
        req.body = body
    return bytes(req)


def bob_responses(bob: Peer) -> list[SipResponse]:
    out = [parse_message(d) for d, _ in bob.ua.messages_to_send()]
    return [m for m in out if isinstance(m, SipResponse) and m.cseq.method == "UPDATE"]


def send_update(
    alice: Peer, bob: Peer, dialog: Dialog, *, body: bytes = b"", extra: str = ""
) -> tuple[SipResponse, list[ev.Event]]:
    """An UPDATE from alice's side of ``dialog`` straight to bob; bob's answer and events."""
    events = bob.ua.receive_message(
        build_update(dialog, body=body, extra=extra), alice.address, 0.0
    )
    (resp,) = bob_responses(bob)
    return resp, events


def test_update_without_sdp_is_a_refresh_answered_at_once(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, _ = call_up(net, alice, bob)
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    resp, events = send_update(
        alice, bob, dialog, extra="Supported: timer\r\nSession-Expires: 600;refresher=uac\r\n"
    )
    assert (resp.status, events) == (200, [])
    assert resp.headers.get("Session-Expires") == "600;refresher=uac"
    assert resp.headers.get("Require") == "timer"


def test_update_with_an_offer_is_answered_by_the_phone(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    events = bob.ua.receive_message(build_update(dialog, body=HOLD), alice.address, 0.0)
    assert events == [ev.ReofferReceived(call_id=bob_call, sdp=HOLD)]
    assert bob_responses(bob) == []  # the answer is the phone's: nothing goes until it answers
    bob.ua.answer_reoffer(bob_call, sdp=ANSWER, now=0.0)
    (resp,) = bob_responses(bob)
    assert (resp.status, resp.body) == (200, ANSWER)
    # the exchange is over with the 2xx (no ACK): a re-INVITE may follow at once
    assert bob.ua._calls.require(bob_call).reoffer.state is ReofferState.IDLE
    bob.ua.reoffer(bob_call, sdp=HOLD, now=0.0)
    assert bob.ua._calls.require(bob_call).reoffer.state is ReofferState.OFFER_SENT


def test_update_offer_crossing_our_reinvite_gets_491(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    bob.ua.reoffer(bob_call, sdp=HOLD, now=net.now)  # ours is out, not answered yet
    bob.ua.messages_to_send()
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    resp, events = send_update(alice, bob, dialog, body=HOLD)
    assert (resp.status, events) == (491, [])


def test_update_offer_while_theirs_is_unanswered_gets_500_with_retry_after(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    call_id, _bob_call = call_up(net, alice, bob)
    alice.ua.reoffer(call_id, sdp=HOLD, now=net.now)
    net.flush()
    assert bob.of(ev.ReofferReceived)  # bob has not answered it
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    resp, events = send_update(alice, bob, dialog, body=OFFER)
    assert (resp.status, events) == (500, [])
    assert 0 <= int(resp.headers.get("Retry-After") or "-1") <= 10


def test_updates_that_match_nothing_get_481(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, _ = call_up(net, alice, bob)
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    dialog.remote_tag = "nosuchtag"
    dialog.remote_uri = dialog.remote_uri.with_param("tag", "nosuchtag")
    resp, events = send_update(alice, bob, dialog)
    assert (resp.status, events) == (481, [])


def test_update_in_an_early_dialog(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id = alice.ua.invite(None, BOB, sdp=OFFER, now=0.0)
    net.flush()
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.ring(incoming.call_id, 0.0)
    net.flush()
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None and alice.ua.call_state(call_id) is CallState.PROCEEDING
    resp, _ = send_update(alice, bob, dialog)
    assert resp.status == 200
    # an offer before bob answered the INVITE's: §5.2, 500 with Retry-After
    resp, events = send_update(alice, bob, dialog, body=HOLD)
    assert (resp.status, events) == (500, [])
    assert resp.headers.get("Retry-After") is not None
    assert bob.ua.call_state(incoming.call_id) is CallState.INCOMING


def test_rejecting_an_update_offer(pair: tuple[Network, Peer, Peer]) -> None:
    net, alice, bob = pair
    call_id, bob_call = call_up(net, alice, bob)
    dialog = alice.ua._calls.require(call_id).dialog
    assert dialog is not None
    bob.ua.receive_message(build_update(dialog, body=HOLD), alice.address, 0.0)
    bob.ua.reject_reoffer(bob_call, status=488, now=0.0)
    (resp,) = bob_responses(bob)
    assert resp.status == 488
    assert bob.ua._calls.require(bob_call).reoffer.state is ReofferState.IDLE
