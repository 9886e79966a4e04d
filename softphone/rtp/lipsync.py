"""Lip sync: when to show a received video picture so that it meets the audio captured with it
(sans-IO: sender reports, the audio's playout point, pictures and ``now`` in; pictures out).

RFC 3550 §6.4.1: a sender report pairs an instant of the sender's wall clock (NTP) with the RTP
timestamp of the same instant in that stream's clock. A participant's streams share one wall
clock and one CNAME (§6.5.1, RFC 7022), so two SRs, one per stream, put audio and video on one
time line: the picture with RTP timestamp ``v`` was captured at ``Tv`` on the sender's clock,
the audio frame with timestamp ``a`` at ``Ta``.

The audio's side of the sum is measured, not estimated: the playout point says which audio RTP
timestamp the jitter buffer handed to the speaker at which local instant (``AudioPlayout``,
media/playout.py), so ``play_time - Ta`` is how far the audio's playout runs behind the
sender's clock (network, jitter buffer, stretching; the clocks' offset cancels out). A picture
captured at ``Tv`` is due at ``Tv + (play_time - Ta)``: then the audio of that instant plays.

A picture that is due later than it arrived is held (:meth:`LipSync.push`, :meth:`pop_due`),
at most ``max_hold_s``. What cannot be trusted is never held: before both SRs and a playout
point (as before lip sync: shown at once), with CNAMEs that differ, and when the hold it asks
for is beyond the bound either way (a sender's wall clock that jumped, absurd SRs): those
pictures are shown at once and the state says why. Video later than audio (within the bound) is
shown at once, with the offset measured (the audio is not delayed for it). The queue holds at most ``max_pictures``; the oldest goes on overflow.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final, Generic, TypeVar

from softphone.rtp.ntp import media_time

__all__ = ["MAX_HOLD_S", "AudioPlayout", "LipSync", "SenderClock", "SyncState"]

MAX_HOLD_S: Final = 1.0
MAX_PICTURES: Final = 64  # 1 s at 60 pictures a second, with a little to spare
VIDEO_CLOCK: Final = 90000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SenderClock:
    """One sender report's pairing (RFC 3550 §6.4.1): ``ntp_timestamp`` (64-bit NTP) is the
    instant of ``rtp_timestamp`` on the stream's ``clock_rate``."""

    ntp_timestamp: int
    rtp_timestamp: int
    clock_rate: int

    def wallclock_s(self, timestamp: int) -> float | None:
        """The sender's wall clock (NTP seconds) of the sample with RTP ``timestamp``."""
        return media_time((self.ntp_timestamp, self.rtp_timestamp), timestamp, self.clock_rate)


@dataclass(frozen=True, slots=True)
class AudioPlayout:
    """The audio frame with RTP ``timestamp`` started playing at ``play_time`` (local
    monotonic seconds, the clock of ``now``)."""

    timestamp: int
    play_time: float


class SyncState(Enum):
    OFF = "off"  # no SR of one stream yet, or no audio playing: pictures shown at once
    ACTIVE = "active"  # pictures are timed to the audio
    MISMATCHED = "mismatched"  # the streams' CNAMEs differ: not one participant's clock
    OUT_OF_RANGE = "out-of-range"  # the hold asked for is beyond the bound: shown at once


@dataclass(slots=True)
class _Held(Generic[T]):
    item: T
    due: float


class LipSync(Generic[T]):
    """The video side's short queue (see the module docstring). ``hold_s`` is how long the last
    picture pushed was held (0 when shown at once), ``offset_s`` how far the audio runs behind
    the video (negative: the video is later), None without sync."""

    def __init__(self, *, max_hold_s: float = MAX_HOLD_S, max_pictures: int = MAX_PICTURES) -> None:
        if max_hold_s < 0 or max_pictures < 1:
            raise ValueError("LipSync needs max_hold_s >= 0 and max_pictures >= 1")
        self.max_hold_s = max_hold_s
        self.max_pictures = max_pictures
        self._queue: deque[_Held[T]] = deque()
        self.state = SyncState.OFF
        self.hold_s = 0.0
        self.offset_s: float | None = None
        self.dropped = 0  # pictures pushed out of a full queue, or passed by a later one

    def due_at(
        self,
        timestamp: int,
        now: float,
        *,
        video: SenderClock | None,
        audio: SenderClock | None,
        playout: AudioPlayout | None,
        same_cname: bool = True,
    ) -> float:
        """When the picture with RTP ``timestamp`` that arrived at ``now`` should be shown
        (``now`` when it should not wait); sets :attr:`state`, :attr:`offset_s`, :attr:`hold_s`."""
        self.offset_s = None
        self.hold_s = 0.0
        if not same_cname:
            self.state = SyncState.MISMATCHED
            return now
        if video is None or audio is None or playout is None:
            self.state = SyncState.OFF
            return now
        captured = video.wallclock_s(timestamp)
        audio_captured = audio.wallclock_s(playout.timestamp)
        if captured is None or audio_captured is None:
            self.state = SyncState.OFF
            return now
        due = captured + (playout.play_time - audio_captured)
        hold = due - now
        if abs(hold) > self.max_hold_s:  # §6.4.1 pairings that disagree this much: no clock
            self.state = SyncState.OUT_OF_RANGE
            return now
        self.state = SyncState.ACTIVE
        self.offset_s = hold
        self.hold_s = max(0.0, hold)
        return now + self.hold_s

    def push(
        self,
        item: T,
        timestamp: int,
        now: float,
        *,
        video: SenderClock | None,
        audio: SenderClock | None,
        playout: AudioPlayout | None,
        same_cname: bool = True,
    ) -> None:
        """A decoded picture arrived at ``now``: queue it until it is due."""
        due = self.due_at(
            timestamp, now, video=video, audio=audio, playout=playout, same_cname=same_cname
        )
        self._queue.append(_Held(item, due))
        while len(self._queue) > self.max_pictures:
            self._queue.popleft()
            self.dropped += 1

    def pop_due(self, now: float) -> T | None:
        """The latest picture due by ``now`` (None when none is); the ones queued before it
        are dropped: a picture never comes back after a later one was shown."""
        latest: int | None = None
        for index, held in enumerate(self._queue):
            if held.due <= now:
                latest = index
        if latest is None:
            return None
        for _ in range(latest):
            self._queue.popleft()
            self.dropped += 1
        return self._queue.popleft().item

    def next_due(self) -> float | None:
        """When :meth:`pop_due` has something next, None with nothing queued."""
        return min((held.due for held in self._queue), default=None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        """A new source or a new decoder: what is held belongs to the old one."""
        self._queue.clear()
