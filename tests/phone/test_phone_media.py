"""Two Phones with real audio on 127.0.0.1: speech from a WAV goes through RTP, the jitter buffer
and the decoder into the other side's recording; DTMF, mute, hold and the stats events."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from phone_support import expect, port_of
from phone_support import started as start_phone
from speech_quality import SPEECH, score

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, FileAudio, NullAudio, numbered
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone


async def started(
    audio: AudioProvider,
    *,
    codecs: tuple[str, ...] | None = None,
    auto_answer: bool = False,
    seed: str = "",
) -> Phone:
    return await start_phone(
        Config(codecs=codecs) if codecs else None, audio=audio, auto_answer=auto_answer, seed=seed
    )


def stats_of(call_id: str | None = None) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.CallStats) and (call_id is None or e.call_id == call_id)


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


# P.862 floors on a clean loopback. Broken audio (silence, noise, garbled frames) scores ~1.
# Measured here: Opus wb ~3.6, G.722 wb ~2.8 (the codec alone: 3.2), PCMU/PCMA nb ~3.7.
# Whether the speech arrives, not how well: both phones share one event loop here, and on a busy
# machine (make test runs the interop tests beside these) the jitter buffer adapts to the loop's
# own delays, which costs a short window up to a point of PESQ (2.3 seen for Opus). Broken or
# wrong audio scores near 1. Clean-path quality is the benchmarks' (softphone bench jitter-report).
PESQ_FLOOR = {"opus": ("wb", 2.0), "G722": ("wb", 2.0), "PCMU": ("nb", 2.0), "PCMA": ("nb", 2.0)}


@pytest.mark.parametrize("codec", ["opus", "G722", "PCMU", "PCMA"])
async def test_speech_reaches_the_other_side(
    codec: str, phones: list[Phone], tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    callee = await started(FileAudio(None, heard), auto_answer=True, seed="callee")
    caller = await started(FileAudio(SPEECH, None), codecs=(codec,), seed="caller")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    event = await expect(callee, lambda e: stats_of()(e) and e.stats["packets_received"] >= 200)  # type: ignore[attr-defined]
    assert isinstance(event, pe.CallStats) and event.stats["codec"].lower() == codec.lower()
    await caller.hangup(call_id)
    end = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
    assert (
        isinstance(end, pe.CallEnded) and end.stats is not None and end.stats["packets_sent"] >= 150
    )
    await expect(callee, lambda e: isinstance(e, pe.CallEnded))

    mode, floor = PESQ_FLOOR[codec]
    quality = score(SPEECH, heard, mode=mode, seconds=2.5, skip_s=1.0)
    assert quality.pesq >= floor, (
        f"what the callee heard is not the speech the caller sent: {quality}"
    )


async def test_dtmf_rtp_events_reach_the_other_side_once_each(phones: list[Phone]) -> None:
    callee = await started(NullAudio(), auto_answer=True, seed="c2")
    caller = await started(NullAudio(), seed="c3")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    with pytest.raises(PhoneError, match="not DTMF digits"):
        await caller.send_dtmf(call_id, "1x")
    assert await caller.send_dtmf(call_id, "12#") == "rtp"
    digits = []
    for _ in range(3):
        event = await expect(callee, lambda e: isinstance(e, pe.DtmfReceived))
        assert isinstance(event, pe.DtmfReceived) and event.method == "rtp"
        digits.append(event.digit)
    assert digits == ["1", "2", "#"]


async def test_hold_stops_the_held_side_sending(phones: list[Phone]) -> None:
    callee = await started(NullAudio(), auto_answer=True, seed="c4")
    caller = await started(NullAudio(), seed="c5")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    await caller.hold(call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "held")
    first = await expect(caller, stats_of(call_id))
    second = await expect(caller, stats_of(call_id))
    assert isinstance(first, pe.CallStats) and isinstance(second, pe.CallStats)
    # We hold (sendonly): we keep sending, the callee (recvonly) stops sending to us.
    assert second.stats["packets_sent"] - first.stats["packets_sent"] >= 150
    assert second.stats["packets_received"] - first.stats["packets_received"] <= 2


def test_recordings_are_numbered_per_call() -> None:
    assert numbered(Path("/x/out.wav"), 1) == Path("/x/out.wav")
    assert numbered(Path("/x/out.wav"), 3) == Path("/x/out-3.wav")


class ToneSpy(NullAudio):
    """NullAudio that remembers what the phone asked of the tones."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool]] = []

    def tones(self, *, ringback: bool, ring: bool) -> None:
        if not self.calls or self.calls[-1] != (ringback, ring):
            self.calls.append((ringback, ring))


async def test_ringback_and_ring_follow_the_call_state(phones: list[Phone]) -> None:
    caller_audio, callee_audio = ToneSpy(), ToneSpy()
    callee = await started(callee_audio, seed="t1")
    caller = await started(caller_audio, seed="t2")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    incoming = await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "ringing")
    assert callee_audio.calls[-1] == (False, True)  # a call for us: ring
    assert caller_audio.calls[-1] == (True, False)  # it rings there: ringback
    assert isinstance(incoming, pe.IncomingCall)
    await callee.answer(incoming.call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    await expect(callee, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    assert caller_audio.calls[-1] == (False, False) and callee_audio.calls[-1] == (False, False)
    await caller.hangup(call_id)


def tone_wav(path: Path, hz: float, seconds: float, rate: int = 16000) -> Path:
    """A steady sine at -12 dBFS, written with the stdlib (not softphone's own WAV code)."""
    t = np.arange(int(seconds * rate)) / rate
    samples = np.round(0.25 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def share_near(x: np.ndarray, rate: int, hz: float, width_hz: float = 50.0) -> float:
    """The part of ``x``'s energy within ``width_hz`` of ``hz``."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[np.abs(freqs - hz) <= width_hz].sum() / power.sum())


async def test_call_recording_is_stereo_local_left_remote_right(
    phones: list[Phone], tmp_path: Path
) -> None:
    """The two sides say different things: the caller speech, the callee a 1 kHz tone."""
    tone = tone_wav(tmp_path / "tone.wav", 1000.0, seconds=20.0)
    callee = await started(FileAudio(tone, None), auto_answer=True, seed="r1")
    caller = await started(FileAudio(SPEECH, None), seed="r2")
    caller._config = Config(recordings_dir=tmp_path / "rec")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    path = caller.record(call_id, True)
    assert path is not None and path.parent == tmp_path / "rec"
    await expect(caller, lambda e: stats_of(call_id)(e) and e.stats["packets_received"] >= 100)  # type: ignore[attr-defined]
    await caller.hangup(call_id)
    end = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(end, pe.CallEnded) and end.recording == str(path)
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getframerate() >= 16000
        frames = (
            np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2).astype(float)
        )
    assert len(frames) >= w.getframerate()  # at least a second of audio
    left_rms, right_rms = np.sqrt((frames**2).mean(axis=0))
    assert left_rms > 300 and right_rms > 300  # sound on both sides, not silence
    rate = w.getframerate()
    assert share_near(frames[:, 1], rate, 1000.0) > 0.8  # right: the far end's tone
    assert share_near(frames[:, 0], rate, 1000.0) < 0.2  # left: our speech, not the tone


async def test_record_needs_audio(phones: list[Phone]) -> None:
    callee = await started(NullAudio(), seed="r3")
    caller = await started(NullAudio(), seed="r4")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@127.0.0.1:{port_of(callee)}")
    with pytest.raises(PhoneError, match="no audio"):
        caller.record(call_id, True)
    await caller.hangup(call_id)
