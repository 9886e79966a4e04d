"""Playout: exactly N samples per pull, concealment + merge, FEC, and clock drift over 5 minutes."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from softphone.media.codecs import (
    DecoderOptions,
    EncoderOptions,
    Pcm,
    get_codec,
    unavailable_reasons,
)
from softphone.media.playout import Playout, cut_quiet, pad_quiet
from softphone.rtp.jitter import FrameKind
from softphone.rtp.jitter_target import JitterConfig

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"


def voiced(seconds: float, rate: int) -> Pcm:
    """A steady voiced-like signal: 150 Hz with harmonics (pitch-periodic, like a vowel)."""
    t = np.arange(round(seconds * rate)) / rate
    x = np.zeros(len(t))
    for h in (1, 2, 3, 4):
        x += np.sin(2 * np.pi * 150 * h * t) / h
    return (0.3 * x / 2.1).astype(np.float32)


def speech(rate: int) -> Pcm:
    with wave.open(str(SPEECH), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32)
        source = wav.getframerate()
    pcm /= 32768.0
    positions = np.arange(round(len(pcm) * rate / source)) * (source / rate)
    out: Pcm = np.interp(positions, np.arange(len(pcm)), pcm).astype(np.float32)
    return out


def packets(codec_name: str, audio: Pcm, **fmtp: str) -> list[bytes]:
    codec = get_codec(codec_name)
    assert codec.make_encoder is not None
    encoder = codec.make_encoder(EncoderOptions(fmtp=fmtp))
    if fmtp:
        encoder.set_packet_loss(10)
    frame = codec.sample_rate // 50
    return [encoder.encode(audio[i : i + frame]) for i in range(0, len(audio) - frame + 1, frame)]


def playout(codec_name: str) -> Playout:
    codec = get_codec(codec_name)
    assert codec.make_decoder is not None
    return Playout(codec, codec.make_decoder(DecoderOptions()))


def test_pull_always_returns_exactly_the_samples_asked_for() -> None:
    p = playout("PCMU")
    payloads = packets("PCMU", voiced(2.0, 8000))
    rng = np.random.default_rng(1)
    now = 0.0
    for i, payload in enumerate(payloads):
        if i % 7 != 3:  # some lost
            p.put(
                sequence=i, timestamp=160 * i, payload=payload, now=0.02 * i + rng.uniform(0, 0.03)
            )
    sizes = [1, 80, 160, 7, 333, 80, 0, 480]
    for step in range(300):
        n = sizes[step % len(sizes)]
        out = p.pull(n, now)
        assert out.shape == (n,) and out.dtype == np.float32
        assert np.all(np.abs(out) <= 1.0)
        now += max(n, 1) / 8000
    assert p.stats().packets_played > 50


def test_silence_before_the_first_packet_then_audio() -> None:
    p = playout("PCMU")
    assert not np.any(p.pull(80, 0.0))
    p.put(sequence=0, timestamp=0, payload=packets("PCMU", voiced(0.02, 8000))[0], now=0.0)
    heard = np.concatenate([p.pull(80, 0.01 * k) for k in range(1, 12)])
    assert np.abs(heard).max() > 0.05


def test_a_lost_packet_is_concealed_and_the_next_one_merged() -> None:
    signal = voiced(1.0, 8000)
    payloads = packets("PCMU", signal)
    p = playout("PCMU")
    out = []
    for step in range(200):
        now = step * 0.010
        i = step // 2
        if step % 2 == 0 and i < len(payloads) and i != 20:
            p.put(sequence=i, timestamp=160 * i, payload=payloads[i], now=now)
        out.append(p.pull(80, now))
        if p.stats().packets_played == len(payloads) - 1:
            break  # stop before the end of the stream is concealed too
    heard = np.concatenate(out)
    stats = p.stats()
    assert stats.packets_played == len(payloads) - 1 and stats.fec_frames == 0  # all but 20
    assert 15.0 <= stats.concealed_ms <= 30.0
    frames = {f.sequence: f for f in p.frames_played()}
    assert frames[20].kind is FrameKind.CONCEALED and frames[21].kind is FrameKind.PACKET
    start = round(frames[20].play_time * 8000)
    gap = heard[start : start + 160]
    assert np.sqrt(np.mean(gap**2)) > 0.05  # pitch repetition, not silence
    # No click where the concealment ends and packet 21 begins: the sample-to-sample step stays
    # within what the signal itself does.
    join = round(frames[21].play_time * 8000)
    steps = np.abs(np.diff(heard[join - 40 : join + 40]))
    assert steps.max() < 2.0 * np.abs(np.diff(signal)).max()


@pytest.mark.skipif("opus" in unavailable_reasons(), reason="libopus is not installed")
def test_opus_rebuilds_a_lost_frame_from_fec_in_the_next_packet() -> None:
    payloads = packets("opus", speech(48000)[: 48000 * 2], useinbandfec="1")
    p = playout("opus")
    for step in range(200):
        now = step * 0.010
        i = step // 2
        if step % 2 == 0 and i < len(payloads) and i != 30:
            p.put(sequence=i, timestamp=960 * i, payload=payloads[i], now=now)
        assert p.pull(480, now).shape == (480,)
    stats = p.stats()
    frames = {f.sequence: f for f in p.frames_played()}
    assert frames[30].kind is FrameKind.FEC and stats.fec_frames == 1


@pytest.mark.parametrize("ppm", [100.0, -100.0])
def test_clock_drift_of_100_ppm_over_5_minutes_keeps_delay_bounded_without_underruns(
    ppm: float,
) -> None:
    frame = 160
    payload_cycle = packets("PCMU", voiced(0.4, 8000))  # 20 frames, looped
    p = playout("PCMU")
    count = 15000  # 300 s of 20 ms packets
    rng = np.random.default_rng(5)
    arrivals = (0.02 * np.arange(count) + 0.030 + rng.uniform(0.0, 0.002, count)) * (1 + ppm * 1e-6)
    k = 0
    for step in range(30000 + 100):
        if p.stats().packets_played == count:
            break  # stop before the end of the stream is concealed too
        now = step * 0.010
        while k < count and arrivals[k] <= now:
            p.put(
                sequence=k & 0xFFFF,
                timestamp=k * frame,
                payload=payload_cycle[k % 20],
                now=float(arrivals[k]),
            )
            k += 1
        p.pull(80, now)
    stats = p.stats()
    assert stats.packets_played >= count - 1
    assert stats.late == 0
    assert stats.concealed_ms == 0.0  # no underruns
    # Sender and receiver clocks drift 30 ms apart; the playout delay still stays put.
    assert 0.020 < stats.buffer_delay_ms / 1000 + 0.030 < 0.080
    # Stretching absorbed the drift: about 30 ms of audio in 5 minutes, not more than 1 %.
    moved = stats.accelerated_ms if ppm < 0 else stats.expanded_ms
    assert 20.0 <= moved and stats.accelerated_ms + stats.expanded_ms < 3000.0


def test_quiet_frames_are_cut_and_padded_with_a_cross_fade_at_their_start() -> None:
    fade_in = np.linspace(0.0, 1.0, 8, dtype=np.float32)
    fade_out = (1.0 - fade_in).astype(np.float32)
    frame = np.full(160, 0.01, dtype=np.float32)
    frame[:80] = 0.02  # first half louder: the cut takes from the start, after the fade
    cut = cut_quiet(frame, 100, fade_in, fade_out)
    assert len(cut) == 60 and cut[0] == frame[0] and np.all(cut[8:] == 0.01)
    assert len(cut_quiet(frame, 1000, fade_in, fade_out)) == 8  # at most all but one fade
    padded = pad_quiet(frame, 50, fade_in, fade_out)
    assert len(padded) == 210 and np.array_equal(padded[:50], frame[:50])
    assert np.array_equal(padded[58:], frame[8:])  # then the frame again, from one fade on


def test_delay_is_moved_in_pauses_and_speech_is_played_whole() -> None:
    # Talkspurts (a loud vowel-like tone) with a 40 ms pause every 300 ms. The first packet is
    # the slowest and the initial delay is a guess: the excess goes in the pauses, not in speech.
    p = playout("PCMU")
    frame = 160
    tone = voiced(0.02, 8000)
    frames = [np.zeros(frame, dtype=np.float32) if i % 15 in (13, 14) else tone for i in range(400)]
    encoded = [packets("PCMU", f)[0] for f in frames]
    out, t, k = [], 0.0, 0
    arrivals = [(0.030 + 0.020 * i + (0.012 if i == 0 else 0.0), i) for i in range(400)]
    while t < 8.0:  # the last packet plays at ~8.03 s: no concealment after the stream
        while k < len(arrivals) and arrivals[k][0] <= t:
            at, i = arrivals[k]
            p.put(sequence=i, timestamp=i * frame, payload=encoded[i], now=at)
            k += 1
        out.append(p.pull(40, t))  # 5 ms, as a call's audio pump
        t += 0.005
    heard = np.concatenate(out)
    stats = p.stats()
    assert stats.accelerated_ms > 0 and stats.concealed_ms == 0
    assert 10.0 <= stats.target_delay_ms <= 12.0  # the floor: a clean path still gets 10 ms
    # Every talkspurt was played whole (13 frames = 2080 samples), none stretched.
    envelope = np.sqrt(np.convolve(heard.astype(np.float64) ** 2, np.ones(40) / 40, "same"))
    loud = envelope > 0.05
    edges = np.flatnonzero(np.diff(loud.astype(np.int8))) + 1
    lengths = np.diff(edges)
    talk = lengths[loud[edges[:-1]]][:-1]  # the last one is cut short by the end of the run
    pauses = lengths[~loud[edges[:-1]]]
    assert len(talk) >= 20 and np.all(talk == talk[0]) and abs(talk[0] - 2080) <= 40, talk
    assert pauses.min() < 300 - 40  # a pause was cut (40 ms = 320 samples, less the envelope)
    # The delay settled at the first pull at or above the target (41 ms after sending: the 5 ms
    # pulls are regular, so the one at 45 ms), the 12 ms first-packet excess and all.
    play = [f.play_time - 0.020 * (f.timestamp // frame) for f in p.frames_played()]
    assert abs(play[-1] - 0.045) < 1e-6


@pytest.mark.parametrize("regular", [True, False])
def test_frames_start_on_the_pulls_only_when_the_pulls_are_regular(regular: bool) -> None:
    # 30 ms + up to 2 ms of jitter: the target is 41 ms (10 ms floor + 1). Regular 5 ms pulls
    # decide a frame at 45 ms and start it there; a call's pump (pull times off the 5 ms grid by
    # up to 1 ms) keeps a block of room instead: 41 + 5 = 46 ms.
    p = playout("PCMU")
    frame = 160
    tone = voiced(0.02, 8000)
    frames = [np.zeros(frame, dtype=np.float32) if i % 5 == 4 else tone for i in range(300)]
    encoded = [packets("PCMU", f)[0] for f in frames]
    rng = np.random.default_rng(2)
    arrivals = 0.030 + 0.020 * np.arange(300) + rng.uniform(0.0, 0.002, 300)
    k = 0
    for step in range(1200):
        t = step * 0.005 + (0.0 if regular else float(rng.uniform(0.0, 0.001)))
        while k < 300 and arrivals[k] <= t:
            p.put(sequence=k, timestamp=k * frame, payload=encoded[k], now=float(arrivals[k]))
            k += 1
        p.pull(40, t)
    offsets = [f.play_time - 0.020 * (f.timestamp // frame) for f in p.frames_played()]
    settled = np.array(offsets[150:250])
    assert p.stats().concealed_ms == 0.0 and 10.0 <= p.stats().target_delay_ms <= 12.0
    if regular:
        assert np.all(np.abs(settled - 0.045) < 1e-6)
    else:
        assert 0.0455 < settled.mean() < 0.0475


def test_stats_before_the_first_pull_have_no_playout_delay() -> None:
    """The TUI reads stats right after the answer: packets may have arrived (on a monotonic
    clock hours from zero) before the audio engine first pulled. No negative delay then."""
    p = playout("PCMU")
    for i, payload in enumerate(packets("PCMU", voiced(0.1, 8000))):
        p.put(sequence=i, timestamp=160 * i, payload=payload, now=20_000.0 + 0.02 * i)
    assert p.stats().buffer_delay_ms == 0.0
    p.pull(160, 20_000.2)
    assert 0.0 < p.stats().buffer_delay_ms < 1000.0


def test_the_last_frame_played_is_lip_syncs_playout_point() -> None:
    """``last_played``: the last frame of a packet handed over and when its first sample went
    out; concealment leaves it where it was; a new source clears it."""
    p = playout("PCMU")
    payloads = packets("PCMU", voiced(1.0, 8000))
    for i, payload in enumerate(payloads[:20]):
        p.put(sequence=i, timestamp=160 * i, payload=payload, now=0.02 * i)
    assert p.last_played is None
    now = 0.0
    while now < 0.5:
        p.pull(160, now)
        now += 0.02
    last = p.last_played
    assert last is not None and last.timestamp == 160 * 19  # the last packet given
    # Its first sample went out at a pull: the delay from arrival is the buffer's.
    assert 0.02 * 19 < last.play_time < now
    for _ in range(10):  # nothing more comes: concealed frames do not move the point
        p.pull(160, now)
        now += 0.02
    assert p.last_played == last
    p.new_source()
    assert p.last_played is None


def test_opus_plc_is_asked_for_in_pieces_of_at_least_10_ms() -> None:
    # The call's pump pulls 5 ms blocks. A lost frame concealed one block at a time asked
    # libopus for 5 ms of PLC four times over, which it renders far worse than 10 or 20 ms at
    # once (WB-PESQ 1.79 against 2.16 with the same 36 of 700 frames lost).
    p = playout("opus")
    asked: list[int] = []
    conceal = p.decoder.conceal

    def spy(samples: int) -> Pcm | None:
        asked.append(samples)
        return conceal(samples)

    p.decoder.conceal = spy  # type: ignore[method-assign]
    payloads = packets("opus", speech(48000)[: 48000 * 3])
    lost = {40, 41, 42, 80, 120}  # a burst of three and two single losses
    block = 240
    for step in range(int(2.8 / 0.005)):
        now = step * 0.005
        for i, payload in enumerate(payloads):
            at = 0.02 * i + 0.001
            if i not in lost and now - 0.005 < at <= now:
                p.put(sequence=i, timestamp=960 * i, payload=payload, now=at)
        assert len(p.pull(block, now)) == block
    assert asked, "nothing was concealed"
    assert min(asked) >= 480, asked
    assert sum(asked) >= 5 * 960 - 480


@pytest.mark.parametrize("margin_ms", [0.0, JitterConfig().pull_margin_ms])
def test_ten_ms_pulls_keep_a_pulls_margin_over_a_coarse_senders_late_packets(
    margin_ms: float,
) -> None:
    # A far end that sends from a 10 ms pump (each packet 0-8 ms after the fastest) and is 6 ms
    # later still now and then (a busy machine), heard through regular 10 ms pulls. Frames
    # start on a pull at or after the target; here the pulls fall just after it (the worst
    # phase: the fastest arrival 38.9 ms after media time, so 10 + 1 ms over it is 49.9 and the
    # pull lattice has a point at 50). With only the plain 10 ms floor the late packets come
    # after the pull that needs them (a slip: concealment, then an acceleration to undo it); a
    # floor of the block plus the margin takes them.
    codec = get_codec("PCMU")
    assert codec.make_decoder is not None
    p = Playout(
        codec, codec.make_decoder(DecoderOptions()), config=JitterConfig(pull_margin_ms=margin_ms)
    )
    frame = 160
    encoded = packets("PCMU", voiced(8.0, 8000))
    count = len(encoded)
    rng = np.random.default_rng(5)
    late = 0.008 * rng.random(count) + np.where(np.arange(count) % 25 == 24, 0.006, 0.0)
    late[0] = 0.0
    arrivals = 0.0389 + 0.020 * np.arange(count) + late
    k = 0
    for step in range(790):  # 7.9 s of 10 ms pulls
        t = step * 0.010
        while k < count and arrivals[k] <= t:
            p.put(sequence=k, timestamp=k * frame, payload=encoded[k], now=float(arrivals[k]))
            k += 1
        p.pull(80, t)
    stats = p.stats()
    if margin_ms > 0:
        assert stats.concealed_ms == 0.0 and 15.0 <= stats.target_delay_ms <= 17.0
    else:
        assert stats.concealed_ms > 0.0  # what the margin is for
