"""Video offer/answer (sdp/video.py, sdp/h264_profile.py): our m=video offer, answers to a
baresip-style VP8/VP9 offer and to H.264 offers (RFC 6184 §8.2.2 levels), receive-only without
a source, port 0 for what we cannot take, and reading the answer to our offer."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.sdp.errors import SdpError
from softphone.sdp.h264_profile import H264Profile, ProfileLevelId
from softphone.sdp.session import Direction, MediaDescription, SessionDescription
from softphone.sdp.video import (
    LocalVideo,
    VideoCodec,
    answer_video,
    apply_video_answer,
    video_offer_section,
)

# A baresip-style offer, written by hand (tests/data/sdp/baresip_video_offer.sdp): audio PCMU +
# telephone-event (101, the number VP9 reuses in the video stream: RFC 3264 allows it), video
# VP8 and VP9 with max-fs, PLI for every format, b=AS for the video.
DATA = Path(__file__).parent.parent / "data" / "sdp"
BARESIP_OFFER = (DATA / "baresip_video_offer.sdp").read_text()


def local(**kw: object) -> LocalVideo:
    args: dict[str, object] = {"address": "192.0.2.1", "port": 40002, "can_send": True}
    args.update(kw)
    return LocalVideo(**args)  # type: ignore[arg-type]


def video_offer(body: str, extra: str = "", proto: str = "RTP/AVP") -> SessionDescription:
    """A session with one m=video line of ``body`` (formats and attributes)."""
    return SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        f"m=video 20000 {proto} {body}\r\n{extra}"
    )


def lines(section: MediaDescription) -> list[str]:
    return section.lines()


# --- our offer ------------------------------------------------------------------------------
def test_our_offer_lists_every_codec_with_feedback_beside_the_audio_numbers() -> None:
    section = video_offer_section(local(max_bitrate_kbps=1500), taken_payload_types={96, 101})
    assert lines(section) == [
        "m=video 40002 RTP/AVP 97 98 99 100",
        "b=AS:1500",
        "a=rtpmap:97 VP8/90000",
        *[f"a=rtcp-fb:97 {fb}" for fb in ("nack", "nack pli", "ccm fir", "goog-remb")],
        "a=rtpmap:98 VP9/90000",
        "a=fmtp:98 profile-id=0",
        *[f"a=rtcp-fb:98 {fb}" for fb in ("nack", "nack pli", "ccm fir", "goog-remb")],
        "a=rtpmap:99 H264/90000",
        "a=fmtp:99 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
        *[f"a=rtcp-fb:99 {fb}" for fb in ("nack", "nack pli", "ccm fir", "goog-remb")],
        "a=rtpmap:100 H264/90000",
        "a=fmtp:100 profile-level-id=42e01f;packetization-mode=0",
        *[f"a=rtcp-fb:100 {fb}" for fb in ("nack", "nack pli", "ccm fir", "goog-remb")],
        "a=rtcp-mux",
        "a=sendrecv",
    ]


def test_without_a_source_we_offer_to_receive_only() -> None:
    section = video_offer_section(local(can_send=False, codecs=(VideoCodec("VP8"),)))
    assert section.direction is Direction.RECVONLY and section.formats == ["96"]


def test_offer_misuse_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="no video codecs"):
        video_offer_section(local(codecs=()))
    with pytest.raises(SdpError, match="same payload type"):
        video_offer_section(
            local(codecs=(VideoCodec("VP8", payload_type=101),)), taken_payload_types={101}
        )


# --- answering a baresip offer ----------------------------------------------------------------
def test_a_baresip_offer_is_answered_with_its_numbers_and_the_shared_feedback() -> None:
    offer = SessionDescription.parse(BARESIP_OFFER)
    m = offer.media[1]
    section, result = answer_video(offer, m, local())
    assert lines(section) == [
        "m=video 40002 RTP/AVP 100 101",
        "a=rtpmap:100 VP8/90000",
        "a=rtcp-fb:100 nack pli",
        "a=rtpmap:101 VP9/90000",
        "a=fmtp:101 profile-id=0",
        "a=rtcp-fb:101 nack pli",
        "a=sendrecv",
    ]
    assert result is not None and result.receive_codecs[1].fmtp == {"max-fs": "3600"}
    assert result is not None and result.codec is not None
    assert (result.codec.payload_type, result.codec.encoding) == (100, "VP8")
    assert result.codec.fmtp == {"max-fs": "3600"}  # what the peer can receive
    assert result.codec.feedback == {"nack pli"}
    assert [c.encoding for c in result.receive_codecs] == ["VP8", "VP9"]
    assert (result.remote_address, result.remote_port, result.remote_rtcp_port) == (
        "192.0.2.10",
        10002,
        10003,
    )
    assert result.direction is Direction.SENDRECV and not result.rtcp_mux
    assert result.remote_bitrate_bps == 1_000_000
    # The section parses back as part of an answer.
    again = SessionDescription.parse(
        "v=0\r\no=- 2 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        + "\r\n".join(lines(section))
        + "\r\n"
    )
    assert again.media[0].rtpmaps()[100].encoding == "VP8"


def test_a_real_baresip_offer_is_answered() -> None:
    """baresip 1.0.0's INVITE body (modules vp8 + fakevideo), captured once on 127.0.0.1: one
    VP8 format, a=rtcp-fb:* nack pli, framerate, ssrc and content lines we pass over."""
    offer = SessionDescription.parse((DATA / "baresip_vp8_offer.sdp").read_bytes())
    section, result = answer_video(offer, offer.media[1], local(can_send=False))
    assert section.formats == ["96"] and section.direction is Direction.RECVONLY
    assert "a=rtcp-fb:96 nack pli" in lines(section)
    assert result is not None and result.codec is not None
    assert (result.codec.encoding, result.codec.feedback) == ("VP8", {"nack pli"})
    assert result.remote_rtcp_port == offer.media[1].port + 1


@pytest.mark.parametrize(
    ("offered", "can_send", "ours"),
    [
        ("sendrecv", False, Direction.RECVONLY),
        ("sendonly", False, Direction.RECVONLY),
        ("recvonly", False, Direction.INACTIVE),
        ("recvonly", True, Direction.SENDONLY),
        ("inactive", True, Direction.INACTIVE),
    ],
)
def test_our_direction_follows_the_offer_and_our_source(
    offered: str, can_send: bool, ours: Direction
) -> None:
    offer = video_offer("96", f"a=rtpmap:96 VP8/90000\r\na={offered}\r\n")
    section, result = answer_video(offer, offer.media[0], local(can_send=can_send))
    assert result is not None and result.direction is ours and section.direction is ours


@pytest.mark.parametrize(
    ("offer", "why"),
    [
        (video_offer("96", "a=rtpmap:96 VP8/90000\r\n"), "no local video"),
        (video_offer("31", "a=rtpmap:31 H261/90000\r\n"), "no common codec"),
        (video_offer("96", "a=rtpmap:96 VP8/90000\r\n", proto="TCP/RTP/AVP"), "profile"),
        (video_offer("96", "a=rtpmap:96 VP9/90000\r\na=fmtp:96 profile-id=2\r\n"), "VP9 prof 2"),
        (video_offer("96", "a=rtpmap:96 VP8/48000\r\n"), "clock"),
    ],
)
def test_what_we_cannot_take_is_answered_with_port_0(offer: SessionDescription, why: str) -> None:
    section, result = answer_video(
        offer, offer.media[0], None if why == "no local video" else local()
    )
    assert result is None
    assert section.port == 0 and section.formats == offer.media[0].formats


def test_rtx_red_and_fec_are_left_out_and_rtcp_mux_is_echoed() -> None:
    offer = video_offer(
        "96 97 98 99",
        "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
        "a=rtpmap:98 red/90000\r\na=rtpmap:99 ulpfec/90000\r\n"
        "a=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\n"
        "a=rtcp-fb:96 transport-cc\r\na=rtcp-mux\r\n",
    )
    section, result = answer_video(offer, offer.media[0], local())
    assert section.formats == ["96"] and section.rtcp_mux
    assert result is not None and result.codec is not None
    assert result.codec.feedback == {"nack", "ccm fir", "goog-remb"}
    assert result.rtcp_mux and result.remote_rtcp_port == 20000


# --- H.264 (RFC 6184) -------------------------------------------------------------------------
def h264_answer(fmtp: str, codecs: tuple[VideoCodec, ...] | None = None) -> dict[str, str] | None:
    offer = video_offer("96", f"a=rtpmap:96 H264/90000\r\na=fmtp:96 {fmtp}\r\n")
    kw = {"codecs": codecs} if codecs else {}
    section, result = answer_video(offer, offer.media[0], local(**kw))
    if result is None:
        return None
    return section.fmtp(96)


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("42e028", "42e01f"),  # offer level 4.0 > ours 3.1: ours
        ("42e00d", "42e00d"),  # offer level 1.3 < ours: the offer's, never above it
        ("42c01f", "42c01f"),  # another spelling of Constrained Baseline
        ("4d801e", "4d801e"),  # Main with constraint_set0: Constrained Baseline too
        ("42f00b", "42f00b"),  # level 1b (11 + constraint_set3)
    ],
)
def test_h264_answers_a_level_not_above_the_offer(offered: str, answered: str) -> None:
    fmtp = h264_answer(f"profile-level-id={offered};packetization-mode=1")
    assert fmtp is not None and fmtp["profile-level-id"] == answered
    assert fmtp["packetization-mode"] == "1" and "level-asymmetry-allowed" not in fmtp


def test_h264_level_asymmetry_lets_us_answer_our_own_level() -> None:
    fmtp = h264_answer("profile-level-id=42e00d;packetization-mode=1;level-asymmetry-allowed=1")
    assert fmtp is not None
    assert fmtp["profile-level-id"] == "42e01f" and fmtp["level-asymmetry-allowed"] == "1"


def test_h264_packetization_mode_and_profile_must_match() -> None:
    # No packetization-mode: mode 0 (RFC 6184 §8.1), which we also do.
    assert h264_answer("profile-level-id=42e01f") == {
        "profile-level-id": "42e01f",
        "packetization-mode": "0",
    }
    assert h264_answer("profile-level-id=42e01f;packetization-mode=2") is None
    assert h264_answer("profile-level-id=64001f;packetization-mode=1") is None  # High
    assert h264_answer("profile-level-id=zz;packetization-mode=1") is None
    high = (VideoCodec("H264", {"profile-level-id": "640032", "packetization-mode": "1"}),)
    fmtp = h264_answer("profile-level-id=64001f;packetization-mode=1", high)
    assert fmtp is not None and fmtp["profile-level-id"] == "64001f"


@pytest.mark.parametrize(
    ("fmtp", "answered"),
    [
        ("profile-level-id=42801F; packetization-mode=1", "42801f"),  # Linphone 5.1 (OpenH264)
        ("profile-level-id=42001f;packetization-mode=1", "42001f"),
        ("packetization-mode=1", "42000a"),  # RFC 6184 §8.1: Baseline level 1 when absent
    ],
)
def test_a_baseline_offer_is_answered_by_our_constrained_baseline(fmtp: str, answered: str) -> None:
    """Our Constrained Baseline stream is a Baseline stream (H.264 A.2.1.1): the answer names
    the offer's Baseline (RFC 6184 §8.2.2) at a level not above it, instead of no video."""
    answer = h264_answer(fmtp)
    assert answer is not None and answer["profile-level-id"] == answered
    assert answer["packetization-mode"] == "1"


def test_constrained_baseline_takes_baseline_but_not_the_other_way() -> None:
    cb, baseline = ProfileLevelId.parse("42e01f"), ProfileLevelId.parse("42801f")
    assert cb.can_answer(baseline) and cb.can_answer(cb) and baseline.can_answer(baseline)
    assert not baseline.can_answer(cb)  # a Baseline codec of ours could use FMO or ASO
    assert not cb.can_answer(ProfileLevelId.parse("4d001f"))  # Main
    assert not cb.can_answer(ProfileLevelId.parse("64001f"))  # High


def test_profile_level_id_reads_profiles_and_levels() -> None:
    assert ProfileLevelId.parse("42e01f").profile is H264Profile.CONSTRAINED_BASELINE
    assert ProfileLevelId.parse("42001f").profile is H264Profile.BASELINE
    assert ProfileLevelId.parse("4d001f").profile is H264Profile.MAIN
    assert ProfileLevelId.parse("640c1f").profile is H264Profile.CONSTRAINED_HIGH
    assert ProfileLevelId.parse(None) == ProfileLevelId(0x42, 0, 10)  # RFC 6184 §8.1 default
    assert ProfileLevelId.parse("42f00b").is_level_1b
    assert ProfileLevelId.parse("42f00b").level < ProfileLevelId.parse("42e00b").level
    with pytest.raises(SdpError):
        ProfileLevelId.parse("42e0")


# --- the answer to our offer --------------------------------------------------------------------
def test_reading_the_answer_to_our_offer() -> None:
    ours = video_offer_section(local(), taken_payload_types={0, 101})
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        + "\r\n".join(lines(ours))
        + "\r\n"
    )
    peer = local(address="192.0.2.30", port=30000, can_send=False, codecs=(VideoCodec("VP9"),))
    section, _ = answer_video(offer, offer.media[0], peer)
    answer = SessionDescription.parse(
        "v=0\r\no=- 9 9 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\n"
        + "\r\n".join(lines(section))
        + "\r\n"
    )
    result = apply_video_answer(offer, offer.media[0], answer, 0)
    assert result is not None and result.codec is not None
    assert (result.codec.encoding, result.codec.payload_type) == ("VP9", 97)
    assert result.codec.feedback == {"nack", "nack pli", "ccm fir", "goog-remb"}
    assert result.direction is Direction.SENDONLY  # the peer only receives
    assert result.rtcp_mux and result.remote_port == 30000


def test_a_rejected_or_wrong_answer() -> None:
    ours = video_offer_section(local(codecs=(VideoCodec("VP8"),)))
    offer = video_offer("96", "a=rtpmap:96 VP8/90000\r\n")
    rejected = video_offer("96")
    rejected.media[0].port = 0
    assert apply_video_answer(offer, ours, rejected, 0) is None
    audio = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n"
    )
    with pytest.raises(SdpError, match="m=audio"):
        apply_video_answer(offer, ours, audio, 0)
    with pytest.raises(SdpError, match="no m= line 2"):
        apply_video_answer(offer, ours, audio, 1)
