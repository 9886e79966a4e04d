"""The SPSC ring between the PortAudio callback and the pump."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from softphone.media.ring import Ring


def ramp(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.float32)


def test_round_trip_across_the_wrap_keeps_order() -> None:
    ring = Ring(10)
    out = np.empty(4, dtype=np.float32)
    produced = consumed = 0
    seen: list[float] = []
    for _ in range(20):  # 7 in, 4 + 3 out, many times round a 10-sample ring
        assert ring.write(ramp(produced, 7)) == 7
        produced += 7
        for size in (4, 3):
            assert ring.read_into(out[:size]) == size
            seen.extend(out[:size].tolist())
            consumed += size
    assert seen == list(range(consumed))
    assert ring.available() == 0 and ring.overruns == 0 and ring.underruns == 0


def test_write_that_does_not_fit_drops_the_newest_and_counts_an_overrun() -> None:
    ring = Ring(8)
    assert ring.write(ramp(0, 5)) == 5
    assert ring.write(ramp(5, 5)) == 3
    assert (ring.overruns, ring.dropped_samples) == (1, 2)
    out = np.empty(8, dtype=np.float32)
    ring.read_into(out)
    assert out.tolist() == list(range(8))


def test_short_read_is_zero_filled_and_counted_only_once_started() -> None:
    ring = Ring(16)
    out = np.full(4, 9.0, dtype=np.float32)
    assert ring.read_into(out) == 0
    assert out.tolist() == [0.0] * 4
    assert ring.underruns == 0  # never written: not running dry, just not started
    ring.write(ramp(1, 2))
    out[:] = 9.0
    assert ring.read_into(out) == 2
    assert out.tolist() == [1.0, 2.0, 0.0, 0.0]
    assert (ring.underruns, ring.missing_samples) == (1, 2)


def test_read_available_returns_everything_buffered() -> None:
    ring = Ring(32)
    ring.write(ramp(0, 20))
    first = ring.read_available()
    assert first.dtype == np.float32 and first.tolist() == list(range(20))
    assert ring.read_available().shape == (0,)
    assert ring.space() == 32


def test_float64_input_is_cast_and_bad_capacity_refused() -> None:
    ring = Ring(4)
    ring.write(np.array([0.5, -0.25], dtype=np.float64))
    assert ring.read_available().tolist() == [0.5, -0.25]
    with pytest.raises(ValueError):
        Ring(0)


def test_write_and_read_allocate_no_buffers() -> None:
    block = 4800  # a copy of this would be 19 kB
    ring = Ring(block * 3)
    src = np.ones(block, dtype=np.float32)
    out = np.empty(block, dtype=np.float32)
    ring.write(src)
    ring.read_into(out)  # warm up
    tracemalloc.start()
    try:
        for _ in range(200):
            ring.write(src)
            ring.read_into(out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2048


def test_concurrent_producer_and_consumer_see_an_intact_stream() -> None:
    total = 100_000
    ring = Ring(1024)
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 700, size=4000)
    received = np.empty(total, dtype=np.float32)
    deadline = time.monotonic() + 20.0

    def produce() -> None:
        sent, i = 0, 0
        while sent < total and time.monotonic() < deadline:
            want = min(int(sizes[i % len(sizes)]), total - sent)
            i += 1
            room = ring.space()
            if room == 0:
                continue
            sent += ring.write(ramp(sent, min(want, room)))

    producer = threading.Thread(target=produce)
    producer.start()
    got = 0
    chunk = np.empty(333, dtype=np.float32)
    while got < total and time.monotonic() < deadline:
        n = min(ring.available(), chunk.shape[0], total - got)
        if n:
            ring.read_into(chunk[:n])
            received[got : got + n] = chunk[:n]
            got += n
    producer.join(timeout=5)
    assert got == total
    assert np.array_equal(received, np.arange(total, dtype=np.float32))
    assert ring.overruns == 0 and ring.underruns == 0
