"""Every (state, input) pair of every transaction table, through the public API (as h2's
test_state_machines): a pair in the table ends in the table's state; a pair not in it is dropped
and logged (receive paths), raises LocalProtocolError (send path), or cannot occur at all (a
timer that is not running in that state, an input the transaction kind has no method for)."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Literal

import pytest

from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import Headers, SipRequest, SipResponse
from softphone.sip.timers import Timer, TimerConfig
from softphone.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    TABLES,
    TIMER_INPUTS,
    ClientTransaction,
    Input,
    Kind,
    ServerTransaction,
    State,
)
from softphone.sip.uri import SipUri

Side = Literal["client", "server"]
Transaction = ClientTransaction | ServerTransaction

UDP = Address("udp", "127.0.0.1", 5080)
BRANCH = "z9hG4bKtable1"
TIMERS = TimerConfig()
INPUT_TIMERS = {input_: timer for timer, input_ in TIMER_INPUTS.items()}
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 486: "Busy Here"}


def make_request(method: str, *, branch: str = BRANCH) -> SipRequest:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@127.0.0.1>;tag=a1"),
            ("To", "<sip:bob@127.0.0.1>"),
            ("Call-ID", "tables@127.0.0.1"),
            ("CSeq", f"1 {method}"),
        ]
    )
    return SipRequest(method, SipUri.parse("sip:bob@127.0.0.1:5080"), headers=headers)


def make_response(request: SipRequest, status: int) -> SipResponse:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch={BRANCH}"),
            ("From", "<sip:alice@127.0.0.1>;tag=a1"),
            ("To", "<sip:bob@127.0.0.1>;tag=b1"),
            ("Call-ID", "tables@127.0.0.1"),
            ("CSeq", f"1 {request.method}"),
        ]
    )
    return SipResponse(status, REASONS[status], headers, b"")


def method_of(kind: Kind) -> str:
    return "INVITE" if kind == "invite" else "OPTIONS"


def fire(tx: Transaction, timer: Timer) -> None:
    at = tx.deadline(timer)
    assert at is not None, f"Timer {timer.value} not running in {tx.state}"
    tx.handle_timer(at)


def drive_to(side: Side, kind: Kind, state: State) -> Transaction | None:
    """A fresh UDP transaction brought to ``state`` at now=0 (None: the kind has no such state)."""
    request = make_request(method_of(kind))
    if side == "client":
        client = ClientTransaction(request, UDP, timers=TIMERS, now=0.0)
        steps = {
            State.CALLING: [],
            State.TRYING: [],
            State.PROCEEDING: [180],
            State.COMPLETED: [486] if kind == "invite" else [200],
            State.ACCEPTED: [200],
        }
        if state is State.TERMINATED:
            fire(client, Timer.B if kind == "invite" else Timer.F)
        elif state in steps and client.state is not state:
            for status in steps[state]:
                client.receive_response(make_response(request, status), 0.0)
        return client if client.state is state else None
    server = ServerTransaction(request, UDP, timers=TIMERS, now=0.0)
    if state is State.PROCEEDING and kind == "non-invite":
        server.send_response(make_response(request, 100), 0.0)
    elif state in (State.COMPLETED, State.CONFIRMED, State.TERMINATED):
        server.send_response(make_response(request, 486 if kind == "invite" else 200), 0.0)
        if state is State.CONFIRMED and kind == "invite":
            server.receive_request(make_request("ACK"), 0.0)
        if state is State.TERMINATED:
            server.transport_error("gone", 0.0)
    elif state is State.ACCEPTED and kind == "invite":
        server.send_response(make_response(request, 200), 0.0)
    return server if server.state is state else None


def delivery(tx: Transaction, input_: Input) -> Callable[[], object] | None:
    """How the public API applies ``input_`` to ``tx``; None when there is no way to."""
    if input_ in INPUT_TIMERS:
        return functools.partial(fire, tx, INPUT_TIMERS[input_])
    if input_ is Input.TRANSPORT_ERROR:
        return functools.partial(tx.transport_error, "connection reset", 0.0)
    if isinstance(tx, ClientTransaction):
        statuses = {Input.RECV_1XX: 180, Input.RECV_2XX: 200, Input.RECV_300_699: 486}
        if input_ not in statuses:
            return None  # a client transaction never receives requests nor sends responses
        return functools.partial(
            tx.receive_response, make_response(tx.request, statuses[input_]), 0.0
        )
    if input_ is Input.RECV_REQUEST:
        return functools.partial(tx.receive_request, make_request(tx.method), 0.0)
    if input_ is Input.RECV_ACK:
        if tx.kind == "non-invite":
            return None  # an ACK only ever matches an INVITE server transaction (§17.2.3)
        return functools.partial(tx.receive_request, make_request("ACK"), 0.0)
    statuses = {Input.SEND_1XX: 180, Input.SEND_2XX: 200, Input.SEND_300_699: 486}
    if input_ not in statuses:
        return None  # a server transaction never receives responses
    return functools.partial(tx.send_response, make_response(tx.request, statuses[input_]), 0.0)


CASES = [
    pytest.param(side, kind, state, input_, id=f"{side}-{kind}-{state.name}-{input_.name}")
    for (side, kind) in TABLES
    for state, input_ in itertools.product(State, Input)
]


@pytest.mark.parametrize(("side", "kind", "state", "input_"), CASES)
def test_every_state_input_pair(
    side: Side, kind: Kind, state: State, input_: Input, caplog: pytest.LogCaptureFixture
) -> None:
    table = TABLES[(side, kind)]
    expected = table.get((state, input_))
    tx = drive_to(side, kind, state)
    if tx is None:  # this kind of transaction is never in this state
        assert all(s is not state for s, _ in table), f"{state} in the table but unreachable"
        return
    apply = delivery(tx, input_)
    if apply is None:
        assert expected is None, "in the table but no public method can deliver it"
        return
    if input_ in INPUT_TIMERS and expected is None:
        # A timer missing from the table must not be running: it can never fire here.
        assert tx.deadline(INPUT_TIMERS[input_]) is None
        return
    caplog.set_level(logging.INFO, logger="softphone.sip.transaction")
    caplog.clear()
    if expected is not None:
        apply()
        assert tx.state is expected
    elif input_ in (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_300_699):
        with pytest.raises(LocalProtocolError):
            apply()
        assert tx.state is state
    else:  # receive path: dropped and logged, nothing sent, no event
        tx.messages_to_send()
        assert apply() == []
        assert tx.state is state
        assert tx.messages_to_send() == []
        assert any("dropped" in r.getMessage() for r in caplog.records)


def test_terminated_is_final_in_every_table() -> None:
    for table in TABLES.values():
        assert not [key for key in table if key[0] is State.TERMINATED]
        assert State.TERMINATED in table.values()


def test_tables_use_only_their_own_kind_of_inputs() -> None:
    receive_request = {Input.RECV_REQUEST, Input.RECV_ACK}
    send = {Input.SEND_1XX, Input.SEND_2XX, Input.SEND_300_699}
    for table in (INVITE_CLIENT, NON_INVITE_CLIENT):  # responses in, requests out
        assert not {i for _, i in table} & (receive_request | send)
    for table in (INVITE_SERVER, NON_INVITE_SERVER):
        assert not {i for _, i in table} & {Input.RECV_1XX, Input.RECV_2XX, Input.RECV_300_699}


def test_timers_belong_to_their_transaction_kind() -> None:
    def timers(table: Mapping[tuple[State, Input], State]) -> set[str]:
        return {i.name[-1] for _, i in table if i.name.startswith("TIMER_")}

    assert timers(INVITE_CLIENT) == {"A", "B", "D", "M"}
    assert timers(NON_INVITE_CLIENT) == {"E", "F", "K"}
    assert timers(INVITE_SERVER) == {"G", "H", "I", "L"}
    assert timers(NON_INVITE_SERVER) == {"J"}
