"""A local three-way conference over real RTP on 127.0.0.1: alice calls bob (PCMU, 8 kHz) and
carol (Opus, 48 kHz), each far end's microphone says its own tone; once alice joins the calls
each hears the other's tone through her (and not its own), a held call is resumed by the join,
split leaves one call active and the other held, and a party hanging up leaves an ordinary
call. Waits are bounded and on conditions, no sleeps."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from phone_support import Predicate, Seen, port_of, started, state

from softphone.config import Config
from softphone.media.device import NullIO
from softphone.phone import events as pe
from softphone.phone.audio import HEADLESS_RATE, AudioEngine, FileAudio, NullAudio
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone

STEP_S = 10.0
BOB_HZ, CAROL_HZ = 440.0, 1300.0


class ToneIO(NullIO):
    """A headless sound card: the microphone says ``hz``; what the speaker plays is kept and,
    once ``armed``, a second of it sets ``heard_enough``."""

    def __init__(self, hz: float) -> None:
        super().__init__(HEADLESS_RATE)
        self.hz = hz
        self._said = 0
        self.played: list[np.ndarray] = []
        self.armed = False
        self.heard_enough = asyncio.Event()

    def _capture(self, count: int) -> np.ndarray:
        t = np.arange(self._said, self._said + count) / HEADLESS_RATE
        self._said += count
        return (0.3 * np.sin(2 * np.pi * self.hz * t)).astype(np.float32)

    def write(self, pcm: np.ndarray) -> None:
        super().write(pcm)
        if self.armed:
            self.played.append(pcm.copy())
            if sum(len(p) for p in self.played) >= HEADLESS_RATE * 1.5:
                self.heard_enough.set()

    def listen(self) -> None:
        self.played, self.armed = [], True
        self.heard_enough.clear()


class ToneAudio(NullAudio):
    """One shared engine on a :class:`ToneIO`."""

    def __init__(self, hz: float) -> None:
        self.io = ToneIO(hz)

    def engine_for_call(self, call_number: int) -> AudioEngine:
        if self._engine is None:
            self._engine = AudioEngine(self.io, name="tone", tick_s=0.02)
        return self._engine


def level_at(pcm: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) / (len(pcm) / 4)
    freqs = np.fft.rfftfreq(len(pcm), 1 / HEADLESS_RATE)
    return float(spectrum[np.abs(freqs - hz) < 20].max())


def conference(ids: set[str]) -> Predicate:
    return lambda e: isinstance(e, pe.ConferenceChanged) and set(e.call_ids) == ids


Trio = tuple[Phone, Seen, ToneAudio, ToneAudio, str, str]


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[Trio]:
    alice = await started(Config(recordings_dir=tmp_path), seed="alice")
    bob_audio, carol_audio = ToneAudio(BOB_HZ), ToneAudio(CAROL_HZ)
    bob = await started(Config(codecs=("PCMU",)), audio=bob_audio, seed="bob", auto_answer=True)
    carol = await started(
        Config(codecs=("opus",)), audio=carol_audio, seed="carol", auto_answer=True
    )
    port_of(alice)
    seen = Seen(alice)
    try:
        to_bob = await alice.dial(f"sip:softphone@127.0.0.1:{port_of(bob)}")
        await seen.until(state(to_bob, "established"), "bob answers")
        await alice.hold(to_bob)
        await seen.until(state(to_bob, "held"), "bob held")
        to_carol = await alice.dial(f"sip:softphone@127.0.0.1:{port_of(carol)}")
        await seen.until(state(to_carol, "established"), "carol answers")
        assert alice.call(to_bob).codec == "PCMU" and alice.call(to_carol).codec == "opus"
        yield alice, seen, bob_audio, carol_audio, to_bob, to_carol
    finally:
        for phone in (alice, bob, carol):
            await phone.stop()


async def heard(audio: ToneAudio) -> np.ndarray:
    audio.io.listen()
    async with asyncio.timeout(STEP_S):
        await audio.io.heard_enough.wait()
    played = np.concatenate(audio.io.played)
    return played[len(played) // 3 :]  # past the jitter buffers' start


async def test_join_mixes_the_far_ends_and_split_holds_the_other(trio: Trio) -> None:
    alice, seen, bob_audio, carol_audio, to_bob, to_carol = trio
    await alice.join(to_carol, to_bob)
    await seen.until(conference({to_bob, to_carol}), "conference")
    await seen.until(state(to_bob, "established"), "the held call is resumed by the join")
    assert alice.call(to_bob).conference and alice.call(to_carol).conference
    recording = alice.record(to_bob, True)
    assert recording is not None

    bob_heard, carol_heard = await asyncio.gather(heard(bob_audio), heard(carol_audio))
    alice.record(to_bob, False)
    assert level_at(bob_heard, CAROL_HZ) > 0.05, "bob does not hear carol"
    assert level_at(carol_heard, BOB_HZ) > 0.05, "carol does not hear bob"
    assert level_at(bob_heard, BOB_HZ) < 0.01, "bob hears himself"
    assert level_at(carol_heard, CAROL_HZ) < 0.01, "carol hears herself"

    # The recording of one conferenced call: what we hear is both parties, not bob alone.
    with wave.open(str(recording)) as wav:
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    remote = frames[len(frames) // 3 :, 1].astype(np.float64) / 32768
    assert rate == HEADLESS_RATE
    assert level_at(remote, BOB_HZ) > 0.05 and level_at(remote, CAROL_HZ) > 0.05

    await alice.split(to_carol)
    await seen.until(conference(set()), "split")
    await seen.until(state(to_bob, "held"), "split holds the other call")
    assert alice.call(to_carol).state == "established"
    assert not alice.call(to_bob).conference and not alice.call(to_carol).conference
    carol_heard = await heard(carol_audio)
    assert level_at(carol_heard, BOB_HZ) < 0.01, "carol still hears bob after the split"


async def test_a_party_hanging_up_leaves_an_ordinary_call(trio: Trio) -> None:
    alice, seen, _bob_audio, _carol_audio, to_bob, to_carol = trio
    await alice.join(to_bob, to_carol)
    await seen.until(conference({to_bob, to_carol}), "conference")
    alice.mute(to_bob, True)
    assert alice.call(to_carol).muted, "mute in a conference mutes us to every party"
    await alice.hangup(to_carol)
    await seen.until(lambda e: isinstance(e, pe.CallEnded) and e.call_id == to_carol, "carol ends")
    await seen.until(conference(set()), "no conference with one call")
    assert alice.call(to_bob).state == "established" and not alice.call(to_bob).conference


async def test_join_refuses_what_cannot_be_mixed(trio: Trio) -> None:
    alice, _seen, _bob_audio, _carol_audio, to_bob, _to_carol = trio
    with pytest.raises(PhoneError, match="two different calls"):
        await alice.join(to_bob, to_bob)
    with pytest.raises(PhoneError):
        await alice.join(to_bob, "nonexistent")
    with pytest.raises(PhoneError, match="not in a conference"):
        await alice.split(to_bob)


async def test_holding_a_party_ends_a_two_call_conference(trio: Trio) -> None:
    alice, seen, _bob_audio, _carol_audio, to_bob, to_carol = trio
    await alice.join(to_bob, to_carol)
    await seen.until(conference({to_bob, to_carol}), "conference")
    await seen.until(state(to_bob, "established"), "bob resumed")
    await alice.hold(to_carol)
    await seen.until(conference(set()), "a held party leaves")
    assert not alice.call(to_bob).conference and not alice.call(to_carol).conference
    await seen.until(state(to_carol, "held"), "carol held")


async def test_calls_on_separate_audio_cannot_be_joined() -> None:
    """Per-call WAV files (--play/--record) are one engine per call: nothing to mix them in."""
    alice = await started(audio=FileAudio(None, None), seed="files")
    bob = await started(seed="bob2", auto_answer=True)
    carol = await started(seed="carol2", auto_answer=True)
    port_of(alice)
    seen = Seen(alice)
    try:
        to_bob = await alice.dial(f"sip:softphone@127.0.0.1:{port_of(bob)}")
        to_carol = await alice.dial(f"sip:softphone@127.0.0.1:{port_of(carol)}")
        await seen.until(state(to_bob, "established"), "bob answers")
        await seen.until(state(to_carol, "established"), "carol answers")
        with pytest.raises(PhoneError, match="separate audio"):
            await alice.join(to_bob, to_carol)
        assert not alice.call(to_bob).conference
    finally:
        for phone in (alice, bob, carol):
            await phone.stop()
