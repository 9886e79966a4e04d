"""Offer/answer (RFC 3264) for one audio stream."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from softphone.sdp import (
    CodecSpec,
    Direction,
    LocalMedia,
    NegotiatedCodec,
    RtpMap,
    SdpError,
    SessionDescription,
    apply_answer,
    codec_matches,
    create_answer,
    create_offer,
)

DATA = Path(__file__).parent.parent / "data" / "sdp"

OPUS = CodecSpec("opus", 48000, 2, fmtp="useinbandfec=1")
PCMU = CodecSpec("PCMU", 8000, payload_type=0)
PCMA = CodecSpec("PCMA", 8000, payload_type=8)
G722 = CodecSpec("G722", 8000, payload_type=9)
DTMF = CodecSpec("telephone-event", 8000, fmtp="0-16")

US = LocalMedia(address="192.0.2.1", port=40000, codecs=(OPUS, PCMU, PCMA, DTMF))


def load(name: str) -> SessionDescription:
    return SessionDescription.parse((DATA / name).read_bytes())


def offer_from(
    direction: str = "sendrecv", address: str = "198.51.100.7", extra: str = ""
) -> SessionDescription:
    return SessionDescription.parse(
        f"v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        "m=audio 5000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n{extra}"
    )


def test_create_offer_exact_text() -> None:
    offer = create_offer(
        replace(US, rtcp_mux=True, rtcp_port=40001), session_id=42, session_version=1
    )
    assert str(offer) == (
        "v=0\r\n"
        "o=- 42 1 IN IP4 192.0.2.1\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 96 0 8 97\r\n"
        "a=rtpmap:96 opus/48000/2\r\n"
        "a=fmtp:96 useinbandfec=1\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:97 telephone-event/8000\r\n"
        "a=fmtp:97 0-16\r\n"
        "a=rtcp:40001\r\n"
        "a=rtcp-mux\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def test_create_offer_ipv6_and_dynamic_pts_skip_taken_numbers() -> None:
    local = LocalMedia(
        address="2001:db8::1",
        port=4000,
        codecs=(OPUS, CodecSpec("L16", 16000, payload_type=96), DTMF),
        ptime_ms=None,
    )
    offer = create_offer(local, session_id=1, session_version=2, username="alice")
    assert str(offer.origin) == "alice 1 2 IN IP6 2001:db8::1"
    [m] = offer.media
    assert m.formats == ["97", "96", "98"]
    assert m.rtpmaps()[97] == RtpMap(97, "opus", 48000, 2)
    assert m.ptime is None and m.rtcp_port is None and not m.rtcp_mux


def test_create_offer_refuses_duplicate_static_pts_and_empty_codecs() -> None:
    with pytest.raises(SdpError, match="same payload type"):
        create_offer(replace(US, codecs=(PCMU, PCMU)), session_id=1, session_version=1)
    with pytest.raises(SdpError, match="no codecs"):
        create_offer(replace(US, codecs=()), session_id=1, session_version=1)


def test_answer_to_baresip_uses_offer_pts_in_our_preference_order() -> None:
    local = LocalMedia(address="192.0.2.1", port=40000, codecs=(PCMA, OPUS, G722, DTMF))
    answer, media = create_answer(load("baresip_offer.sdp"), local, session_id=9, session_version=9)
    [m] = answer.media
    assert (m.port, m.proto) == (40000, "RTP/AVP")
    assert m.formats == ["8", "96", "9", "101"]
    assert m.fmtp(101) == {"0-16": ""}  # our fmtp, not theirs
    assert media.codec == NegotiatedCodec(8, "PCMA", 8000, 1, {})
    assert media.telephone_event == NegotiatedCodec(101, "telephone-event", 8000, 1, {"0-15": ""})
    assert (media.remote_address, media.remote_port, media.remote_rtcp_port) == (
        "192.0.2.10",
        8570,
        8571,
    )
    assert media.direction is Direction.SENDRECV and not media.on_hold
    assert media.ptime_ms == 20 and media.rtcp_mux is False
    assert answer.connection is not None and answer.connection.address == "192.0.2.1"


def test_answer_maps_dynamic_pt_and_carries_remote_fmtp() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        "m=audio 5000 RTP/AVP 111 126\r\na=rtpmap:111 OPUS/48000/2\r\n"
        "a=fmtp:111 maxplaybackrate=16000; stereo=0\r\na=rtpmap:126 telephone-event/48000\r\n"
    )
    local = replace(US, codecs=(OPUS, DTMF, CodecSpec("telephone-event", 48000)))
    answer, media = create_answer(offer, local, session_id=1, session_version=1)
    assert answer.media[0].formats == ["111", "126"]
    assert answer.media[0].rtpmaps()[111] == RtpMap(111, "opus", 48000, 2)
    assert media.codec == NegotiatedCodec(
        111, "opus", 48000, 2, {"maxplaybackrate": "16000", "stereo": "0"}
    )
    assert media.telephone_event is not None and media.telephone_event.payload_type == 126


def test_answer_rejects_other_streams_with_port_zero_in_order() -> None:
    answer, media = create_answer(load("linphone_offer.sdp"), US, session_id=1, session_version=1)
    audio, video = answer.media
    assert audio.port == 40000 and audio.formats == ["96", "0", "8", "100"]
    assert (video.media, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["96"])
    assert video.attributes == []
    # linphone: a=rtcp:7079, and a telephone-event at the codec's rate was picked
    assert media.remote_rtcp_port == 7079
    assert media.codec is not None and media.codec.encoding == "opus"
    assert media.codec.fmtp == {"useinbandfec": "1"}
    assert media.telephone_event is not None and media.telephone_event.clock_rate == 8000


def test_answer_skips_disabled_and_srtp_audio_and_takes_the_next() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        "m=audio 0 RTP/AVP 0\r\n"
        "m=audio 6000 RTP/SAVP 0\r\n"
        "m=audio 7000 RTP/AVP 18 8\r\n"
        "m=audio 8000 RTP/AVP 0\r\n"
    )
    answer, media = create_answer(offer, US, session_id=1, session_version=1)
    assert [m.port for m in answer.media] == [0, 0, 40000, 0]  # one audio stream only
    assert answer.media[1].proto == "RTP/SAVP"
    assert answer.media[2].formats == ["8"]
    assert media.remote_port == 7000
    assert media.codec is not None and media.codec.payload_type == 8


@pytest.mark.parametrize(
    "offer",
    [
        "m=audio 5000 RTP/AVP 18 3\r\n",  # nothing in common
        "m=audio 5000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",  # DTMF only
        "m=video 5000 RTP/AVP 31\r\n",  # no audio
        "",  # no streams at all
    ],
)
def test_answer_raises_no_common_codec(offer: str) -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" + offer
    with pytest.raises(SdpError, match="no common codec"):
        create_answer(SessionDescription.parse(text), US, session_id=1, session_version=1)


# RFC 3264 §6.1: offer direction x what we want -> direction in the answer.
DIRECTION_TABLE = [
    ("sendrecv", Direction.SENDRECV, Direction.SENDRECV),
    ("sendonly", Direction.SENDRECV, Direction.RECVONLY),
    ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
    ("inactive", Direction.SENDRECV, Direction.INACTIVE),
    ("sendrecv", Direction.SENDONLY, Direction.SENDONLY),  # we hold them
    ("sendrecv", Direction.INACTIVE, Direction.INACTIVE),
    ("sendonly", Direction.SENDONLY, Direction.INACTIVE),  # both hold
    ("recvonly", Direction.RECVONLY, Direction.INACTIVE),
    ("sendonly", Direction.RECVONLY, Direction.RECVONLY),
]


@pytest.mark.parametrize(("offered", "wanted", "answered"), DIRECTION_TABLE)
def test_answer_direction_table(offered: str, wanted: Direction, answered: Direction) -> None:
    answer, media = create_answer(
        offer_from(offered), replace(US, direction=wanted), session_id=1, session_version=1
    )
    assert answer.direction_of(answer.media[0]) is answered
    assert answer.media[0].attribute_all(answered.value) == [None]
    assert media.direction is answered
    assert media.remote_direction is Direction(offered)
    assert media.on_hold is (offered in ("sendonly", "inactive"))


def test_session_level_direction_applies_to_the_offer() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\na=sendonly\r\n"
        "m=audio 5000 RTP/AVP 0\r\n"
    )
    _, media = create_answer(offer, US, session_id=1, session_version=1)
    assert media.direction is Direction.RECVONLY and media.on_hold


def test_rfc2543_hold_with_null_address_means_do_not_send() -> None:
    _, media = create_answer(offer_from(address="0.0.0.0"), US, session_id=1, session_version=1)
    assert media.on_hold
    assert media.remote_direction is Direction.SENDRECV
    assert media.direction is Direction.RECVONLY  # RFC 3264 §8.4: no RTP to 0.0.0.0
    assert media.remote_address == "0.0.0.0"


@pytest.mark.parametrize(
    ("offer_mux", "local_mux", "answered_mux", "rtcp_port"),
    [(True, True, True, 5000), (True, False, False, 5001), (False, True, False, 5001)],
)
def test_rtcp_mux_is_echoed_only_when_offered_and_wanted(
    offer_mux: bool, local_mux: bool, answered_mux: bool, rtcp_port: int
) -> None:
    offer = offer_from(extra="a=rtcp-mux\r\n" if offer_mux else "")
    answer, media = create_answer(
        offer, replace(US, rtcp_mux=local_mux), session_id=1, session_version=1
    )
    assert answer.media[0].rtcp_mux is answered_mux
    assert media.rtcp_mux is answered_mux
    assert media.remote_rtcp_port == rtcp_port  # RFC 5761: RTP port; else RFC 3550: port + 1


def test_apply_asterisk_answer() -> None:
    offer = create_offer(US, session_id=5, session_version=1)
    media = apply_answer(offer, load("asterisk_answer.sdp"))
    assert media.codec == NegotiatedCodec(0, "PCMU", 8000, 1, {})
    # we offered telephone-event as 97; Asterisk answered 101: we send with 101
    assert media.telephone_event == NegotiatedCodec(101, "telephone-event", 8000, 1, {"0-16": ""})
    assert (media.remote_address, media.remote_port, media.remote_rtcp_port) == (
        "198.51.100.5",
        15762,
        15763,
    )
    assert media.direction is Direction.SENDRECV and not media.on_hold
    assert media.ptime_ms == 20


def test_apply_answer_maps_dynamic_pts_and_tolerates_missing_rtpmap() -> None:
    offer = create_offer(US, session_id=5, session_version=1)  # opus 96, DTMF 97
    answer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n"
        "m=audio 6000 RTP/AVP 111 97 5\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1\r\n"
        "a=rtpmap:5 DVI4/8000\r\n"  # (97 echoed without rtpmap; 5 we never offered: ignored)
    )
    media = apply_answer(offer, answer)
    assert media.codec == NegotiatedCodec(111, "opus", 48000, 2, {"stereo": "1"})
    assert media.telephone_event is not None and media.telephone_event.payload_type == 97


@pytest.mark.parametrize(
    ("answer_media", "message"),
    [
        ("m=audio 0 RTP/AVP 0\r\n", "rejected the audio stream"),
        ("m=audio 6000 RTP/AVP 18\r\n", "no codec we offered"),
        ("m=audio 6000 RTP/AVP 97\r\n", "no codec we offered"),  # telephone-event only
        ("m=video 6000 RTP/AVP 0\r\n", "m=video where the offer has m=audio"),
        ("m=audio 6000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n", "2 m= lines"),
    ],
)
def test_apply_answer_errors(answer_media: str, message: str) -> None:
    offer = create_offer(US, session_id=5, session_version=1)
    answer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n" + answer_media
    )
    with pytest.raises(SdpError, match=message):
        apply_answer(offer, answer)


@pytest.mark.parametrize(
    ("hold", "they_answer", "we_end_up"),
    [
        (Direction.SENDONLY, Direction.RECVONLY, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_hold_reoffer_round_trip_over_the_wire(
    hold: Direction, they_answer: Direction, we_end_up: Direction
) -> None:
    # RFC 3264 §8.4: hold is a re-offer with sendonly (or inactive).
    alice = replace(US, direction=hold)
    bob = LocalMedia(address="198.51.100.2", port=50000, codecs=(PCMA, PCMU, DTMF))
    offer = SessionDescription.parse(bytes(create_offer(alice, session_id=7, session_version=2)))
    answer_sd, bob_media = create_answer(offer, bob, session_id=8, session_version=1)
    answer = SessionDescription.parse(bytes(answer_sd))
    alice_media = apply_answer(offer, answer)

    assert bob_media.on_hold and bob_media.direction is they_answer
    assert answer.direction_of(answer.media[0]) is they_answer
    assert alice_media.direction is we_end_up and not alice_media.on_hold
    # Bob prefers PCMA; both send with PCMA's static PT 8.
    assert alice_media.codec is not None and bob_media.codec is not None
    assert alice_media.codec.payload_type == bob_media.codec.payload_type == 8
    assert alice_media.telephone_event is not None and bob_media.telephone_event is not None
    assert alice_media.telephone_event.payload_type == bob_media.telephone_event.payload_type == 97
    assert (alice_media.remote_address, alice_media.remote_port) == ("198.51.100.2", 50000)
    assert (bob_media.remote_address, bob_media.remote_port) == ("192.0.2.1", 40000)


def test_codec_matches() -> None:
    assert codec_matches(CodecSpec("pcmu", 8000), RtpMap(0, "PCMU", 8000))
    assert codec_matches(OPUS, RtpMap(96, "OPUS", 48000, 2))
    assert not codec_matches(OPUS, RtpMap(96, "opus", 48000))  # channels differ
    assert not codec_matches(DTMF, RtpMap(101, "telephone-event", 48000))  # rate differs
    assert not codec_matches(PCMU, PCMA)


@pytest.mark.parametrize(
    ("we_offer", "they_answer", "held"),
    [
        (Direction.SENDRECV, "sendonly", True),  # they hold us in their answer
        (Direction.SENDRECV, "inactive", True),
        (Direction.SENDRECV, "recvonly", False),
        (Direction.RECVONLY, "sendonly", False),  # forced by our recvonly offer
        (Direction.INACTIVE, "inactive", False),  # forced by our inactive offer
    ],
)
def test_apply_answer_on_hold_only_when_not_forced_by_our_offer(
    we_offer: Direction, they_answer: str, held: bool
) -> None:
    offer = create_offer(replace(US, direction=we_offer), session_id=5, session_version=1)
    answer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n"
        f"m=audio 6000 RTP/AVP 0\r\na={they_answer}\r\n"
    )
    media = apply_answer(offer, answer)
    assert media.on_hold is held
    assert media.direction is we_offer.intersect(Direction(they_answer).reversed())


def test_apply_answer_with_null_address_is_hold() -> None:
    offer = create_offer(US, session_id=5, session_version=1)
    answer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
    )
    media = apply_answer(offer, answer)
    assert media.on_hold and media.direction is Direction.RECVONLY
