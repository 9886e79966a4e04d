"""Session timers (RFC 4028) between two user agents and against raw requests, the clock walked
by argument: negotiation, refresh at half time, expiry, 422."""

from __future__ import annotations

import itertools

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, call_up, make_peer

from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.message import SipRequest, SipResponse, parse_message
from softphone.sip.session_timer import (
    SESSION_TIMER_TRANSITIONS,
    Agreement,
    SessionExpires,
    SessionTimer,
    SessionTimerInput,
    SessionTimerState,
    TooSmall,
    expiry_margin_s,
    uas_agreement,
)
from softphone.sip.timers import TimerConfig

ALICE_ADDR = Address("udp", "127.0.0.1", 5060)


def messages(peer: Peer, start: str) -> list[SipRequest | SipResponse]:
    return [parse_message(m) for m in peer.received if m.startswith(start.encode())]


def requests(peer: Peer, method: str) -> list[SipRequest]:
    return [m for m in messages(peer, method + " ") if isinstance(m, SipRequest)]


def answers(peer: Peer, method: str, status: int = 200) -> list[SipResponse]:
    out = messages(peer, f"SIP/2.0 {status}")
    return [m for m in out if isinstance(m, SipResponse) and m.cseq.method == method]


def pair(**bob_kwargs: object) -> tuple[Network, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2, **bob_kwargs)  # type: ignore[arg-type]
    return Network(alice, bob), alice, bob


def test_the_caller_refreshes_with_update_at_half_time_and_the_call_lives_on() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    (invite,) = requests(bob, "INVITE")
    assert invite.headers.get("Session-Expires") == "1800"
    assert "timer" in invite.headers.get_all("Supported")
    (ok,) = answers(alice, "INVITE")
    # §9: the caller knows the extension, so it refreshes; Require: timer says so
    assert ok.headers.get("Session-Expires") == "1800;refresher=uac"
    assert ok.headers.get_all("Require") == ["timer"]
    net.run_until(899.0)
    assert requests(bob, "UPDATE") == []
    net.run_until(901.0)
    (update,) = requests(bob, "UPDATE")  # UPDATE: bob's Allow lists it (§9 prefers it)
    assert update.headers.get("Session-Expires") == "1800;refresher=uac" and not update.body
    (refreshed,) = answers(alice, "UPDATE")
    assert refreshed.headers.get("Session-Expires") == "1800;refresher=uac"
    net.run_until(3700.0)  # refreshes every 900 s: at 900, 1800, 2700, 3600
    assert len(requests(bob, "UPDATE")) == 4
    assert alice.of(ev.CallEnded) == bob.of(ev.CallEnded) == []
    assert alice.ua.call_state(call_id) is bob.ua.call_state(bob_call) is CallState.CONFIRMED


def test_the_refreshed_side_ends_the_call_when_no_refresh_comes() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    vanished = True
    net.drop = lambda data, dest: vanished and dest == bob.address  # alice's side goes silent
    net.run_until(1800 - 32 - 0.1)  # §10: min(32, 1800/3) before the session expires
    assert bob.of(ev.CallEnded) == []
    net.run_until(1800 - 32 + 0.1)
    (ended,) = bob.of(ev.CallEnded)
    assert (ended.call_id, ended.by, ended.status) == (bob_call, "timeout", 408)
    assert ended.reason == "session expired: no session refresh within 1800 s"
    byes = [m for m, dest in net.undeliverable if m.startswith(b"BYE ")]
    assert byes == [] and any(m.startswith(b"BYE ") for m in alice.received)
    assert bob.ua.call_state(bob_call) in (CallState.TERMINATING, CallState.TERMINATED)
    # alice, the refresher whose refresh got no answer, ends hers too before expiry
    assert alice.of(ev.CallEnded) and alice.ua.call_state(call_id) is not CallState.CONFIRMED


def test_a_callee_without_timers_leaves_the_caller_to_refresh_nothing() -> None:
    net, alice, bob = pair(session_expires_s=0)
    call_up(net, alice, bob)
    (ok,) = answers(alice, "INVITE")
    assert ok.headers.get("Session-Expires") is None and ok.headers.get("Require") is None
    net.run_until(4000.0)
    assert requests(bob, "UPDATE") == [] and bob.of(ev.CallEnded) == []


def test_a_caller_without_timers_gets_the_callee_as_refresher() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1, session_expires_s=0)
    bob = make_peer("bob", "127.0.0.2", seed=2, session_expires_s=600)
    net = Network(alice, bob)
    call_up(net, alice, bob)
    (invite,) = requests(bob, "INVITE")
    assert invite.headers.get("Session-Expires") is None
    (ok,) = answers(alice, "INVITE")
    # §9: the caller cannot refresh, so we do; no Require: timer for a caller that lacks it
    assert ok.headers.get("Session-Expires") == "600;refresher=uas"
    assert ok.headers.get("Require") is None
    net.run_until(301.0)
    (update,) = requests(alice, "UPDATE")
    assert update.headers.get("Session-Expires") == "600;refresher=uac"
    assert answers(bob, "UPDATE")[0].status == 200


def test_422_makes_the_caller_ask_again_with_the_larger_min_se() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1, session_expires_s=120)
    bob = make_peer("bob", "127.0.0.2", seed=2, timers=TimerConfig(min_se=300))
    net = Network(alice, bob)
    call_id, _ = call_up(net, alice, bob)
    first, second = requests(bob, "INVITE")
    assert first.headers.get("Session-Expires") == "120"
    (too_small,) = answers(alice, "INVITE", 422)
    assert too_small.headers.get("Min-SE") == "300"
    # §7.4: the same call, a new CSeq, the 422's Min-SE as interval and as Min-SE
    assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
    assert (second.headers.get("Session-Expires"), second.headers.get("Min-SE")) == ("300", "300")
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED
    assert answers(alice, "INVITE")[0].headers.get("Session-Expires") == "300;refresher=uac"


def test_the_refresher_uses_reinvite_when_the_peer_does_not_allow_update() -> None:
    net, alice, bob = pair()
    call_id, _ = call_up(net, alice, bob)
    alice.ua._calls.require(call_id).session.peer_allows_update = False  # a peer without UPDATE
    net.run_until(901.0)
    assert requests(bob, "UPDATE") == []
    _, refresh = requests(bob, "INVITE")
    assert refresh.headers.get("Session-Expires") == "1800;refresher=uac"
    assert refresh.body == OFFER  # the same SDP: nothing changes (RFC 3264 §8)
    assert bob.of(ev.ReofferReceived) == [ev.ReofferReceived(call_id=refresh.call_id, sdp=OFFER)]


def test_a_refresh_answered_481_ends_the_call() -> None:
    net, alice, bob = pair()
    _call_id, bob_call = call_up(net, alice, bob)
    bob.ua._calls.remove(bob.ua._calls.require(bob_call))  # bob forgot the dialog
    net.run_until(901.0)
    assert answers(alice, "UPDATE", 481)
    (ended,) = alice.of(ev.CallEnded)
    assert ended.reason.startswith("session refresh failed: 481")


# --- against raw requests -------------------------------------------------------------------------
def raw_invite(extra: str, call: str = "st1") -> bytes:
    return (
        "INVITE sip:bob@127.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{call};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.2>\r\n"
        f"Call-ID: {call}@127.0.0.1\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@127.0.0.1:5060>\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def final(peer: Peer) -> SipResponse:
    out = [parse_message(d) for d, _ in peer.ua.messages_to_send()]
    (resp,) = [m for m in out if isinstance(m, SipResponse) and m.status >= 200]
    return resp


@pytest.mark.parametrize(
    ("extra", "status", "header"),
    [
        ("Supported: timer\r\nSession-Expires: 30\r\n", 422, ("Min-SE", "90")),
        ("Session-Expires: abc\r\n", 400, None),
        ("Session-Expires: 1800;refresher=me\r\n", 400, None),
        ("Session-Expires: 1800\r\nMin-SE: x\r\n", 400, None),
    ],
)
def test_bad_or_too_small_session_expires(
    extra: str, status: int, header: tuple[str, str] | None
) -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    bob.events += bob.ua.receive_message(raw_invite(extra), ALICE_ADDR, 0.0)
    resp = final(bob)
    assert resp.status == status
    if header is not None:
        assert resp.headers.get(header[0]) == header[1]
    assert bob.events == [] and bob.ua.active_calls() == []


def test_an_account_without_timers_refuses_an_invite_that_requires_them() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2, session_expires_s=0)
    extra = "Require: timer\r\nSession-Expires: 1800\r\n"
    bob.events += bob.ua.receive_message(raw_invite(extra), ALICE_ADDR, 0.0)
    resp = final(bob)
    assert (resp.status, resp.headers.get("Unsupported")) == (420, "timer")
    assert bob.events == []


def test_too_small_from_a_caller_without_timers_is_raised_not_refused() -> None:
    """§9: a Session-Expires a proxy added for a caller without the extension is made larger."""
    bob = make_peer("bob", "127.0.0.2", seed=2)
    bob.events += bob.ua.receive_message(raw_invite("Session-Expires: 30\r\n"), ALICE_ADDR, 0.0)
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.messages_to_send()
    bob.ua.answer(incoming.call_id, sdp=ANSWER, now=0.0)
    assert final(bob).headers.get("Session-Expires") == "90;refresher=uas"


# --- pieces ---------------------------------------------------------------------------------------
def test_session_expires_parse_and_format() -> None:
    assert SessionExpires.parse("1800 ; refresher=UAS") == SessionExpires(1800, "uas")
    assert str(SessionExpires(90, "uac")) == "90;refresher=uac" and str(SessionExpires(90)) == "90"
    with pytest.raises(RemoteProtocolError):
        SessionExpires.parse("")


def test_uas_agreement_rules() -> None:
    def req(extra: str) -> SipRequest:
        msg = parse_message(raw_invite(extra))
        assert isinstance(msg, SipRequest)
        return msg

    supports = "Supported: timer\r\n"
    assert uas_agreement(req(""), wanted_s=0, min_se_s=90) is None
    assert uas_agreement(req(""), wanted_s=1800, min_se_s=90) == Agreement(1800, "uas")
    assert uas_agreement(req(supports), wanted_s=1800, min_se_s=90) == Agreement(1800, "uac")
    # we may shorten theirs (not below their Min-SE), never lengthen it
    asked = supports + "Session-Expires: 4000\r\nMin-SE: 2000\r\n"
    assert uas_agreement(req(asked), wanted_s=1800, min_se_s=90) == Agreement(2000, "uac")
    asked = supports + "Session-Expires: 600;refresher=uas\r\n"
    assert uas_agreement(req(asked), wanted_s=1800, min_se_s=90) == Agreement(600, "uas")
    asked = supports + "Session-Expires: 60\r\n"
    assert uas_agreement(req(asked), wanted_s=1800, min_se_s=90) == TooSmall(90)


def test_expiry_margin() -> None:
    assert expiry_margin_s(1800) == 32.0 and expiry_margin_s(90) == 30.0
    assert expiry_margin_s(6) == 2.0


def test_every_session_timer_state_input_pair_transitions_or_raises() -> None:
    for state, inp in itertools.product(SessionTimerState, SessionTimerInput):
        timer = SessionTimer(state=state)
        if (state, inp) in SESSION_TIMER_TRANSITIONS:
            assert timer.apply(inp) is SESSION_TIMER_TRANSITIONS[(state, inp)]
        else:
            with pytest.raises(LocalProtocolError):
                timer.apply(inp)


def test_min_se_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="min_se"):
        TimerConfig(min_se=0)


def test_a_hold_reinvite_refreshes_the_session_and_keeps_the_refresher() -> None:
    net, alice, bob = pair()
    call_id, _ = call_up(net, alice, bob)
    net.run_until(600.0)
    alice.ua.reoffer(
        call_id, sdp=OFFER.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendonly\r\n"), now=net.now
    )
    net.flush()
    (_, hold) = requests(bob, "INVITE")
    assert hold.headers.get("Session-Expires") == "1800;refresher=uac"
    bob.ua.answer_reoffer(bob.of(ev.ReofferReceived)[0].call_id, sdp=ANSWER, now=net.now)
    net.flush()
    net.run_until(1499.0)  # the interval starts again at 600: no refresh at 900 or 1200
    assert requests(bob, "UPDATE") == []
    net.run_until(1501.0)
    assert len(requests(bob, "UPDATE")) == 1


def test_a_refresh_refused_422_is_sent_again_with_the_larger_interval() -> None:
    net, alice, bob = pair()
    call_id, _ = call_up(net, alice, bob)
    bob.ua._core._timers = TimerConfig(min_se=2400)  # bob now wants longer sessions
    net.run_until(901.0)
    first, second = requests(bob, "UPDATE")
    assert answers(alice, "UPDATE", 422)[0].headers.get("Min-SE") == "2400"
    assert first.headers.get("Session-Expires") == "1800;refresher=uac"
    assert second.headers.get("Session-Expires") == "2400;refresher=uac"
    assert answers(alice, "UPDATE")[0].headers.get("Session-Expires") == "2400;refresher=uac"
    net.run_until(900 + 1200 - 1)  # the next one at half the new interval
    assert len(requests(bob, "UPDATE")) == 2
    net.run_until(900 + 1200 + 1)
    assert len(requests(bob, "UPDATE")) == 3
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED


def test_a_refresh_reinvite_in_glare_gets_491_and_the_peers_reinvite_refreshes_instead() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    alice.ua._calls.require(call_id).session.peer_allows_update = False
    net.run_until(899.0)
    held_back = True
    net.drop = lambda data, dest: held_back and dest == alice.address and data.startswith(b"INVITE")
    bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)  # bob's re-INVITE is out, unanswered
    net.run_until(900.5)
    # alice's refresh (a re-INVITE: no UPDATE allowed) crosses bob's: 491 (RFC 3261 §14.2)
    assert [r.status for r in messages(alice, "SIP/2.0 491")] == [491]
    assert alice.ua._calls.require(call_id).session.state is SessionTimerState.WE_REFRESH
    held_back = False
    net.run_until(902.6)  # bob's re-INVITE, retransmitted at 902.5, gets through
    (theirs,) = requests(alice, "INVITE")
    # bob's re-INVITE is a refresh as well (§7.4): alice stays the refresher ("uas" of it)
    assert theirs.headers.get("Session-Expires") == "1800;refresher=uas"
    alice.ua.answer_reoffer(call_id, sdp=OFFER, now=net.now)
    net.flush()
    (ok,) = answers(bob, "INVITE")
    assert ok.headers.get("Session-Expires") == "1800;refresher=uas"
    # so the retry after the 491 is not needed: the next refresh is half an interval from now
    net.run_until(902.6 + 899)
    assert requests(bob, "UPDATE") == [] and len(requests(bob, "INVITE")) == 2
    net.run_until(902.6 + 901)
    assert len(requests(bob, "UPDATE")) == 1  # bob's Allow (in its re-INVITE) lists UPDATE
    assert alice.ua.call_state(call_id) is CallState.CONFIRMED


def test_a_refresh_refused_491_goes_again_after_a_random_wait() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    alice.ua._calls.require(call_id).session.peer_allows_update = False
    net.run_until(899.0)
    # bob's re-INVITE never reaches alice: bob stays "offer sent" until its Timer B (32 s)
    net.drop = lambda data, dest: dest == alice.address and data.startswith(b"INVITE")
    bob.ua.reoffer(bob_call, sdp=ANSWER, now=net.now)
    net.run_until(930.0)
    refused = messages(alice, "SIP/2.0 491")
    # a new refresh each 2.1-4 s (RFC 3261 §14.1's wait for the Call-ID's owner), each refused
    assert 7 <= len(refused) <= 15
    assert len({r.cseq.seq for r in refused}) == len(refused)
    assert alice.of(ev.CallEnded) == []
    net.run_until(940.0)  # bob's re-INVITE timed out: bob ends the call (RFC 3261 §14.1)
    assert [e.reason for e in alice.of(ev.CallEnded)] == ["remote hung up"]


def test_the_agreed_interval_is_told_for_each_side() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    assert alice.ua.session_interval(call_id) == bob.ua.session_interval(bob_call) == 1800
    net2, carol, dave = pair(session_expires_s=0)
    call_id, dave_call = call_up(net2, carol, dave)
    assert (
        carol.ua.session_interval(call_id) is None and dave.ua.session_interval(dave_call) is None
    )
