"""Audio engine back ends: a real sound device (PortAudio), a null device and a file device.

This is the only module that imports ``sounddevice``, and it does so lazily: a machine without
the PortAudio library gets ``AudioDeviceError(PORTAUDIO_MISSING)`` from the calls that need a
device, and everything else (``NullIO``, ``FileIO``, codecs, the phone headless) keeps working.
Every PortAudio failure is translated here, at one boundary, into ``AudioDeviceError``.

The real-time rule: the PortAudio callback (``StreamExchange``) only copies between the
stream's buffers and two preallocated ``Ring``s and bumps counters. It never blocks, allocates a
buffer, logs, locks or lets an exception out (a stray one is counted and answered with silence).
After each callback it writes one byte to a non-blocking pipe, so the pump can wait on the
device (``DeviceIO.wait()``, or ``loop.add_reader(io.fileno(), ...)``) instead of on a timer.

The pump (the event loop side) does, every block::

    n = io.frames_wanted(loop.time())      # keep the speaker ring ~2 blocks full
    io.write(playout.pull(n, now))         # far end -> speaker
    mic = io.read()                        # microphone -> encoder (all captured since last read)

``NullIO`` and ``FileIO`` follow the same protocol but are paced by the ``now`` they are given.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import select
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from softphone.media.resample import ResampleError, resample
from softphone.media.ring import Ring
from softphone.media.silence import silent_block
from softphone.media.wav import WavError, read_wav

logger = logging.getLogger(__name__)

Pcm: TypeAlias = npt.NDArray[np.float32]
Kind: TypeAlias = Literal["input", "output"]

PORTAUDIO_MISSING: Final = "PortAudio is not installed: sudo apt-get install libportaudio2"
SOUNDDEVICE_MISSING: Final = "the sounddevice package is not installed: pip install sounddevice"
_WAKE: Final = b"\x00"
# What the pump keeps queued for the speaker after each device block: every sample played waits
# about this long in the ring, and the pump must refill it before the card has played it out
# (after a 10 ms block's callback it has this much minus one block to wake up and write).
# `softphone bench mouth-to-ear` (JACK dummy card, 10 ms blocks): two blocks (20 ms) gave 77.6
# ms mouth-to-ear over Opus, 15 ms gave 73.2 and one block 67.8; `softphone bench device` over
# 60 s on the shared two-core machine counted 0 xruns at 20 and 15 ms, and 2 ring underruns
# (10 ms of zeros played) at one block, whose pump has no slack at all.
SPEAKER_MS: Final = 15
# A stream that has run no callback for this long has lost its card or server: a real card
# calls every 10-20 ms, and JACK's dummy driver every 10 ms.
STALL_S: Final = 0.6
STUCK_CLOSING: Final = (
    "PortAudio is still closing the stream of the audio device that went away (its JACK host "
    "waits up to 10 minutes for a server that has gone); restart softphone to use the device "
    "again"
)
# Closers of lost streams: while one runs, PortAudio must not be re-initialised (it would close
# that stream a second time and wait as long).
_closers: list[threading.Thread] = []


class AudioDeviceError(Exception):
    """No usable audio device: PortAudio missing, no such device, or the stream failed."""


# --- sounddevice, lazily -------------------------------------------------------------------


def _sounddevice() -> Any:
    """Import sounddevice (an untyped module) on first use, translating a missing PortAudio."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found")
        raise AudioDeviceError(PORTAUDIO_MISSING) from exc
    except ImportError as exc:
        raise AudioDeviceError(SOUNDDEVICE_MISSING) from exc
    return sounddevice


def portaudio_available() -> str | None:
    """None when PortAudio can be used, else the reason (for ``softphone devices``)."""
    try:
        _sounddevice()
    except AudioDeviceError as exc:
        return str(exc)
    return None


def rescan_devices() -> None:
    """Re-initialise PortAudio so it sees servers/devices that appeared since import.

    PortAudio enumerates devices (and reads ``JACK_DEFAULT_SERVER``) in ``Pa_Initialize``.
    Call only while no ``DeviceIO`` is open.
    """
    if closing_stuck():
        raise AudioDeviceError(STUCK_CLOSING)
    sd = _sounddevice()
    try:
        sd._terminate()
        sd._initialize()
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot re-initialise PortAudio: {exc}") from exc


def closing_stuck() -> bool:
    """True while a lost device's stream is still being closed (see ``DeviceIO.abandon``)."""
    _closers[:] = [t for t in _closers if t.is_alive()]
    return bool(_closers)


# --- device listing and selection ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def describe(self) -> str:
        marks = ("<" if self.is_default_input else " ") + (">" if self.is_default_output else " ")
        return (
            f"{marks} {self.index:3d} {self.name} ({self.host_api}, "
            f"{self.max_input_channels} in, {self.max_output_channels} out, "
            f"{self.default_samplerate:.0f} Hz)"
        )


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device, with the default input/output marked."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        host_apis = sd.query_hostapis()
        default_in, default_out = _default_indexes(sd)
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from exc
    return [
        DeviceInfo(
            index=index,
            name=str(info["name"]),
            host_api=str(host_apis[info["hostapi"]]["name"]),
            max_input_channels=int(info["max_input_channels"]),
            max_output_channels=int(info["max_output_channels"]),
            default_samplerate=float(info["default_samplerate"]),
            is_default_input=index == default_in,
            is_default_output=index == default_out,
        )
        for index, info in enumerate(devices)
    ]


def _default_indexes(sd: Any) -> tuple[int, int]:
    pair = sd.default.device
    return int(pair[0]), int(pair[1])


def find_device(spec: str | int | None, kind: Kind) -> int | None:
    """Resolve a device by index or case-insensitive name substring; None means the default.

    A name matching several devices resolves only if one of them matches exactly (ignoring
    case); otherwise the error lists the candidates.
    """
    if spec is None or spec == "":
        return None
    devices = [d for d in list_devices() if d.channels(kind) > 0]
    listing = "; ".join(d.describe().strip() for d in devices) or "none"
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        for device in devices:
            if device.index == index:
                return index
        raise AudioDeviceError(f"no {kind} device with index {index}; {kind} devices: {listing}")
    wanted = spec.strip().lower()
    matches = [d for d in devices if wanted in d.name.lower()]
    if len(matches) > 1:
        matches = [d for d in matches if d.name.lower() == wanted] or matches
    if len(matches) == 1:
        return matches[0].index
    if not matches:
        raise AudioDeviceError(f"no {kind} device matches {spec!r}; {kind} devices: {listing}")
    names = "; ".join(d.describe().strip() for d in matches)
    raise AudioDeviceError(f"{spec!r} matches several {kind} devices: {names}")


# --- the protocol --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioStats:
    underruns: int  # speaker ran dry / the device reported an underflow
    overruns: int  # captured audio or speaker audio dropped because a ring was full
    frames_played: int  # samples the speaker side consumed
    frames_captured: int  # samples the microphone side produced
    missing_samples: int = 0  # zeros played because the speaker ring was short
    dropped_samples: int = 0  # samples lost to full rings (both directions)


class AudioIO(Protocol):
    """One mono duplex audio stream, paced by the device (or by the ``now`` it is given)."""

    sample_rate: int

    def start(self) -> None: ...

    def close(self) -> None: ...

    def frames_wanted(self, now: float) -> int:
        """How many samples the player should write now."""
        ...

    def write(self, pcm: Pcm) -> None:
        """Queue audio for the speaker (dropped and counted if the buffer is full)."""
        ...

    def read(self) -> Pcm:
        """All captured samples since the last read."""
        ...

    @property
    def stats(self) -> AudioStats: ...


# --- the real-time part --------------------------------------------------------------------


class StreamExchange:
    """What the PortAudio thread touches: two rings, counters, and the wake-up pipe.

    The three callbacks follow sounddevice's signatures for ``Stream``, ``InputStream`` and
    ``OutputStream``. Streams are mono float32, so channel 0 of the stream buffer is contiguous.
    """

    def __init__(
        self, *, speaker_capacity: int, microphone_capacity: int, wake_fd: int = -1
    ) -> None:
        self.speaker = Ring(speaker_capacity)
        self.microphone = Ring(microphone_capacity)
        self.wake_fd = wake_fd
        self.input_underflows = 0
        self.input_overflows = 0
        self.output_underflows = 0
        self.output_overflows = 0
        self.callback_errors = 0
        self.frames_played = 0
        self.frames_captured = 0
        self.callbacks = 0

    def _flags(self, status: Any) -> None:
        if status:
            if status.input_underflow:
                self.input_underflows += 1
            if status.input_overflow:
                self.input_overflows += 1
            if status.output_underflow:
                self.output_underflows += 1
            if status.output_overflow:
                self.output_overflows += 1

    def _wake(self) -> None:
        self.callbacks += 1
        if self.wake_fd >= 0:
            try:
                os.write(self.wake_fd, _WAKE)
            except OSError:  # pipe full (nobody waiting) or closed: the pump polls anyway
                pass

    def duplex_callback(
        self, indata: Pcm, outdata: Pcm, frames: int, time: Any, status: Any
    ) -> None:
        try:
            self._flags(status)
            self.microphone.write(indata[:, 0])
            self.frames_captured += frames
            self.speaker.read_into(outdata[:, 0])
            self.frames_played += frames
        except Exception:  # never let PortAudio see an exception: count it, play silence
            self.callback_errors += 1
            outdata.fill(0.0)
        self._wake()

    def input_callback(self, indata: Pcm, frames: int, time: Any, status: Any) -> None:
        try:
            self._flags(status)
            self.microphone.write(indata[:, 0])
            self.frames_captured += frames
        except Exception:
            self.callback_errors += 1
        self._wake()

    def output_callback(self, outdata: Pcm, frames: int, time: Any, status: Any) -> None:
        try:
            self._flags(status)
            self.speaker.read_into(outdata[:, 0])
            self.frames_played += frames
        except Exception:
            self.callback_errors += 1
            outdata.fill(0.0)
        self._wake()

    def stats(self) -> AudioStats:
        spk, mic = self.speaker, self.microphone
        return AudioStats(
            underruns=self.output_underflows + self.input_underflows + spk.underruns,
            overruns=self.input_overflows + self.output_overflows + mic.overruns + spk.overruns,
            frames_played=self.frames_played,
            frames_captured=self.frames_captured,
            missing_samples=spk.missing_samples,
            dropped_samples=spk.dropped_samples + mic.dropped_samples,
        )


# --- PortAudio device ----------------------------------------------------------------------


class DeviceIO(AudioIO):
    """A sounddevice stream: duplex, or input-/output-only when one side is absent.

    Mono float32 at ``sample_rate`` (callers pass the device's native rate: see
    ``open_device``), ``block_ms`` blocks. The speaker ring is kept ``speaker_ms`` full by
    ``frames_wanted`` (at least one block); the microphone ring holds up to ``microphone_ms``
    of unread capture.
    """

    def __init__(
        self,
        input_device: int | None,
        output_device: int | None,
        *,
        sample_rate: int,
        block_ms: int = 10,
        speaker_ms: int = SPEAKER_MS,
        latency: str | float = "low",
        microphone_ms: int = 1000,
    ) -> None:
        if input_device is None and output_device is None:
            raise AudioDeviceError("no audio device: neither an input nor an output was given")
        sd = _sounddevice()
        self.sample_rate = sample_rate
        self.block = max(1, sample_rate * block_ms // 1000)
        self.target = max(self.block, sample_rate * speaker_ms // 1000)
        self.input_device = input_device
        self.output_device = output_device
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._exchange = StreamExchange(
            speaker_capacity=max(self.target * 4, self.block * 10),
            microphone_capacity=max(sample_rate * microphone_ms // 1000, self.block * 4),
            wake_fd=self._wake_w,
        )
        common: dict[str, Any] = {
            "samplerate": sample_rate,
            "blocksize": self.block,
            "dtype": "float32",
            "channels": 1,
            "latency": latency,
        }
        ex = self._exchange
        try:
            if input_device is not None and output_device is not None:
                stream = sd.Stream(
                    device=(input_device, output_device), callback=ex.duplex_callback, **common
                )
            elif input_device is not None:
                stream = sd.InputStream(device=input_device, callback=ex.input_callback, **common)
            else:
                stream = sd.OutputStream(
                    device=output_device, callback=ex.output_callback, **common
                )
        except (sd.PortAudioError, ValueError) as exc:
            self._close_pipe()
            raise AudioDeviceError(
                f"cannot open audio device (input {input_device}, output {output_device}) "
                f"at {sample_rate} Hz: {exc}"
            ) from exc
        self._sd = sd
        self._stream: Any = stream
        self._closed = False
        self._started = False
        self._progress = (-1, 0.0)  # (callbacks seen, when they last moved)

    @property
    def latency_s(self) -> tuple[float, float]:
        """(input, output) latency PortAudio reports for the stream (0 for a missing side)."""
        latency = self._stream.latency
        if isinstance(latency, tuple):
            return float(latency[0]), float(latency[1])
        if self.input_device is not None:
            return float(latency), 0.0
        return 0.0, float(latency)

    @property
    def exchange(self) -> StreamExchange:
        return self._exchange

    def start(self) -> None:
        if self._closed:
            raise AudioDeviceError("the audio stream is closed")
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot start the audio stream: {exc}") from exc
        self._started = True

    def stalled(self, now: float) -> str | None:
        """Why the started stream no longer runs (its card or sound server went away), or None.

        PortAudio marks a stream inactive when its JACK server shuts down; an unplugged ALSA
        card stops the callbacks. Either way, no callback for ``STALL_S`` of ``now`` (any
        monotonic clock, the same at every call) is a lost device."""
        if not self._started or self._closed:
            return None
        callbacks = self._exchange.callbacks
        if callbacks != self._progress[0]:
            self._progress = (callbacks, now)
            return None
        if not self._stream.active:
            return "the audio stream stopped (its sound server or card went away)"
        if now - self._progress[1] >= STALL_S:
            return f"no audio from the device for {now - self._progress[1]:.1f} s"
        return None

    def abandon(self) -> None:
        """Let a lost stream go without waiting for it.

        PortAudio 19.6 (Debian 12) closes a JACK stream by waiting for the server's process
        thread to let go of it, up to 10 minutes when the server has gone, and sounddevice's
        exit handler would do the same at exit. The close runs on a thread of its own; while
        it runs PortAudio is not re-initialised (``closing_stuck``), and the exit handler is
        dropped until it has finished, so that the process can still end."""
        if self._closed:
            return
        self._closed = True
        self._exchange.wake_fd = -1  # a late callback must not write to a reused descriptor
        self._close_pipe()
        handler = getattr(self._sd, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)
        closer = threading.Thread(
            target=self._close_stream, args=(handler,), name="close lost audio stream", daemon=True
        )
        _closers.append(closer)
        closer.start()

    def _close_stream(self, exit_handler: Any) -> None:
        try:
            self._stream.abort()
            self._stream.close()
        except self._sd.PortAudioError as exc:
            logger.info("closing the lost audio stream: %s", exc)
        if exit_handler is not None:
            atexit.register(exit_handler)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.stop()
            self._stream.close()
        except self._sd.PortAudioError as exc:
            logger.warning("closing the audio stream failed: %s", exc)
        finally:
            self._close_pipe()

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def frames_wanted(self, now: float) -> int:
        """Samples to write so the speaker ring holds ``speaker_ms`` again."""
        if self.output_device is None:
            return 0
        return max(0, self.target - self._exchange.speaker.available())

    def write(self, pcm: Pcm) -> None:
        if self.output_device is not None:
            self._exchange.speaker.write(pcm)

    def read(self) -> Pcm:
        self._drain_wakeups()  # a pump that never waits must not let the pipe fill up
        return self._exchange.microphone.read_available()

    @property
    def stats(self) -> AudioStats:
        return self._exchange.stats()

    def fileno(self) -> int:
        """Readable after every device callback (for ``loop.add_reader``); drain with ``wait(0)``."""
        return self._wake_r

    def wait(self, timeout_s: float) -> bool:
        """Block until the device has run a callback since the last wait/read (True) or timeout."""
        if self._wake_r < 0:
            return False
        ready, _, _ = select.select([self._wake_r], [], [], timeout_s)
        if not ready:
            return False
        self._drain_wakeups()
        return True

    def _drain_wakeups(self) -> None:
        if self._wake_r < 0:
            return
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass


def open_device(
    input: str | int | None = None,
    output: str | int | None = None,
    sample_rate: int | None = None,
    block_ms: int = 10,
) -> DeviceIO:
    """Open the named (or default) devices at their native rate (or ``sample_rate``).

    A side whose spec is None and for which the system has no default device is left out
    (input-only / output-only stream). A spec that matches nothing raises.
    """
    in_index = find_device(input, "input")
    out_index = find_device(output, "output")
    devices = {d.index: d for d in list_devices()}
    if in_index is None:
        in_index = next((d.index for d in devices.values() if d.is_default_input), None)
    if out_index is None:
        out_index = next((d.index for d in devices.values() if d.is_default_output), None)
    main = out_index if out_index is not None else in_index
    if main is None:
        raise AudioDeviceError("no audio device found (PortAudio lists no input or output)")
    if sample_rate is None:
        sample_rate = round(devices[main].default_samplerate)
    return DeviceIO(in_index, out_index, sample_rate=sample_rate, block_ms=block_ms)


# --- paced by `now`: null and file back ends -------------------------------------------------


class NullIO(AudioIO):
    """A device that plays into nothing and captures silence, paced by the ``now`` it is given.

    The clock starts at the first ``frames_wanted(now)``; from then on the device has consumed
    ``floor(elapsed * sample_rate)`` samples, and ``frames_wanted`` is that minus what was
    written. Capture runs at the same pace: ``read()`` returns what the device captured up to
    the last ``now`` seen. Writing more than ``buffer_ms`` ahead of the clock is an overrun
    (dropped and counted); a pump more than ``buffer_ms`` behind counts an underrun (a real
    device with that much buffering would have run dry) but loses nothing.
    """

    def __init__(self, sample_rate: int, *, buffer_ms: int = 100) -> None:
        self.sample_rate = sample_rate
        self._buffer = sample_rate * buffer_ms // 1000
        self._t0: float | None = None
        self._due = 0
        self._written = 0
        self._captured = 0
        self._underruns = 0
        self._overruns = 0
        self._dropped = 0
        self._closed = False

    def start(self) -> None:
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def frames_wanted(self, now: float) -> int:
        if self._t0 is None:
            self._t0 = now
        self._due = max(self._due, math.floor((now - self._t0) * self.sample_rate))
        lacking = self._due - self._written
        if lacking > self._buffer:
            self._underruns += 1
        return max(0, lacking)

    def write(self, pcm: Pcm) -> None:
        room = self._due + self._buffer - self._written
        count = int(pcm.shape[0])
        if count > room:
            self._overruns += 1
            self._dropped += count - max(0, room)
            count = max(0, room)
        self._written += count

    def read(self) -> Pcm:
        count = self._due - self._captured
        self._captured = self._due
        return self._capture(count)

    def _capture(self, count: int) -> Pcm:
        return silent_block(count)  # known silence: nobody reads its samples to find out

    @property
    def stats(self) -> AudioStats:
        return AudioStats(
            underruns=self._underruns,
            overruns=self._overruns,
            frames_played=self._written,
            frames_captured=self._captured,
            dropped_samples=self._dropped,
        )


class FileIO(NullIO):
    """``NullIO`` whose microphone plays a WAV file once (any rate, mono or stereo), then silence.

    The file is read and resampled to ``sample_rate`` up front. What is written to the speaker
    is discarded (record it with ``wav.WavWriter`` where it is produced).
    """

    def __init__(
        self, path_in: str | Path | None, sample_rate: int, *, buffer_ms: int = 100
    ) -> None:
        super().__init__(sample_rate, buffer_ms=buffer_ms)
        self.path_in = Path(path_in) if path_in is not None else None
        self._source: Pcm = np.zeros(0, dtype=np.float32)
        self._position = 0
        if self.path_in is not None:
            try:
                pcm, rate = read_wav(self.path_in)
                self._source = resample(pcm, rate, sample_rate)
            except (WavError, ResampleError) as exc:
                raise AudioDeviceError(f"cannot play {self.path_in}: {exc}") from exc

    @property
    def source_samples(self) -> int:
        """Length of the file at ``sample_rate``."""
        return int(self._source.shape[0])

    @property
    def capture_finished(self) -> bool:
        """True once the whole file has been captured (silence from here on)."""
        return bool(self._position >= self._source.shape[0])

    def _capture(self, count: int) -> Pcm:
        out = np.zeros(count, dtype=np.float32)
        take = min(count, self._source.shape[0] - self._position)
        if take > 0:
            out[:take] = self._source[self._position : self._position + take]
            self._position += take
        return out
