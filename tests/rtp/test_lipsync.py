"""Lip sync (rtp/lipsync.py): pictures held until the audio captured with them plays; clocks
walked by argument."""

from __future__ import annotations

import pytest

from softphone.rtp.lipsync import AudioPlayout, LipSync, SenderClock, SyncState
from softphone.rtp.ntp import ntp_timestamp

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
    sync.push("p", video_ts(1000.0), 50.0, video=absurd, audio=audio_sr(), playout=playout(1000.0, 50.1))
    assert sync.hold_s <= 1.0
    assert sync.next_due() is not None and sync.next_due() <= 51.0
    zero = SenderClock(0, 0, 0)  # a clock rate of 0 says nothing
    sync.push("q", video_ts(1000.0), 50.0, video=zero, audio=audio_sr(), playout=playout(1000.0, 50.1))
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
    sync.push("held", video_ts(1000.0), 50.0, video=video_sr(), audio=audio_sr(), playout=playout(1000.0, 50.3))
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
