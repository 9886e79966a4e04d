"""SIP transactions (RFC 3261 §17, RFC 6026) driven message by message; time moves by argument."""

from __future__ import annotations

import pytest

from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError, RemoteProtocolError
from softphone.sip.message import Headers, SipMessage, SipRequest, SipResponse, reason_phrase
from softphone.sip.timers import Timer, TimerConfig
from softphone.sip.transaction import (
    AckNotReceived,
    AckReceived,
    ClientTransaction,
    ResponseReceived,
    ServerTransaction,
    State,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    client_key,
    server_key,
)
from softphone.sip.uri import SipUri

UDP = Address("udp", "127.0.0.1", 5080)
TCP = Address("tcp", "127.0.0.1", 5080)
BRANCH = "z9hG4bK74bf9"
VIA = f"SIP/2.0/UDP 127.0.0.1:5070;branch={BRANCH};rport"
TIMERS = TimerConfig()
Transaction = ClientTransaction | ServerTransaction


def make_request(
    method: str,
    *,
    branch: str = BRANCH,
    seq: int = 1,
    routes: tuple[str, ...] = (),
    to: str = "<sip:bob@127.0.0.1>",
) -> SipRequest:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport"),
            ("Via", "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKproxy"),
            ("Max-Forwards", "70"),
            *(("Route", route) for route in routes),
            ("From", '"Alice" <sip:alice@127.0.0.1>;tag=a1'),
            ("To", to),
            ("Call-ID", "c1@127.0.0.1"),
            ("CSeq", f"{seq} {method}"),
            ("Contact", "<sip:alice@127.0.0.1:5070>"),
        ]
    )
    return SipRequest(method, SipUri.parse("sip:bob@127.0.0.1:5080"), headers=headers)


def make_response(request: SipRequest, status: int, *, to_tag: str = "b1") -> SipResponse:
    """§8.2.6.2: Via, From, Call-ID and CSeq copied; To gets our tag."""
    headers = Headers(
        [(name, value) for name, value in request.headers if name in ("Via", "From")]
        + [
            ("To", f"{request.headers.get('To')};tag={to_tag}"),
            ("Call-ID", request.call_id),
            ("CSeq", str(request.cseq)),
        ]
    )
    reason = reason_phrase(status) if 100 <= status <= 699 else "Out Of Range"
    return SipResponse(status, reason, headers, b"")


def walk(
    tx: Transaction, *, until: float = float("inf")
) -> tuple[list[float], list[TransactionEvent], float]:
    """Fire timers one deadline at a time up to ``until``: (send times, events, last now)."""
    sent_at = [0.0] * len(tx.messages_to_send())
    events: list[TransactionEvent] = []
    now = 0.0
    while (at := tx.get_timer()) is not None and at <= until:
        now = at
        events += tx.handle_timer(now)
        sent_at += [now] * len(tx.messages_to_send())
    return sent_at, events, now


def sent(tx: Transaction) -> list[SipMessage]:
    out = tx.messages_to_send()
    peer = tx.dest if isinstance(tx, ClientTransaction) else tx.source
    assert all(dest == peer for _, dest in out)  # retransmissions go to the same place
    return [message for message, _ in out]


# --- non-INVITE client (§17.1.2) -----------------------------------------------------------------
def test_non_invite_over_udp_sends_11_copies_and_times_out_at_32s() -> None:
    request = make_request("OPTIONS")
    tx = ClientTransaction(request, UDP, timers=TIMERS, now=0.0)
    first = tx.messages_to_send()
    assert first == [(request, UDP)]  # starting the transaction sends the request
    sent_at, events, now = walk(tx)
    sent_at = [0.0] * len(first) + sent_at
    # 1 + Timer E at 0.5, 1.5, 3.5, 7.5, then every T2=4 s up to 31.5
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0
    assert events == [
        TransactionTimedOut(branch=BRANCH, method="OPTIONS"),
        TransactionTerminated(branch=BRANCH, method="OPTIONS"),
    ]
    assert tx.state is State.TERMINATED and tx.get_timer() is None


def test_non_invite_over_tcp_sends_once_and_times_out_at_32s() -> None:
    tx = ClientTransaction(make_request("OPTIONS"), TCP, timers=TIMERS, now=0.0)
    sent_at, events, now = walk(tx)
    assert sent_at == [0.0]
    assert now == 32.0
    assert events[0] == TransactionTimedOut(branch=BRANCH, method="OPTIONS")


def test_non_invite_provisional_makes_timer_e_t2() -> None:
    request = make_request("OPTIONS")
    tx = ClientTransaction(request, UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    trying = make_response(request, 100)
    assert tx.receive_response(trying, 0.2) == [ResponseReceived(response=trying)]
    assert tx.state is State.PROCEEDING
    sent_at, _, _ = walk(tx, until=13.0)
    # §17.1.2.2: E keeps its deadline (0.5), then is reset to T2 each time in Proceeding.
    assert sent_at == [0.5, 4.5, 8.5, 12.5]


def test_non_invite_final_completes_absorbs_retransmissions_then_timer_k() -> None:
    request = make_request("OPTIONS")
    tx = ClientTransaction(request, UDP, timers=TIMERS, now=0.0)
    ok = make_response(request, 200)
    assert tx.receive_response(ok, 1.0) == [ResponseReceived(response=ok)]
    assert tx.state is State.COMPLETED
    assert tx.deadline(Timer.E) is None and tx.deadline(Timer.F) is None
    assert tx.get_timer() == 1.0 + 5.0  # Timer K = T4
    assert tx.receive_response(make_response(request, 200), 2.0) == []  # absorbed
    assert tx.handle_timer(6.0) == [TransactionTerminated(branch=BRANCH, method="OPTIONS")]


def test_non_invite_final_over_tcp_terminates_at_once() -> None:
    request = make_request("BYE")
    tx = ClientTransaction(request, TCP, timers=TIMERS, now=0.0)
    ok = make_response(request, 200)
    assert tx.receive_response(ok, 1.0) == [
        ResponseReceived(response=ok),
        TransactionTerminated(branch=BRANCH, method="BYE"),
    ]
    assert tx.state is State.TERMINATED and tx.get_timer() is None


# --- INVITE client (§17.1.1, RFC 6026 §7.2) ------------------------------------------------------
def test_invite_timer_a_doubles_without_cap_and_b_times_out() -> None:
    tx = ClientTransaction(make_request("INVITE"), UDP, timers=TIMERS, now=0.0)
    sent_at, events, now = walk(tx)
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A = 0.5, 1, 2, 4, 8, 16
    assert now == 32.0
    assert events == [
        TransactionTimedOut(branch=BRANCH, method="INVITE"),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]


def test_invite_over_tcp_has_no_timer_a() -> None:
    tx = ClientTransaction(make_request("INVITE"), TCP, timers=TIMERS, now=0.0)
    assert tx.deadline(Timer.A) is None and tx.deadline(Timer.B) == 32.0
    assert walk(tx)[0] == [0.0]


def test_invite_provisional_stops_retransmission() -> None:
    request = make_request("INVITE")
    tx = ClientTransaction(request, UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    tx.handle_timer(0.5)
    assert len(tx.messages_to_send()) == 1
    ringing = make_response(request, 180)
    assert tx.receive_response(ringing, 0.7) == [ResponseReceived(response=ringing)]
    assert tx.state is State.PROCEEDING
    assert tx.get_timer() is None  # A and B stop; Proceeding waits for the final response
    again = make_response(request, 180)
    assert tx.receive_response(again, 0.8) == [ResponseReceived(response=again)]
    assert tx.messages_to_send() == []


def test_invite_non_2xx_builds_the_ack() -> None:
    routes = ("<sip:p1.test;lr>", "<sip:p2.test;lr>")
    invite = make_request("INVITE", seq=7, routes=routes)
    tx = ClientTransaction(invite, UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    busy = make_response(invite, 486, to_tag="bz")
    assert tx.receive_response(busy, 1.0) == [ResponseReceived(response=busy)]
    assert tx.state is State.COMPLETED
    [(ack, dest)] = tx.messages_to_send()
    assert dest == UDP  # §17.1.1.3: same address, port and transport as the INVITE
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert list(ack.headers) == [
        ("Via", VIA),  # only the top Via
        ("Max-Forwards", "70"),
        ("Route", "<sip:p1.test;lr>"),
        ("Route", "<sip:p2.test;lr>"),
        ("From", '"Alice" <sip:alice@127.0.0.1>;tag=a1'),
        ("To", "<sip:bob@127.0.0.1>;tag=bz"),
        ("Call-ID", "c1@127.0.0.1"),
        ("CSeq", "7 ACK"),
    ]
    assert ack.body == b""
    assert bytes(ack).startswith(b"ACK sip:bob@127.0.0.1:5080 SIP/2.0\r\n")


def test_invite_retransmitted_final_resends_ack_then_timer_d() -> None:
    invite = make_request("INVITE")
    tx = ClientTransaction(invite, UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    tx.receive_response(make_response(invite, 486), 1.0)
    [(ack, _)] = tx.messages_to_send()
    assert tx.deadline(Timer.D) == 1.0 + 32.0
    assert tx.receive_response(make_response(invite, 486), 2.0) == []  # absorbed ...
    assert tx.messages_to_send() == [(ack, UDP)]  # ... and ACKed again
    assert tx.receive_response(make_response(invite, 200), 2.5) == []  # stray: dropped
    assert tx.handle_timer(32.9) == []
    assert tx.handle_timer(33.0) == [TransactionTerminated(branch=BRANCH, method="INVITE")]


def test_invite_non_2xx_over_tcp_timer_d_is_zero() -> None:
    invite = make_request("INVITE")
    tx = ClientTransaction(invite, TCP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    busy = make_response(invite, 603)
    assert tx.receive_response(busy, 1.0) == [
        ResponseReceived(response=busy),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]
    assert [m.method for m, _ in tx.messages_to_send() if isinstance(m, SipRequest)] == ["ACK"]


def test_invite_2xx_accepted_passes_retransmissions_until_timer_m() -> None:
    invite = make_request("INVITE")
    tx = ClientTransaction(invite, UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    ok = make_response(invite, 200)
    assert tx.receive_response(ok, 1.0) == [ResponseReceived(response=ok)]
    assert tx.state is State.ACCEPTED
    assert tx.messages_to_send() == []  # the ACK for a 2xx is the TU's (§13.2.2.4)
    assert tx.get_timer() == 1.0 + 32.0  # Timer M = 64*T1, A and B stopped
    ok_again = make_response(invite, 200)
    assert tx.receive_response(ok_again, 2.0) == [ResponseReceived(response=ok_again)]
    forked = make_response(invite, 200, to_tag="other")
    assert tx.receive_response(forked, 3.0) == [ResponseReceived(response=forked)]
    assert tx.handle_timer(33.0) == [TransactionTerminated(branch=BRANCH, method="INVITE")]


# --- INVITE server (§17.2.1, RFC 6026 §7.1) ------------------------------------------------------
def test_server_invite_retransmission_resends_last_provisional() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    assert tx.state is State.PROCEEDING and tx.get_timer() is None
    assert tx.receive_request(make_request("INVITE"), 0.1) == []
    assert tx.messages_to_send() == []  # nothing to resend yet
    trying, ringing = make_response(invite, 100), make_response(invite, 180)
    tx.send_response(trying, 0.2)
    tx.send_response(ringing, 0.3)
    assert sent(tx) == [trying, ringing]
    assert tx.receive_request(make_request("INVITE"), 0.6) == []
    assert sent(tx) == [ringing]


def test_server_invite_486_retransmitted_by_g_capped_at_t2_then_h() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    busy = make_response(invite, 486)
    assert tx.send_response(busy, 0.0) == []
    assert tx.state is State.COMPLETED
    sent_at, events, now = walk(tx)
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0  # Timer H = 64*T1
    assert events == [
        AckNotReceived(branch=BRANCH),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]


def test_server_invite_retransmission_in_completed_resends_final() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    busy = make_response(invite, 486)
    tx.send_response(busy, 0.0)
    tx.messages_to_send()
    assert tx.receive_request(make_request("INVITE"), 0.2) == []
    assert sent(tx) == [busy]
    with pytest.raises(LocalProtocolError):  # a provisional after the final
        tx.send_response(make_response(invite, 180), 0.3)


def test_server_invite_ack_confirms_then_timer_i() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    tx.send_response(make_response(invite, 486), 0.0)
    tx.messages_to_send()
    ack = make_request("ACK", to="<sip:bob@127.0.0.1>;tag=b1")
    assert tx.receive_request(ack, 1.0) == []  # the ACK for a non-2xx stays in the transaction
    assert tx.state is State.CONFIRMED
    assert tx.deadline(Timer.G) is None and tx.deadline(Timer.H) is None
    assert tx.get_timer() == 1.0 + 5.0  # Timer I = T4
    assert tx.receive_request(ack, 2.0) == []  # retransmitted ACK absorbed
    assert tx.messages_to_send() == []
    assert tx.handle_timer(6.0) == [TransactionTerminated(branch=BRANCH, method="INVITE")]


def test_server_invite_486_over_tcp_no_g_and_ack_terminates() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, TCP, timers=TIMERS, now=0.0)
    tx.send_response(make_response(invite, 486), 0.0)
    assert tx.deadline(Timer.G) is None and tx.deadline(Timer.H) == 32.0
    events = tx.receive_request(make_request("ACK"), 1.0)
    assert events == [TransactionTerminated(branch=BRANCH, method="INVITE")]  # Timer I = 0


@pytest.mark.parametrize("peer", [UDP, TCP], ids=["udp", "tcp"])
def test_server_invite_2xx_retransmitted_until_ack(peer: Address) -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, peer, timers=TIMERS, now=0.0)
    ok = make_response(invite, 200)
    assert tx.send_response(ok, 0.0) == []
    assert tx.state is State.ACCEPTED
    sent_at, events, _ = walk(tx, until=4.0)
    # §13.3.1.4 folded into Accepted: T1, 2T1, ... on every transport (end-to-end reliability)
    assert sent_at == [0.0, 0.5, 1.5, 3.5] and events == []
    ack = make_request("ACK", branch="z9hG4bKack2xx", to="<sip:bob@127.0.0.1>;tag=b1")
    assert tx.matches(ack)  # its own branch, matched by Call-ID, From tag and CSeq number
    assert tx.receive_request(ack, 4.0) == [AckReceived(request=ack)]
    assert tx.state is State.ACCEPTED and tx.deadline(Timer.G) is None
    assert tx.receive_request(make_request("INVITE"), 5.0) == []  # absorbed (RFC 6026 §7.1)
    assert tx.messages_to_send() == []
    assert tx.handle_timer(32.0) == [TransactionTerminated(branch=BRANCH, method="INVITE")]


def test_server_invite_2xx_without_ack_until_timer_l() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    tx.send_response(make_response(invite, 200), 0.0)
    sent_at, events, now = walk(tx)
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0
    assert events == [
        AckNotReceived(branch=BRANCH),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]


def test_server_invite_second_2xx_from_tu_replaces_the_retransmitted_one() -> None:
    invite = make_request("INVITE")
    tx = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    first, second = make_response(invite, 200), make_response(invite, 200)
    tx.send_response(first, 0.0)
    tx.send_response(second, 0.2)
    assert sent(tx) == [first, second]
    tx.handle_timer(0.5)
    assert sent(tx) == [second]


def test_ack_for_another_invite_does_not_match() -> None:
    tx = ServerTransaction(make_request("INVITE", seq=1), UDP, timers=TIMERS, now=0.0)
    other = make_request("ACK", branch="z9hG4bKx", seq=2)
    assert not tx.matches(other)
    with pytest.raises(LocalProtocolError):
        tx.receive_request(other, 0.0)


# --- non-INVITE server (§17.2.2) -----------------------------------------------------------------
def test_server_non_invite_timer_j_and_retransmissions() -> None:
    request = make_request("OPTIONS")
    tx = ServerTransaction(request, UDP, timers=TIMERS, now=0.0)
    assert (tx.state, tx.get_timer()) == (State.TRYING, None)
    assert tx.receive_request(make_request("OPTIONS"), 0.1) == []
    assert tx.messages_to_send() == []  # Trying: nothing to resend, request discarded
    ok = make_response(request, 200)
    assert tx.send_response(ok, 1.0) == []
    assert tx.state is State.COMPLETED and tx.get_timer() == 1.0 + 32.0  # J = 64*T1
    assert sent(tx) == [ok]
    assert tx.receive_request(make_request("OPTIONS"), 2.0) == []
    assert sent(tx) == [ok]
    assert tx.handle_timer(33.0) == [TransactionTerminated(branch=BRANCH, method="OPTIONS")]


def test_server_non_invite_provisional_resent_on_retransmission() -> None:
    request = make_request("REGISTER")
    tx = ServerTransaction(request, UDP, timers=TIMERS, now=0.0)
    trying = make_response(request, 100)
    tx.send_response(trying, 0.0)
    assert tx.state is State.PROCEEDING
    tx.messages_to_send()
    tx.receive_request(make_request("REGISTER"), 0.5)
    assert sent(tx) == [trying]


def test_server_non_invite_over_tcp_timer_j_is_zero() -> None:
    request = make_request("BYE")
    tx = ServerTransaction(request, TCP, timers=TIMERS, now=0.0)
    assert tx.send_response(make_response(request, 200), 1.0) == [
        TransactionTerminated(branch=BRANCH, method="BYE")
    ]
    assert tx.get_timer() is None


# --- configuration, errors, keys -----------------------------------------------------------------
def test_custom_t1_t2_t4_scale_every_timer() -> None:
    timers = TimerConfig(t1=0.125, t2=1.0, t4=2.0)  # binary fractions: exact arithmetic
    invite = ClientTransaction(make_request("INVITE"), UDP, timers=timers, now=0.0)
    sent_at, _, now = walk(invite)
    assert sent_at == [0.0, 0.125, 0.375, 0.875, 1.875, 3.875, 7.875] and now == 8.0
    options = ClientTransaction(make_request("OPTIONS"), UDP, timers=timers, now=0.0)
    sent_at, _, now = walk(options)
    assert sent_at == [0.0, 0.125, 0.375, 0.875, 1.875, 2.875, 3.875, 4.875, 5.875, 6.875, 7.875]
    assert now == 8.0
    request = make_request("INVITE")
    server = ServerTransaction(request, UDP, timers=timers, now=0.0)
    server.send_response(make_response(request, 486), 0.0)
    assert server.deadline(Timer.G) == 0.125 and server.deadline(Timer.H) == 8.0
    server.receive_request(make_request("ACK"), 1.0)
    assert server.get_timer() == 3.0  # Timer I = T4
    assert timers.timer_d == 32.0  # D is a fixed 32 s floor, not a multiple of T1


def test_transport_error_terminates_client() -> None:
    tx = ClientTransaction(make_request("INVITE"), UDP, timers=TIMERS, now=0.0)
    assert tx.transport_error("ICMP port unreachable", 0.1) == [
        TransportFailed(branch=BRANCH, method="INVITE", reason="ICMP port unreachable"),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]
    assert tx.state is State.TERMINATED and tx.get_timer() is None


def test_transport_error_terminates_server() -> None:
    request = make_request("INVITE")
    tx = ServerTransaction(request, UDP, timers=TIMERS, now=0.0)
    tx.send_response(make_response(request, 500), 0.0)
    assert tx.transport_error("connection refused", 0.5) == [
        TransportFailed(branch=BRANCH, method="INVITE", reason="connection refused"),
        TransactionTerminated(branch=BRANCH, method="INVITE"),
    ]
    assert tx.get_timer() is None


def test_late_handle_timer_does_not_burst() -> None:
    tx = ClientTransaction(make_request("OPTIONS"), UDP, timers=TIMERS, now=0.0)
    tx.messages_to_send()
    assert tx.handle_timer(10.0) == []
    assert len(tx.messages_to_send()) == 1  # one retransmission, re-armed from now
    assert tx.deadline(Timer.E) == 11.0


def test_keys() -> None:
    invite = make_request("INVITE")
    cancel = make_request("CANCEL")
    ack = make_request("ACK")
    assert server_key(invite) == (BRANCH, "127.0.0.1:5070", "INVITE")
    assert server_key(ack) == server_key(invite)  # §17.2.3: ACK maps to INVITE
    assert server_key(cancel) == (BRANCH, "127.0.0.1:5070", "CANCEL")
    client = ClientTransaction(invite, UDP, timers=TIMERS, now=0.0)
    assert client.key == (BRANCH, "INVITE")
    assert client_key(make_response(invite, 180)) == client.key
    assert client_key(make_response(cancel, 200)) == (BRANCH, "CANCEL")
    with pytest.raises(LocalProtocolError):  # a CANCEL's response is not the INVITE's
        client.receive_response(make_response(cancel, 200), 0.0)
    server = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    assert server.key == server_key(invite)


def test_rfc2543_branches_and_acks_cannot_start_transactions() -> None:
    old = make_request("INVITE", branch="1234")
    with pytest.raises(LocalProtocolError):
        ClientTransaction(old, UDP, timers=TIMERS, now=0.0)
    with pytest.raises(RemoteProtocolError):
        server_key(old)
    with pytest.raises(RemoteProtocolError):
        ServerTransaction(old, UDP, timers=TIMERS, now=0.0)
    with pytest.raises(LocalProtocolError):
        ClientTransaction(make_request("ACK"), UDP, timers=TIMERS, now=0.0)
    with pytest.raises(LocalProtocolError):
        ServerTransaction(make_request("ACK"), UDP, timers=TIMERS, now=0.0)


def test_bad_status_codes() -> None:
    invite = make_request("INVITE")
    client = ClientTransaction(invite, UDP, timers=TIMERS, now=0.0)
    with pytest.raises(RemoteProtocolError):
        client.receive_response(make_response(invite, 99), 0.0)
    server = ServerTransaction(invite, UDP, timers=TIMERS, now=0.0)
    with pytest.raises(LocalProtocolError):
        server.send_response(make_response(invite, 700), 0.0)
    with pytest.raises(LocalProtocolError):  # a response to another method
        server.send_response(make_response(make_request("CANCEL"), 200), 0.0)
