"""The headless audio providers: what each call's audio is attached to."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest

from softphone.phone.audio import HEADLESS_TICK_S, TICK_S, NullAudio


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


async def test_null_audio_pumps_once_per_rtp_frame() -> None:
    # Headless, no device block waits: a wake-up per 20 ms frame, not per 5 ms, since each
    # wake-up walks every call's port (the sound card's engine keeps its 5 ms ticks).
    audio = NullAudio()
    engine = audio.engine_for_call(1)
    assert engine.tick_s == HEADLESS_TICK_S == 0.02 and TICK_S == 0.005
    loop = asyncio.get_running_loop()
    started = loop.time()
    port = Port()
    engine.attach(port)  # starts the pump on this loop: its first wake-up is armed at once
    handle = engine._handle
    assert handle is not None
    # The first wake-up starts the silent device's clock without waiting a frame, so that a
    # call's first 20 ms of microphone goes out one frame after the answer, not two.
    assert handle.when() - started == pytest.approx(0.0, abs=0.005)
    handle.cancel()
    engine._tick()
    follow = engine._handle
    assert follow is not None and follow.when() - started == pytest.approx(0.02, abs=0.005)
    audio.close()
