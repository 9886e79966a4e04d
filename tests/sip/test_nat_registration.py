"""Registration behind a NAT (RFC 3581, RFC 5626), sans-IO: the Contact names what the registrar
saw on every transport, TCP/TLS registrations are outbound flows (+sip.instance, reg-id, ob), the
registrar's Flow-Timer is passed on, and a closed flow registers again at once, then backs off."""

from __future__ import annotations

import random

import pytest
from sip_support import Registrar

from softphone.phone.network import KEEPALIVE_UDP_S, keep_alive_interval
from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address, TransportName
from softphone.sip.message import SipRequest, parse_message
from softphone.sip.registration import REGISTER_RETRY_MIN_S
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

INSTANCE = "00000000-0000-4000-8000-000000000001"
PUBLIC = Address("tls", "203.0.113.1", 52366)  # the router's end of our connection


def alice(transport: TransportName = "tls", *, instance: str | None = INSTANCE) -> UserAgent:
    hop = Address(transport, "203.0.113.10", 5061 if transport == "tls" else 5060)
    acct = AccountConfig(
        name="alice",
        aor=SipUri(user="alice", host="lab.test"),
        username="alice",
        password="alicepw",
        registrar=SipUri(host="203.0.113.10", port=hop.port, params=(("transport", transport),)),
        outbound=hop,
        transport=transport,
        instance_id=instance,
    )
    ua = UserAgent(accounts=[acct], rng=random.Random(1))
    ua.add_listener(Address("udp", "192.168.1.100", 5060))
    ua.add_listener(Address(transport, "192.168.1.100", 5060))
    return ua


def exchange(
    ua: UserAgent, registrar: Registrar, now: float
) -> tuple[list[ev.Event], list[SipRequest]]:
    events: list[ev.Event] = []
    sent: list[SipRequest] = []
    for _ in range(10):
        out = ua.messages_to_send()
        if not out:
            break
        for data, dest in out:
            request = parse_message(data)
            assert isinstance(request, SipRequest)
            sent.append(request)
            events += ua.receive_message(registrar.respond(data), dest, now)
    return events, sent


def test_a_tls_registration_is_an_outbound_flow_and_names_the_public_end() -> None:
    ua, registrar = alice(), Registrar(public=PUBLIC, flow_timer=25)
    ua.register("alice", 0.0)
    events, sent = exchange(ua, registrar, 0.0)
    assert all("rport" in str(r.top_via) for r in sent)  # RFC 3581 on TLS too
    contact = sent[0].headers.get_lines("Contact")[0]
    assert contact == (
        "<sip:alice@192.168.1.100:5060;transport=tls;ob>;reg-id=1;"
        f'+sip.instance="<urn:uuid:{INSTANCE}>"'
    )
    # The registrar saw the router's end of the connection: that is registered, the private
    # binding removed in the same REGISTER, and one binding is left.
    learned = sent[-1].headers.get_lines("Contact")
    assert learned[0].startswith("<sip:alice@203.0.113.1:52366;transport=tls;ob>;reg-id=1;")
    assert learned[1] == "<sip:alice@192.168.1.100:5060;transport=tls;ob>;expires=0"
    assert list(registrar.bindings) == ["sip:alice@203.0.113.1:52366;transport=tls;ob"]
    assert [e for e in events if isinstance(e, ev.Registered)] == [
        ev.Registered(
            account="alice",
            expires=3600,
            contact="sip:alice@203.0.113.1:52366;transport=tls;ob",
            flow_timer_s=25,
        )
    ]
    # Dialogs we take part in name the same address, ob included (sip/ua.py contact_uri).
    registered = ua.registered_contact("alice")
    assert registered is not None and ("ob", None) in registered.params


def test_udp_registers_no_flow_parameters_and_no_instance_means_none() -> None:
    for ua in (alice("udp"), alice("tls", instance=None)):
        ua.register("alice", 0.0)
        _, sent = exchange(ua, Registrar(), 0.0)
        contact = sent[0].headers.get_lines("Contact")[0]
        assert "reg-id" not in contact and "+sip.instance" not in contact and ";ob" not in contact


def test_a_closed_flow_registers_again_at_once_then_backs_off() -> None:
    ua, registrar = alice(), Registrar(public=PUBLIC)
    ua.register("alice", 0.0)
    exchange(ua, registrar, 0.0)
    hop = Address("tls", "203.0.113.10", 5061)
    assert ua.flow_closed(Address("tls", "203.0.113.99", 5061), "closed", 100.0) == []
    assert ua.get_timer() is not None and ua.get_timer() > 200.0  # another flow: nothing due
    # The router (or the server) closed ours: a new connection registers at once; behind the
    # router it has a new public port, which the Contact follows.
    ua.flow_closed(hop, "closed by the peer", 100.0)
    assert ua.get_timer() == 100.0
    ua.handle_timer(100.0)
    registrar.public = Address("tls", "203.0.113.1", 40001)
    events, sent = exchange(ua, registrar, 100.0)
    assert sent and [type(e) for e in events] == [ev.Registered]
    assert list(registrar.bindings) == ["sip:alice@203.0.113.1:40001;transport=tls;ob"]
    # It breaks again soon after: now the wait is 50-100 % of 30 s (RFC 5626 §4.5).
    ua.flow_closed(hop, "closed by the peer", 110.0)
    at = ua.get_timer()
    assert at is not None and 110.0 + REGISTER_RETRY_MIN_S / 2 <= at <= 110.0 + REGISTER_RETRY_MIN_S
    assert ua.messages_to_send() == []


def test_a_request_on_a_connection_that_breaks_fails_at_once_in_words() -> None:
    """A TLS 1.3 server that wants a client certificate says so after the handshake, on the
    first read: the REGISTER already went out, and its answer can never come back over that
    connection (RFC 3261 §18.1.2). It fails then, with the reason, not after Timer F."""
    ua = alice()
    ua.register("alice", 0.0)
    ((_, dest),) = ua.messages_to_send()
    assert ua.flow_closed(Address("tls", "203.0.113.99", 5061), "closed", 0.5) == []
    events = ua.flow_closed(dest, "the server asks for a client certificate", 0.5)
    failed = [e for e in events if isinstance(e, ev.RegistrationFailed)]
    assert len(failed) == 1 and "client certificate" in failed[0].reason
    # Nothing waits for the old transaction any more: the next timer is the retry, not Timer F.
    at = ua.get_timer()
    assert at is not None and at >= 0.5 + REGISTER_RETRY_MIN_S / 2
    # A request that has its final response is not failed again.
    registrar = Registrar(public=PUBLIC)
    ua2 = alice()
    ua2.register("alice", 0.0)
    exchange(ua2, registrar, 0.0)
    assert not any(
        isinstance(e, ev.RegistrationFailed)
        for e in ua2.flow_closed(Address("tls", "203.0.113.10", 5061), "closed by the peer", 1.0)
    )


@pytest.mark.parametrize(
    ("flow_timer", "low", "high"), [(None, KEEPALIVE_UDP_S, KEEPALIVE_UDP_S), (10, 8.0, 10.0)]
)
def test_keep_alives_follow_the_registrars_flow_timer(
    flow_timer: int | None, low: float, high: float
) -> None:
    hop = Address("udp", "203.0.113.10", 5060)
    rng = random.Random(3)
    intervals = [keep_alive_interval(hop, flow_timer, rng) for _ in range(50)]
    assert all(low <= i <= high for i in intervals)
