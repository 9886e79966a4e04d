"""The sans-IO STUN client (RFC 8489): messages byte for byte, the Binding transaction's
retransmissions walked on the clock, and only our own answer from our server counting."""

from __future__ import annotations

import itertools
import random

import pytest

from softphone.stun import (
    BINDING_ERROR,
    BINDING_REQUEST,
    BINDING_SUCCESS,
    BINDING_TRANSITIONS,
    ERROR_CODE,
    MAPPED_ADDRESS,
    XOR_MAPPED_ADDRESS,
    BindingFailed,
    BindingInput,
    BindingState,
    BindingSucceeded,
    BindingTransaction,
    StunMessage,
    StunParseError,
    is_stun,
    xor_mapped_address,
)

SERVER = ("203.0.113.10", 3478)

# RFC 5769 §2.2: a sample IPv4 Binding response (the XOR-MAPPED-ADDRESS part; SOFTWARE,
# MESSAGE-INTEGRITY and FINGERPRINT cut, the length fixed to match).
RFC5769_ID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
RFC5769_RESPONSE = (
    bytes.fromhex("0101000c2112a442") + RFC5769_ID + bytes.fromhex("002000080001a147e112a643")
)


def test_the_rfc_5769_sample_response_maps_to_192_0_2_1_port_32853() -> None:
    message = StunMessage.parse(RFC5769_RESPONSE)
    assert message.message_type == BINDING_SUCCESS and message.transaction_id == RFC5769_ID
    assert message.mapped_address() == ("192.0.2.1", 32853)
    assert bytes(message) == RFC5769_RESPONSE
    assert xor_mapped_address(("192.0.2.1", 32853), RFC5769_ID) == RFC5769_RESPONSE[24:]


def test_ipv6_and_the_old_mapped_address() -> None:
    tid = bytes(range(12))
    v6 = StunMessage(
        BINDING_SUCCESS,
        tid,
        ((XOR_MAPPED_ADDRESS, xor_mapped_address(("2001:db8::1", 5000), tid)),),
    )
    assert StunMessage.parse(bytes(v6)).mapped_address() == ("2001:db8::1", 5000)
    plain = StunMessage(
        BINDING_SUCCESS, tid, ((MAPPED_ADDRESS, bytes([0, 1, 0x13, 0x88, 198, 51, 100, 7])),)
    )
    assert StunMessage.parse(bytes(plain)).mapped_address() == ("198.51.100.7", 5000)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x80" + bytes(19), "not a STUN message"),  # RTP version 2
        (RFC5769_RESPONSE[:-2], "not a STUN message"),  # not a multiple of 4 bytes
        (RFC5769_RESPONSE[:2] + b"\x00\x10" + RFC5769_RESPONSE[4:], "does not match"),
        (RFC5769_RESPONSE[:2] + b"\x00\x08" + RFC5769_RESPONSE[4:28], "truncated"),
    ],
)
def test_junk_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(StunParseError, match=why):
        StunMessage.parse(data)


def test_rtp_and_rtcp_are_not_stun() -> None:
    assert is_stun(RFC5769_RESPONSE)
    assert not is_stun(bytes([0x80, 0x00]) + bytes(18))  # RTP
    assert not is_stun(bytes([0x81, 0xC8]) + bytes(26))  # RTCP SR


def answer(tx: BindingTransaction, mapped: tuple[str, int]) -> bytes:
    return bytes(
        StunMessage(
            BINDING_SUCCESS,
            tx.transaction_id,
            ((XOR_MAPPED_ADDRESS, xor_mapped_address(mapped, tx.transaction_id)),),
        )
    )


def test_a_request_then_its_answer_gives_the_mapped_address() -> None:
    tx = BindingTransaction(SERVER, rng=random.Random(1), now=0.0)
    [(request, dest)] = tx.datagrams_to_send()
    assert dest == SERVER
    parsed = StunMessage.parse(request)
    assert parsed.message_type == BINDING_REQUEST and parsed.transaction_id == tx.transaction_id
    events = tx.receive_datagram(answer(tx, ("198.51.100.1", 40000)), SERVER, 0.1)
    assert events == [BindingSucceeded(SERVER, ("198.51.100.1", 40000))]
    assert tx.state is BindingState.SUCCEEDED and tx.get_timer() is None
    assert tx.receive_datagram(answer(tx, ("198.51.100.1", 1)), SERVER, 0.2) == []  # a repeat


def test_only_our_answer_from_our_server_counts() -> None:
    tx = BindingTransaction(SERVER, rng=random.Random(2), now=0.0)
    good = answer(tx, ("198.51.100.1", 40000))
    assert tx.receive_datagram(good, ("203.0.113.66", 3478), 0.1) == []  # someone else
    other = StunMessage(BINDING_SUCCESS, bytes(12), StunMessage.parse(good).attributes)
    assert tx.receive_datagram(bytes(other), SERVER, 0.1) == []  # another transaction
    assert tx.receive_datagram(b"\x80" + bytes(11), SERVER, 0.1) == []  # RTP
    assert tx.state is BindingState.WAITING


def test_an_error_response_fails_with_its_code() -> None:
    tx = BindingTransaction(SERVER, rng=random.Random(3), now=0.0)
    error = StunMessage(
        BINDING_ERROR,
        tx.transaction_id,
        ((ERROR_CODE, bytes([0, 0, 4, 20]) + b"Unknown Attribute"),),
    )
    assert tx.receive_datagram(bytes(error), SERVER, 0.1) == [
        BindingFailed(SERVER, "error 420 Unknown Attribute")
    ]


def walk(tx: BindingTransaction) -> tuple[list[float], float, list[object]]:
    """Run the clock from timer to timer; when each request went out and when it gave up."""
    sent_at = [0.0] * len(tx.datagrams_to_send())
    events: list[object] = []
    now = 0.0
    while (at := tx.get_timer()) is not None:
        now = at
        events += tx.handle_timer(now)
        sent_at += [now] * len(tx.datagrams_to_send())
    return sent_at, now, events


def test_rfc_8489_retransmissions_give_up_after_39_5_s() -> None:
    sent_at, gave_up, events = walk(BindingTransaction(SERVER, rng=random.Random(4), now=0.0))
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # §6.2.1: Rc = 7
    assert gave_up == 39.5  # Rm = 16 RTOs after the last
    assert events == [BindingFailed(SERVER, "no answer from 203.0.113.10:3478 in 39.5 s")]


def test_a_caller_in_a_hurry_asks_three_times_in_1_25_s() -> None:
    tx = BindingTransaction(
        SERVER, rng=random.Random(5), now=0.0, rto_s=0.25, max_sends=3, last_wait_rtos=2
    )
    sent_at, gave_up, events = walk(tx)
    assert sent_at == [0.0, 0.25, 0.75] and gave_up == 1.25
    assert isinstance(events[0], BindingFailed)


def test_every_state_and_input_pair_transitions_or_changes_nothing() -> None:
    for state, event in itertools.product(BindingState, BindingInput):
        nxt = BINDING_TRANSITIONS.get((state, event))
        if state is BindingState.WAITING:
            assert nxt is not None and nxt is not BindingState.WAITING
        else:
            assert nxt is None  # finished transactions stay finished
