"""Echo cancellation and noise suppression for a sound card's microphone.

Two engines, picked by ``backend``; by default speex's, or WebRTC's where libspeexdsp is
missing (livekit is a dependency of the package, libspeexdsp a system library):

- ``speex``: libspeexdsp's adaptive filter and residual echo and noise suppressor
  (media/speex_echo.py). It keeps more of the near end when both talk: on ``softphone bench
  echo`` (0 dB near-end to echo) WB-PESQ 1.8-1.9 where WebRTC's scores 1.15, the raw
  microphone 1.1; at +20 dB 2.7-2.8 against 1.6-1.7 (the raw microphone 1.8). ERLE in
  single talk is 31-37 dB (the target is 25).
- ``webrtc``: WebRTC's audio processing module (AEC3, the noise suppressor,
  AGC2 and the high-pass filter), reached through the ``livekit`` package's
  ``AudioProcessingModule``: a maintained binding with prebuilt wheels (the native library is
  bundled), which runs offline on 10 ms frames of 16-bit PCM at 8-96 kHz. It removes the most
  echo while only the far end talks (ERLE about 65 dB), but its suppressor takes the near end
  down with the echo whenever the far end talks: even with no echo at all in the microphone,
  near-end speech in noise scores 1.8 while the far end plays, 3.3 while it is silent.

The automatic gain is off by default: in WebRTC's module it raised the near end's level by
2-4 dB, cost ERLE (43 dB instead of 58 with the canceller alone) and 0.03-0.25 of WB-PESQ,
and the microphone's level is the sound card's mixer's business. Each engine is imported lazily: a machine
without it gets ``EchoError`` (with the fix) from the constructor, and the phone goes on
without echo cancellation.

The seam is sans-IO: what the speaker plays goes in through :meth:`EchoCanceller.render`,
what the microphone captured goes through :meth:`EchoCanceller.capture` and comes out cleaned.
Both take float32 blocks of any length at the engine's rate; the canceller cuts them into
10 ms frames and keeps the remainder for the next call, so capture comes out up to one frame
(10 ms) late and in whole frames. The canceller finds the echo path's delay itself (AEC3's
delay estimator; speex's queue of speaker frames and its filter's tail); a known device
latency (``delay_ms``) is passed on as a hint, which AEC3 uses and speex does not need.

A failure inside the module (it reports errors as exceptions) turns the processing off for
good: audio passes through untouched from then on and ``on_failure`` hears why, once. Calls
never lose their microphone to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

Pcm: TypeAlias = npt.NDArray[np.float32]

FRAME_S: Final = 0.01  # the module works on exactly 10 ms frames
LIVEKIT_MISSING: Final = "the livekit package is not installed: pip install livekit"
BACKENDS: Final = ("speex", "webrtc")
_FULL_SCALE: Final = 32768.0


class EchoError(Exception):
    """Echo cancellation cannot run here: the binding is missing or refused the settings."""


class Processor(Protocol):
    """What the canceller needs of WebRTC's module (livekit.rtc.AudioProcessingModule)."""

    def process_stream(self, data: Any) -> None: ...

    def process_reverse_stream(self, data: Any) -> None: ...

    def set_stream_delay_ms(self, delay_ms: int) -> None: ...


def _livekit_module(
    *, echo_cancellation: bool, noise_suppression: bool, auto_gain: bool
) -> tuple[Processor, Callable[[bytearray, int, int], Any]]:
    """A new processing module and the frame type it takes, translating every failure."""
    try:
        from livekit.rtc import AudioFrame, AudioProcessingModule
    except ImportError as exc:
        raise EchoError(LIVEKIT_MISSING) from exc
    except Exception as exc:  # a broken install: its native library does not load
        raise EchoError(f"the livekit package does not load: {exc}") from exc
    try:
        module = AudioProcessingModule(
            echo_cancellation=echo_cancellation,
            noise_suppression=noise_suppression,
            high_pass_filter=True,
            auto_gain_control=auto_gain,
        )
    except Exception as exc:
        raise EchoError(f"WebRTC's audio processing did not start: {exc}") from exc

    def frame(data: bytearray, rate: int, samples: int) -> Any:
        return AudioFrame(data, rate, 1, samples)

    return module, frame


def _speex_module(
    sample_rate: int, *, noise_suppression: bool, auto_gain: bool
) -> tuple[Processor, Callable[[bytearray, int, int], Any]]:
    """Speex's canceller (media/speex_echo.py) and its frame type, translating failures."""
    from softphone.media.speex_echo import SpeexCanceller, SpeexError, frame

    try:
        module = SpeexCanceller(
            sample_rate, noise_suppression=noise_suppression, auto_gain=auto_gain
        )
    except SpeexError as exc:
        raise EchoError(str(exc)) from exc
    return module, frame


class _Framer:
    """One direction: float32 blocks in, 10 ms int16 frames through the module, float32 out.

    The frame's buffer is allocated once and the module works on it in place; ``view`` is the
    same memory as int16 samples."""

    def __init__(self, samples: int, make_frame: Callable[[bytearray, int, int], Any], rate: int):
        self.samples = samples
        self.buffer = bytearray(2 * samples)
        self.view = np.frombuffer(self.buffer, dtype=np.int16)
        self.frame = make_frame(self.buffer, rate, samples)
        self.pending: Pcm = np.zeros(0, dtype=np.float32)

    def frames(self, pcm: Pcm) -> tuple[Pcm, int]:
        """Everything waiting (old remainder + ``pcm``) and how many whole frames it holds."""
        data = np.concatenate((self.pending, pcm)) if len(self.pending) else pcm
        return data, len(data) // self.samples

    def load(self, data: Pcm, index: int) -> None:
        block = data[index * self.samples : (index + 1) * self.samples]
        # float -> int16, rounded; full scale is clipped, as a sound card's converter does
        self.view[:] = np.rint(np.clip(block * _FULL_SCALE, -_FULL_SCALE, _FULL_SCALE - 1))

    def keep(self, data: Pcm, whole: int) -> None:
        self.pending = np.array(data[whole * self.samples :], dtype=np.float32)


class EchoCanceller:
    """An echo canceller (with noise suppression, and automatic gain on request) on one
    mono stream: WebRTC's AEC3 (``backend="webrtc"``) or speex's (``backend="speex"``).

    ``sample_rate`` must be a multiple of 100 Hz (a 10 ms frame is a whole number of
    samples); 8, 16, 32, 44.1, 48 and 96 kHz all are. Raises EchoError when the module cannot
    run. ``processor`` stands in for the module in tests (with ``make_frame``)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        noise_suppression: bool = True,
        auto_gain: bool = False,
        backend: str | None = None,
        delay_ms: int | None = None,
        on_failure: Callable[[str], None] | None = None,
        processor: tuple[Processor, Callable[[bytearray, int, int], Any]] | None = None,
    ) -> None:
        if sample_rate <= 0 or sample_rate % 100:
            raise EchoError(
                f"echo cancellation needs a rate that is a multiple of 100 Hz (not {sample_rate})"
            )
        if backend is not None and backend not in BACKENDS:
            raise EchoError(
                f"no echo canceller called {backend!r} (there are {', '.join(BACKENDS)})"
            )
        self.backend = backend or BACKENDS[0]
        if processor is None and self.backend == "speex":
            try:
                processor = _speex_module(
                    sample_rate, noise_suppression=noise_suppression, auto_gain=auto_gain
                )
            except EchoError:
                if backend is not None:
                    raise
                self.backend = "webrtc"  # the default's fallback: livekit is a dependency
        module, make_frame = processor or _livekit_module(
            echo_cancellation=True, noise_suppression=noise_suppression, auto_gain=auto_gain
        )
        self.sample_rate = sample_rate
        self._module = module
        samples = round(sample_rate * FRAME_S)
        self._far = _Framer(samples, make_frame, sample_rate)
        self._near = _Framer(samples, make_frame, sample_rate)
        self._on_failure = on_failure
        self.failed: str | None = None  # why processing stopped (audio passes through since)
        self.frames_processed = 0
        if delay_ms is not None:
            self._call(module.set_stream_delay_ms, max(0, int(delay_ms)))

    @property
    def active(self) -> bool:
        return self.failed is None

    def render(self, pcm: Pcm) -> None:
        """What the speaker is about to play (the far end, the echo's source)."""
        if self.failed is not None or not len(pcm):
            return
        far = self._far
        data, whole = far.frames(pcm)
        for i in range(whole):
            far.load(data, i)
            if not self._call(self._module.process_reverse_stream, far.frame):
                return
        far.keep(data, whole)

    def capture(self, pcm: Pcm) -> Pcm:
        """What the microphone captured, cleaned; whole 10 ms frames (a remainder waits for
        the next block). After a failure, the input itself (and what was waiting before it)."""
        near = self._near
        if self.failed is not None:
            if len(near.pending):
                pcm, near.pending = np.concatenate((near.pending, pcm)), near.pending[:0]
            return pcm
        data, whole = near.frames(pcm)
        out = np.empty(whole * near.samples, dtype=np.float32)
        for i in range(whole):
            near.load(data, i)
            if not self._call(self._module.process_stream, near.frame):
                return np.asarray(data, dtype=np.float32)  # unprocessed from here on
            out[i * near.samples : (i + 1) * near.samples] = near.view
        out /= _FULL_SCALE
        near.keep(data, whole)
        self.frames_processed += whole
        return out

    def _call(self, method: Callable[[Any], None], argument: Any) -> bool:
        try:
            method(argument)
        except Exception as exc:  # the module reports every problem as an exception
            self.failed = f"echo cancellation stopped: {exc}"
            logger.warning("%s", self.failed)
            self._near.pending = self._near.pending[:0]
            if self._on_failure is not None:
                self._on_failure(self.failed)
            return False
        return True
