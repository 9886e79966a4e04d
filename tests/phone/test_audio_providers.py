"""The headless audio providers: what each call's audio is attached to."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from softphone.phone.audio import NullAudio


class Port:
    """Counts what the engine gives and asks for."""

    def __init__(self) -> None:
        self.captured = 0
        self.rendered = 0

    def capture(self, pcm: npt.NDArray[np.float32], now: float) -> None:
        self.captured += len(pcm)

    def render(self, samples: int, now: float) -> npt.NDArray[np.float32]:
        self.rendered += samples
        return np.zeros(samples, dtype=np.float32)


async def test_null_audio_is_one_engine_for_every_call_until_it_closes() -> None:
    audio = NullAudio()
    engine = audio.engine_for_call(1)
    assert audio.engine_for_call(2) is engine  # like a sound card: every call is a port on it
    first, second = Port(), Port()
    engine.attach(first)
    engine.attach(second)
    engine.pump(0.0)  # the silent device's clock starts here
    engine.pump(0.02)
    block = engine.sample_rate * 20 // 1000
    assert first.captured == second.captured == block  # each call gets the same 20 ms
    assert first.rendered == second.rendered == block
    audio.release(engine)  # a call ended: the others go on
    engine.detach(first)
    engine.pump(0.04)
    assert (first.captured, second.captured) == (block, 2 * block)
    audio.close()
    assert engine.errors == []
    assert audio.engine_for_call(3) is not engine  # a phone started again gets a fresh one
    audio.close()
