"""The echo canceller (media/echo.py): WebRTC's module behind a 10 ms framer.

Deterministic input throughout: recorded speech through a synthetic echo path (a delayed,
decaying impulse response) with seeded noise. The targets (ERLE >= 25 dB, double-talk PESQ)
are the benchmark's (``softphone bench echo``); here the echo only has to drop by a clear
margin, and what the framer does is checked sample by sample with a stand-in module.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from speech_quality import CLEAR_SPEECH, resample, speech

from softphone.media.echo import BACKENDS, LIVEKIT_MISSING, EchoCanceller, EchoError

RATE = 48000
pytest.importorskip("livekit.rtc")


def room(delay_s: float, seed: int = 7) -> np.ndarray:
    """A direct path after ``delay_s`` and 150 ms of exponentially decaying reflections."""
    rng = np.random.default_rng(seed)
    tail = int(0.15 * RATE)
    response = np.zeros(int(delay_s * RATE) + tail)
    start = int(delay_s * RATE)
    response[start] = 0.5
    decay = np.exp(-np.arange(tail) / (0.03 * RATE))
    response[start : start + tail] += 0.05 * rng.standard_normal(tail) * decay
    return response


def run(ec: EchoCanceller, far: np.ndarray, mic: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed both directions in blocks of the given sizes (cycled), as an audio engine does."""
    out, at, k = [], 0, 0
    while at < len(far):
        n = sizes[k % len(sizes)]
        ec.render(far[at : at + n].astype(np.float32))
        out.append(ec.capture(mic[at : at + n].astype(np.float32)))
        at, k = at + n, k + 1
    return np.concatenate(out)


def energy_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


@pytest.mark.parametrize("backend", BACKENDS)
def test_echo_of_far_end_speech_is_cut_by_a_clear_margin(backend: str) -> None:
    far = speech(RATE)[: 8 * RATE]
    echo = np.convolve(far, room(0.06))[: len(far)]
    rng = np.random.default_rng(1)
    mic = echo + 0.0005 * rng.standard_normal(len(echo))  # a quiet room: -66 dBFS
    canceller = EchoCanceller(RATE, backend=backend)
    assert canceller.backend == backend
    out = run(canceller, far, mic, [480, 512, 1024, 37, 960])
    settled = slice(3 * RATE, len(out))  # after convergence
    erle = energy_db(mic[settled]) - energy_db(out[settled])
    assert erle > 20.0, f"echo only {erle:.1f} dB down"


@pytest.mark.parametrize("backend", BACKENDS)
def test_near_end_speech_passes_while_the_far_end_is_silent(backend: str) -> None:
    from pesq import pesq

    near = speech(RATE)[8 * RATE : 13 * RATE]
    out = run(EchoCanceller(RATE, backend=backend), np.zeros_like(near), near, [480])
    assert len(out) == len(near)  # in step: 10 ms blocks wait for nothing
    kept = slice(RATE, len(out))  # the noise estimates settle in the first second
    reference = resample(near[kept].astype(np.float64), RATE, 16000)
    processed = resample(out[kept].astype(np.float64), RATE, 16000)
    # Clear speech: the noise suppressor costs some of the 4.6 of the input; a canceller that
    # gated the talker would score about 1.
    assert pesq(16000, reference, processed, "wb") > CLEAR_SPEECH


class PassThrough:
    """A stand-in module that changes nothing, counting the calls (and failing on request)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.reverse = 0
        self.forward = 0
        self.delays: list[int] = []
        self.fail_at = fail_at

    def process_stream(self, data: Any) -> None:
        self.forward += 1
        if self.fail_at is not None and self.forward >= self.fail_at:
            raise RuntimeError("boom")

    def process_reverse_stream(self, data: Any) -> None:
        self.reverse += 1

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        self.delays.append(delay_ms)


def framed(module: PassThrough, rate: int = RATE, **kw: Any) -> EchoCanceller:
    return EchoCanceller(rate, processor=(module, lambda buf, r, n: buf), **kw)


def test_blocks_of_any_size_come_out_as_whole_frames_in_order() -> None:
    module = PassThrough()
    ec = framed(module, rate=16000, delay_ms=35)
    x = (np.arange(16000) % 200 - 100).astype(np.float32) / 1000
    out = run(ec, x, x, [7, 160, 333, 1000])
    assert len(out) == len(x)  # every frame completed; none is lost or repeated
    # int16 rounding only: the samples come back where they were
    assert np.max(np.abs(out - x[: len(out)])) <= 1 / 32768
    assert module.forward == module.reverse == len(out) // 160
    assert module.delays == [35]


def test_a_failing_module_stops_once_and_the_microphone_passes_through() -> None:
    heard: list[str] = []
    module = PassThrough(fail_at=3)
    ec = framed(module, on_failure=heard.append)
    x = np.linspace(-0.5, 0.5, 480 * 5, dtype=np.float32)
    first = ec.capture(x[:960])
    second = ec.capture(x[960:1900])  # the third frame fails: all of it passes through
    third = ec.capture(x[1900:])
    ec.render(x)
    assert heard == ["echo cancellation stopped: boom"]
    assert not ec.active
    assert np.allclose(first, np.rint(x[:960] * 32768) / 32768, rtol=0, atol=1e-9)
    # the failed frame and the remainder waiting with it come out unprocessed, then the rest
    assert np.array_equal(second, x[960:1900])
    assert np.array_equal(third, x[1900:])
    assert module.forward == 3 and module.reverse == 0


def test_a_rate_that_is_no_multiple_of_100_hz_is_refused() -> None:
    with pytest.raises(EchoError, match="multiple of 100 Hz"):
        EchoCanceller(22050)


def test_an_unknown_engine_is_refused_with_the_known_ones() -> None:
    with pytest.raises(EchoError) as caught:
        EchoCanceller(RATE, backend="aec9")
    assert str(caught.value) == "no echo canceller called 'aec9' (there are speex, webrtc)"


def test_without_livekit_the_reason_names_the_fix() -> None:
    code = (
        "import sys\n"
        "sys.modules['livekit'] = None\n"
        "from softphone.media.echo import EchoCanceller, EchoError\n"
        "try:\n"
        "    EchoCanceller(48000, backend='webrtc')\n"
        "except EchoError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == LIVEKIT_MISSING


def test_importing_the_module_loads_no_livekit() -> None:
    code = "import sys, softphone.media.echo\nprint('livekit' in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"
