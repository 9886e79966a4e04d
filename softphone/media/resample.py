"""Streaming mono float32 sample-rate conversion (numpy for whole factors, else libswresample).

``Resampler(in_rate, out_rate)`` keeps the filter state between ``process()`` calls, so blocks of
any size can be pushed without clicks or drift: after N input samples the output has produced
``floor(N * out_rate / in_rate)`` samples minus a constant that is held back for the filter
(both filters hold at most 16 samples at the lower of the two rates: 2 ms for 8 kHz <-> 48 kHz,
1 ms for 16 kHz <-> 48 kHz; measured in tests/media/test_resample.py).
``flush()`` returns that tail at the end of a stream.
The output is time-aligned with the input: swresample compensates its filter delay, so the
only latency added is that held-back tail.

Equal rates take an identity fast path (no PyAV at all), and rates that are whole multiples of
each other (8 or 16 kHz <-> 48 kHz, what calls convert) a numpy polyphase filter
(media/polyphase.py) with the same alignment and tail as swresample's. The other ratios
(44.1 kHz devices) go through PyAV, imported here, in media/ only.

Silence takes a fast path too: once the filter has taken in enough zeros that everything it
holds is zero, more zeros come out as zeros without a trip through the graph, in whole periods of
the rate ratio (48 kHz -> 8 kHz: 6 samples in, 1 out), so the filter's phase is where the graph
would have left it and the output is the same, sample for sample. A headless phone (silence as its
microphone) converts that silence for every call, 200 times a second: through the graph it was a
third of the event loop's time with 30 calls up.

The filter graph is built here rather than by PyAV's ``AudioResampler``, with the same filters
(``abuffer`` -> ``aformat``, the conversion FFmpeg inserts), for one reason: a graph left to
itself starts a pool of worker threads (one per core) that 20 ms blocks never use. A call has
two resamplers; on a two-core machine that was four idle threads per call. One thread, the
caller's, does the work here.
"""

from __future__ import annotations

import errno
import math
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from softphone.media.polyphase import Downsampler, Upsampler, whole_factor
from softphone.media.silence import is_known_silence

Pcm: TypeAlias = npt.NDArray[np.float32]

_EMPTY: Pcm = np.zeros(0, dtype=np.float32)


class ResampleError(Exception):
    """libswresample refused the conversion (or PyAV is missing)."""


class Resampler:
    """Stateful mono float32 converter from ``in_rate`` to ``out_rate``."""

    # Zeros in a row (input samples) after which the graph holds nothing but zeros: its filter
    # spans 16 samples at the lower rate (32 at the higher, up to 6x that); 20 ms is well past it.
    _SETTLE_S = 0.02
    _MAX_HELD = 48  # input samples of silence kept back, short of a period (1 ms at 48 kHz)
    skip_silence = True  # tests turn it off to compare against the graph itself
    whole_factors_in_numpy = True  # tests turn it off to compare against swresample

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive: {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.samples_in = 0
        self.samples_out = 0
        self._av: Any = None  # the av module (untyped): only touched inside this wrapper
        self._resampler: Any = None
        self._poly: Upsampler | Downsampler | None = None
        common = math.gcd(in_rate, out_rate)
        self._period_in, self._period_out = in_rate // common, out_rate // common
        self._settle = max(int(in_rate * self._SETTLE_S), 2 * self._period_in)
        self._zeros_in = 0  # zeros at the end of what the graph has taken in
        self._zeros_held = 0  # zeros taken in but neither given to the graph nor answered yet
        factor = whole_factor(in_rate, out_rate)
        if factor > 1 and self.whole_factors_in_numpy:
            self._poly = Upsampler(factor) if out_rate > in_rate else Downsampler(factor)
        elif in_rate != out_rate:
            try:
                import av
            except ImportError as exc:  # pragma: no cover - av is a hard dependency
                raise ResampleError("PyAV (av) is not installed: pip install av") from exc
            self._av = av
            self._resampler = self._graph()

    @property
    def is_identity(self) -> bool:
        return self._resampler is None and self._poly is None

    @property
    def held_back(self) -> int:
        """Output samples owed for the input so far (the filter's tail, plus rounding)."""
        owed = self.samples_in * self.out_rate // self.in_rate
        return owed - self.samples_out

    def process(self, pcm: npt.NDArray[np.floating]) -> Pcm:
        """Convert the next block (1-D); returns whatever output is ready (may be empty)."""
        silent = is_known_silence(pcm)  # the engine's shared silence: no need to read it
        block = np.ascontiguousarray(pcm, dtype=np.float32).reshape(-1)
        self.samples_in += block.shape[0]
        if self.is_identity:
            self.samples_out += block.shape[0]
            return block
        if block.shape[0] == 0:
            return _EMPTY
        if not silent and block.any():
            self._zeros_in = 0
            if self._zeros_held:  # the zeros short of a period, in their place before it
                block = np.concatenate((np.zeros(self._zeros_held, dtype=np.float32), block))
                self._zeros_held = 0
        elif self.skip_silence and self._zeros_in >= self._settle:
            return self._silence(block.shape[0])
        else:
            self._zeros_in += block.shape[0]
        return self._push(block)

    def _push(self, block: Pcm) -> Pcm:
        if self._poly is not None:
            out = self._poly.push(block)
            self.samples_out += out.shape[0]
            return out
        frame = self._av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.in_rate
        return self._run(frame)

    def _silence(self, count: int) -> Pcm:
        """Zeros after zeros (see the module docstring): whole periods skip the graph. What is
        short of a period waits for the next block when a period is short (6 samples for
        48 kHz -> 8 kHz); a long one (160 for 48 kHz -> 44.1 kHz) would hold back milliseconds,
        so then the rest goes through the graph. Either way the graph's phase stays its own."""
        periods, rest = divmod(self._zeros_held + count, self._period_in)
        out = np.zeros(periods * self._period_out, dtype=np.float32)
        self.samples_out += out.shape[0]
        if self._period_in <= self._MAX_HELD or not rest:
            self._zeros_held = rest
            return out
        self._zeros_held = 0
        tail = self._push(np.zeros(rest, dtype=np.float32))
        return np.concatenate((out, tail)) if tail.shape[0] else out

    def flush(self) -> Pcm:
        """End of stream: the held-back tail. The resampler can be fed again afterwards."""
        if self.is_identity:
            return _EMPTY
        if self._poly is not None:
            return self._flush_poly(self._poly)
        held = self._zeros_held
        self._zeros_held = 0
        head = self._push(np.zeros(held, dtype=np.float32)) if held else _EMPTY
        out = self._run(None)
        self._resampler = self._graph()
        self.samples_in = self.samples_out = self._zeros_in = 0
        return np.concatenate((head, out)) if head.shape[0] else out

    def _flush_poly(self, poly: Upsampler | Downsampler) -> Pcm:
        owed = self.held_back
        out = poly.push(np.zeros(self._zeros_held + poly.flush_input(), dtype=np.float32))[:owed]
        self._poly = type(poly)(poly.factor)
        self.samples_in = self.samples_out = self._zeros_in = self._zeros_held = 0
        return out

    def _graph(self) -> Any:
        graph = self._av.filter.Graph()
        graph.threads = 1  # see the module docstring
        source = graph.add(
            "abuffer",
            sample_rate=str(self.in_rate),
            sample_fmt="flt",
            channel_layout="mono",
            time_base=f"1/{self.in_rate}",
        )
        convert = graph.add(
            "aformat", sample_rates=str(self.out_rate), sample_fmts="flt", channel_layouts="mono"
        )
        sink = graph.add("abuffersink")
        source.link_to(convert)
        convert.link_to(sink)
        graph.configure()
        return graph

    def _run(self, frame: Any) -> Pcm:
        av = self._av
        frames: list[Any] = []
        try:
            self._resampler.push(frame)
            while True:
                try:
                    frames.append(self._resampler.pull())
                except EOFError:
                    break
                except av.FFmpegError as exc:
                    if exc.errno != errno.EAGAIN:
                        raise
                    break
        except Exception as exc:  # PyAV raises its own FFmpegError tree (and ValueError)
            raise ResampleError(
                f"resampling {self.in_rate} -> {self.out_rate} Hz failed: {exc}"
            ) from exc
        if not frames:
            return _EMPTY
        parts: list[Pcm] = [f.to_ndarray().reshape(-1) for f in frames]
        out: Pcm = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out = out.astype(np.float32, copy=False)
        self.samples_out += out.shape[0]
        return out


def resample(pcm: npt.NDArray[np.floating], in_rate: int, out_rate: int) -> Pcm:
    """One-shot conversion of a whole signal (e.g. a WAV file), tail included."""
    r = Resampler(in_rate, out_rate)
    head = r.process(pcm)
    if r.is_identity:
        return head
    tail = r.flush()
    return np.concatenate((head, tail)) if tail.shape[0] else head
