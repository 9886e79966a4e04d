"""The phone's side of RFC 3263 fail-over: an account's hop resolves to every target in order
(SRV priority, then A before AAAA of each), the SIP core gets them all, and a fail-over is
shown in words."""

from __future__ import annotations

import random

from softphone.config import Account
from softphone.phone.network import account_config
from softphone.phone.sip_events import failed_over_text
from softphone.phone.tls import client_tls
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
    trust = client_tls([acct], [resolved])
    assert {hop: s.ca_file for hop, s in trust.by_hop.items()} == {
        ("203.0.113.10", 5061): "/ca.pem",
        ("203.0.113.11", 5061): "/ca.pem",
    }
    assert trust.direct.ca_file is None  # not trusted for anyone else


async def test_a_peer_to_peer_accounts_tls_settings_are_for_direct_calls() -> None:
    direct = Account(
        name="direct",
        uri=SipUri(user="alice", host="192.0.2.1"),
        transport="tls",
        tls_ca_file="/bob.pem",  # type: ignore[arg-type]
        tls_certificate="/me.pem",  # type: ignore[arg-type]
        tls_private_key="/me.key",  # type: ignore[arg-type]
    )
    resolved = await account_config(direct, dns=StubBackend(), rng=random.Random(1))
    trust = client_tls([direct], [resolved])
    assert trust.by_hop == {}
    assert (trust.direct.ca_file, trust.direct.certificate) == ("/bob.pem", ("/me.pem", "/me.key"))


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
