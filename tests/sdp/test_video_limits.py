"""What the peer can receive (sdp/video_limits.py): ITU-T H.264 Table A-1 by level, raised by
RFC 6184 §8.1's max-fs / max-mbps / max-br, lowered to the answer's level without level
asymmetry (§8.2.2); VP8/VP9 max-fs and max-fr (RFC 7741 §6.1, RFC 9628 §6); and the picture,
frame rate and bitrate we send within them."""

from __future__ import annotations

import pytest

from softphone.sdp.errors import SdpError
from softphone.sdp.h264_profile import ProfileLevelId
from softphone.sdp.session import SessionDescription
from softphone.sdp.video import LocalVideo, answer_video, apply_video_answer, video_offer_section
from softphone.sdp.video_limits import (
    NO_LIMITS,
    SendLimits,
    fit_picture,
    fits,
    frame_macroblocks,
    h264_send_limits,
    send_format,
    send_limits,
)


# (profile-level-id, level, MaxFS, MaxMBPS, MaxBR in bit/s): Table A-1, Baseline family
# (MaxBR x 1000, Table A-2).
@pytest.mark.parametrize(
    ("plid", "level", "max_fs", "max_mbps", "max_bps"),
    [
        ("42000a", "1", 99, 1_485, 64_000),
        ("42f00b", "1b", 99, 1_485, 128_000),  # level_idc 11 with constraint_set3
        ("42e00b", "1.1", 396, 3_000, 192_000),  # the same level_idc without it
        ("42e00d", "1.3", 396, 11_880, 768_000),
        ("42e015", "2.1", 792, 19_800, 4_000_000),
        ("42e01f", "3.1", 3_600, 108_000, 14_000_000),
        ("4d0028", "4", 8_192, 245_760, 20_000_000),  # Main
    ],
)
def test_the_level_gives_table_a1s_limits(
    plid: str, level: str, max_fs: int, max_mbps: int, max_bps: int
) -> None:
    assert h264_send_limits({"profile-level-id": plid}) == SendLimits(
        max_fs=max_fs, max_mbps=max_mbps, max_bitrate_bps=max_bps, h264_level=level
    )


def test_no_profile_level_id_is_baseline_level_1() -> None:
    limits = h264_send_limits({"packetization-mode": "1"})
    assert (limits.max_fs, limits.max_mbps, limits.max_bitrate_bps) == (99, 1_485, 64_000)
    # A value that is not 3 bytes of hex is read as absent, not as "no limit".
    assert h264_send_limits({"profile-level-id": "zz"}) == limits


def test_high_profile_bitrate_is_counted_in_units_of_1250() -> None:
    assert h264_send_limits({"profile-level-id": "64001f"}).max_bitrate_bps == 14_000 * 1_250
    assert h264_send_limits({"profile-level-id": "640009"}).max_fs == 99  # 1b as level_idc 9


def test_a_level_the_table_lacks_counts_as_the_one_below() -> None:
    assert h264_send_limits({"profile-level-id": "42e01e"}).max_fs == 1_620  # 30, not 31
    assert h264_send_limits({"profile-level-id": "42e01e"}).h264_level == "3"
    assert h264_send_limits({"profile-level-id": "42e005"}).max_fs == 99


def test_max_fs_max_mbps_and_max_br_raise_the_level() -> None:
    params = {"profile-level-id": "42e00a", "max-fs": "396", "max-mbps": "11880", "max-br": "500"}
    assert h264_send_limits(params) == SendLimits(
        max_fs=396, max_mbps=11_880, max_bitrate_bps=500_000, h264_level="1"
    )
    # RFC 6184 §8.1: each MUST be at least the level's; smaller or junk values leave it.
    small = {"profile-level-id": "42e01f", "max-fs": "99", "max-mbps": "x", "max-br": "-1"}
    assert h264_send_limits(small) == h264_send_limits({"profile-level-id": "42e01f"})


def test_a_level_cap_lowers_but_never_raises() -> None:
    cap = ProfileLevelId.parse("42e00a")
    capped = h264_send_limits({"profile-level-id": "42e01f"}, level_cap=cap)
    assert (capped.max_fs, capped.h264_level) == (99, "1")
    high = ProfileLevelId.parse("42e028")
    assert h264_send_limits({"profile-level-id": "42e00b"}, level_cap=high).max_fs == 396


def test_vp8_and_vp9_max_fs_and_max_fr_are_the_limits() -> None:
    assert send_limits("VP8", {"max-fs": "300", "max-fr": "10"}) == SendLimits(
        max_fs=300, max_fr=10.0
    )
    assert send_limits("vp9", {"Max-FS": " 3600 "}).max_fs == 3600
    assert send_limits("VP8", {}) == NO_LIMITS
    assert send_limits("VP8", {"max-fs": "many"}) == NO_LIMITS


def test_macroblocks_count_the_padded_edge() -> None:
    assert frame_macroblocks(176, 144) == 99
    assert frame_macroblocks(176, 132) == 99  # 132 = 8.25 rows: 9
    assert frame_macroblocks(178, 144) == 108
    assert fits(176, 144, SendLimits(max_fs=99)) and not fits(178, 144, SendLimits(max_fs=99))


def test_a_level_1_picture_is_scaled_to_the_largest_size_with_the_aspect() -> None:
    level_1 = h264_send_limits({})
    assert fit_picture(320, 240, level_1) == (176, 132)
    w, h = fit_picture(640, 360, level_1)
    assert frame_macroblocks(w, h) <= 99 and (w, h) == (200, 112)
    assert not fits(w + 2, round((w + 2) * 360 / 640 / 2) * 2, level_1)  # nothing larger fits
    assert fit_picture(176, 144, level_1) == (176, 144)  # QCIF itself stays


def test_level_3_1_leaves_640x360_alone() -> None:
    assert fit_picture(640, 360, h264_send_limits({"profile-level-id": "42e01f"})) == (640, 360)
    assert fit_picture(1280, 720, h264_send_limits({"profile-level-id": "42e01f"})) == (1280, 720)
    assert fit_picture(1920, 1080, h264_send_limits({"profile-level-id": "42e01f"})) == (
        1280,
        720,
    )


def test_a_long_thin_picture_is_held_to_sqrt_8_max_fs_macroblocks_a_side() -> None:
    # 1280x32 is 160 macroblocks, under level 1.1's 396, but 80 wide: at most sqrt(3168) = 56.
    w, h = fit_picture(1280, 32, h264_send_limits({"profile-level-id": "42e00b"}))
    assert w <= 56 * 16 and (w, h) == (896, 22)


def test_odd_sizes_are_our_misuse() -> None:
    with pytest.raises(SdpError, match="even and positive"):
        fit_picture(321, 240, NO_LIMITS)


def test_the_frame_rate_is_capped_by_max_mbps_and_max_fr_and_the_bitrate_by_the_maximum() -> None:
    ours = {
        "fps": 30,
        "min_bitrate_bps": 100_000,
        "start_bitrate_bps": 400_000,
        "max_bitrate_bps": 1_500_000,
    }
    level_1 = send_format(h264_send_limits({}), width=320, height=240, **ours)
    assert (level_1.width, level_1.height, level_1.fps) == (176, 132, 15)  # 1485 / 99
    assert level_1.h264_level == "1"
    assert (level_1.min_bitrate_bps, level_1.start_bitrate_bps, level_1.max_bitrate_bps) == (
        64_000,
        64_000,
        64_000,
    )
    cif = send_format(
        h264_send_limits({"profile-level-id": "42e00b"}), width=352, height=288, **ours
    )
    assert (cif.width, cif.height, cif.fps, cif.max_bitrate_bps) == (352, 288, 7, 192_000)
    vp8 = send_format(SendLimits(max_fr=12.0), width=640, height=360, **ours)
    assert (vp8.width, vp8.fps, vp8.max_bitrate_bps) == (640, 12, 1_500_000)
    free = send_format(NO_LIMITS, width=640, height=360, **ours)
    assert (free.width, free.height, free.fps, free.start_bitrate_bps) == (640, 360, 30, 400_000)


# --- carried through offer/answer (sdp/video.py) ---------------------------------------------
def _offer(fmtp: str) -> SessionDescription:
    extra = f"a=fmtp:96 {fmtp}\r\n" if fmtp else ""
    return SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        f"m=video 20000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n{extra}"
    )


LOCAL = LocalVideo(address="192.0.2.1", port=40002, can_send=True)


def test_a_baseline_offer_without_profile_level_id_limits_us_to_level_1() -> None:
    offer = _offer("")
    section, negotiated = answer_video(offer, offer.media[0], LOCAL)
    assert negotiated is not None and negotiated.codec is not None
    assert section.fmtp(96)["profile-level-id"] == "42000a"  # §8.2.2: the offer's, level 1
    assert negotiated.codec.limits.max_fs == 99


def test_without_asymmetry_our_answers_lower_level_is_the_one_we_send_at() -> None:
    # RFC 6184 §8.2.2: offered level 4, we answer 3.1 (ours); both directions use 3.1.
    offer = _offer("profile-level-id=42e028;packetization-mode=1")
    _, negotiated = answer_video(offer, offer.media[0], LOCAL)
    assert negotiated is not None and negotiated.codec is not None
    assert negotiated.codec.limits.max_fs == 3_600
    # With level-asymmetry-allowed on both sides, the offer's level is what the peer receives.
    offer = _offer("profile-level-id=42e028;packetization-mode=1;level-asymmetry-allowed=1")
    _, negotiated = answer_video(offer, offer.media[0], LOCAL)
    assert negotiated is not None and negotiated.codec is not None
    assert negotiated.codec.limits.max_fs == 8_192


def test_the_answer_to_our_offer_gives_the_level_we_send_at() -> None:
    section = video_offer_section(LOCAL)
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    )
    offer.media.append(section)
    pt = next(pt for pt, m in section.rtpmaps().items() if m.encoding == "H264")
    answer = SessionDescription.parse(
        "v=0\r\no=- 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        f"m=video 20000 RTP/AVP {pt}\r\na=rtpmap:{pt} H264/90000\r\n"
        f"a=fmtp:{pt} profile-level-id=42e00a;packetization-mode=1\r\n"
    )
    negotiated = apply_video_answer(offer, section, answer, 0)
    assert negotiated is not None and negotiated.codec is not None
    assert negotiated.codec.limits == SendLimits(
        max_fs=99, max_mbps=1_485, max_bitrate_bps=64_000, h264_level="1"
    )
