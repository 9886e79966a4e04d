"""StreamAudio: the FIFO that plays a stream's decoded audio through the audio engine."""

from __future__ import annotations

import numpy as np

from softphone.phone.stream_audio import StreamAudio

RATE = 48000


def ramp(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(start, start + n) % 1000 / 1000).astype(np.float32)


def test_silence_until_the_target_is_buffered_then_samples_in_order() -> None:
    port = StreamAudio(RATE, target_s=0.02, max_s=0.5)
    port.push(ramp(480))
    assert not port.render(480, 0.0).any()  # 10 ms buffered < 20 ms target
    port.push(ramp(480, 480))
    out = np.concatenate([port.render(240, 0.0) for _ in range(4)])
    assert np.array_equal(out, ramp(960))
    assert port.underruns == 0


def test_an_underrun_is_counted_and_rebuffers() -> None:
    port = StreamAudio(RATE, target_s=0.01, max_s=0.5)
    port.push(ramp(480))
    first = port.render(480, 0.0)
    assert np.array_equal(first, ramp(480))
    short = port.render(480, 0.0)  # nothing left
    assert port.underruns == 1 and not short.any()
    port.push(ramp(100))
    assert not port.render(100, 0.0).any()  # waits for the target again


def test_latency_cannot_grow_past_max() -> None:
    port = StreamAudio(RATE, target_s=0.1, max_s=0.2)
    for i in range(50):  # 1 s of audio arrives at once
        port.push(ramp(960, i * 960))
    assert port.buffered_s <= 0.2 + 1e-9
    assert port.dropped_samples > 0
    out = port.render(960, 0.0)
    # the newest audio is kept: what plays is the tail of what arrived
    kept = int(port.buffered_s * RATE) + 960
    assert np.array_equal(out, ramp(960, 50 * 960 - kept))


def test_the_audio_clock_follows_what_is_being_heard() -> None:
    port = StreamAudio(RATE, target_s=0.01, max_s=0.5)
    assert port.clock(0.0) is None
    port.push(ramp(960), media_time=100.0)
    port.push(ramp(960), media_time=100.02)
    port.render(480, now=5.0)  # the first 10 ms of the chunk stamped 100.0
    assert port.clock(5.0) == 100.0
    assert port.clock(5.004) == 100.004
    port.render(480, now=5.01)
    assert port.clock(5.01) == 100.01  # the rest of the first chunk carries its own time
    port.render(480, now=5.02)
    assert port.clock(5.02) == 100.02
