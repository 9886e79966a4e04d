"""``softphone bench jitter``: replay a network trace through the calls' playout, causally.

Packets carry real speech encoded with the call's codec (the speech WAV is looped), so
concealment and time-stretching run for real. The replay is causal: packets are handed to
:class:`softphone.media.playout.Playout` in arrival order at their arrival times, the playout is
pulled in fixed 5 ms blocks on the receiver clock, and nothing sees the profile name or a future
arrival. ``play_ms`` comes from the samples actually produced (``Playout.frames_played``).

RTP sequence numbers and timestamps start just below their wrap so every run crosses it.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from softphone.media.codecs import CodecDescriptor, EncoderOptions, Pcm, get_codec
from softphone.media.playout import Playout
from softphone.rtp.jitter import FrameKind
from softphone.rtp.jitter_target import JitterConfig

F64 = npt.NDArray[np.float64]

PACKET_MS: Final = 20
BLOCK_MS: Final = 5
"""The pull block. A call's audio pump (phone/audio.py) ticks every 5 ms and pulls exactly the
samples the speaker needs, so 5 ms blocks are what calls do; the playout's delay control accounts
for the block (a frame must be there at the pull that starts it)."""
FIRST_SEQUENCE: Final = 65_000
FIRST_TIMESTAMP: Final = (1 << 32) - 48_000 * 3
DRAIN_MS: Final = 1000.0
"""Pulls go on at most this long after the last arrival, until every frame has been played (so
the concealment after the end of the trace does not count)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JitterLog:
    """LOG.npz's content: per packet index, and two totals."""

    play_ms: F64
    from_packet: npt.NDArray[np.bool_]
    fec: npt.NDArray[np.bool_]
    concealed_ms: float
    stretched_ms: float

    def save(self, path: Path) -> None:
        with path.open("wb") as out:
            np.savez(
                out,
                play_ms=self.play_ms.astype(np.float64),
                from_packet=self.from_packet.astype(bool),
                fec=self.fec.astype(bool),
                concealed_ms=np.float64(self.concealed_ms),
                stretched_ms=np.float64(self.stretched_ms),
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """The figures the targets are about."""

    late_loss_pct: float  # arrived but not played from their own packet (FEC counts as late)
    mean_ms: float  # mean of play_ms - send_ms
    p95_ms: float
    concealed_ms: float
    stretched_pct: float  # stretched_ms over the trace's duration
    fec_frames: int


def read_speech(path: Path, sample_rate: int) -> Pcm:
    """A 16-bit PCM WAV (mono or stereo, any rate) as mono float32 at ``sample_rate``."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm[: len(pcm) // channels * channels].reshape(-1, channels).mean(axis=1)
    if len(pcm) == 0:
        raise ValueError(f"{path}: no audio")
    if rate != sample_rate:
        count = max(1, round(len(pcm) * sample_rate / rate))
        positions = np.arange(count) * (rate / sample_rate)
        pcm = np.interp(positions, np.arange(len(pcm)), pcm).astype(np.float32)
    result: Pcm = pcm.astype(np.float32)
    return result


def encode_packets(
    codec: CodecDescriptor, speech: Pcm, count: int, loss_percent: int
) -> list[bytes]:
    """``count`` 20 ms payloads of the looped speech. Opus gets in-band FEC (the peer's
    ``useinbandfec=1``) and the loss percentage RTCP would report, as in a call."""
    assert codec.make_encoder is not None
    fmtp = {"useinbandfec": "1"} if codec.has_fec else {}
    encoder = codec.make_encoder(EncoderOptions(frame_ms=PACKET_MS, fmtp=fmtp))
    encoder.set_packet_loss(loss_percent)
    frame = codec.sample_rate * PACKET_MS // 1000
    reps = math.ceil(count * frame / len(speech)) + 1
    looped = np.tile(speech, reps)
    return [encoder.encode(looped[i * frame : (i + 1) * frame]) for i in range(count)]


def run(
    send_ms: F64,
    arr_ms: F64,
    speech: Pcm,
    codec_name: str = "opus",
    *,
    collect_audio: bool = False,
    config: JitterConfig | None = None,
) -> tuple[JitterLog, Pcm | None]:
    """Replay one trace; returns the log and (optionally) what the listener heard.
    ``config`` is for experiments only: the benchmark uses the calls' defaults (None)."""
    codec = get_codec(codec_name)
    assert codec.make_decoder is not None
    from softphone.media.codecs import DecoderOptions

    n = len(send_ms)
    arrived = ~np.isnan(arr_ms)
    loss_percent = math.ceil(100.0 * (1.0 - float(arrived.mean()))) if n else 0
    payloads = encode_packets(codec, speech, n, loss_percent)
    playout = Playout(
        codec, codec.make_decoder(DecoderOptions()), frame_ms=PACKET_MS, config=config
    )
    frame_ticks = codec.clock_rate * PACKET_MS // 1000
    block = playout.sample_rate * BLOCK_MS // 1000

    order = np.flatnonzero(arrived)
    order = order[np.argsort(arr_ms[order], kind="stable")]
    play_ms = np.full(n, np.nan)
    from_packet = np.zeros(n, dtype=bool)
    fec = np.zeros(n, dtype=bool)
    audio: list[Pcm] = []
    if len(order) == 0:
        log = JitterLog(
            play_ms=play_ms, from_packet=from_packet, fec=fec, concealed_ms=0.0, stretched_ms=0.0
        )
        return log, None
    t = math.floor(float(arr_ms[order[0]]) / BLOCK_MS) * BLOCK_MS
    end = float(arr_ms[order[-1]]) + DRAIN_MS
    k = 0
    unplayed = n
    while t <= end and unplayed > 0:
        while k < len(order) and arr_ms[order[k]] <= t:
            i = int(order[k])
            playout.put(
                sequence=(FIRST_SEQUENCE + i) & 0xFFFF,
                timestamp=(FIRST_TIMESTAMP + i * frame_ticks) & 0xFFFFFFFF,
                payload=payloads[i],
                now=float(arr_ms[i]) / 1000.0,
            )
            k += 1
        pcm = playout.pull(block, t / 1000.0)
        if collect_audio:
            audio.append(pcm)
        for frame in playout.frames_played():
            ticks = (frame.timestamp - FIRST_TIMESTAMP) & 0xFFFFFFFF
            if ticks % frame_ticks:
                continue
            i = ticks // frame_ticks
            if i >= n or from_packet[i]:
                continue
            unplayed -= bool(math.isnan(play_ms[i]))
            if frame.kind is FrameKind.PACKET:
                play_ms[i] = frame.play_time * 1000.0
                from_packet[i] = True
                fec[i] = False
            elif math.isnan(play_ms[i]):
                play_ms[i] = frame.play_time * 1000.0
                fec[i] = frame.kind is FrameKind.FEC
        t += BLOCK_MS
    stats = playout.stats()
    log = JitterLog(
        play_ms=play_ms,
        from_packet=from_packet,
        fec=fec,
        concealed_ms=stats.concealed_ms,
        stretched_ms=stats.accelerated_ms + stats.expanded_ms,
    )
    heard = np.concatenate(audio) if collect_audio else None
    return log, heard


def score(send_ms: F64, arr_ms: F64, log: JitterLog) -> Score:
    """Late loss, mouth-to-ear and stretching, as defined in softphone/bench/oracle.py."""
    arrived = ~np.isnan(arr_ms)
    late = arrived & ~log.from_packet
    played = ~np.isnan(log.play_ms)
    delays = log.play_ms[played] - send_ms[played]
    duration_ms = len(send_ms) * float(PACKET_MS)
    return Score(
        late_loss_pct=100.0 * float(late.sum()) / max(1, int(arrived.sum())),
        mean_ms=float(delays.mean()) if len(delays) else math.nan,
        p95_ms=float(np.percentile(delays, 95)) if len(delays) else math.nan,
        concealed_ms=log.concealed_ms,
        stretched_pct=100.0 * log.stretched_ms / duration_ms if duration_ms else 0.0,
        fec_frames=int(log.fec.sum()),
    )


def write_wav(path: Path, pcm: Pcm, sample_rate: int) -> None:
    """Mono 16-bit WAV."""
    data = np.clip(np.rint(pcm * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(data.tobytes())
