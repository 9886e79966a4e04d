"""StreamAudio: the FIFO between an RTSP stream's audio decoder and the audio engine (an
AudioPort). In a module of its own so that the player imports numpy only once audio flows
(phone/preload.py)."""

from __future__ import annotations

import collections

import numpy as np

AUDIO_TARGET_S = 0.12
AUDIO_MAX_S = 0.5


class StreamAudio:
    """An AudioPort that plays decoded stream audio with a small FIFO: it starts once
    ``target_s`` is buffered, re-buffers after an underrun, and drops the oldest audio when more
    than ``max_s`` piles up, so that a stream heard for hours is not heard later and later."""

    def __init__(
        self, sample_rate: int, *, target_s: float = AUDIO_TARGET_S, max_s: float = AUDIO_MAX_S
    ) -> None:
        self.sample_rate = sample_rate
        self._target = int(target_s * sample_rate)
        self._max = int(max_s * sample_rate)
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._buffered = 0
        self._playing = False
        self.underruns = 0
        self.dropped_samples = 0
        self.played_samples = 0
        # media time (NTP seconds, from the stream's RTCP SR) of each chunk's first sample
        self._times: collections.deque[float | None] = collections.deque()
        self._clock: tuple[float, float] | None = (
            None  # (media time playing, loop time) at the last render
        )

    @property
    def buffered_s(self) -> float:
        return self._buffered / self.sample_rate

    def clock(self, now: float) -> float | None:
        """The media time being heard at loop time ``now`` (None before sender reports)."""
        if self._clock is None or not self._playing:
            return None
        media, at = self._clock
        return media + (now - at)

    def push(self, pcm: np.ndarray, media_time: float | None = None) -> None:
        if not len(pcm):
            return
        self._chunks.append(pcm)
        self._times.append(media_time)
        self._buffered += len(pcm)
        if self._buffered > self._max:
            excess = self._buffered - self._target
            self.dropped_samples += excess
            self._take(excess)

    def clear(self) -> None:
        self._chunks.clear()
        self._times.clear()
        self._buffered = 0
        self._playing = False
        self._clock = None

    def _take(self, samples: int) -> np.ndarray:
        out = np.zeros(samples, dtype=np.float32)
        filled = 0
        while filled < samples and self._chunks:
            head = self._chunks[0]
            n = min(len(head), samples - filled)
            out[filled : filled + n] = head[:n]
            filled += n
            if n == len(head):
                self._chunks.popleft()
                self._times.popleft()
            else:
                self._chunks[0] = head[n:]
                first = self._times[0]
                self._times[0] = None if first is None else first + n / self.sample_rate
        self._buffered -= filled
        return out

    def capture(self, pcm: np.ndarray, now: float) -> None:
        pass  # a viewer sends nothing

    def render(self, samples: int, now: float) -> np.ndarray:
        if not self._playing:
            if self._buffered < self._target:
                return np.zeros(samples, dtype=np.float32)
            self._playing = True
        if self._buffered < samples:
            self.underruns += 1
            self._playing = False
        head = self._times[0] if self._times else None
        self._clock = None if head is None else (head, now)
        self.played_samples += samples
        return self._take(samples)
