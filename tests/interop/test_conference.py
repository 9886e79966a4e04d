"""A local three-way conference with two real phones: baresip bob (PCMU, 8 kHz) and baresip carol
(Opus, 48 kHz), registered at Kamailio on 127.0.0.1, each playing its own tone as its
microphone and recording what it hears (the sndfile filter). Our phone calls both and joins
the calls: each baresip must hear the other's tone through us (and not its own); after the
split bob is held and carol no longer hears him. A held bob is resumed by the join.

baresip 1.0's sndfile filter stops recording what a call hears at that call's first re-INVITE
(seen here: its ``-dec.wav`` keeps only the audio before it), so a recording is read only for
the time before any re-INVITE to that peer: bob's up to the split, carol's for the whole call
(no re-INVITE ever goes to carol)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from lab_support import BaresipFactory
from test_softphone_sip import account, ended, expect, state

from softphone import lab
from softphone.config import Config
from softphone.media.device import NullIO
from softphone.phone import events as pe
from softphone.phone.audio import HEADLESS_RATE, AudioEngine, NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

BOB_HZ, CAROL_HZ = 500.0, 1300.0
WAV_RATE = 16000
WAV_S = 40  # aufile hangs up when its file ends: longer than the test
PRESENT, ABSENT = 0.03, 0.01  # a tone of amplitude 0.3 shows ~0.15


def tone_wav(path: Path, hz: float) -> Path:
    t = np.arange(WAV_RATE * WAV_S) / WAV_RATE
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(pcm.tobytes())
    return path


class PacedIO(NullIO):
    """A silent headless sound card that tells when ``seconds`` have played since ``arm``: a
    wait on the audio clock, not a sleep."""

    def __init__(self) -> None:
        super().__init__(HEADLESS_RATE)
        self._left = 0
        self.played = asyncio.Event()

    def arm(self, seconds: float) -> asyncio.Event:
        self._left = int(seconds * HEADLESS_RATE)
        self.played = asyncio.Event()
        return self.played

    def write(self, pcm: np.ndarray) -> None:
        super().write(pcm)
        if self._left > 0:
            self._left -= len(pcm)
            if self._left <= 0:
                self.played.set()


class PacedAudio(NullAudio):
    def __init__(self) -> None:
        self.io = PacedIO()

    def engine_for_call(self, call_number: int) -> AudioEngine:
        if self._engine is None:
            self._engine = AudioEngine(self.io, name="paced", tick_s=0.02)
        return self._engine

    async def play(self, seconds: float) -> None:
        async with asyncio.timeout(seconds + 10):
            await self.io.arm(seconds).wait()


def recording(peer: lab.Baresip) -> tuple[np.ndarray, int]:
    decoded = [p for p in peer.recordings() if p.name.endswith("-dec.wav")]
    assert decoded, f"{peer.user} recorded nothing: {peer.recordings()}"
    with wave.open(str(max(decoded, key=lambda p: p.stat().st_size))) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.reshape(-1, channels)[:, 0].astype(np.float64) / 32768, rate


def level(pcm: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) / (len(pcm) / 4)
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].max())


def windows(pcm: np.ndarray, rate: int) -> list[np.ndarray]:
    size = rate // 2
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size // 2)]


def hears(pcm: np.ndarray, rate: int, other_hz: float, own_hz: float) -> tuple[float, float]:
    """The loudest half second of ``other_hz``, and ``own_hz`` in that same half second."""
    best = max(windows(pcm, rate), key=lambda w: level(w, rate, other_hz))
    return level(best, rate, other_hz), level(best, rate, own_hz)


@pytest.fixture
async def phone_with(kamailio: lab.Kamailio) -> AsyncIterator[tuple[Phone, PacedAudio]]:
    audio = PacedAudio()
    phone = Phone(
        Config(accounts=(account(kamailio),)),
        bind_host="127.0.0.1",
        sip_port=0,
        dns=StubBackend(),
        audio=audio,
    )
    await phone.start()
    try:
        yield phone, audio
    finally:
        await phone.stop()


async def bob_and_carol(
    baresip_factory: BaresipFactory, tmp_path: Path
) -> tuple[lab.Baresip, lab.Baresip]:
    return await asyncio.gather(
        asyncio.to_thread(
            partial(
                baresip_factory,
                user="bob",
                auto_answer=True,
                audio=tone_wav(tmp_path / "bob.wav", BOB_HZ),
                record=True,
                codecs="PCMU",
            )
        ),
        asyncio.to_thread(
            partial(
                baresip_factory,
                user="carol",
                auto_answer=True,
                audio=tone_wav(tmp_path / "carol.wav", CAROL_HZ),
                record=True,
                codecs="opus/48000/1",
            )
        ),
    )


async def call_both(
    phone: Phone, bob: lab.Baresip, carol: lab.Baresip, *, hold_bob: bool
) -> tuple[str, str]:
    await expect(phone, lambda e: isinstance(e, pe.Registered))
    to_bob = await phone.dial(bob.aor)
    await expect(phone, state(to_bob, "established"))
    if hold_bob:  # as a desk phone does before calling a third party
        await phone.hold(to_bob)
        await expect(phone, state(to_bob, "held"))
    to_carol = await phone.dial(carol.aor)
    await expect(phone, state(to_carol, "established"))
    assert phone.call(to_bob).codec == "PCMU" and phone.call(to_carol).codec == "opus"
    return to_bob, to_carol


async def hang_up(phone: Phone, calls: list[tuple[str, lab.Baresip]]) -> None:
    for call_id, peer in calls:
        await phone.hangup(call_id)
        await expect(phone, ended(call_id))
        await asyncio.to_thread(peer.wait_event, "CALL_CLOSED", 8.0)


async def test_two_baresips_hear_each_other_through_our_conference(
    baresip_factory: BaresipFactory,
    phone_with: tuple[Phone, PacedAudio],
    tmp_path: Path,
) -> None:
    phone, audio = phone_with
    bob, carol = await bob_and_carol(baresip_factory, tmp_path)
    to_bob, to_carol = await call_both(phone, bob, carol, hold_bob=False)

    await phone.join(to_carol, to_bob)
    assert phone.call(to_bob).conference and phone.call(to_carol).conference
    await audio.play(3.0)

    await phone.split(to_carol)
    await expect(phone, state(to_bob, "held"))
    assert not phone.call(to_carol).conference
    await audio.play(1.5)
    await hang_up(phone, [(to_bob, bob), (to_carol, carol)])

    bob_heard, bob_rate = recording(bob)
    carol_heard, carol_rate = recording(carol)
    assert bob_rate == 8000 and carol_rate == 48000
    other, own = hears(bob_heard, bob_rate, CAROL_HZ, BOB_HZ)
    assert other > PRESENT, f"bob never heard carol ({other:.3f})"
    assert own < ABSENT, f"bob heard himself ({own:.3f})"
    other, own = hears(carol_heard, carol_rate, BOB_HZ, CAROL_HZ)
    assert other > PRESENT, f"carol never heard bob ({other:.3f})"
    assert own < ABSENT, f"carol heard herself ({own:.3f})"
    # The last half second (well after the split): carol no longer hears bob.
    tail = carol_heard[-carol_rate // 2 :]
    assert level(tail, carol_rate, BOB_HZ) < ABSENT, "carol still hears bob after the split"


async def test_join_resumes_a_held_baresip(
    baresip_factory: BaresipFactory,
    phone_with: tuple[Phone, PacedAudio],
    tmp_path: Path,
) -> None:
    phone, audio = phone_with
    bob, carol = await bob_and_carol(baresip_factory, tmp_path)
    to_bob, to_carol = await call_both(phone, bob, carol, hold_bob=True)
    await phone.join(to_bob, to_carol)
    await expect(phone, state(to_bob, "established"))  # baresip took the sendrecv re-INVITE
    await audio.play(2.0)
    await hang_up(phone, [(to_carol, carol), (to_bob, bob)])
    carol_heard, carol_rate = recording(carol)
    other, own = hears(carol_heard, carol_rate, BOB_HZ, CAROL_HZ)
    assert other > PRESENT, f"carol never heard the resumed bob ({other:.3f})"
    assert own < ABSENT, f"carol heard herself ({own:.3f})"
