"""Offer/answer over IPv6 (RFC 8866 §5.7 address types; RFC 5118 §4.6, §4.8, §4.9 offers):
an IP6 offer is answered on IP6, a stream on a family we have no socket for is refused with
RFC 3261 §20.43 Warning 301, and a mixed IP4/IP6 offer is answered on the stream we can reach."""

from __future__ import annotations

import pytest

from softphone.sdp import (
    CodecSpec,
    LocalMedia,
    MediaRefused,
    SessionDescription,
    apply_answer,
    create_answer,
    create_offer,
)

PCMU = CodecSpec("PCMU", 8000, payload_type=0)
V6 = LocalMedia(address="2001:db8::10", port=40000, codecs=(PCMU,))
V4 = LocalMedia(address="192.0.2.10", port=40000, codecs=(PCMU,))
DUAL = LocalMedia(
    address="192.0.2.10", port=40000, codecs=(PCMU,), alternate_address="2001:db8::10"
)

# RFC 5118 §4.6's shape: the session on IP6, one audio stream.
IP6_OFFER = (
    "v=0\r\no=bob 971731711378798081 0 IN IP6 2001:db8::20\r\ns=-\r\n"
    "c=IN IP6 2001:db8::20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
)
# RFC 5118 §4.8: one audio stream on each family, each with its own c= line.
MIXED_OFFER = (
    "v=0\r\no=bob 280744730 28977631 IN IP4 host.example.com\r\ns=-\r\nt=0 0\r\n"
    "m=audio 22334 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\n"
    "m=audio 34022 RTP/AVP 0\r\nc=IN IP6 2001:db8::1\r\n"
)


def answer(offer: str, local: LocalMedia) -> tuple[str, str | None, int]:
    text, media = create_answer(
        SessionDescription.parse(offer), local, session_id=1, session_version=1
    )
    return str(text), media.remote_address, media.remote_port


def test_ip6_offer_is_answered_on_ip6() -> None:
    text, remote, port = answer(IP6_OFFER, V6)
    assert "o=- 1 1 IN IP6 2001:db8::10\r\n" in text and "c=IN IP6 2001:db8::10\r\n" in text
    assert "m=audio 40000 RTP/AVP 0\r\n" in text
    assert (remote, port) == ("2001:db8::20", 6000)


def test_ip6_offer_to_ipv4_only_media_is_refused_with_warning_301() -> None:
    with pytest.raises(MediaRefused, match=r"on IP6 \(2001:db8::20\)") as caught:
        answer(IP6_OFFER, V4)
    assert caught.value.warning_code == 301


def test_ip4_offer_to_ipv6_only_media_is_refused_too() -> None:
    offer = IP6_OFFER.replace("IN IP6 2001:db8::20", "IN IP4 198.51.100.7")
    with pytest.raises(MediaRefused) as caught:
        answer(offer, V6)
    assert caught.value.warning_code == 301


def test_dual_stack_answers_each_family_on_its_own_address() -> None:
    text6, remote6, _ = answer(IP6_OFFER, DUAL)
    assert "c=IN IP6 2001:db8::10\r\n" in text6 and remote6 == "2001:db8::20"
    text4, remote4, _ = answer(
        IP6_OFFER.replace("IN IP6 2001:db8::20", "IN IP4 198.51.100.7"), DUAL
    )
    assert "c=IN IP4 192.0.2.10\r\n" in text4 and remote4 == "198.51.100.7"


@pytest.mark.parametrize(
    ("local", "accepted", "remote"),
    [(V4, 0, "192.0.2.1"), (V6, 1, "2001:db8::1")],
)
def test_mixed_offer_takes_the_stream_of_our_family(
    local: LocalMedia, accepted: int, remote: str
) -> None:
    text, got, port = answer(MIXED_OFFER, local)
    ports = [m.port for m in SessionDescription.parse(text).media]
    assert ports[accepted] == 40000 and ports[1 - accepted] == 0  # RFC 3264 §6: other stream off
    assert got == remote and port == (22334, 34022)[accepted]


def test_ipv4_mapped_ipv6_offer_is_ip6() -> None:
    """RFC 5118 §4.9: ::ffff:192.0.2.2 is an IPv6 address as far as SDP is concerned."""
    offer = IP6_OFFER.replace("2001:db8::20", "::ffff:192.0.2.2")
    _, remote, _ = answer(offer, V6)
    assert remote == "::ffff:192.0.2.2"


def test_hold_with_the_ip6_null_address_is_not_a_family_problem() -> None:
    offer = IP6_OFFER.replace("c=IN IP6 2001:db8::20", "c=IN IP6 ::")
    _, media = create_answer(SessionDescription.parse(offer), V4, session_id=1, session_version=1)
    assert media.remote_address == "::" and media.on_hold and not media.direction.sends


def test_our_ip6_offer_and_an_ip6_answer_round_trip() -> None:
    offer = create_offer(V6, session_id=7, session_version=1)
    assert "c=IN IP6 2001:db8::10" in str(offer)
    reply = SessionDescription.parse(IP6_OFFER)
    media = apply_answer(offer, reply)
    assert (media.remote_address, media.remote_port) == ("2001:db8::20", 6000)
    assert media.codec is not None and media.codec.encoding == "PCMU"
