"""A sound card that goes away under a call (phone/device_watch.py), with a clock walked by
argument: the engine goes on silent, the user hears it once, the device is tried again every
second, and the engine moves back onto it when it opens."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.device import AudioDeviceError, AudioStats, NullIO
from softphone.phone.audio import AudioEngine
from softphone.phone.device_watch import RETRY_S, DeviceWatch


class FakeDevice(NullIO):
    """A device whose stream stops when told to; counts how it was let go."""

    def __init__(self, sample_rate: int = 48000) -> None:
        super().__init__(sample_rate)
        self.why: str | None = None
        self.abandoned = 0
        self.started = 0

    def start(self) -> None:
        super().start()
        self.started += 1

    def stalled(self, now: float) -> str | None:
        return self.why

    def abandon(self) -> None:
        self.abandoned += 1


class Reopen:
    def __init__(self) -> None:
        self.attempts: list[int] = []
        self.device: FakeDevice | None = None

    def __call__(self, rate: int) -> FakeDevice:
        self.attempts.append(rate)
        if self.device is None:
            raise AudioDeviceError("no input device matches 'Headset'")
        return self.device


class CountingPort:
    def __init__(self) -> None:
        self.captured = 0

    def capture(self, pcm: np.ndarray, now: float) -> None:
        self.captured += len(pcm)

    def render(self, samples: int, now: float) -> np.ndarray:
        return np.zeros(samples, dtype=np.float32)


def engine_on(device: FakeDevice) -> AudioEngine:
    engine = AudioEngine(device, name="device")
    engine._loop = object()  # type: ignore[assignment]  # started: replace_io starts devices
    return engine


def test_a_lost_device_leaves_the_engine_silent_but_running_and_says_so_once() -> None:
    device, reopen, said = FakeDevice(), Reopen(), []
    engine = engine_on(device)
    watch = DeviceWatch(engine, reopen, said.append)
    port = CountingPort()
    engine._ports.append(port)  # attach() would start a real loop's pump
    now = 10.0
    for _ in range(10):
        watch.check(now)
        now += 0.05
    assert said == [] and engine.io is device
    device.why = "the audio stream stopped (its sound server or card went away)"
    watch.check(now)
    assert device.abandoned == 0  # looked at every CHECK_S (0.2 s), not every 5 ms tick
    now += 0.2
    watch.check(now)
    assert device.abandoned == 1 and watch.lost and watch.losses == 1
    assert isinstance(engine.io, NullIO) and not isinstance(engine.io, FakeDevice)
    assert engine.silent_because is not None and "went away" in engine.silent_because
    assert len(said) == 1 and said[0].startswith("audio device lost (the audio stream stopped")
    # The call's port keeps getting microphone (silence) at the engine's pace: it keeps sending.
    for _ in range(50):
        now += 0.02
        engine.pump(now)
        watch.check(now)
    assert port.captured == pytest.approx(48000 * 1.0, rel=0.05)
    assert device.abandoned == 1  # the stand-in is never "lost"


def test_the_device_is_tried_every_second_and_the_engine_moves_back_when_it_opens() -> None:
    device, reopen, said = FakeDevice(), Reopen(), []
    engine = engine_on(device)
    watch = DeviceWatch(engine, reopen, said.append)
    device.why = "no audio from the device for 0.6 s"
    now = 0.0
    watch.check(now)
    stand_in = engine.io
    # 3.5 s of ticks every 10 ms: tried 3 times, all failing; told once that it is missing.
    for _ in range(350):
        now += 0.01
        watch.check(now)
    assert len(reopen.attempts) == 3 and set(reopen.attempts) == {48000}
    assert said[1:] == ["audio device still missing: no input device matches 'Headset'"]
    assert engine.io is stand_in
    back = reopen.device = FakeDevice()
    for _ in range(int(RETRY_S / 0.01) + 1):
        now += 0.01
        watch.check(now)
    assert engine.io is back and back.started == 1 and not watch.lost
    assert engine.silent_because is None
    assert said[-1].startswith("audio device back after 4.") and watch.returns == 1
    # Lost again later: told again.
    back.why = "the audio stream stopped (its sound server or card went away)"
    watch.check(now + 1.0)
    assert watch.losses == 2 and said[-1].startswith("audio device lost")


def test_a_device_that_opens_but_will_not_start_is_closed_and_tried_again() -> None:
    class WontStart(FakeDevice):
        closed = 0

        def start(self) -> None:
            raise AudioDeviceError("cannot start the audio stream: Device unavailable")

        def close(self) -> None:
            self.closed += 1

    device, reopen, said = FakeDevice(), Reopen(), []
    engine = engine_on(device)
    watch = DeviceWatch(engine, reopen, said.append)
    device.why = "gone"
    watch.check(0.0)
    stand_in = engine.io
    broken = reopen.device = WontStart()
    watch.check(RETRY_S)
    assert engine.io is stand_in and broken.closed == 1 and watch.lost
    assert (
        said[-1] == "audio device still missing: cannot start the audio stream: Device unavailable"
    )


def test_a_device_at_another_rate_is_refused_by_the_engine() -> None:
    engine = engine_on(FakeDevice(48000))
    with pytest.raises(ValueError, match="16000 Hz for an engine at 48000 Hz"):
        engine.replace_io(NullIO(16000))


def test_null_and_file_devices_are_never_lost() -> None:
    engine = AudioEngine(NullIO(48000), name="null")
    said: list[str] = []
    watch = DeviceWatch(engine, Reopen(), said.append)
    for step in range(100):
        watch.check(step * 0.1)
    assert said == [] and not watch.lost


def test_stats_of_the_stand_in_start_from_zero() -> None:
    device = FakeDevice()
    engine = engine_on(device)
    device.why = "gone"
    watch = DeviceWatch(engine, Reopen(), lambda _: None)
    watch.check(0.0)
    assert engine.io.stats == AudioStats(
        underruns=0, overruns=0, frames_played=0, frames_captured=0
    )


class SlowRescans:
    """A clock walked by hand, and PortAudio's re-initialise taking ``cost_s`` of it."""

    def __init__(self, cost_s: float) -> None:
        self.now = 100.0
        self.cost_s = cost_s
        self.rescans: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def rescan(self) -> None:
        self.rescans.append(self.now)
        self.now += self.cost_s


@pytest.mark.parametrize(("cost_s", "expected"), [(0.006, 10), (0.3, 2)])
def test_finding_a_lost_card_takes_at_most_a_twentieth_of_the_loop(
    monkeypatch: pytest.MonkeyPatch, cost_s: float, expected: int
) -> None:
    from softphone.phone import audio as audio_module

    clock = SlowRescans(cost_s)
    monkeypatch.setattr(audio_module.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(audio_module, "rescan_devices", clock.rescan)

    def missing(*_: object, **__: object) -> None:
        raise AudioDeviceError("no output device matches 'Headset'")

    monkeypatch.setattr(audio_module, "open_device", missing)
    provider = audio_module.DeviceAudio("Headset", "Headset", on_problem=lambda _: None)
    for _ in range(10):  # the watch's retries, one a second, for 10 s
        with pytest.raises(AudioDeviceError, match="Headset"):
            provider._reopen(48000)
        clock.now += 1.0
    assert len(clock.rescans) == expected
    elapsed = clock.now - 100.0
    assert len(clock.rescans) * cost_s <= audio_module.RESCAN_SHARE * elapsed + cost_s
