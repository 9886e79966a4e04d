"""Instant messages (RFC 3428) in the user agent core: MESSAGE outside a dialog and inside a
call's, both ways, the 407 answered once, what a failure reports, the size rule (RFC 3428 §4,
RFC 3261 §18.1.1), and every malformed MESSAGE answered with its reason and no event."""

from __future__ import annotations

import pytest
from sip_support import Network, Peer, call_up, make_peer

from softphone.auth.digest import make_challenge, verify_authorization
from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.media_type import MediaType
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.messaging import CORE_HEADERS_BYTES, MAX_BODY_BYTES, UDP_LIMIT_BYTES
from softphone.sip.uri import SipUri

BOB = SipUri(user="bob", host="127.0.0.2", port=5060)
BOB_ADDR = Address("udp", "127.0.0.2", 5060)
TEXT = "text/plain;charset=UTF-8"


def pair() -> tuple[Network, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1, password="alicepw")
    bob = make_peer("bob", "127.0.0.2", seed=2)
    return Network(alice, bob), alice, bob


def requests_to(peer: Peer, method: str = "MESSAGE") -> list[SipRequest]:
    out = []
    for data in peer.received:
        msg = parse_message(data)
        if isinstance(msg, SipRequest) and msg.method == method:
            out.append(msg)
    return out


def respond(req: SipRequest, status: int, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    headers = Headers()
    for via in req.headers.get_lines("Via"):
        headers.add("Via", via)
    for name in ("From", "To", "Call-ID", "CSeq"):
        headers.add(name, req.headers.get_lines(name)[0])
    for name, value in extra:
        headers.add(name, value)
    return bytes(SipResponse(status=status, reason="x", headers=headers))


# --- outside a dialog ----------------------------------------------------------------------------
def test_a_message_reaches_the_peer_which_answers_200_and_ours_is_delivered() -> None:
    net, alice, bob = pair()
    message_id = alice.ua.messaging.send(
        alice.ua.account(), BOB, "héllo".encode(), TEXT, now=net.now
    )
    net.flush()
    (sent,) = requests_to(bob)
    # §4: no dialog: a From tag, no To tag, no Contact; the body's type as given.
    assert sent.from_.tag and not sent.to.tag and "Contact" not in sent.headers
    assert sent.headers.get("Content-Type") == TEXT and sent.uri == BOB
    assert sent.call_id not in {c for c in alice.ua.active_calls()}
    assert bob.of(ev.MessageReceived) == [
        ev.MessageReceived(
            account="bob",
            from_uri="sip:alice@127.0.0.1:5060",
            from_display=None,
            to_uri=str(BOB),
            content_type="text/plain",
            charset="UTF-8",
            body="héllo".encode(),
            call_id=None,
        )
    ]
    assert alice.of(ev.MessageDelivered) == [
        ev.MessageDelivered(message_id=message_id, status=200, reason="OK")
    ]
    assert alice.ua.messaging.pending == 0


def test_two_messages_get_their_own_ids_call_ids_and_outcomes() -> None:
    net, alice, bob = pair()
    acct = alice.ua.account()
    first = alice.ua.messaging.send(acct, BOB, b"one", TEXT, now=net.now)
    second = alice.ua.messaging.send(
        acct, SipUri(user="nobody", host="127.0.0.2", port=5060), b"two", TEXT, now=net.now
    )
    net.flush()
    assert first != second
    one, two = requests_to(bob)
    assert one.call_id != two.call_id
    # bob's user agent takes only its own user (RFC 3261 §8.2.2.1): the second is not found.
    assert alice.of(ev.MessageDelivered) == [
        ev.MessageDelivered(message_id=first, status=200, reason="OK")
    ]
    assert alice.of(ev.MessageFailed) == [
        ev.MessageFailed(message_id=second, status=404, reason="Not Found")
    ]
    assert [m.body for m in bob.of(ev.MessageReceived)] == [b"one"]


def test_no_answer_at_all_fails_after_timer_f_with_408() -> None:
    net, alice, _ = pair()
    net.drop = lambda data, dest: True
    message_id = alice.ua.messaging.send(alice.ua.account(), BOB, b"hi", TEXT, now=0.0)
    net.run_until(31.0)
    assert alice.of(ev.MessageFailed) == []  # still retransmitting (Timer E)
    net.run_until(40.0)
    (failed,) = alice.of(ev.MessageFailed)
    assert failed.message_id == message_id and failed.status == 408 and failed.no_response
    assert "no answer from 127.0.0.2:5060 over udp" in failed.reason


class Challenger:
    """A proxy in front of bob answering alice's MESSAGEs with 407 ``times`` times."""

    def __init__(self, net: Network, alice: Peer, *, times: int) -> None:
        self.net, self.alice, self.times = net, alice, times
        self.seen: list[SipRequest] = []
        net.drop = self.intercept

    def intercept(self, data: bytes, dest: Address) -> bool:
        if dest.host != "127.0.0.2" or not data.startswith(b"MESSAGE"):
            return False
        req = parse_message(data)
        assert isinstance(req, SipRequest)
        self.seen.append(req)
        if len(self.seen) > self.times:
            return False
        challenge = make_challenge(realm="proxy.test", nonce=f"n{len(self.seen)}")
        resp = respond(req, 407, (("Proxy-Authenticate", challenge),))
        self.alice.events += self.alice.ua.receive_message(resp, dest, self.net.now)
        return True


def test_a_407_is_answered_once_with_credentials_then_delivered() -> None:
    net, alice, bob = pair()
    proxy = Challenger(net, alice, times=1)
    message_id = alice.ua.messaging.send(alice.ua.account(), BOB, b"hi", TEXT, now=net.now)
    net.flush()
    first, second = proxy.seen
    assert "Proxy-Authorization" not in first.headers
    value = second.headers.get("Proxy-Authorization")
    assert value is not None and verify_authorization(value, password="alicepw", method="MESSAGE")
    assert (second.call_id, second.cseq.seq) == (first.call_id, first.cseq.seq + 1)
    assert second.body == b"hi" and second.from_.tag == first.from_.tag
    assert alice.of(ev.MessageDelivered) == [
        ev.MessageDelivered(message_id=message_id, status=200, reason="OK")
    ]
    assert [m.body for m in bob.of(ev.MessageReceived)] == [b"hi"]


def test_challenged_again_for_the_same_realm_fails_with_the_407() -> None:
    net, alice, bob = pair()
    proxy = Challenger(net, alice, times=99)
    message_id = alice.ua.messaging.send(alice.ua.account(), BOB, b"hi", TEXT, now=net.now)
    net.flush()
    assert len(proxy.seen) == 2  # answered once; the second 407 is a refusal (RFC 3261 §22.2)
    assert alice.of(ev.MessageFailed) == [
        ev.MessageFailed(message_id=message_id, status=407, reason="x")
    ]
    assert bob.of(ev.MessageReceived) == [] and alice.ua.messaging.pending == 0


# --- inside a call's dialog ------------------------------------------------------------------------
def test_a_message_inside_a_call_goes_in_its_dialog_both_ways() -> None:
    net, alice, bob = pair()
    call_id, bob_call = call_up(net, alice, bob)
    message_id = alice.ua.messaging.send_in_call(call_id, b"in the call", TEXT, now=net.now)
    net.flush()
    (sent,) = requests_to(bob)
    assert sent.call_id == call_id and sent.to.tag and sent.from_.tag
    (got,) = bob.of(ev.MessageReceived)
    assert got.call_id == bob_call and got.body == b"in the call" and got.account == "bob"
    assert alice.of(ev.MessageDelivered)[0].message_id == message_id

    reply_id = bob.ua.messaging.send_in_call(bob_call, b"me too", TEXT, now=net.now)
    net.flush()
    (back,) = alice.of(ev.MessageReceived)
    assert back.call_id == call_id and back.body == b"me too"
    assert bob.of(ev.MessageDelivered)[0].message_id == reply_id


def test_a_message_in_a_call_challenged_counts_against_the_call() -> None:
    net, alice, bob = pair()
    call_id, _ = call_up(net, alice, bob)
    proxy = Challenger(net, alice, times=1)
    alice.ua.messaging.send_in_call(call_id, b"hi", TEXT, now=net.now)
    net.flush()
    first, second = proxy.seen
    assert second.cseq.seq == first.cseq.seq + 1 and second.to.tag == first.to.tag
    assert len(alice.of(ev.MessageDelivered)) == 1


def test_no_message_in_a_call_that_is_not_up() -> None:
    net, alice, _ = pair()
    call_id = alice.ua.invite(None, BOB, sdp=None, now=net.now)
    with pytest.raises(LocalProtocolError, match="call state CALLING"):
        alice.ua.messaging.send_in_call(call_id, b"hi", TEXT, now=net.now)
    with pytest.raises(LocalProtocolError, match="no call"):
        alice.ua.messaging.send_in_call("nope", b"hi", TEXT, now=net.now)


# --- size ----------------------------------------------------------------------------------------
def test_a_message_too_big_for_udp_goes_over_tcp_to_the_same_address() -> None:
    _, alice, _ = pair()
    fits = UDP_LIMIT_BYTES - CORE_HEADERS_BYTES - 400
    alice.ua.messaging.send(alice.ua.account(), BOB, b"a" * fits, TEXT, now=0.0)
    ((small, dest),) = alice.ua.messages_to_send()
    assert dest == BOB_ADDR and len(small) + CORE_HEADERS_BYTES <= UDP_LIMIT_BYTES + 120
    alice.ua.messaging.send(alice.ua.account(), BOB, b"a" * 1200, TEXT, now=0.0)
    ((big, dest),) = alice.ua.messages_to_send()
    assert dest == Address("tcp", "127.0.0.2", 5060)
    request = parse_message(big)
    assert isinstance(request, SipRequest) and request.top_via.transport == "TCP"


def test_a_message_too_big_for_a_target_pinned_to_udp_is_refused_and_nothing_goes() -> None:
    _, alice, _ = pair()
    pinned = SipUri(user="bob", host="127.0.0.2", port=5060, params=(("transport", "udp"),))
    with pytest.raises(LocalProtocolError, match=r"more than the 1300 .* allows only UDP"):
        alice.ua.messaging.send(alice.ua.account(), pinned, b"a" * 1200, TEXT, now=0.0)
    assert alice.ua.messages_to_send() == [] and alice.ua.messaging.pending == 0
    alice.ua.messaging.send(alice.ua.account(), pinned, b"short", TEXT, now=0.0)
    assert [dest for _, dest in alice.ua.messages_to_send()] == [BOB_ADDR]


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"", TEXT, "the message is empty"),
        (b"x" * (MAX_BODY_BYTES + 1), TEXT, f"at most {MAX_BODY_BYTES}"),
        (b"x", "text", "not a content type"),
        (b"x", "text/plain; charset", "not a content type"),
    ],
    ids=["empty", "too big", "no subtype", "parameter without value"],
)
def test_a_body_we_cannot_send_is_refused_before_anything_goes(
    body: bytes, content_type: str, why: str
) -> None:
    _, alice, _ = pair()
    with pytest.raises(LocalProtocolError, match=why):
        alice.ua.messaging.send(alice.ua.account(), BOB, body, content_type, now=0.0)
    assert alice.ua.messages_to_send() == [] and alice.ua.messaging.pending == 0


# --- what we refuse ------------------------------------------------------------------------------
def deliver(peer: Peer, headers: str, body: bytes, *, user: str = "bob", n: int = 1) -> SipResponse:
    """The ``n``-th MESSAGE from a stranger, with ``headers`` (CRLF-terminated lines) and
    ``body``; returns the response."""
    data = (
        f"MESSAGE sip:{user}@127.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKm{n}\r\n"
        'From: "Eve" <sip:eve@192.0.2.1>;tag=e1\r\nTo: <sip:bob@127.0.0.2>\r\n'
        f"Call-ID: m{n}@192.0.2.1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
        f"{headers}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    peer.events += peer.ua.receive_message(data, Address("udp", "192.0.2.1", 5060), 0.0)
    (resp,) = [parse_message(d) for d, _ in peer.ua.messages_to_send()]
    assert isinstance(resp, SipResponse)
    return resp


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ("Content-Type: text/plain\r\n", b"", 400, "MESSAGE Without a Body"),
        ("", b"hello", 400, "Missing Content-Type"),
        ("Content-Type: text\r\n", b"hello", 400, "Bad Content-Type"),
        ("Content-Type: text/plain; charset\r\n", b"hello", 400, "Bad Content-Type"),
        (
            "Content-Type: text/plain\r\n",
            b"x" * (MAX_BODY_BYTES + 1),
            413,
            f"Message Too Large ({MAX_BODY_BYTES + 1} bytes, at most {MAX_BODY_BYTES})",
        ),
        (
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
            b"\x1f\x8b",
            415,
            "Unsupported Content-Encoding",
        ),
    ],
    ids=["no body", "no type", "no subtype", "parameter without value", "too big", "gzip"],
)
def test_a_malformed_message_is_answered_with_its_reason_and_reaches_nobody(
    headers: str, body: bytes, status: int, reason: str
) -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    resp = deliver(bob, headers, body)
    assert (resp.status, resp.reason) == (status, reason)
    if status == 415:
        assert resp.headers.get("Accept-Encoding") == "identity"
    assert bob.of(ev.MessageReceived) == []


def test_any_media_type_is_taken_with_its_charset_and_the_senders_name() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert deliver(bob, "Content-Type: image/png\r\n", png).status == 200
    latin = "café".encode("latin-1")
    assert (
        deliver(bob, 'Content-Type: Text/Plain; Charset="ISO-8859-1"\r\n', latin, n=2).status == 200
    )
    first, second = bob.of(ev.MessageReceived)
    assert (first.content_type, first.charset, first.body) == ("image/png", None, png)
    assert (second.content_type, second.charset, second.body) == ("text/plain", "ISO-8859-1", latin)
    assert second.from_uri == "sip:eve@192.0.2.1" and second.from_display == "Eve"


def test_a_message_for_someone_else_is_not_found() -> None:
    bob = make_peer("bob", "127.0.0.2", seed=2)
    assert deliver(bob, "Content-Type: text/plain\r\n", b"hi", user="carol").status == 404
    assert bob.of(ev.MessageReceived) == []


# --- Content-Type values --------------------------------------------------------------------------
def test_media_types_parse_with_parameters_and_print_back() -> None:
    media = MediaType.parse(' Text/Plain ; CHARSET = "utf-8" ; format=flowed')
    assert media.essence == "text/plain" and media.charset == "utf-8"
    assert media.param("Format") == "flowed"
    assert str(media) == "text/plain;charset=utf-8;format=flowed"
    assert str(MediaType.parse("text/plain").with_param("charset", "UTF-8")) == TEXT
    assert str(MediaType("text", "plain", (("name", "a b"),))) == 'text/plain;name="a b"'


@pytest.mark.parametrize("text", ["", "text", "/plain", "text/", "te xt/plain", "text/plain;x"])
def test_bad_media_types_are_parse_errors(text: str) -> None:
    with pytest.raises(ParseError):
        MediaType.parse(text)
