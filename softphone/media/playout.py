"""Playout: the jitter buffer's decisions turned into audio, exactly N samples per pull.

:class:`Playout` owns a :class:`softphone.rtp.jitter.JitterBuffer` (packet scheduling, codec-free)
and the codec's decoder. On every :meth:`Playout.pull` it asks the scheduler for frames until its
queue of decoded audio covers the block, then hands over exactly ``samples`` samples:

- PLAY: decode the packet; after a concealment the pitch concealer (codecs without PLC) merges
  into it; then the requested time-stretch (``media.stretch.accelerate`` / ``expand``: whole pitch
  periods with overlap-add, never whole frames) is applied to the frame;
- FEC: Opus in-band FEC from the next packet (``Decoder.decode_fec``), falling back to PLC;
- CONCEAL: the codec's PLC (``Decoder.conceal``, Opus) or ITU-T G.711 Appendix I style pitch
  repetition (:class:`softphone.media.conceal.PitchConcealer`) that fades out on long gaps;
- SILENCE: zeros before the first packet is due.

When the pulls are regular (the same size, each that long after the one before, as the
benchmark's 5 ms pump), the scheduler is told so and starts frames exactly on a pull.

For every frame the receiver time of its first sample is recorded from the samples actually
handed over (pull time + position in the block), so the benchmark's ``play_ms`` is measured, not
intended: :meth:`Playout.frames_played` drains those records.

Not for the audio callback: decoding allocates. The phone calls ``pull`` from its event loop and
feeds the device through the ring buffers of ``media.device``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from softphone.media.codecs import CodecDescriptor, CodecError, Decoder, Pcm
from softphone.media.conceal import PitchConcealer
from softphone.media.stretch import accelerate, expand
from softphone.rtp.jitter import (
    Action,
    Decision,
    FrameKind,
    JitterBuffer,
    Stretch,
)
from softphone.rtp.jitter_target import JitterConfig

FRAMES_MEMORY: Final = 4096
"""Frame records kept for :meth:`Playout.frames_played` (older ones are dropped)."""
MAX_DECISIONS_PER_PULL: Final = 256
PLC_GRANULE_S: Final = 0.0025
"""Concealment is asked for in 2.5 ms granules (what libopus PLC works in)."""
PLC_MIN_PIECE_S: Final = 0.010
"""...but the codec's PLC is run in pieces of at least 10 ms: libopus's PLC asked for 5 ms at a
time (one pull block) sounds far worse than 10 or 20 ms at a time (WB-PESQ 1.79 against 2.16
for the same 36 frames lost out of 700). What a piece makes beyond the request is kept for the
next request; if a packet comes first, the decoded frame cross-fades out of it."""
QUIET_FLOOR: Final = 10 ** (-55 / 20)
"""A frame this quiet (RMS, full scale 1) is always quiet: silence, a pause, faint noise."""
QUIET_CEILING: Final = 10 ** (-35 / 20)
"""A frame this loud is never quiet, however loud the talker was."""
QUIET_BELOW_LEVEL: Final = 10 ** (-30 / 20)
"""In between, quiet means this far under the talker's recent level (a pause in speech)."""
LEVEL_DECAY: Final = 10 ** (-20 / 20 / 250)
"""The talker's level (peak frame RMS) falls 20 dB in 5 s of 20 ms frames when nobody talks."""
QUIET_FADE_S: Final = 0.0025
"""Cross-fade where a quiet frame is cut or padded."""
REGULAR_PULLS: Final = 8
"""After this many pulls of the same size, each that size's duration after the one before, the
pulls form a lattice and the jitter buffer aligns frame starts to it (``regular_pulls``)."""
REGULAR_TOLERANCE_S: Final = 1e-4
"""How far a pull's time may be from the lattice of the ones before and still keep to it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayoutStats:
    """What the listener got so far (ms unless named otherwise)."""

    target_delay_ms: float
    buffer_delay_ms: float
    packets_played: int
    late: int
    duplicate: int
    too_old: int
    concealed_ms: float
    fec_frames: int
    accelerated_ms: float
    expanded_ms: float
    decode_errors: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FramePlayed:
    """The first sample of frame ``sequence``/``timestamp`` was played at ``play_time``."""

    sequence: int
    timestamp: int
    kind: FrameKind
    play_time: float


def cut_quiet(pcm: Pcm, count: int, fade_in: Pcm, fade_out: Pcm) -> Pcm:
    """``pcm`` without ``count`` samples (at most all but one fade's length) near its start: the
    first fade-length of the frame cross-fades into the audio ``count`` samples later, so the
    frame still begins where the previous one ended."""
    fade = len(fade_in)
    count = min(count, len(pcm) - fade)
    if count <= 0:
        return pcm
    head = pcm[:fade] * fade_out + pcm[count : count + fade] * fade_in
    return np.concatenate((head, pcm[count + fade :])).astype(np.float32, copy=False)


def pad_quiet(pcm: Pcm, count: int, fade_in: Pcm, fade_out: Pcm) -> Pcm:
    """``pcm`` with ``count`` more samples (at most all but one fade's length): its first
    ``count`` samples are played, then it starts again, cross-faded over one fade's length."""
    fade = len(fade_in)
    count = min(count, len(pcm) - fade)
    if count <= 0:
        return pcm
    joint = pcm[count : count + fade] * fade_out + pcm[:fade] * fade_in
    return np.concatenate((pcm[:count], joint, pcm[fade:])).astype(np.float32, copy=False)


class Playout:
    """Jitter buffer + decoder + concealment + time-stretching for one received stream."""

    def __init__(
        self,
        codec: CodecDescriptor,
        decoder: Decoder,
        *,
        frame_ms: int = 20,
        config: JitterConfig | None = None,
    ) -> None:
        self.codec = codec
        self.decoder = decoder
        self.sample_rate = decoder.sample_rate
        self._clock = codec.clock_rate
        frame_ticks = codec.clock_rate * frame_ms // 1000
        granule = max(1, round(PLC_GRANULE_S * codec.clock_rate)) if codec.has_plc else 1
        self.jitter: JitterBuffer[bytes] = JitterBuffer(
            clock_rate=codec.clock_rate,
            frame_ticks=frame_ticks,
            config=config,
            granule_ticks=granule,
            use_fec=codec.has_fec,
        )
        self._concealer = None if codec.has_plc else PitchConcealer(self.sample_rate)
        self._plc_piece = round(PLC_MIN_PIECE_S * self.sample_rate)
        self._plc_left = np.zeros(0, dtype=np.float32)  # PLC made, not yet played
        self._frame_samples = self.sample_rate * frame_ms // 1000
        self._queue = np.zeros(self.sample_rate, dtype=np.float32)  # 1 s, grows if ever needed
        self._head = 0  # first queued sample
        self._tail = 0  # one past the last queued sample
        self._out_pos = 0  # samples handed over since the start (absolute position of _head)
        self._marks: deque[tuple[int, int, int, FrameKind]] = deque()
        self._frames: deque[FramePlayed] = deque(maxlen=FRAMES_MEMORY)
        self.last_played: FramePlayed | None = None  # the last frame of a packet handed over
        self._concealed = 0
        self._accelerated = 0
        self._expanded = 0
        self._decode_errors = 0
        self._last_now = 0.0
        self._last_pull: tuple[float, int] | None = None  # (now, samples) of the previous pull
        self._regular_run = 0  # consecutive pulls that kept to the lattice of the previous ones
        self._level = 0.0  # the talker's recent level (RMS of the loudest recent frame)
        self._quiet_fade = max(1, round(QUIET_FADE_S * self.sample_rate))
        ramp = (np.arange(self._quiet_fade, dtype=np.float32) + 0.5) / self._quiet_fade
        self._fade_in = ramp.astype(np.float32)
        self._fade_out = (1.0 - ramp).astype(np.float32)

    # -- input -----------------------------------------------------------------------------------

    def put(
        self, *, sequence: int, timestamp: int, payload: bytes, now: float, marker: bool = False
    ) -> None:
        """One received RTP packet of this stream (payload only; PT already checked)."""
        self.jitter.put(
            sequence=sequence, timestamp=timestamp, payload=payload, now=now, marker=marker
        )

    def new_source(self) -> None:
        """Another source took over the stream (a new SSRC: a re-INVITE, a transfer, a PBX
        switching to a prompt): its sequence numbers and timestamps have nothing to do with the
        old ones, so the jitter buffer starts afresh (RFC 3550 §8.2). Audio already decoded
        still plays; the counters go on."""
        self.jitter.reset()
        self.last_played = None
        self._plc_left = self._plc_left[:0]

    # -- output ----------------------------------------------------------------------------------

    def pull(self, samples: int, now: float) -> Pcm:
        """Exactly ``samples`` samples to play from ``now`` on."""
        if samples <= 0:
            return np.zeros(0, dtype=np.float32)
        self._last_now = now
        self._note_pull(samples, now)
        regular = self._regular_run >= REGULAR_PULLS
        quantum = self._to_ticks(samples)
        self.jitter.pulled(quantum)
        rounds = 0
        while self._tail - self._head < samples:
            rounds += 1
            if rounds > MAX_DECISIONS_PER_PULL:  # a decoder returning nothing: never spin
                self._append(np.zeros(samples - (self._tail - self._head), dtype=np.float32))
                break
            queued = self._tail - self._head
            decision = self.jitter.next_frame(
                now=now,
                needed_ticks=self._to_ticks(samples - queued),
                queued_ticks=self._to_ticks(queued),
                quantum_ticks=quantum,
                regular_pulls=regular,
            )
            self._render(decision, queued)
        start = self._out_pos
        end = start + samples
        marks = self._marks
        while marks and marks[0][0] < end:
            position, sequence, timestamp, kind = marks.popleft()
            played = FramePlayed(
                sequence=sequence,
                timestamp=timestamp,
                kind=kind,
                play_time=now + (position - start) / self.sample_rate,
            )
            self._frames.append(played)
            if kind is not FrameKind.CONCEALED:  # lip sync's playout point (rtp/lipsync.py)
                self.last_played = played
        out = self._queue[self._head : self._head + samples].copy()
        self._head += samples
        self._out_pos = end
        return out

    def _note_pull(self, samples: int, now: float) -> None:
        """Count pulls that keep to a lattice: same size, one block's duration apart."""
        last = self._last_pull
        on_time = (
            last is not None
            and samples == last[1]
            and abs(now - last[0] - samples / self.sample_rate) < REGULAR_TOLERANCE_S
        )
        self._regular_run = self._regular_run + 1 if on_time else 0
        self._last_pull = (now, samples)

    def _to_ticks(self, samples: int) -> int:
        return samples * self._clock // self.sample_rate

    def _to_samples(self, ticks: int) -> int:
        return ticks * self.sample_rate // self._clock

    def _render(self, decision: Decision[bytes], queued: int) -> None:
        action = decision.action
        kind_override: FrameKind | None = None
        if action is Action.PLAY:
            assert decision.payload is not None
            pcm = self._decode(decision.payload)
            if pcm is None:
                pcm = self._conceal(self._frame_samples)
                kind_override = FrameKind.CONCEALED
            else:
                pcm = self._stretch(pcm, decision.stretch, decision.quiet_ticks)
        elif action is Action.FEC:
            assert decision.payload is not None
            count = self._to_samples(decision.ticks)
            rebuilt = self.decoder.decode_fec(decision.payload, count) if count > 0 else None
            if rebuilt is None or len(rebuilt) != count:
                pcm = self._conceal(count)
                kind_override = FrameKind.CONCEALED
            else:
                pcm = self._merge_plc(rebuilt)
        elif action is Action.CONCEAL:
            pcm = self._conceal(self._to_samples(decision.ticks))
        else:
            self._plc_left = self._plc_left[:0]
            pcm = np.zeros(self._to_samples(decision.ticks), dtype=np.float32)
        if self._concealer is not None:
            self._concealer.remember(pcm)
        base = self._out_pos + (self._tail - self._head)
        for start in decision.frame_starts:
            kind = kind_override if kind_override is not None else start.kind
            offset = min(self._to_samples(start.offset_ticks), max(0, len(pcm) - 1))
            self._marks.append((base + offset, start.sequence, start.timestamp, kind))
        self._append(pcm)

    def _decode(self, payload: bytes) -> Pcm | None:
        try:
            pcm = self.decoder.decode(payload)
        except CodecError:
            self._decode_errors += 1
            return None
        if self._concealer is not None and self._concealer.concealing:
            pcm = self._concealer.merge(pcm)
        return self._merge_plc(pcm)

    def _merge_plc(self, pcm: Pcm) -> Pcm:
        """After codec PLC whose last piece was not all played: cross-fade from what it would
        have played next into ``pcm`` (the decoder went on from the end of the piece)."""
        left = self._plc_left
        if not len(left):
            return pcm
        self._plc_left = left[:0]
        fade = min(len(left), len(pcm), self._quiet_fade)
        if fade == 0:
            return pcm
        out = pcm.copy()
        out[:fade] = left[:fade] * self._fade_out[:fade] + pcm[:fade] * self._fade_in[:fade]
        return out

    def _conceal(self, count: int) -> Pcm:
        self._concealed += count
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        if self._concealer is not None:
            return self._concealer.conceal(count)
        left = self._plc_left
        if len(left) < count:
            piece = max(count - len(left), self._plc_piece)
            made = self.decoder.conceal(piece)
            if made is None or len(made) != piece:
                made = np.zeros(piece, dtype=np.float32)
            left = np.concatenate((left, made)) if len(left) else made
        self._plc_left = left[count:]
        return left[:count].astype(np.float32, copy=False)

    def _quiet(self, pcm: Pcm) -> bool:
        """Is this frame a pause (relative to the talker's recent level)? Updates the level."""
        # A float32 dot product: the mean of squares without a float64 copy of the frame.
        rms = math.sqrt(max(float(np.dot(pcm, pcm)), 0.0) / len(pcm)) if len(pcm) else 0.0
        self._level = max(rms, self._level * LEVEL_DECAY)
        return rms < max(QUIET_FLOOR, min(QUIET_CEILING, QUIET_BELOW_LEVEL * self._level))

    def _stretch(self, pcm: Pcm, stretch: Stretch, quiet_ticks: int) -> Pcm:
        """Move toward the target: by cutting or padding a quiet frame where the scheduler allows
        it (inaudible, up to nearly a frame), else by the requested time-stretch of speech."""
        quiet = self._quiet(pcm)
        if quiet and quiet_ticks != 0:
            delta = self._to_samples(abs(quiet_ticks))
            result = (
                cut_quiet(pcm, delta, self._fade_in, self._fade_out)
                if quiet_ticks > 0
                else pad_quiet(pcm, delta, self._fade_in, self._fade_out)
            )
            return self._count_stretch(pcm, result)
        if stretch is Stretch.NONE:
            return pcm
        if stretch is Stretch.EXPAND:
            result = expand(pcm, self.sample_rate).audio
        else:
            result = accelerate(
                pcm, self.sample_rate, fast=stretch is Stretch.FAST_ACCELERATE
            ).audio
        return self._count_stretch(pcm, result)

    def _count_stretch(self, before: Pcm, after: Pcm) -> Pcm:
        delta = len(after) - len(before)
        self.jitter.stretched(self._to_ticks(delta) if delta >= 0 else -self._to_ticks(-delta))
        if delta < 0:
            self._accelerated -= delta
        else:
            self._expanded += delta
        return after

    def _append(self, pcm: Pcm) -> None:
        count = len(pcm)
        if self._tail + count > len(self._queue):
            queued = self._tail - self._head
            if queued + count > len(self._queue):
                bigger = np.zeros(2 * (queued + count), dtype=np.float32)
                bigger[:queued] = self._queue[self._head : self._tail]
                self._queue = bigger
            else:
                self._queue[:queued] = self._queue[self._head : self._tail]
            self._head, self._tail = 0, queued
        self._queue[self._tail : self._tail + count] = pcm
        self._tail += count

    # -- reporting -------------------------------------------------------------------------------

    def frames_played(self) -> list[FramePlayed]:
        """Frames whose first sample has been handed over since the last call (drained)."""
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def stats(self) -> PlayoutStats:
        """Counters so far. ``buffer_delay_ms`` is the playout delay at the last pull over the
        fastest recent packet: the jitter buffer's deadline plus the decoded audio still queued."""
        jitter = self.jitter.stats(self._last_now)
        queued_ms = (self._tail - self._head) * 1000.0 / self.sample_rate
        to_ms = 1000.0 / self.sample_rate
        # Before the first pull there is no playout delay yet (packets may already be waiting:
        # stats asked for right after the answer must not measure against a clock at 0).
        buffer_ms = jitter.buffer_delay_ms + queued_ms if self._last_now > 0.0 else 0.0
        return PlayoutStats(
            target_delay_ms=jitter.target_delay_ms,
            buffer_delay_ms=max(0.0, buffer_ms),
            packets_played=jitter.packets_played,
            late=jitter.late,
            duplicate=jitter.duplicate,
            too_old=jitter.too_old,
            concealed_ms=self._concealed * to_ms,
            fec_frames=jitter.fec_frames,
            accelerated_ms=self._accelerated * to_ms,
            expanded_ms=self._expanded * to_ms,
            decode_errors=self._decode_errors,
        )
