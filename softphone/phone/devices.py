"""Audio devices for the settings screen: list them, play a test tone, meter a microphone.

The TUI may not import ``softphone.media`` (import-linter), so :class:`DeviceService` is its
window onto ``softphone.media.device``. Every ``AudioDeviceError`` becomes a
:class:`~softphone.phone.errors.PhoneError` whose message is the reason in words.

Opening a device goes through an injectable ``open_device(input, output) -> AudioIO`` callable
(default: a one-sided PortAudio stream; a tone needs no microphone and a meter no speaker), so
tests hand in a fake device that records what was written or captures a known sine. The tone is
paced by the device (``frames_wanted``) and by an injectable ``clock``/``sleep`` pair.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from softphone.media.device import (
    AudioDeviceError,
    AudioIO,
    DeviceInfo,
    DeviceIO,
    find_device,
    list_devices,
)
from softphone.media.levels import LevelMeter
from softphone.media.tones import ToneGenerator, steady_tone
from softphone.phone.errors import PhoneError

__all__ = [
    "TEST_TONE_DBFS",
    "TEST_TONE_HZ",
    "DeviceChoice",
    "DeviceService",
    "DeviceSpec",
    "OpenDevice",
    "open_one_sided",
]

DeviceSpec: TypeAlias = str | int | None
OpenDevice: TypeAlias = Callable[[DeviceSpec, DeviceSpec], AudioIO]
"""``open_device(input, output)``: one of them is None (a tone has no input, a meter no output)."""

TEST_TONE_HZ: Final = 440.0
TEST_TONE_DBFS: Final = -12.0
_TICK_S: Final = 0.01  # the tone loop tops the speaker buffer up every 10 ms


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChoice:
    """One device as a picker shows it."""

    name: str
    index: int
    inputs: int  # input channels (0: not a microphone)
    outputs: int  # output channels (0: not a speaker)
    is_default_input: bool
    is_default_output: bool

    @property
    def label(self) -> str:
        """``"3: USB Headset"`` with "(default)" when it is a default device."""
        default = " (default)" if self.is_default_input or self.is_default_output else ""
        return f"{self.index}: {self.name}{default}"


def open_one_sided(input: DeviceSpec, output: DeviceSpec) -> AudioIO:
    """Open only the side that is given (None on the other side), at the device's native rate.

    ``softphone.media.device.open_device`` would add the default device on the missing side;
    a test tone must not need a microphone. A spec of None on the wanted side means its default.
    """
    devices = {d.index: d for d in list_devices()}
    if output is not None or input is None:
        index = find_device(output, "output")
        if index is None:
            index = next((d.index for d in devices.values() if d.is_default_output), None)
        if index is None:
            raise AudioDeviceError("no output device found (PortAudio lists none)")
        rate = round(devices[index].default_samplerate)
        return DeviceIO(None, index, sample_rate=rate)
    index = find_device(input, "input")
    if index is None:
        index = next((d.index for d in devices.values() if d.is_default_input), None)
    if index is None:
        raise AudioDeviceError("no input device found (PortAudio lists none)")
    rate = round(devices[index].default_samplerate)
    return DeviceIO(index, None, sample_rate=rate)


class DeviceService:
    """Device listing, a test tone and a microphone meter (one meter at a time)."""

    def __init__(
        self,
        *,
        open_device: OpenDevice = open_one_sided,
        list_devices: Callable[[], list[DeviceInfo]] = list_devices,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._open = open_device
        self._list = list_devices
        self._clock = clock
        self._sleep = sleep
        self._meter_io: AudioIO | None = None
        self._meter: LevelMeter | None = None

    # ------------------------------------------------------------------ listing
    def list(self) -> list[DeviceChoice]:
        """Every device PortAudio knows ([] when it lists none).

        Raises PhoneError with the reason when PortAudio is missing or fails."""
        try:
            infos = self._list()
        except AudioDeviceError as exc:
            raise PhoneError(str(exc)) from exc
        return [
            DeviceChoice(
                name=d.name,
                index=d.index,
                inputs=d.max_input_channels,
                outputs=d.max_output_channels,
                is_default_input=d.is_default_input,
                is_default_output=d.is_default_output,
            )
            for d in infos
        ]

    # ------------------------------------------------------------------ test tone
    async def test_tone(self, output: str | int | None, seconds: float = 1.0) -> None:
        """Play a steady 440 Hz tone at -12 dBFS for ``seconds`` on ``output`` (None: the
        default output), then close the device. PhoneError when it cannot be opened or played."""
        try:
            io = await asyncio.to_thread(self._open, None, output)
        except AudioDeviceError as exc:
            raise PhoneError(f"cannot play the test tone: {exc}") from exc
        clock = self._clock or asyncio.get_running_loop().time
        try:
            io.start()
            tone = ToneGenerator(steady_tone(TEST_TONE_HZ, TEST_TONE_DBFS), io.sample_rate)
            remaining = round(seconds * io.sample_rate)
            while remaining > 0:
                wanted = min(io.frames_wanted(clock()), remaining)
                if wanted > 0:
                    io.write(tone.next(wanted))
                    remaining -= wanted
                await self._sleep(_TICK_S)
            await self._sleep(2 * _TICK_S)  # let the last buffered blocks reach the speaker
        except AudioDeviceError as exc:
            raise PhoneError(f"cannot play the test tone: {exc}") from exc
        finally:
            io.close()

    # ------------------------------------------------------------------ microphone meter
    def start_meter(self, input: str | int | None) -> None:
        """Open ``input`` (None: the default microphone) for :meth:`mic_level`; replaces a
        running meter. PhoneError when the device cannot be opened."""
        self.stop_meter()
        try:
            io = self._open(input, None)
            io.start()
        except AudioDeviceError as exc:
            raise PhoneError(f"cannot open the microphone: {exc}") from exc
        self._meter_io = io
        self._meter = LevelMeter(io.sample_rate)

    def mic_level(self) -> float | None:
        """The RMS level (dBFS) of what the microphone captured since the last call; the last
        level when nothing new arrived; None when no meter runs."""
        io, meter = self._meter_io, self._meter
        if io is None or meter is None:
            return None
        pcm = io.read()
        if pcm.shape[0] == 0:
            return meter.last.rms_dbfs
        return meter.update(pcm).rms_dbfs

    def stop_meter(self) -> None:
        """Close the meter's device (nothing happens when none is open)."""
        io, self._meter_io, self._meter = self._meter_io, None, None
        if io is not None:
            with contextlib.suppress(AudioDeviceError):
                io.close()
