"""``softphone bench latency``: mouth-to-ear delay on loopback, from audio timestamps.

Two Phones run in this process on 127.0.0.1; the caller's microphone is a :class:`ClickIO`
that puts a short chirp ("click") into the captured audio at known sample positions, and the
callee's speaker is a :class:`TapIO` that keeps everything the callee's engine renders, with the
loop time of each block it was handed. Both are ``NullIO``s (media/device.py), paced by the
event loop's clock like a sound card with no buffering, so device buffers are left out and
everything else is in: framing into 20 ms packets, encoding, RTP over UDP, the jitter buffer,
decoding, resampling and the 5 ms engine pump on both sides.

- A click's capture time is the loop time its first sample entered the microphone: the
  caller's device clock start plus ``position / rate``.
- Its render time is the loop time its first sample left for the speaker: the time of the
  block holding it plus its offset in that block, where :func:`detect_clicks` finds it by
  normalised cross-correlation with the chirp.
- delay = render time - capture time. Both clocks are the same ``loop.time()``.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from softphone.config import Config
from softphone.media.device import AudioIO, NullIO
from softphone.phone import events as pe
from softphone.phone.audio import AudioEngine, NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

Pcm: TypeAlias = npt.NDArray[np.float32]

RATE: Final = 48000
CLICK_MS: Final = 10.0
CLICK_LOW_HZ: Final = 400.0
CLICK_HIGH_HZ: Final = 3200.0  # inside every codec's band (G.711 is 300-3400 Hz)
CLICK_PEAK: Final = 0.5
DETECT_THRESHOLD: Final = 0.6
BUDGET_MS: Final = 60.0
CODECS: Final = ("opus", "G722", "PCMU")


def click(sample_rate: int = RATE) -> Pcm:
    """A Hann-windowed linear chirp, 400 to 3200 Hz over 10 ms: one sharp correlation peak
    (unlike a pure tone) that survives every codec's band limits."""
    n = int(sample_rate * CLICK_MS / 1000)
    t = np.arange(n) / sample_rate
    duration = n / sample_rate
    sweep = CLICK_LOW_HZ * t + (CLICK_HIGH_HZ - CLICK_LOW_HZ) * t * t / (2 * duration)
    return (CLICK_PEAK * np.hanning(n) * np.sin(2 * np.pi * sweep)).astype(np.float32)


def detect_clicks(
    signal: npt.NDArray[np.floating],
    template: Pcm,
    *,
    threshold: float = DETECT_THRESHOLD,
    min_gap: int | None = None,
) -> list[int]:
    """Start positions of ``template`` in ``signal``, by normalised cross-correlation.

    A position scores ``<x[k:k+L], t> / (|t| * max(|x[k:k+L]|, |t| / 10))`` (1.0 for an exact
    copy at any gain above a tenth; the floor keeps near-silence from scoring). Peaks at or
    above ``threshold`` are kept strongest first, each suppressing others within ``min_gap``
    samples (default: the template's length); the result is sorted.
    """
    x = np.asarray(signal, dtype=np.float64)
    t = np.asarray(template, dtype=np.float64)
    length = len(t)
    if len(x) < length or length == 0:
        return []
    size = 1 << math.ceil(math.log2(len(x) + length))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(t, size)), size)
    corr = corr[: len(x) - length + 1]
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    window = np.sqrt(np.maximum(energy[length:] - energy[:-length], 0.0))
    norm_t = float(np.sqrt(np.sum(t * t)))
    score = corr / (norm_t * np.maximum(window, norm_t / 10))
    gap = length if min_gap is None else min_gap
    candidates = np.flatnonzero(score >= threshold)
    found: list[int] = []
    for index in candidates[np.argsort(-score[candidates], kind="stable")]:
        if all(abs(int(index) - f) >= gap for f in found):
            found.append(int(index))
    return sorted(found)


class ClickIO(NullIO):
    """A silent microphone with a click at each of ``positions`` (samples since the clock
    started); ``done`` is set once the capture passes ``end``."""

    def __init__(self, positions: list[int], end: int, sample_rate: int = RATE) -> None:
        super().__init__(sample_rate)
        self.positions = positions
        self.end = end
        self.template = click(sample_rate)
        self.t0: float | None = None
        self.position = 0
        self.done = asyncio.Event()

    def frames_wanted(self, now: float) -> int:
        if self.t0 is None:
            self.t0 = now
        return super().frames_wanted(now)

    def capture_time(self, position: int) -> float:
        assert self.t0 is not None
        return self.t0 + position / self.sample_rate

    def _capture(self, count: int) -> Pcm:
        out = np.zeros(count, dtype=np.float32)
        start, stop = self.position, self.position + count
        length = len(self.template)
        for at in self.positions:
            lo, hi = max(at, start), min(at + length, stop)
            if lo < hi:
                out[lo - start : hi - start] = self.template[lo - at : hi - at]
        self.position = stop
        if stop >= self.end:
            self.done.set()
        return out


class TapIO(NullIO):
    """A speaker that keeps what it is given, and the loop time of each block."""

    def __init__(self, sample_rate: int = RATE) -> None:
        super().__init__(sample_rate)
        self.now = 0.0
        self.blocks: list[tuple[int, float]] = []  # (first sample index, loop time)
        self._chunks: list[Pcm] = []
        self.written = 0

    def frames_wanted(self, now: float) -> int:
        self.now = now
        return super().frames_wanted(now)

    def write(self, pcm: Pcm) -> None:
        super().write(pcm)
        if len(pcm):
            self.blocks.append((self.written, self.now))
            self._chunks.append(pcm.copy())
            self.written += len(pcm)

    def rendered(self) -> Pcm:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)

    def render_time(self, index: int) -> float:
        """Loop time at which sample ``index`` left for the speaker."""
        starts = [b[0] for b in self.blocks]
        block = int(np.searchsorted(starts, index, side="right")) - 1
        first, at = self.blocks[max(block, 0)]
        return at + (index - first) / self.sample_rate


class OneEngine(NullAudio):
    """A headless AudioProvider (no tones) handing the call a prepared AudioIO."""

    def __init__(self, io: AudioIO) -> None:
        self.io = io

    def engine_for_call(self, call_number: int) -> AudioEngine:
        return AudioEngine(self.io, name="bench")

    def release(self, engine: AudioEngine) -> None:
        engine.close()  # each call's own engine, on its prepared device


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyResult:
    codec: str
    clicks: int
    found: int
    extra: int  # detections that matched no click
    delays_ms: tuple[float, ...]
    jitter_buffer_ms: float | None
    target_delay_ms: float | None

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.delays_ms)) if self.delays_ms else math.nan

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.delays_ms, 95)) if self.delays_ms else math.nan

    @property
    def max_ms(self) -> float:
        return max(self.delays_ms) if self.delays_ms else math.nan

    @property
    def min_ms(self) -> float:
        return min(self.delays_ms) if self.delays_ms else math.nan

    @property
    def within_budget(self) -> bool:
        return self.found == self.clicks and self.p95_ms <= BUDGET_MS

    def to_json(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "clicks": self.clicks,
            "found": self.found,
            "extra": self.extra,
            "mean_ms": round(self.mean_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "min_ms": round(self.min_ms, 2),
            "jitter_buffer_ms": self.jitter_buffer_ms,
            "target_delay_ms": self.target_delay_ms,
            "budget_ms": BUDGET_MS,
            "within_budget": self.within_budget,
        }


def match_clicks(sent: list[float], heard: list[float], window_s: float) -> tuple[list[float], int]:
    """Pair each sent time with the first heard time in ``[sent, sent + window_s)``.

    Returns the delays (seconds) of the pairs found and the number of heard times left over.
    """
    delays: list[float] = []
    used: set[int] = set()
    for s in sent:
        for i, h in enumerate(heard):
            if i not in used and s <= h < s + window_s:
                delays.append(h - s)
                used.add(i)
                break
    return delays, len(heard) - len(used)


async def _expect(phone: Phone, match: Any, timeout_s: float) -> pe.PhoneEvent:
    async with asyncio.timeout(timeout_s):
        while True:
            event = await phone.next_event()
            if match(event):
                return event


def _udp_port(phone: Phone) -> int:
    while (event := phone.next_event_nowait()) is not None:
        if isinstance(event, pe.Listening) and event.transport == "udp":
            return event.port
    raise RuntimeError("the callee is not listening on UDP")


async def measure_latency(
    codec: str, *, clicks: int = 30, interval_s: float = 0.4, warmup_s: float = 1.0, seed: int = 1
) -> LatencyResult:
    """One call, caller to callee, ``clicks`` clicks ``interval_s`` apart after ``warmup_s``."""
    # Each click lands at a random phase of the 20 ms packet (as speech does), not always at
    # the start of a frame, so the packetisation wait is sampled, not its worst case.
    phases = random.Random(seed).random
    positions = [int((warmup_s + k * interval_s + 0.02 * phases()) * RATE) for k in range(clicks)]
    end = positions[-1] + int(interval_s * RATE) if positions else int(warmup_s * RATE)
    mic, speaker = ClickIO(positions, end), TapIO()
    config = Config(codecs=(codec,))
    rng = random.Random(seed)
    callee = Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(rng.random()),
        dns=StubBackend(),
        auto_answer=True,
        audio=OneEngine(speaker),
    )
    caller = Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(rng.random()),
        dns=StubBackend(),
        audio=OneEngine(mic),
    )
    await callee.start()
    try:
        await caller.start()
        try:
            call_id = await caller.dial(f"sip:softphone@127.0.0.1:{_udp_port(callee)}")
            await _expect(
                caller,
                lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established",
                10.0,
            )
            async with asyncio.timeout(end / RATE + 10.0):
                await mic.done.wait()
            callee_calls = [c for c in callee.calls if c.audio is not None]
            stats = callee.call_stats(callee_calls[0].call_id) if callee_calls else None
            await caller.hangup(call_id)
            await _expect(caller, lambda e: isinstance(e, pe.CallEnded), 10.0)
        finally:
            await caller.stop()
    finally:
        await callee.stop()
    heard = [speaker.render_time(i) for i in detect_clicks(speaker.rendered(), mic.template)]
    sent = [mic.capture_time(p) for p in positions]
    delays, extra = match_clicks(sent, heard, interval_s - 0.025)
    return LatencyResult(
        codec=codec,
        clicks=clicks,
        found=len(delays),
        extra=extra,
        delays_ms=tuple(1000.0 * d for d in delays),
        jitter_buffer_ms=_float(stats, "jitter_buffer_ms"),
        target_delay_ms=_float(stats, "target_delay_ms"),
    )


def _float(stats: dict[str, object] | None, key: str) -> float | None:
    value = stats.get(key) if stats is not None else None
    return float(value) if isinstance(value, (int, float)) else None


def latency_table(results: list[LatencyResult]) -> str:
    rows = [
        f"{'codec':6s} {'clicks':>9s} {'mean':>7s} {'p95':>7s} {'max':>7s} {'min':>7s} "
        f"{'jb':>6s}  budget {BUDGET_MS:.0f} ms (p95)"
    ]
    for r in results:
        jb = f"{r.jitter_buffer_ms:6.1f}" if r.jitter_buffer_ms is not None else f"{'-':>6s}"
        rows.append(
            f"{r.codec:6s} {f'{r.found}/{r.clicks}':>9s} {r.mean_ms:7.1f} {r.p95_ms:7.1f} "
            f"{r.max_ms:7.1f} {r.min_ms:7.1f} {jb}  {'PASS' if r.within_budget else 'FAIL'}"
        )
    rows.append(
        "ms, mouth (caller's microphone) to ear (callee's speaker), device buffers excluded;"
        " jb = callee's jitter buffer delay at the end"
    )
    return "\n".join(rows)
