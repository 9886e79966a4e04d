"""SIPS end to end (RFC 3261 §8.1.1.8, §12.1.1, §26.2; RFC 5630): a SIPS request goes over TLS
and carries a SIPS Contact, its answer and the dialog's later requests too; a sip: request over
TLS keeps a sip: Contact. Cores over the fake network of sip_support, no sockets."""

from __future__ import annotations

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, make_peer

from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.compose import secure_request
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest, SipResponse, parse_message
from softphone.sip.uri import SipUri


def tls_peer(name: str, host: str, seed: int) -> Peer:
    """A peer listening on UDP 5060 and TLS 5061; the network reaches it on TLS."""
    peer = make_peer(name, host, seed=seed)
    peer.address = Address("tls", host, 5061)
    peer.ua.add_listener(peer.address)
    return peer


def requests(peer: Peer, method: str) -> list[SipRequest]:
    found = [parse_message(data) for data in peer.received]
    return [m for m in found if isinstance(m, SipRequest) and m.method == method]


def responses(peer: Peer, status: int) -> list[SipResponse]:
    found = [parse_message(data) for data in peer.received]
    return [m for m in found if isinstance(m, SipResponse) and m.status == status]


@pytest.fixture
def pair() -> tuple[Network, Peer, Peer]:
    alice, bob = tls_peer("alice", "127.0.0.1", 1), tls_peer("bob", "127.0.0.2", 2)
    return Network(alice, bob), alice, bob


def test_a_sips_call_carries_sips_contacts_both_ways_over_tls(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    target = SipUri.parse("sips:bob@127.0.0.2")  # no port: 5061, over TLS (RFC 3263 §4.2)
    call_id = alice.ua.invite(None, target, sdp=OFFER, now=net.now)
    net.flush()
    assert net.undeliverable == []
    (invite,) = requests(bob, "INVITE")
    assert str(invite.uri) == "sips:bob@127.0.0.2"
    assert invite.top_via.transport == "TLS"
    # RFC 5630 §4.1: the TLS address as a SIPS URI, without the deprecated transport=tls.
    assert str(invite.contacts[0].uri) == "sips:alice@127.0.0.1:5061"
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.answer(incoming.call_id, sdp=ANSWER, now=net.now)
    net.flush()
    (ok,) = responses(alice, 200)
    assert str(ok.contacts[0].uri) == "sips:bob@127.0.0.2:5061"
    assert alice.of(ev.CallAnswered) == [ev.CallAnswered(call_id=call_id, sdp=ANSWER)]
    assert bob.of(ev.CallConfirmed) == [ev.CallConfirmed(call_id=incoming.call_id)]
    assert str(requests(bob, "ACK")[0].uri) == "sips:bob@127.0.0.2:5061"

    # Later requests inside the SIPS dialog keep the SIPS Contact (hold: a re-INVITE).
    bob.ua.reoffer(incoming.call_id, sdp=ANSWER, now=net.now)
    net.flush()
    (reinvite,) = requests(alice, "INVITE")
    assert str(reinvite.contacts[0].uri) == "sips:bob@127.0.0.2:5061"
    assert reinvite.uri.scheme == "sips"

    alice.ua.hangup(call_id, net.now)
    net.flush()
    (bye,) = requests(bob, "BYE")
    assert bye.top_via.transport == "TLS" and bye.uri.scheme == "sips"
    assert [type(e) for e in bob.of(ev.CallEnded)] == [ev.CallEnded]


def test_a_sip_uri_over_tls_keeps_a_sip_contact_with_transport_tls(
    pair: tuple[Network, Peer, Peer],
) -> None:
    net, alice, bob = pair
    alice.ua.invite(None, SipUri.parse("sip:bob@127.0.0.2:5061;transport=tls"), sdp=OFFER, now=0)
    net.flush()
    (invite,) = requests(bob, "INVITE")
    assert str(invite.contacts[0].uri) == "sip:alice@127.0.0.1:5061;transport=tls"
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.answer(incoming.call_id, sdp=ANSWER, now=net.now)
    net.flush()
    assert str(responses(alice, 200)[0].contacts[0].uri) == "sip:bob@127.0.0.2:5061;transport=tls"


def test_a_sips_target_through_a_proxy_reached_over_udp_is_refused_before_sending() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1, outbound=Address("udp", "127.0.0.9", 5060))
    alice.ua.add_listener(Address("tls", "127.0.0.1", 5061))
    with pytest.raises(LocalProtocolError, match=r"needs TLS all the way.*'alice'.*over UDP"):
        alice.ua.invite(None, SipUri.parse("sips:bob@lab.test"), sdp=OFFER, now=0.0)
    assert alice.ua.messages_to_send() == []


@pytest.mark.parametrize(
    ("head", "secure"),
    [
        ("INVITE sips:bob@h SIP/2.0\r\nContact: <sip:a@h>", True),
        ("INVITE sip:bob@h SIP/2.0\r\nContact: <sip:a@h>", False),
        # §12.1.1: the top Record-Route decides when there is one, else the Contact.
        ("INVITE sip:bob@h SIP/2.0\r\nRecord-Route: <sips:p;lr>\r\nContact: <sip:a@h>", True),
        ("INVITE sip:bob@h SIP/2.0\r\nRecord-Route: <sip:p;lr>\r\nContact: <sips:a@h>", False),
        ("INVITE sip:bob@h SIP/2.0\r\nContact: <sips:a@h>", True),
    ],
)
def test_whether_an_answer_needs_a_sips_contact(head: str, secure: bool) -> None:
    text = (
        f"{head}\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
        "To: <sip:bob@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(text.encode())
    assert isinstance(request, SipRequest)
    assert secure_request(request) is secure
