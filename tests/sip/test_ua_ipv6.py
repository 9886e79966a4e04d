"""The user agent on IPv6 (RFC 5118): Via sent-by, Contact and Request-URI carry bracketed
references (RFC 3261 §19.1.1, §20.42), responses go back to the IPv6 source, and a call with
``c=IN IP6`` SDP is set up and torn down like any other."""

from __future__ import annotations

from sip_support import Network, make_peer

from softphone.sip import events as ev
from softphone.sip.message import SipRequest, parse_message
from softphone.sip.uri import SipUri

OFFER6 = (
    b"v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)
ANSWER6 = OFFER6.replace(b"2001:db8::1", b"2001:db8::2").replace(b"4000", b"5000")


def test_call_between_ipv6_peers_brackets_every_reference() -> None:
    alice = make_peer("alice", "2001:db8::1", seed=1)
    bob = make_peer("bob", "2001:db8::2", seed=2)
    net = Network(alice, bob)
    call_id = alice.ua.invite(
        None, SipUri(user="bob", host="2001:db8::2", port=5060), sdp=OFFER6, now=0.0
    )
    net.flush()
    (incoming,) = bob.of(ev.IncomingCall)
    invite = parse_message(bob.received[0])
    assert isinstance(invite, SipRequest)
    assert str(invite.uri) == "sip:bob@[2001:db8::2]:5060"
    assert invite.top_via.sent_by == "[2001:db8::1]:5060"
    assert b"Via: SIP/2.0/UDP [2001:db8::1]:5060;" in bob.received[0]
    assert b"Contact: <sip:alice@[2001:db8::1]:5060>" in bob.received[0]
    assert invite.body == OFFER6
    bob.ua.ring(incoming.call_id, net.now)
    bob.ua.answer(incoming.call_id, sdp=ANSWER6, now=net.now)
    net.flush()
    answered = alice.of(ev.CallAnswered)
    assert len(answered) == 1 and isinstance(answered[0], ev.CallAnswered)
    assert answered[0].call_id == call_id and answered[0].sdp == ANSWER6
    assert b"Contact: <sip:bob@[2001:db8::2]:5060>" in alice.received[-1]
    assert alice.received[-1].endswith(ANSWER6)
    alice.ua.hangup(call_id, now=net.now)
    net.flush()
    assert bob.of(ev.CallEnded) and alice.of(ev.CallEnded)
    assert not net.undeliverable  # ACK and BYE found bob at his bracketed Contact
