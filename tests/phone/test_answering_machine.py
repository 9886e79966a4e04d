"""The answering machine between two Phones on 127.0.0.1: nobody answers alice's phone, so
after its second it answers, plays the greeting (the caller hears it), records the caller into
the voicemail directory, and the message lands in the store with the caller and its length."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from phone_support import expect, port_of, started

from softphone.config import Account, Config
from softphone.config_forwarding import Forwarding
from softphone.media.wav import WavWriter, read_wav
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio
from softphone.phone.book import Book
from softphone.phone.call_log import HISTORY_RESULT
from softphone.phone.phone import Phone
from softphone.phone.text import describe
from softphone.phone.voicemail_log import VoicemailLog
from softphone.sip.uri import SipUri

TONE_HZ = 700.0


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


def tone_wav(path: Path, seconds: float) -> Path:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    writer = WavWriter(path, rate, 1)
    writer.write((0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32).reshape(-1, 1))
    writer.close()
    return path


def alice(tmp_path: Path, **voicemail: object) -> Config:
    settings: dict[str, object] = {"voicemail": True, "voicemail_after_s": 1, **voicemail}
    forwarding = Forwarding(**settings)  # type: ignore[arg-type]
    return Config(
        accounts=(Account(name="alice", uri=_uri(), forwarding=forwarding),),
        voicemail_dir=tmp_path / "voicemail",
    )


def _uri() -> SipUri:
    return SipUri.parse("sip:alice@127.0.0.1")


def stereo(path: str) -> tuple[np.ndarray, int]:
    """Both channels of a 16-bit stereo WAV (read_wav mixes them down)."""
    with wave.open(path, "rb") as wav:
        assert wav.getnchannels() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return frames.reshape(-1, 2).astype(np.float32) / 32768, wav.getframerate()


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm.astype(np.float64))))) if len(pcm) else 0.0


async def test_an_unanswered_call_leaves_a_message(phones: list[Phone], tmp_path: Path) -> None:
    callee = await started(alice(tmp_path), seed="va")
    heard = tmp_path / "heard.wav"
    caller = await started(audio=FileAudio(tone_wav(tmp_path / "say.wav", 6.0), heard), seed="vb")
    phones += [callee, caller]
    book = Book.open(tmp_path / "t.db")
    log = VoicemailLog(book.voicemails, on_error=pytest.fail)
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    started_event = await expect(callee, lambda e: isinstance(e, pe.VoicemailStarted))
    assert isinstance(started_event, pe.VoicemailStarted)
    log.observe(started_event)
    assert started_event.caller == "sip:softphone@127.0.0.1" and started_event.account == "alice"
    assert Path(started_event.path).parent == tmp_path / "voicemail"
    await log.settle()
    (row,) = book.voicemails.list()
    assert row.recording and row.caller_uri == "sip:softphone@127.0.0.1"
    # the caller talks two seconds, then hangs up
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    with pytest.raises(TimeoutError):
        await expect(caller, lambda e: isinstance(e, pe.CallEnded), timeout_s=2.0)
    await caller.hangup(call_id)
    recorded = await expect(callee, lambda e: isinstance(e, pe.VoicemailRecorded))
    assert isinstance(recorded, pe.VoicemailRecorded)
    log.observe(recorded)
    await log.settle()
    assert 1.5 <= recorded.duration_s <= 3.0, recorded
    (row,) = book.voicemails.list()
    assert (row.recording, row.heard, row.duration_s) == (False, False, recorded.duration_s)
    assert book.voicemails.unheard() == {"alice": 1}
    # the message is the caller's tone (right channel); our side is silent (left)
    pcm, rate = stereo(row.path)
    assert pcm.shape[1] == 2 and rms(pcm[:, 1]) > 0.05 and rms(pcm[:, 0]) < 0.01
    spectrum = np.abs(np.fft.rfft(pcm[:, 1]))
    assert abs(np.argmax(spectrum) * rate / len(pcm) - TONE_HZ) < 20
    # and the caller heard the greeting (the chime: not silence) before the beep
    heard_pcm, _ = read_wav(heard)
    assert rms(heard_pcm) > 0.02
    book.close()


async def test_do_not_disturb_with_voicemail_answers_at_once(
    phones: list[Phone], tmp_path: Path
) -> None:
    callee = await started(alice(tmp_path, do_not_disturb=True, voicemail_after_s=60), seed="vc")
    caller = await started(seed="vd")
    phones += [callee, caller]
    await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    established = await expect(
        caller,
        lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established",
        timeout_s=3.0,
    )
    assert established is not None  # well before the 60 s of ringing
    await expect(callee, lambda e: isinstance(e, pe.VoicemailStarted), timeout_s=5.0)


async def test_a_caller_who_hangs_up_during_the_greeting_leaves_nothing(
    phones: list[Phone], tmp_path: Path
) -> None:
    callee = await started(alice(tmp_path), seed="ve")
    caller = await started(seed="vf")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    await caller.hangup(call_id)
    await expect(callee, lambda e: isinstance(e, pe.CallEnded))
    with pytest.raises(TimeoutError):
        await expect(callee, lambda e: isinstance(e, pe.VoicemailStarted), timeout_s=1.5)
    assert not list((tmp_path / "voicemail").glob("*.wav"))


async def test_the_call_the_machine_took_ends_as_voicemail(
    phones: list[Phone], tmp_path: Path
) -> None:
    callee = await started(alice(tmp_path), seed="vg")
    caller = await started(seed="vh")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:alice@127.0.0.1:{port_of(callee)}")
    await expect(callee, lambda e: isinstance(e, pe.VoicemailStarted))
    await caller.hangup(call_id)
    ours = await expect(callee, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ours, pe.CallEnded) and (ours.outcome, ours.answered) == ("voicemail", True)
    assert describe(ours).startswith("the answering machine took the call (")
    assert HISTORY_RESULT[ours.outcome] == "voicemail"
