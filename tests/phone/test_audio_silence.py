"""The audio engine checks its microphone for silence once per tick and hands every call the
shared silent block (media/silence.py) then, and real audio exactly as it was captured."""

from __future__ import annotations

import numpy as np

from softphone.media.device import NullIO
from softphone.media.silence import is_known_silence
from softphone.phone.audio import AudioEngine


class Recording:
    """A port that keeps what the engine hands it."""

    def __init__(self) -> None:
        self.captured: list[np.ndarray] = []

    def capture(self, pcm: np.ndarray, now: float) -> None:
        self.captured.append(pcm)

    def render(self, samples: int, now: float) -> np.ndarray:
        return np.zeros(samples, dtype=np.float32)


class SpeakingIO(NullIO):
    """A microphone that says something on chosen reads and is silent otherwise."""

    def __init__(self, speaking: set[int]) -> None:
        super().__init__(48000)
        self.speaking = speaking
        self.reads = 0

    def _capture(self, count: int) -> np.ndarray:
        self.reads += 1
        if self.reads in self.speaking:
            return np.full(count, 0.5, dtype=np.float32)
        return np.zeros(count, dtype=np.float32)


def test_the_engine_hands_its_ports_shared_silence_and_real_audio_as_it_is() -> None:
    io = SpeakingIO(speaking={3})
    engine = AudioEngine(io, tick_s=0.02)
    first, second = Recording(), Recording()
    engine._ports += [first, second]  # no event loop here: attach() would start the pump
    for tick in range(5):
        engine.pump(0.02 * tick)
    blocks = [b for b in first.captured if len(b)]
    assert len(blocks) == 4  # the first pump starts the clock with nothing captured
    # The microphone said something on its third read: that block reaches every port as it
    # was captured; the silent ones reach them as the one shared block, checked once.
    assert [is_known_silence(b) for b in blocks] == [True, False, True, True]
    assert np.all(blocks[1] == 0.5) and len(blocks[1]) == 960
    assert all(a is b for a, b in zip(first.captured, second.captured, strict=True))
