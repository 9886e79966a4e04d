"""Echo cancellation in the audio engine (phone/echo_control.py, AudioEngine.pump): the speaker's
audio is taken out of what the microphone sends, only on a sound card, switched at run time,
and a canceller that cannot run is said once and never breaks a call.

The "sound card" here is a paced loopback: what the engine plays comes back into its
microphone 60 ms later through a decaying echo path, as a laptop's speaker reaches its
microphone. The clock is walked by argument; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from phone_support import started
from speech_quality import speech

from softphone.config import Config
from softphone.media.device import NullIO
from softphone.media.echo import EchoCanceller, EchoError
from softphone.phone import events as pe
from softphone.phone.audio import AudioEngine, FileAudio, NullAudio
from softphone.phone.echo_control import (
    NOT_A_SOUND_CARD,
    EchoControl,
    echo_enabled,
    switch_echo,
)
from softphone.phone.errors import PhoneError

RATE = 48000
TICK_S = 0.01
DELAY_S = 0.06


class LoopbackIO(NullIO):
    """A paced device whose microphone hears its speaker ``DELAY_S`` later through a short
    decaying echo path (``taps``), computed from what the engine actually wrote."""

    def __init__(self, taps: np.ndarray) -> None:
        super().__init__(RATE, buffer_ms=200)
        self._taps = taps
        self._played = np.zeros(int(DELAY_S * RATE) + len(taps), dtype=np.float32)
        self._heard = 0

    def write(self, pcm: Any) -> None:
        super().write(pcm)
        self._played = np.concatenate((self._played, pcm.astype(np.float32)))

    def _capture(self, count: int) -> Any:
        # mic[k] = sum_j taps[j] * played[k - delay - j]; played is stored behind delay +
        # len(taps) samples of silence, so stored[k + 1 : k + len(taps) + count] is the whole
        # history the next ``count`` samples need.
        start = self._heard + 1
        history = self._played[start : start + count + len(self._taps) - 1]
        self._heard += count
        out = np.zeros(count, dtype=np.float32)
        echo = (
            np.convolve(history, self._taps, mode="valid")
            if len(history) >= len(self._taps)
            else np.zeros(0)
        )
        out[: len(echo)] = echo
        return out


class FarEnd:
    """A call's port: plays speech (the far end talking), keeps what the microphone sends."""

    def __init__(self, talk: np.ndarray) -> None:
        self._talk = talk
        self._at = 0
        self.sent: list[np.ndarray] = []

    def render(self, samples: int, now: float) -> np.ndarray:
        out = np.zeros(samples, dtype=np.float32)
        chunk = self._talk[self._at : self._at + samples]
        out[: len(chunk)] = chunk
        self._at += samples
        return out

    def capture(self, pcm: np.ndarray, now: float) -> None:
        self.sent.append(pcm.copy())


def echo_path() -> np.ndarray:
    """The direct path, then 50 ms of decaying reflections."""
    rng = np.random.default_rng(3)
    taps = (
        0.03
        * rng.standard_normal(int(0.05 * RATE))
        * np.exp(-np.arange(int(0.05 * RATE)) / (0.01 * RATE))
    )
    taps[0] = 0.5
    return taps


def sent_by_a_call(*, cancel: bool, seconds: float = 5.0) -> np.ndarray:
    """What the far end gets back of its own speech over ``seconds`` (after 2 s to converge)."""
    engine = AudioEngine(LoopbackIO(echo_path()), name="loopback")
    if cancel:
        engine.echo = EchoCanceller(RATE)
    port = FarEnd(speech(RATE)[: int(seconds * RATE)])
    engine._ports.append(port)  # attach() would start a real timer; the test pumps by hand
    for tick in range(int(seconds / TICK_S)):
        engine.pump(tick * TICK_S)
    sent = np.concatenate(port.sent)
    return sent[2 * RATE :]


def test_the_far_end_no_longer_hears_itself_with_echo_cancellation() -> None:
    without = sent_by_a_call(cancel=False)
    with_echo_cancelled = sent_by_a_call(cancel=True)
    level = 10 * np.log10(np.mean(without**2) / np.mean(with_echo_cancelled**2))
    assert np.mean(without**2) > 1e-4  # the loopback does carry the echo
    assert level > 20.0, f"the echo is only {level:.1f} dB quieter"


class Broken:
    def process_stream(self, data: Any) -> None:
        raise RuntimeError("native failure")

    def process_reverse_stream(self, data: Any) -> None:
        pass

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        pass


def test_a_canceller_that_breaks_in_a_call_is_said_once_and_the_call_keeps_its_microphone() -> None:
    problems: list[str] = []

    def make(rate: int, **kw: Any) -> EchoCanceller:
        return EchoCanceller(rate, processor=(Broken(), lambda buf, r, n: buf), **kw)

    control = EchoControl(True, problems.append, make=make)
    engine = AudioEngine(LoopbackIO(echo_path()), name="loopback")
    control.attach(engine)
    assert engine.echo is not None
    port = FarEnd(speech(RATE)[:RATE])
    engine._ports.append(port)
    for tick in range(50):
        engine.pump(tick * TICK_S)
    assert problems == ["echo cancellation stopped: native failure"]
    assert not control.on and engine.echo is None
    assert sum(len(p) for p in port.sent) == int(49 * TICK_S * RATE)  # nothing lost
    assert engine.errors == []


def test_a_missing_canceller_is_said_once_and_switching_it_on_says_why() -> None:
    problems: list[str] = []

    def make(rate: int, **kw: Any) -> EchoCanceller:
        raise EchoError("the livekit package is not installed: pip install livekit")

    control = EchoControl(True, problems.append, make=make)
    engine = AudioEngine(NullIO(RATE), name="device")
    control.attach(engine)
    assert problems == [
        "echo cancellation is off: the livekit package is not installed: pip install livekit"
    ]
    assert not control.on and engine.echo is None
    with pytest.raises(EchoError, match="livekit"):
        control.set(True)
    assert not control.on and len(problems) == 1


def test_switching_it_off_and_on_takes_the_canceller_out_and_back() -> None:
    made: list[int] = []

    def make(rate: int, **kw: Any) -> EchoCanceller:
        made.append(rate)
        return EchoCanceller(rate, processor=(Broken(), lambda buf, r, n: buf), **kw)

    control = EchoControl(False, lambda text: None, make=make)
    engine = AudioEngine(NullIO(44100), name="device")
    control.attach(engine)
    assert engine.echo is None and made == []
    control.set(True)
    assert control.on and engine.echo is not None and made == [44100]
    control.set(False)
    assert not control.on and engine.echo is None


def test_files_and_the_headless_phone_have_no_echo_cancellation(tmp_path: Path) -> None:
    for provider in (FileAudio(None, tmp_path / "out.wav"), NullAudio()):
        assert not echo_enabled(provider)
        switch_echo(provider, False)  # off is always possible
        with pytest.raises(PhoneError, match=NOT_A_SOUND_CARD):
            switch_echo(provider, True)


async def test_the_phone_switches_it_and_says_so() -> None:
    phone = await started(Config(), audio=NullAudio(), seed="echo")
    try:
        assert phone.echo_cancellation is False
        with pytest.raises(PhoneError, match="sound card"):
            phone.set_echo_cancellation(True)
        phone.set_echo_cancellation(False)
        async with asyncio.timeout(5):
            event = await phone.next_event()
            while not isinstance(event, pe.EchoCancellationChanged):
                event = await phone.next_event()
        assert event == pe.EchoCancellationChanged(on=False)
    finally:
        await phone.stop()
