"""The local conference mix (phone/mixing.py) in a real AudioEngine, walked by a clock argument:
three legs at their own codec rates (two G.711-like 8 kHz legs, one Opus-like 48 kHz leg), each
far end saying its own tone; each leg must send our microphone and the other two tones, never
its own, and stop mixing once split."""

from __future__ import annotations

import numpy as np

from softphone.media.device import NullIO
from softphone.media.resample import Resampler
from softphone.phone.audio import AudioEngine
from softphone.phone.mixing import Conference

ENGINE_RATE = 48000
MIC_HZ = 1000.0
TICK_S = 0.01


def tone(hz: float, rate: int, start: int, count: int) -> np.ndarray:
    t = (np.arange(start, start + count) / rate).astype(np.float64)
    return (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


class ToneMic(NullIO):
    """A paced null device whose microphone says ``MIC_HZ``."""

    def __init__(self) -> None:
        super().__init__(ENGINE_RATE)
        self._at = 0

    def _capture(self, count: int) -> np.ndarray:
        pcm = tone(MIC_HZ, ENGINE_RATE, self._at, count)
        self._at += count
        return pcm


class Leg:
    """A call's port as the engine sees it, with its own codec rate: the far end says ``hz``
    (made at ``rate``, resampled to the engine's), and what we send is resampled to ``rate``."""

    def __init__(self, hz: float, rate: int) -> None:
        self.hz, self.rate = hz, rate
        self.muted = False
        self.mixed = False
        self.sent: list[np.ndarray] = []  # at the codec rate
        self.heard: list[np.ndarray] = []
        self._said = 0
        self._fifo = np.zeros(0, dtype=np.float32)
        self._to_engine = Resampler(rate, ENGINE_RATE)
        self._to_codec = Resampler(ENGINE_RATE, rate)

    def render(self, samples: int, now: float) -> np.ndarray:
        while len(self._fifo) < samples:
            block = tone(self.hz, self.rate, self._said, self.rate // 100)
            self._said += len(block)
            self._fifo = np.concatenate((self._fifo, self._to_engine.process(block)))
        out, self._fifo = self._fifo[:samples], self._fifo[samples:]
        return out

    def capture(self, pcm: np.ndarray, now: float, *, others: np.ndarray | None = None) -> None:
        ours = np.zeros_like(pcm) if self.muted else pcm
        self.sent.append(self._to_codec.process(ours if others is None else ours + others))

    def hear(self, pcm: np.ndarray) -> None:
        self.heard.append(pcm)

    def take_sent(self) -> np.ndarray:
        sent, self.sent = np.concatenate(self.sent), []
        return sent


def level_at(pcm: np.ndarray, rate: int, hz: float) -> float:
    """The amplitude of ``hz`` in ``pcm`` (a Hann-windowed spectrum's peak near it)."""
    pcm = pcm[len(pcm) // 4 :]  # past the resamplers' start
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm)))) / (len(pcm) / 4)
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    near = np.abs(freqs - hz) < 15
    return float(spectrum[near].max())


def run(engine: AudioEngine, seconds: float, start: float) -> float:
    now = start
    for _ in range(round(seconds / TICK_S)):
        now += TICK_S
        engine.pump(now)
    return now


def three_legs() -> tuple[AudioEngine, Leg, Leg, Leg]:
    engine = AudioEngine(ToneMic(), name="test")
    a, b, c = Leg(440.0, 8000), Leg(620.0, 8000), Leg(1800.0, 48000)
    for leg in (a, b, c):
        engine._ports.append(leg)  # no event loop here: attach() would start the pump
    return engine, a, b, c


PRESENT = 0.05  # a tone of amplitude 0.2 shows ~0.1 here; absent ones stay below 0.005
ABSENT = 0.005


def test_each_leg_sends_the_others_and_our_mic_never_itself() -> None:
    engine, a, b, c = three_legs()
    engine.conference = Conference(ENGINE_RATE, [a, b, c])
    run(engine, 1.0, 0.0)
    tones = {"a": a.hz, "b": b.hz, "c": c.hz}
    for name, leg in (("a", a), ("b", b), ("c", c)):
        sent = leg.take_sent()
        assert level_at(sent, leg.rate, MIC_HZ) > PRESENT, f"{name} lacks our microphone"
        for other, hz in tones.items():
            level = level_at(sent, leg.rate, hz)
            if other == name:
                assert level < ABSENT, f"{name} hears itself back ({level})"
            else:
                assert level > PRESENT, f"{name} lacks {other}'s tone ({level})"
    # What we hear (a recording's remote side) holds all three parties.
    heard = np.concatenate(a.heard)
    for hz in tones.values():
        assert level_at(heard, ENGINE_RATE, hz) > PRESENT


def test_mute_silences_only_our_microphone() -> None:
    engine, a, b, c = three_legs()
    engine.conference = Conference(ENGINE_RATE, [a, b, c])
    a.muted = True
    run(engine, 1.0, 0.0)
    sent = a.take_sent()
    assert level_at(sent, a.rate, MIC_HZ) < ABSENT
    assert level_at(sent, a.rate, b.hz) > PRESENT
    assert level_at(sent, a.rate, c.hz) > PRESENT


def test_split_stops_the_mix_and_a_call_left_alone_gets_only_our_mic() -> None:
    engine, a, b, c = three_legs()
    conference = Conference(ENGINE_RATE, [a, b, c])
    engine.conference = conference
    now = run(engine, 0.5, 0.0)
    engine.detach(c)  # c hung up: a and b still hear each other
    assert c not in conference and not c.mixed and a.mixed
    for leg in (a, b):
        leg.take_sent()
    now = run(engine, 1.0, now)
    sent_a = a.take_sent()
    assert level_at(sent_a, a.rate, b.hz) > PRESENT
    assert level_at(sent_a, a.rate, c.hz) < ABSENT
    conference.clear()
    engine.conference = None
    assert not a.mixed and not b.mixed
    b.take_sent()
    run(engine, 1.0, now)
    sent_b = b.take_sent()
    assert level_at(sent_b, b.rate, MIC_HZ) > PRESENT
    assert level_at(sent_b, b.rate, a.hz) < ABSENT


def test_capture_side_lagging_is_bounded() -> None:
    """Renders without microphone blocks queue at most max_lag_ms of the others' audio."""

    class Raw(Leg):
        def capture(self, pcm: np.ndarray, now: float, *, others: np.ndarray | None = None) -> None:
            assert others is not None
            self.sent.append(others)

    a, b = Raw(440.0, 8000), Raw(620.0, 8000)
    conference = Conference(8000, [a, b], max_lag_ms=100)
    for _ in range(50):
        conference.mix({a: np.zeros(80, dtype=np.float32), b: np.ones(80, dtype=np.float32)})
    conference.capture(np.zeros(4000, dtype=np.float32), 0.0)
    # a's queue held 100 ms (800 samples) of b's ones, then silence; b never hears itself.
    sent_a, sent_b = np.concatenate(a.sent), np.concatenate(b.sent)
    assert len(sent_a) == 4000
    assert np.count_nonzero(sent_a) == 800
    assert np.count_nonzero(sent_b) == 0
