"""Echo cancellation on a real PortAudio device (JACK's dummy driver): the sound card's engine
gets a canceller when the config wants one (the default), with PortAudio's latency as the delay
hint, and the pump runs the microphone through it in real time; switched off, none."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from softphone.media.device import rescan_devices
from softphone.phone.audio import DeviceAudio
from softphone.phone.echo_control import device_delay_ms

pytest.importorskip("livekit.rtc")


async def test_the_sound_card_engine_runs_its_microphone_through_the_canceller(
    jack_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", jack_server)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    rescan_devices()
    problems: list[str] = []
    audio = DeviceAudio("system", "system", on_problem=problems.append, echo_cancellation=True)
    plain = DeviceAudio("system", "system", on_problem=problems.append)
    try:
        engine = audio.engine_for_call(1)
        echo = engine.echo
        assert echo is not None and engine.name == "device", (problems, engine.silent_because)
        assert echo.backend == "speex"  # the default engine, libspeexdsp being installed
        delay = device_delay_ms(engine)
        # 2 speaker blocks (20 ms) kept queued plus PortAudio's latency on JACK (> 0)
        assert delay is not None and delay > 20
        second = asyncio.Event()  # 1 s of microphone (100 frames of 10 ms) went through
        capture = echo.capture

        def counted(pcm: Any) -> Any:
            out = capture(pcm)
            if echo.frames_processed >= 100:
                second.set()
            return out

        monkeypatch.setattr(echo, "capture", counted)
        async with asyncio.timeout(5):  # the device's clock runs the pump
            await second.wait()
        assert echo.active and engine.errors == [] and problems == []
        audio.close()
        assert plain.engine_for_call(1).echo is None
    finally:
        audio.close()
        plain.close()
        monkeypatch.delenv("JACK_DEFAULT_SERVER")
        rescan_devices()
