"""Lip sync (rtp/lipsync.py): pictures held until the audio captured with them plays; clocks
walked by argument."""

from __future__ import annotations

import random

import pytest

from softphone.rtp.lipsync import AudioPlayout, LipSync, SenderClock, SyncState
from softphone.rtp.ntp import NTP_UNIX_OFFSET_S, media_time, ntp_timestamp
from softphone.rtp.packet import RtcpSenderReport, RtpPacket, parse_rtcp
from softphone.rtp.session import RtpSession

A0 = 123_456  # the audio's RTP timestamp at the sender's wall clock 1000.0 (8 kHz)
V0 = 4_000_000_000  # the video's (90 kHz), near the 32-bit wrap on purpose
WALL = 1_000.0


def audio_sr(wall: float = WALL) -> SenderClock:
    return SenderClock(ntp_timestamp(wall), A0, 8000)


def video_sr(wall: float = WALL) -> SenderClock:
    return SenderClock(ntp_timestamp(wall), V0, 90000)


def video_ts(captured: float) -> int:
    """The RTP timestamp of a picture captured at ``captured`` on the sender's wall clock."""
    return (V0 + round((captured - WALL) * 90000)) % 2**32


def playout(captured: float, played_at: float) -> AudioPlayout:
    """The audio captured at ``captured`` (sender's clock) started playing at ``played_at``."""
    return AudioPlayout((A0 + round((captured - WALL) * 8000)) % 2**32, played_at)


@pytest.mark.parametrize("behind_ms", [40, 200, 650])
def test_audio_behind_video_holds_the_picture_that_long(behind_ms: int) -> None:
    sync: LipSync[str] = LipSync()
    # The audio captured at 1000.5 plays locally at 50.0 + behind; the picture of 1000.5
    # is decoded at 50.0.
    sync.push(
        "p",
        video_ts(1000.5),
        50.0,
        video=video_sr(),
        audio=audio_sr(),
        playout=playout(1000.5, 50.0 + behind_ms / 1000),
    )
    assert sync.state is SyncState.ACTIVE
    assert sync.hold_s == pytest.approx(behind_ms / 1000, abs=1e-4)
    assert sync.pop_due(50.0 + behind_ms / 1000 - 0.002) is None
    assert sync.next_due() == pytest.approx(50.0 + behind_ms / 1000, abs=1e-4)
    assert sync.pop_due(50.0 + behind_ms / 1000 + 1e-4) == "p"
    assert sync.queued == 0


def test_the_playout_point_may_be_any_audio_frame() -> None:
    # The audio frame playing is older than the picture: the offset is the same.
    sync: LipSync[str] = LipSync()
    sync.push(
        "p",
        video_ts(1002.0),
        70.0,
        video=video_sr(),
        audio=audio_sr(),
        playout=playout(1001.0, 69.1),  # 1001.0 played at 69.1: 1002.0 plays at 70.1
    )
    assert sync.hold_s == pytest.approx(0.1, abs=1e-4)


def test_no_sender_report_means_no_hold() -> None:
    for video, audio, point in [
        (None, audio_sr(), playout(1000.0, 50.2)),
        (video_sr(), None, playout(1000.0, 50.2)),
        (video_sr(), audio_sr(), None),
    ]:
        sync: LipSync[str] = LipSync()
        sync.push("p", video_ts(1000.0), 50.0, video=video, audio=audio, playout=point)
        assert sync.state is SyncState.OFF
        assert sync.hold_s == 0.0
        assert sync.pop_due(50.0) == "p"


def test_video_later_than_audio_is_shown_at_once() -> None:
    sync: LipSync[str] = LipSync()
    sync.push(
        "p",
        video_ts(1000.0),
        50.0,
        video=video_sr(),
        audio=audio_sr(),
        playout=playout(1000.0, 49.7),
    )
    assert sync.state is SyncState.ACTIVE
    assert sync.offset_s == pytest.approx(-0.3, abs=1e-4)
    assert sync.hold_s == 0.0
    assert sync.pop_due(50.0) == "p"


@pytest.mark.parametrize("jump_s", [5.0, 3600.0, 2.0**31])
def test_a_wallclock_jump_in_the_video_sr_never_holds_beyond_the_bound(jump_s: float) -> None:
    sync: LipSync[str] = LipSync(max_hold_s=1.0)
    # The same picture, but the video's SR says its clock is jump_s later than the audio's.
    sync.push(
        "p",
        video_ts(1000.0),
        50.0,
        video=video_sr(WALL + jump_s),
        audio=audio_sr(),
        playout=playout(1000.0, 50.1),
    )
    assert sync.state is SyncState.OUT_OF_RANGE
    assert sync.hold_s == 0.0
    assert sync.pop_due(50.0) == "p"


def test_an_absurd_sr_never_holds_beyond_the_bound() -> None:
    # An SR whose RTP timestamp is half the clock away from the pictures'.
    absurd = SenderClock(ntp_timestamp(WALL), (V0 - 2**31 + 1) % 2**32, 90000)
    sync: LipSync[str] = LipSync(max_hold_s=1.0)
    sync.push(
        "p", video_ts(1000.0), 50.0, video=absurd, audio=audio_sr(), playout=playout(1000.0, 50.1)
    )
    assert sync.hold_s <= 1.0
    assert sync.next_due() is not None and sync.next_due() <= 51.0
    zero = SenderClock(0, 0, 0)  # a clock rate of 0 says nothing
    sync.push(
        "q", video_ts(1000.0), 50.0, video=zero, audio=audio_sr(), playout=playout(1000.0, 50.1)
    )
    assert sync.state is SyncState.OFF


def test_the_hold_bound_is_the_limit_and_within_it_is_held() -> None:
    sync: LipSync[str] = LipSync(max_hold_s=0.5)
    kw = {"video": video_sr(), "audio": audio_sr()}
    sync.push("in", video_ts(1000.0), 50.0, playout=playout(1000.0, 50.45), **kw)
    assert sync.state is SyncState.ACTIVE and sync.hold_s == pytest.approx(0.45, abs=1e-4)
    sync.push("out", video_ts(1000.0), 50.0, playout=playout(1000.0, 50.55), **kw)
    assert sync.state is SyncState.OUT_OF_RANGE and sync.hold_s == 0.0


def test_cnames_that_differ_are_not_synchronised() -> None:
    sync: LipSync[str] = LipSync()
    sync.push(
        "p",
        video_ts(1000.0),
        50.0,
        video=video_sr(),
        audio=audio_sr(),
        playout=playout(1000.0, 50.2),
        same_cname=False,
    )
    assert sync.state is SyncState.MISMATCHED
    assert sync.pop_due(50.0) == "p"


def test_the_latest_due_picture_is_shown_and_older_ones_dropped() -> None:
    sync: LipSync[int] = LipSync()
    kw = {"video": video_sr(), "audio": audio_sr(), "playout": playout(1000.0, 50.1)}
    for i in range(3):  # pictures of 1000.0, .04, .08 decoded at 50.0, .04, .08
        sync.push(i, video_ts(1000.0 + 0.04 * i), 50.0 + 0.04 * i, **kw)
    assert sync.pop_due(50.09) is None
    assert sync.pop_due(50.19) == 2  # all three due: the last one wins
    assert sync.dropped == 2
    assert sync.pop_due(60.0) is None


def test_a_picture_never_comes_back_after_a_later_one() -> None:
    sync: LipSync[str] = LipSync()
    sync.push(
        "held",
        video_ts(1000.0),
        50.0,
        video=video_sr(),
        audio=audio_sr(),
        playout=playout(1000.0, 50.3),
    )
    # The SRs stop being usable (a new source): the next picture is shown at once.
    sync.push("now", video_ts(1000.04), 50.04, video=None, audio=audio_sr(), playout=None)
    assert sync.pop_due(50.04) == "now"
    assert sync.pop_due(50.5) is None


def test_the_queue_is_bounded() -> None:
    sync: LipSync[int] = LipSync(max_pictures=4)
    kw = {"video": video_sr(), "audio": audio_sr(), "playout": playout(1000.0, 50.9)}
    for i in range(10):
        sync.push(i, video_ts(1000.0 + i / 100), 50.0 + i / 100, **kw)
    assert sync.queued == 4
    assert sync.dropped == 6


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_hold_s"):
        LipSync(max_hold_s=-1.0)


# --- sending: our SRs put our audio and video on one time line --------------------------------


def _session(seed: int, offset: float) -> RtpSession:
    return RtpSession(
        rng=random.Random(seed),
        cname="alice@192.0.2.1",
        remote_rtp=("192.0.2.2", 4000),
        remote_rtcp=("192.0.2.2", 4001),
        rtcp_mux=False,
        ntp_offset_s=offset,
        now=0.0,
    )


def _first(datagrams: list[tuple[bytes, tuple[str, int], bool]], rtcp: bool) -> bytes:
    return next(d for d, _, via_rtcp in datagrams if via_rtcp == rtcp)


def test_our_audio_and_video_srs_map_one_capture_instant_to_one_wallclock() -> None:
    """Audio frames are sent as they are captured; a picture is sent 40 ms after its capture
    (encoding). Both sessions share the call's wall clock offset; each SR, taken at its own
    time, must map the audio and the picture captured at 1.0 s to the same NTP time."""
    offset = 1_700_000_000.0 - 5.0  # wall clock - loop clock, one for the call
    audio, video = _session(1, offset), _session(2, offset)
    audio_ts = video_ts_at_1s = None
    for k in range(150):  # 3 s of 20 ms audio frames, captured and sent at k * 0.02
        audio.send_rtp(
            b"\0" * 160, payload_type=0, media_ticks=160 * k, clock_rate=8000, now=k * 0.02
        )
        packet = RtpPacket.parse(_first(audio.datagrams_to_send(), rtcp=False))
        if k == 50:
            audio_ts = packet.timestamp
    for k in range(30):  # 10 pictures a second, captured at k * 0.1, sent 40 ms later
        captured = k * 0.1
        video.send_rtp(
            b"\1" * 500,
            payload_type=96,
            media_ticks=round(captured * 90000),
            clock_rate=90000,
            now=captured + 0.04,
            sampled_at=captured,
        )
        packet = RtpPacket.parse(_first(video.datagrams_to_send(), rtcp=False))
        if k == 10:
            video_ts_at_1s = packet.timestamp
    assert audio_ts is not None and video_ts_at_1s is not None
    reports = []
    for session, at in ((audio, 4.013), (video, 4.377)):  # each SR at its own time
        due = session.get_timer()
        assert due is not None and due < at  # (the first report is due at 1.25-3.75 s)
        session.handle_timer(at)
        compound = parse_rtcp(_first(session.datagrams_to_send(), rtcp=True))
        reports.append(next(p for p in compound if isinstance(p, RtcpSenderReport)))
    a, v = reports
    audio_wall = media_time((a.ntp_timestamp, a.rtp_timestamp), audio_ts, 8000)
    video_wall = media_time((v.ntp_timestamp, v.rtp_timestamp), video_ts_at_1s, 90000)
    assert audio_wall is not None and video_wall is not None
    assert abs(audio_wall - video_wall) < 0.001  # the 40 ms of encoding are not in the map
    assert audio_wall == pytest.approx(NTP_UNIX_OFFSET_S + offset + 1.0, abs=0.001)
