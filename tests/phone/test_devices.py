"""DeviceService: listing, the 440 Hz test tone and the microphone meter, through fake devices."""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt
import pytest

from softphone.media.device import (
    AudioDeviceError,
    AudioStats,
    DeviceInfo,
    list_devices,
    portaudio_available,
)
from softphone.phone.devices import TEST_TONE_DBFS, TEST_TONE_HZ, DeviceChoice, DeviceService
from softphone.phone.errors import PhoneError

RATE = 48_000


class FakeDevice:
    """An AudioIO that records what is written and captures ``capture`` (one block per read)."""

    def __init__(
        self, sample_rate: int = RATE, capture: npt.NDArray[np.float32] | None = None
    ) -> None:
        self.sample_rate = sample_rate
        self.written: list[npt.NDArray[np.float32]] = []
        self.capture = capture
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True

    def frames_wanted(self, now: float) -> int:
        return 480  # one 10 ms block per tick

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        self.written.append(pcm.copy())

    def read(self) -> npt.NDArray[np.float32]:
        if self.capture is None:
            return np.zeros(0, dtype=np.float32)
        block, self.capture = self.capture[:4800], self.capture[4800:]
        return block

    @property
    def stats(self) -> AudioStats:
        return AudioStats(underruns=0, overruns=0, frames_played=0, frames_captured=0)


class Opener:
    def __init__(self, device: FakeDevice) -> None:
        self.device = device
        self.opened: list[tuple[object, object]] = []

    def __call__(self, input: str | int | None, output: str | int | None) -> FakeDevice:
        self.opened.append((input, output))
        return self.device


async def no_wait(seconds: float) -> None:
    return None


def info(
    index: int, name: str, ins: int, outs: int, *, din: bool = False, dout: bool = False
) -> DeviceInfo:
    return DeviceInfo(
        index=index,
        name=name,
        host_api="ALSA",
        max_input_channels=ins,
        max_output_channels=outs,
        default_samplerate=48000.0,
        is_default_input=din,
        is_default_output=dout,
    )


def test_list_maps_portaudio_devices_to_choices() -> None:
    service = DeviceService(
        list_devices=lambda: [info(0, "Mic", 2, 0, din=True), info(3, "Speakers", 0, 2, dout=True)]
    )
    assert service.list() == [
        DeviceChoice(
            name="Mic", index=0, inputs=2, outputs=0, is_default_input=True, is_default_output=False
        ),
        DeviceChoice(
            name="Speakers",
            index=3,
            inputs=0,
            outputs=2,
            is_default_input=False,
            is_default_output=True,
        ),
    ]
    assert service.list()[1].label == "3: Speakers (default)"


def test_list_raises_phone_error_with_the_portaudio_reason() -> None:
    def missing() -> list[DeviceInfo]:
        raise AudioDeviceError("PortAudio is not installed: sudo apt-get install libportaudio2")

    with pytest.raises(
        PhoneError, match=r"^PortAudio is not installed: sudo apt-get install libportaudio2$"
    ):
        DeviceService(list_devices=missing).list()


def test_list_on_this_machine_matches_portaudio() -> None:
    # Without PortAudio: PhoneError with its reason. With it: one choice per PortAudio device
    # (this CI machine has no sound card, so that is []).
    reason = portaudio_available()
    if reason is not None:
        with pytest.raises(PhoneError, match=re.escape(reason)):
            DeviceService().list()
    else:
        assert [c.index for c in DeviceService().list()] == [d.index for d in list_devices()]


async def test_test_tone_writes_one_second_of_440_hz_and_closes() -> None:
    device = FakeDevice()
    opener = Opener(device)
    await DeviceService(open_device=opener, clock=lambda: 0.0, sleep=no_wait).test_tone("USB", 1.0)
    assert opener.opened == [(None, "USB")]
    assert device.started and device.closed
    pcm = np.concatenate(device.written)
    assert pcm.shape == (RATE,)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.shape[0])))
    peak_hz = float(np.argmax(spectrum)) * RATE / pcm.shape[0]
    assert abs(peak_hz - TEST_TONE_HZ) <= 1.0
    peak_dbfs = 20 * math.log10(float(np.max(np.abs(pcm))))
    assert abs(peak_dbfs - TEST_TONE_DBFS) < 0.1


async def test_test_tone_open_failure_is_a_phone_error() -> None:
    def broken(input: str | int | None, output: str | int | None) -> FakeDevice:
        raise AudioDeviceError("no output device matches 'nope'")

    with pytest.raises(
        PhoneError, match="cannot play the test tone: no output device matches 'nope'"
    ):
        await DeviceService(open_device=broken, sleep=no_wait).test_tone("nope")


def test_meter_reads_a_known_sine_in_dbfs() -> None:
    t = np.arange(RATE, dtype=np.float64) / RATE
    sine = (0.25 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)  # RMS 0.25/sqrt(2)
    device = FakeDevice(capture=sine)
    opener = Opener(device)
    service = DeviceService(open_device=opener)
    assert service.mic_level() is None  # no meter yet
    service.start_meter(2)
    assert opener.opened == [(2, None)] and device.started
    level = service.mic_level()
    assert level is not None
    assert abs(level - 20 * math.log10(0.25 / math.sqrt(2))) < 0.5  # about -15.05 dBFS
    service.stop_meter()
    assert device.closed and service.mic_level() is None


def test_meter_open_failure_is_a_phone_error() -> None:
    def broken(input: str | int | None, output: str | int | None) -> FakeDevice:
        raise AudioDeviceError("no input device found (PortAudio lists none)")

    with pytest.raises(PhoneError, match="cannot open the microphone: no input device found"):
        DeviceService(open_device=broken).start_meter(None)
