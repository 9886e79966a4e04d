"""Malformed SIP never crashes the user agent: whatever bytes arrive,
``receive_message`` either handles them or raises RemoteProtocolError (which the transport
logs and drops), and anything it sends back is itself well-formed SIP."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.errors import RemoteProtocolError
from softphone.sip.message import parse_message
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

DATA = Path(__file__).parent.parent / "data" / "sip"
FIXTURES = [p.read_bytes() for p in sorted(DATA.glob("*.sip"))]
SOURCE = Address("udp", "192.0.2.1", 5060)


def fresh_ua() -> UserAgent:
    acct = AccountConfig(name="bob", aor=SipUri(user="bob", host="127.0.0.2"), username="bob")
    ua = UserAgent(accounts=[acct], rng=random.Random(3))
    ua.add_listener(Address("udp", "127.0.0.2", 5060))
    return ua


def feed(ua: UserAgent, data: bytes) -> None:
    try:
        ua.receive_message(data, SOURCE, 0.0)
    except RemoteProtocolError:
        pass
    for out, dest in ua.messages_to_send():
        parse_message(out)  # what we send is always valid SIP
        assert dest.host == SOURCE.host  # answers go back to the source, never to a looked-up name
    ua.handle_timer(100.0)
    ua.messages_to_send()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup_line"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "insert":
            data[at:at] = draw(
                st.sampled_from([b"\r\n", b":", b";", b"<", b">", b",", b'"', b" ", b"\x00", b"%"])
            )
        else:
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_never_crash_the_ua(data: bytes) -> None:
    feed(fresh_ua(), data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_ua(data: bytes) -> None:
    feed(fresh_ua(), data)


def test_fixtures_are_handled_by_one_long_lived_ua() -> None:
    ua = fresh_ua()
    for data in FIXTURES * 2:  # retransmissions of the same requests/responses too
        feed(ua, data)
