"""The phone's side of RFC 3263 fail-over: an account's hop resolves to every target in order
(SRV priority, then A before AAAA of each), the SIP core gets them all, and a fail-over is
shown in words."""

from __future__ import annotations

import random

from softphone.config import Account
from softphone.phone.network import account_config, tls_ca_files
from softphone.phone.sip_events import failed_over_text
from softphone.sip import events as ue
from softphone.sip.address import Address
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

DNS = StubBackend(
    srv={
        "_sip._udp.example.test": [(20, 0, 5080, "b.example.test"), (10, 0, 5070, "a.example.test")]
    },
    a={"a.example.test": ["203.0.113.10"], "b.example.test": ["203.0.113.11"]},
    aaaa={"a.example.test": ["2001:db8::10"]},
)


async def test_account_gets_every_target_in_order() -> None:
    acct = Account(
        name="alice",
        uri=SipUri(user="alice", host="example.test"),
        registrar=SipUri(host="example.test"),
    )
    resolved = await account_config(acct, dns=DNS, rng=random.Random(1))
    assert resolved.targets == (
        Address("udp", "203.0.113.10", 5070),
        Address("udp", "2001:db8::10", 5070),  # dual-stack: the same server's AAAA next
        Address("udp", "203.0.113.11", 5080),
    )
    assert resolved.outbound == resolved.targets[0]


async def test_tls_trust_covers_every_target() -> None:
    dns = StubBackend(a={"example.test": ["203.0.113.10", "203.0.113.11"]})
    acct = Account(
        name="alice",
        uri=SipUri(user="alice", host="example.test"),
        registrar=SipUri(host="example.test"),
        transport="tls",
        tls_ca_file="/ca.pem",  # type: ignore[arg-type]
    )
    resolved = await account_config(acct, dns=dns, rng=random.Random(1))
    assert tls_ca_files([acct], [resolved]) == {
        ("203.0.113.10", 5061): "/ca.pem",
        ("203.0.113.11", 5061): "/ca.pem",
    }


def test_fail_over_in_words() -> None:
    event = ue.ServerFailedOver(
        account="alice",
        method="REGISTER",
        call_id=None,
        failed="203.0.113.10:5060",
        trying="203.0.113.11:5060",
        transport="udp",
        why="did not answer",
        held_until=332.0,
    )
    assert failed_over_text(event) == (
        "alice: registrar 203.0.113.10:5060 did not answer; trying 203.0.113.11:5060"
    )
