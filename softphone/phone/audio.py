"""Where a call's audio comes from and goes to: a sound device, a WAV file, or nothing.

An ``AudioEngine`` pumps one duplex ``AudioIO`` (media/device.py) on the event loop: every tick it
hands what the microphone captured to each attached port and asks each port for the samples the
speaker wants now, mixed. The device (or, headless, the loop clock) sets the pace through
``frames_wanted``; nothing here blocks, and the PortAudio callback never waits for this code.
A sound card wakes the pump itself after each of its blocks (its wake-up pipe, read by the
loop), so the pump runs once per block, right after the block has gone, rather than on a 5 ms
timer (100 wake-ups a second with 10 ms blocks instead of 200); a slow timer remains for a card
that stops calling back.
Headless, the loop's timer is the clock: a tick per 20 ms frame.
A call's port has its RTP socket read by the pump, first thing in every step, rather than by
the loop (``NetworkPort``): one wake-up per step instead of one more per packet.

An ``AudioProvider`` decides which engine a call uses:
- ``DeviceAudio``: one engine on the configured sound device, shared by all calls (the held
  call's port is simply silent), with echo cancellation when asked (phone/echo_control.py);
  when there is no device, a notice and a silent engine.
- ``FileAudio``: per call, a WAV file as the microphone and a WAV file recording what the
  listener would hear (``--play`` / ``--record``); the n-th call records to ``OUT-n.wav``.
- ``NullAudio``: silence in, nothing out (headless, tests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from softphone.media.device import (
    STUCK_CLOSING,
    AudioDeviceError,
    AudioIO,
    FileIO,
    NullIO,
    closing_stuck,
    open_device,
    rescan_devices,
)
from softphone.media.echo import EchoCanceller
from softphone.media.levels import LevelMeter
from softphone.media.silence import is_known_silence, silent_block
from softphone.media.tones import RING, ToneGenerator
from softphone.media.tones import ringback as ringback_tone
from softphone.media.wav import RECORDING_SYNC_S, WavWriter
from softphone.phone.device_watch import DeviceWatch
from softphone.phone.echo_control import EchoControl
from softphone.phone.mixing import Conference

logger = logging.getLogger(__name__)

Pcm = np.ndarray
TICK_S = 0.005  # the pump runs every 5 ms: a 10 ms device block is never left waiting long
# Headless, nothing waits on a device block: one tick per 20 ms RTP frame does the same work in a
# quarter of the wake-ups (each wake-up walks every call's port: 40 calls, 8,000 a second at 5 ms).
# With a WAV file as microphone or recorder (--play/--record) the pump pulls 20 ms at a time as
# well. The jitter buffer's floor follows the pull block (20 + 5 ms), so such calls play ~10 ms
# later than with 10 ms pulls. In exchange they cost less CPU: `softphone bench cpu --seconds
# 30`, alternated, 2.33 and 2.25x baresip against 2.61 and 2.74 at 10 ms. Quality held on a
# loaded machine (2 busy loops beside a CI run): `bench quality --calls 3` 4.10-4.13 at both, and
# two softphones in one process 3.01-4.13 at 20 ms against 3.00-4.14 at 10 ms. Before the floor
# followed the pull block, 20 ms pulls concealed under load.
HEADLESS_TICK_S = 0.02
# With a device that wakes the pump after each block, the timer only looks after a device that
# has stopped calling back (device_watch.py notices it within STALL_S).
WOKEN_TICK_S = 0.05
HEADLESS_RATE = 48000
# While a sound card is lost, PortAudio is initialised again to find it, on the event loop (no
# other thread may touch PortAudio meanwhile). That takes a few ms here and can take hundreds
# where ALSA probes many devices: the next rescan waits so that at most this share of the loop's
# time goes to it (a 6 ms rescan: every retry; a 300 ms one: every 6 s).
RESCAN_SHARE = 0.05


class AudioPort(Protocol):
    """A call's side of the engine; both run on the event loop, at the engine's rate."""

    def capture(self, pcm: Pcm, now: float) -> None: ...

    def render(self, samples: int, now: float) -> Pcm: ...


@runtime_checkable
class NetworkPort(AudioPort, Protocol):
    """A port with a socket of its own (a call's RTP), which the pump reads while attached."""

    def read_by_pump(self, polled: bool) -> None: ...

    def poll_network(self) -> None: ...


class AudioEngine:
    def __init__(
        self,
        io: AudioIO,
        *,
        record_to: Path | None = None,
        name: str = "audio",
        silent_because: str | None = None,
        tick_s: float = TICK_S,
    ) -> None:
        self.io = io
        self.name = name
        self.tick_s = tick_s
        # Why a sound device was wanted but this engine plays into nothing (None: it plays,
        # or silence was asked for, as headless and in tests).
        self.silent_because = silent_because
        self.sample_rate = io.sample_rate
        self._ports: list[AudioPort] = []
        self._polled: list[NetworkPort] = []
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_fd = -1  # the device's wake-up pipe while the loop reads it
        self._next_at = 0.0
        self._record_path = record_to
        self._recorder: WavWriter | None = None
        self.mic_level = LevelMeter(self.sample_rate)
        self.speaker_level = LevelMeter(self.sample_rate)
        self.errors: list[str] = []
        self._closed = False
        # The calls joined in a local conference (phone/mixing.py), or None: one per engine.
        self.conference: Conference | None = None
        # Echo cancellation between what the speaker plays and the microphone (sound card only;
        # phone/echo_control.py puts it here and takes it away).
        self.echo: EchoCanceller | None = None
        # Called after every tick with the loop's time (phone/device_watch.py: a sound card that
        # goes away mid-call).
        self.watch: Callable[[float], None] | None = None

    # -- lifecycle
    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self._record_path is not None:
            self._record_path.parent.mkdir(parents=True, exist_ok=True)
            self._recorder = WavWriter(
                self._record_path, self.sample_rate, 1, sync_s=RECORDING_SYNC_S
            )
        self.io.start()
        self._follow_device()
        # The first tick runs at once: it starts a headless device's clock, so that the first
        # 20 ms frame of microphone is there and sent one tick later, not two (a call's first
        # RTP went out 40 ms after the answer).
        self._next_at = self._loop.time() - self.tick_s
        self._schedule()

    def _follow_device(self) -> None:
        """Pump when the device says a block has gone, if it can say so (``fileno``)."""
        assert self._loop is not None
        if self._wake_fd >= 0:
            self._loop.remove_reader(self._wake_fd)
            self._wake_fd = -1
        fileno = getattr(self.io, "fileno", None)
        fd = fileno() if callable(fileno) else -1
        if isinstance(fd, int) and fd >= 0 and not self._closed:
            try:
                self._loop.add_reader(fd, self._woken)
            except NotImplementedError:  # a loop that cannot watch a pipe: the timer paces it
                return
            self._wake_fd = fd

    def _woken(self) -> None:
        assert self._loop is not None
        try:
            self.pump(self._loop.time())  # reading the microphone drains the pipe
        except Exception as exc:  # a broken port must not stop the other calls' audio
            logger.exception("audio pump failed")
            self.errors.append(str(exc))
            wait = getattr(self.io, "wait", None)
            if callable(wait):
                wait(0.0)  # drained all the same: an undrained pipe would wake the loop forever

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for port in self._polled:  # the loop reads their sockets again
            port.read_by_pump(False)
        self._polled.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._wake_fd >= 0 and self._loop is not None:
            self._loop.remove_reader(self._wake_fd)
            self._wake_fd = -1
        self.io.close()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    # -- ports
    def attach(self, port: AudioPort) -> None:
        if port not in self._ports:
            self._ports.append(port)
        self.start()
        if isinstance(port, NetworkPort) and port not in self._polled and not self._closed:
            port.read_by_pump(True)
            self._polled.append(port)

    def detach(self, port: AudioPort) -> None:
        if port in self._ports:
            self._ports.remove(port)
        if isinstance(port, NetworkPort) and port in self._polled:
            self._polled.remove(port)
            port.read_by_pump(False)
        if self.conference is not None and port in self.conference:
            self.conference.remove(port)

    @property
    def ports(self) -> int:
        return len(self._ports)

    # -- the pump
    def _schedule(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        period = WOKEN_TICK_S if self._wake_fd >= 0 else self.tick_s
        self._next_at = max(self._next_at + period, now)
        self._handle = self._loop.call_at(self._next_at, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        self._handle = None
        try:
            self.pump(self._loop.time())
        except Exception as exc:  # a broken port must not stop the other calls' audio
            logger.exception("audio pump failed")
            self.errors.append(str(exc))
        if self.watch is not None:
            try:
                self.watch(self._loop.time())
            except Exception as exc:
                logger.exception("audio device watch failed")
                self.errors.append(str(exc))
        if not self._closed:
            self._schedule()

    def replace_io(self, io: AudioIO, *, silent_because: str | None = None) -> AudioIO:
        """Go on with ``io`` (at the engine's rate: the calls' ports keep theirs) and hand back
        the one it replaces, neither closed nor stopped: the caller knows how to let it go."""
        if io.sample_rate != self.sample_rate:
            raise ValueError(f"{io.sample_rate} Hz for an engine at {self.sample_rate} Hz")
        if self._loop is not None and not self._closed:
            io.start()  # first: a device that will not start leaves the engine as it was
        old, self.io = self.io, io
        self.silent_because = silent_because
        if self._loop is not None and not self._closed:
            self._follow_device()
        return old

    def pump(self, now: float) -> None:
        """One step: microphone to ports, ports to speaker. Public so tests can walk a clock.

        With a conference, every port renders first so that each conferenced port can send the
        others' audio with our microphone in the same tick."""
        for network in self._polled:  # before rendering: what has come in is played
            try:
                network.poll_network()
            except Exception as exc:  # one call's socket must not stop the others' audio
                logger.exception("reading a call's RTP failed")
                self.errors.append(str(exc))
        wanted = self.io.frames_wanted(now)  # it moves a paced (headless) clock to now
        mic = self.io.read()
        if (echo := self.echo) is not None:
            mic = echo.capture(mic)
        if (
            mic.ndim == 1
            and len(mic)
            and mic.dtype == np.float32
            and not is_known_silence(mic)
            and not mic.any()
        ):
            # Checked once here rather than by every call (media/silence.py); after the
            # canceller, since what it leaves is what the calls send.
            mic = silent_block(len(mic))
        ports, conference = list(self._ports), self.conference
        out: Pcm | None = None
        if wanted > 0:
            out = np.zeros(wanted, dtype=np.float32)
            rendered: dict[object, Pcm] = {}
            for port in ports:
                pcm = port.render(wanted, now)
                out += pcm
                if conference is not None and port in conference:
                    rendered[port] = pcm
            if conference is not None:
                conference.mix(rendered)
        if len(mic):
            self.mic_level.update(mic)
            for port in ports:
                if conference is None or port not in conference:
                    port.capture(mic, now)
            if conference is not None:
                conference.capture(mic, now)
        if out is None:
            return
        # Two ufuncs in place: np.clip's Python wrappers cost more than the clipping itself.
        np.minimum(out, 1.0, out=out)
        np.maximum(out, -1.0, out=out)
        if echo is not None:
            echo.render(out)
        self.speaker_level.update(out)
        self.io.write(out)
        if self._recorder is not None:
            self._recorder.write(out)


class TonePort:
    """Plays a tone pattern (ringback, ring) into an engine; captures nothing."""

    def __init__(self, generator: ToneGenerator) -> None:
        self._generator = generator

    def capture(self, pcm: Pcm, now: float) -> None:
        pass

    def render(self, samples: int, now: float) -> Pcm:
        return self._generator.next(samples)


class AudioProvider(Protocol):
    def engine_for_call(self, call_number: int) -> AudioEngine:
        """The engine the n-th media call (1-based) uses."""

    def release(self, engine: AudioEngine) -> None:
        """The call is over."""

    def tones(self, *, ringback: bool, ring: bool) -> None:
        """Play (or stop) the ringback tone (we call, it rings there) and the ring tone (a
        call for us). Headless providers play none: a recording holds only the far end."""

    def close(self) -> None: ...


class NullAudio:
    """Silence in; what the far end says goes nowhere.

    Like a sound card, one engine serves every call (each call is a port on it): the pump's
    own work (a tick every 20 ms, metering, mixing) is paid once, not once per call, which is
    what lets a headless phone hold many calls at once.
    """

    # A class default, so that providers built on this one need not call its __init__.
    _engine: AudioEngine | None = None

    def engine_for_call(self, call_number: int) -> AudioEngine:
        if self._engine is None:
            self._engine = AudioEngine(NullIO(HEADLESS_RATE), name="null", tick_s=HEADLESS_TICK_S)
        return self._engine

    def release(self, engine: AudioEngine) -> None:
        pass  # shared: closed with the phone

    def tones(self, *, ringback: bool, ring: bool) -> None:
        pass

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def numbered(path: Path, n: int) -> Path:
    """``OUT.wav`` for the first call, ``OUT-2.wav`` for the second, and so on."""
    return path if n <= 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


class FileAudio:
    """``--play IN.wav --record OUT.wav``: per call, the WAV as the microphone (then silence),
    and a mono WAV of what the listener hears after the jitter buffer and decoding."""

    def __init__(self, play: Path | None, record: Path | None) -> None:
        self.play = play
        self.record = record

    def engine_for_call(self, call_number: int) -> AudioEngine:
        io: AudioIO = (
            FileIO(self.play, HEADLESS_RATE) if self.play is not None else NullIO(HEADLESS_RATE)
        )
        record = numbered(self.record, call_number) if self.record is not None else None
        return AudioEngine(io, record_to=record, name="file", tick_s=HEADLESS_TICK_S)

    def release(self, engine: AudioEngine) -> None:
        engine.close()

    def tones(self, *, ringback: bool, ring: bool) -> None:
        pass

    def close(self) -> None:
        pass


def greeting_engine(greeting: Path) -> AudioEngine:
    """The answering machine's engine for one call: ``greeting`` as its voice, then silence;
    what the caller says is recorded by the call (CallMedia.start_recording), not here."""
    return AudioEngine(
        FileIO(greeting, HEADLESS_RATE), name="answering machine", tick_s=HEADLESS_TICK_S
    )


class DeviceAudio:
    """The sound card, shared by every call; opened at the first call, kept until the phone stops.

    When PortAudio or the device is missing, ``on_problem`` hears why once and calls go on
    without sound (a silent engine), so the phone keeps working headless.
    """

    def __init__(
        self,
        input_device: str | int | None,
        output_device: str | int | None,
        *,
        on_problem: Callable[[str], None],
        ring_device: str | int | None = None,
        echo_cancellation: bool = False,
    ) -> None:
        self._input = input_device
        self._output = output_device
        self._ring_device = ring_device
        self._on_problem = on_problem
        self._engine: AudioEngine | None = None
        self._ring_engine: AudioEngine | None = None
        self._ringback_port: TonePort | None = None
        self._ring_port: TonePort | None = None
        self.echo = EchoControl(echo_cancellation, on_problem)
        self.watch: DeviceWatch | None = None
        self._next_rescan = 0.0  # monotonic time (RESCAN_SHARE)

    def engine_for_call(self, call_number: int) -> AudioEngine:
        if self._engine is None:
            try:
                io: AudioIO = open_device(self._input, self._output)
                self._engine = AudioEngine(io, name="device")
                self._engine.start()
                self.echo.attach(self._engine)
                self.watch = DeviceWatch(self._engine, self._reopen, self._on_problem)
                self._engine.watch = self.watch.check
            except AudioDeviceError as exc:
                self._on_problem(f"no audio device, calls are silent: {exc}")
                self._engine = AudioEngine(
                    NullIO(HEADLESS_RATE), name="null", silent_because=str(exc)
                )
        return self._engine

    def _reopen(self, sample_rate: int) -> AudioIO:
        """The configured device again, at the rate the calls run at (device_watch.py).

        PortAudio lists devices as they were at its last initialise; it is initialised again
        to find a card that came back, unless another stream of ours is open (the ring device)
        or a lost one is still closing."""
        now = time.monotonic()
        if self._ring_engine is None and not closing_stuck() and now >= self._next_rescan:
            rescan_devices()
            cost = time.monotonic() - now
            self._next_rescan = now + cost / RESCAN_SHARE
        try:
            return open_device(self._input, self._output, sample_rate=sample_rate)
        except AudioDeviceError as exc:
            if closing_stuck():
                raise AudioDeviceError(STUCK_CLOSING) from exc
            raise

    def _ringer(self) -> AudioEngine:
        """Where the ring tone plays: ``ring_device`` when configured, else the call device."""
        if self._ring_device is None:
            return self.engine_for_call(0)
        if self._ring_engine is None:
            try:
                self._ring_engine = AudioEngine(open_device(None, self._ring_device), name="ring")
                self._ring_engine.start()
            except AudioDeviceError as exc:
                self._on_problem(f"ring device unusable, ringing on the call device: {exc}")
                self._ring_device = None
                return self.engine_for_call(0)
        return self._ring_engine

    def tones(self, *, ringback: bool, ring: bool) -> None:
        if ringback and self._ringback_port is None:
            engine = self.engine_for_call(0)
            self._ringback_port = TonePort(ToneGenerator(ringback_tone("eu"), engine.sample_rate))
            engine.attach(self._ringback_port)
        elif not ringback and self._ringback_port is not None:
            self.engine_for_call(0).detach(self._ringback_port)
            self._ringback_port = None
        if ring and self._ring_port is None:
            engine = self._ringer()
            self._ring_port = TonePort(ToneGenerator(RING, engine.sample_rate))
            engine.attach(self._ring_port)
        elif not ring and self._ring_port is not None:
            self._ringer().detach(self._ring_port)
            self._ring_port = None

    def release(self, engine: AudioEngine) -> None:
        pass  # shared: closed with the phone

    def close(self) -> None:
        for engine in (self._engine, self._ring_engine):
            if engine is not None:
                engine.close()
        self._engine = self._ring_engine = None
        self._ringback_port = self._ring_port = None
