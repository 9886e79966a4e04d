"""RFC 3263 §4.3 fail-over, sans-IO: the order targets are tried in (RFC 2782 priority and
weight with a seeded RNG), dead targets skipped for their hold-down and used again after it,
503 with Retry-After, and REGISTER / INVITE moving to the next server with the clock walked by
argument."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sip_support import Registrar

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.failover import HOLD_DOWN_S, TargetHealth, retry_after_s
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.timers import TimerConfig
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri
from softphone.transport.resolver import order_srv

A = Address("udp", "203.0.113.10", 5060)
B = Address("udp", "203.0.113.11", 5060)
C = Address("udp", "2001:db8::12", 5060)
TIMERS = TimerConfig()


# --- the order (RFC 2782) --------------------------------------------------------------------------
def test_srv_order_is_priority_first_then_weight_proportional() -> None:
    records = [(20, 0, 5060, "backup"), (10, 90, 5060, "big"), (10, 10, 5060, "small")]
    firsts: Counter[str] = Counter()
    for seed in range(2000):
        ordered = order_srv(records, random.Random(seed))
        assert ordered[-1][3] == "backup"  # a higher priority value always comes last
        firsts[ordered[0][3]] += 1
    assert 0.85 < firsts["big"] / 2000 < 0.95  # weight 90 of 100
    assert order_srv(records, random.Random(7)) == order_srv(records, random.Random(7))


# --- TargetHealth ---------------------------------------------------------------------------------
def test_dead_target_is_skipped_until_its_hold_down_ends() -> None:
    health = TargetHealth()
    assert health.first((A, B, C), now=0.0) == A
    health.failed(A, now=10.0)
    assert health.first((A, B, C), now=10.0) == B
    assert health.next_after((A, B, C), tried=[A], now=10.0) == B
    assert health.next_after((A, B, C), tried=[A, B], now=10.0) == C
    assert health.next_after((A, B, C), tried=[A, B, C], now=10.0) is None
    assert health.first((A, B, C), now=10.0 + HOLD_DOWN_S - 0.1) == B
    assert health.first((A, B, C), now=10.0 + HOLD_DOWN_S) == A  # back after 5 minutes


def test_all_dead_tries_the_one_back_first() -> None:
    health = TargetHealth()
    health.failed(A, now=0.0)
    health.failed(B, now=0.0, hold_s=30.0)
    assert health.first((A, B), now=1.0) == B
    assert health.next_after((A, B), tried=[], now=1.0) is None


def test_retry_after_reads_delta_seconds_with_comment_and_params() -> None:
    def resp(value: str | None) -> SipResponse:
        headers = Headers()
        if value is not None:
            headers.add("Retry-After", value)
        return SipResponse(status=503, reason="Service Unavailable", headers=headers)

    assert retry_after_s(resp("120")) == 120.0
    assert retry_after_s(resp("18000 (in maintenance);duration=3600")) == 18000.0
    assert retry_after_s(resp("soon")) is None
    assert retry_after_s(resp(None)) is None
    assert retry_after_s(None) is None


# --- the user agent -------------------------------------------------------------------------------
def alice(targets: tuple[Address, ...] = (A, B, C)) -> UserAgent:
    acct = AccountConfig(
        name="alice",
        aor=SipUri(user="alice", host="lab.test"),
        username="alice",
        password="alicepw",
        registrar=SipUri(host="lab.test"),
        outbound=targets[0],
        targets=targets,
    )
    ua = UserAgent(accounts=[acct], rng=random.Random(3), timers=TIMERS)
    ua.add_listener(Address("udp", "192.0.2.1", 5060))
    return ua


def sent_to(ua: UserAgent) -> list[tuple[SipRequest, Address]]:
    out = []
    for data, dest in ua.messages_to_send():
        msg = parse_message(data)
        if isinstance(msg, SipRequest):
            out.append((msg, dest))
    return out


def walk_until_sent(ua: UserAgent, now: float, limit: float) -> tuple[float, list[ev.Event]]:
    """Fire timers until a request leaves for a server other than those it already went to."""
    events: list[ev.Event] = []
    while (at := ua.get_timer()) is not None and at <= limit:
        now = at
        events += ua.handle_timer(now)
        if any(isinstance(e, ev.ServerFailedOver) for e in events):
            return now, events
        ua.messages_to_send()  # retransmissions to the silent server
    return now, events


def test_register_times_out_and_moves_to_the_next_server_then_comes_back() -> None:
    ua = alice()
    ua.register("alice", now=0.0)
    [(first, dest)] = sent_to(ua)
    assert first.method == "REGISTER" and dest == A
    now, events = walk_until_sent(ua, 0.0, limit=100.0)
    assert now == TIMERS.timeout  # Timer F: 64*T1 (RFC 3261 §17.1.2.2)
    moved = [e for e in events if isinstance(e, ev.ServerFailedOver)]
    assert moved == [
        ev.ServerFailedOver(
            account="alice",
            method="REGISTER",
            call_id=None,
            failed="203.0.113.10:5060",
            trying="203.0.113.11:5060",
            transport="udp",
            why="did not answer",
            held_until=TIMERS.timeout + HOLD_DOWN_S,
        )
    ]
    assert not [e for e in events if isinstance(e, ev.RegistrationFailed)]
    [(again, dest)] = sent_to(ua)
    assert dest == B and again.call_id == first.call_id and again.cseq.seq == first.cseq.seq + 1
    assert again.top_via.branch != first.top_via.branch  # a new transaction (§4.3)
    # B answers through its challenge: registered there.
    registrar = Registrar()
    events = ua.receive_message(registrar.respond(bytes(again)), B, now)
    [(authed, dest)] = sent_to(ua)
    assert dest == B and authed.headers.get("Authorization")
    events = ua.receive_message(registrar.respond(bytes(authed)), B, now)
    assert [type(e) for e in events] == [ev.Registered]
    assert ua.registration_hop("alice") == B
    # The refresh, a minute before the hour: A's hold-down is long over, so it tries A again.
    while not (sent := sent_to(ua)):
        at = ua.get_timer()
        assert at is not None
        now = at
        ua.handle_timer(now)
    [(refresh, dest)] = sent
    assert now > TIMERS.timeout + HOLD_DOWN_S
    assert refresh.method == "REGISTER" and dest == A


def test_register_skips_a_held_down_server_from_the_start() -> None:
    ua = alice()
    ua.register("alice", now=0.0)
    sent_to(ua)
    walk_until_sent(ua, 0.0, limit=100.0)
    [(_, dest)] = sent_to(ua)
    assert dest == B
    ua.unregister("alice", now=40.0)
    sent_to(ua)
    ua.register("alice", now=50.0)  # a new round within A's hold-down: B first
    [(_, dest)] = sent_to(ua)
    assert dest == B


def test_503_with_retry_after_holds_the_server_down_that_long() -> None:
    ua = alice()
    ua.register("alice", now=0.0)
    [(req, dest)] = sent_to(ua)
    headers = Headers()
    headers.add("Via", req.headers.get_lines("Via")[0])
    for name in ("From", "To", "Call-ID", "CSeq"):
        headers.add(name, req.headers.get_lines(name)[0])
    headers.add("Retry-After", "60")
    busy = SipResponse(status=503, reason="Service Unavailable", headers=headers)
    events = ua.receive_message(bytes(busy), A, now=5.0)
    moved = [e for e in events if isinstance(e, ev.ServerFailedOver)]
    assert len(moved) == 1 and moved[0].held_until == 65.0
    assert moved[0].why == "answered 503 Service Unavailable"
    [(_, dest)] = sent_to(ua)
    assert dest == B


def test_last_server_failing_is_the_registrations_failure() -> None:
    ua = alice((A, B))
    ua.register("alice", now=0.0)
    sent_to(ua)
    now, events = walk_until_sent(ua, 0.0, limit=100.0)
    sent_to(ua)
    events = []
    while (at := ua.get_timer()) is not None and at <= now + TIMERS.timeout:
        events += ua.handle_timer(at)
        ua.messages_to_send()
    failed = [e for e in events if isinstance(e, ev.RegistrationFailed)]
    assert len(failed) == 1 and failed[0].status == 0
    assert not [e for e in events if isinstance(e, ev.ServerFailedOver)]


def test_transport_error_moves_the_invite_to_the_next_server() -> None:
    ua = alice()
    call_id = ua.invite("alice", SipUri(user="bob", host="lab.test"), sdp=b"v=0\r\n", now=0.0)
    [(invite, dest)] = sent_to(ua)
    assert dest == A
    events = ua.transport_error(A, "connection refused", now=0.1)
    moved = [e for e in events if isinstance(e, ev.ServerFailedOver)]
    assert moved and moved[0].method == "INVITE" and moved[0].call_id == call_id
    assert moved[0].why == "could not be reached (connection refused)"
    assert not [e for e in events if isinstance(e, ev.CallFailed)]
    [(again, dest)] = sent_to(ua)
    assert dest == B and again.method == "INVITE" and again.call_id == call_id
    assert again.body == invite.body and again.cseq.seq == invite.cseq.seq + 1
    # The next call skips A (held down) and goes to B at once.
    ua.invite("alice", SipUri(user="carol", host="lab.test"), sdp=None, now=1.0)
    [(_, dest)] = sent_to(ua)
    assert dest == B


@pytest.mark.parametrize("status", [486, 404])
def test_other_failures_do_not_fail_over(status: int) -> None:
    ua = alice()
    call_id = ua.invite("alice", SipUri(user="bob", host="lab.test"), sdp=None, now=0.0)
    [(invite, _)] = sent_to(ua)
    headers = Headers()
    headers.add("Via", invite.headers.get_lines("Via")[0])
    for name in ("From", "Call-ID", "CSeq"):
        headers.add(name, invite.headers.get_lines(name)[0])
    headers.add("To", invite.headers.get_lines("To")[0] + ";tag=x")
    events = ua.receive_message(
        bytes(SipResponse(status=status, reason="No", headers=headers)), A, now=0.5
    )
    assert [type(e) for e in events if not isinstance(e, ev.CallEnded)] == [ev.CallFailed]
    assert all(dest == A for _, dest in sent_to(ua))  # the ACK, to A; nothing to B
    assert call_id
