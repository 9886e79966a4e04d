"""Recording RTSP streams: access units remuxed into Matroska through PyAV, without re-encoding
(:class:`StreamRecorder`).

The file is written as it goes (clusters of a second go straight to the OS), so a killed process
loses about the last second; a video stream starts at its first key frame, and its codec
configuration is taken from the SDP or from that key frame's parameter sets. Like
media/video.py, every ``av`` failure leaves this module as :class:`MediaError`.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Final

import av
import av.container
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from softphone.media.errors import MediaError
from softphone.media.video import (
    VIDEO_CODECS,
    EncodedUnit,
    TimestampUnwrapper,
    VideoDecoder,
    channel_layout,
    parameter_sets,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedStream:
    """One stream to record: its codec (FFmpeg name), RTP clock and codec configuration."""

    codec: str
    clock_rate: int
    extradata: bytes | None = None
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


def _g711_expander(law: str) -> Callable[[bytes], bytes]:
    def expand(payload: bytes) -> bytes:
        import numpy as np

        from softphone.media.codecs.g711 import alaw_to_linear, ulaw_to_linear

        table = ulaw_to_linear if law == "ulaw" else alaw_to_linear
        return table(np.frombuffer(payload, dtype=np.uint8)).astype("<i2").tobytes()

    return expand


@dataclass(frozen=True, slots=True, kw_only=True)
class _MuxCodec:
    """How a codec goes into Matroska: the codec id FFmpeg's muxer is told about (named by an
    encoder that is never opened), and a payload transform when Matroska lacks the codec."""

    name: str
    transform: Callable[[bytes], bytes] | None = None


_MUX_CODECS: Final[Mapping[str, _MuxCodec]] = {
    "h264": _MuxCodec(name="h264"),
    "hevc": _MuxCodec(name="hevc"),
    "mjpeg": _MuxCodec(name="mjpeg"),
    "mpeg4": _MuxCodec(name="mpeg4"),
    "vp8": _MuxCodec(name="vp8"),  # a video call's (phone/video_stream.py)
    "vp9": _MuxCodec(name="vp9"),
    "aac": _MuxCodec(name="aac"),
    "opus": _MuxCodec(name="opus"),
    "pcm_s16be": _MuxCodec(name="pcm_s16be"),
    # Matroska has no G.711 (FFmpeg's muxer refuses it): its exact 16-bit expansion
    # (G.711 Tables 1/2, lossless: every character maps to one distinct value) is stored.
    "pcm_mulaw": _MuxCodec(name="pcm_s16le", transform=_g711_expander("ulaw")),
    "pcm_alaw": _MuxCodec(name="pcm_s16le", transform=_g711_expander("alaw")),
}
_REORDER_ALLOWANCE_S: Final = Fraction(1, 5)  # pts - dts room for B-frames (see _next_times)
_MAX_PENDING: Final = 2000  # units held while waiting for every video stream's first key frame
OPUS_PRE_SKIP: Final = 312  # RFC 7845 §4.2: the usual libopus encoder delay at 48 kHz


def opus_head(channels: int) -> bytes:
    """An Ogg Opus identification header (RFC 7845 §5.1), Matroska's A_OPUS CodecPrivate."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, 48000, 0, 0)


class _Track:
    """Per-stream state of the recorder."""

    def __init__(self, spec: RecordedStream) -> None:
        self.spec = spec
        self.video = spec.codec in VIDEO_CODECS
        self.extradata = spec.extradata
        self.width = spec.width
        self.height = spec.height
        needs_parameter_sets = spec.codec in ("h264", "hevc") and not spec.extradata
        sized = self.width is not None and self.height is not None
        self.ready = not self.video or (sized and not needs_parameter_sets)
        self.accepting = not self.video  # video: from the first key frame on
        self.stream: av.stream.Stream | None = None
        self.unwrapper = TimestampUnwrapper()
        self.first: int | None = None
        self.last_dts: int | None = None
        self.allowance = int(_REORDER_ALLOWANCE_S * spec.clock_rate)
        self.time_base = Fraction(1, spec.clock_rate)

    def learn_from_keyframe(self, data: bytes) -> None:
        """Take missing parameter sets and size from the first key frame (in-band SPS/PPS)."""
        if self.spec.codec in ("h264", "hevc") and not self.extradata:
            self.extradata = parameter_sets(self.spec.codec, data)
            if not self.extradata:
                return
        if self.width is None or self.height is None:
            decoder = VideoDecoder(self.spec.codec, self.extradata, threads=1)
            try:
                probe = _ProbeUnit(data=data, codec=self.spec.codec)
                pictures = decoder.decode(probe) + decoder.flush()
            finally:
                decoder.close()
            if not pictures:
                return
            self.width, self.height = pictures[0].width, pictures[0].height
        self.ready = True

    def next_times(self, timestamp: int) -> tuple[int, int]:
        """(pts, dts) in clock ticks. pts is relative to the stream's first unit plus a fixed
        allowance; dts only has to rise and stay <= pts (Matroska stores pts), so B-frames
        reordered by less than the allowance mux fine."""
        extended = self.unwrapper.extend(timestamp)
        if self.first is None:
            self.first = extended
        relative = extended - self.first
        dts = relative if self.last_dts is None else max(self.last_dts + 1, relative)
        return relative + self.allowance, dts


@dataclass(frozen=True, slots=True, kw_only=True)
class _ProbeUnit:
    data: bytes
    codec: str
    timestamp: int = 0
    keyframe: bool = True


class StreamRecorder:
    """Remux access units into a Matroska file, without re-encoding.

    The file is opened (and a bad path reported as MediaError) at once; the Matroska header is
    written when every video stream has its codec configuration (from ``RecordedStream`` or from
    the parameter sets of its first key frame). Until then units are held (up to 2000), and
    video units before a stream's first key frame are dropped. Clusters are closed every second
    and each finished cluster goes straight to the OS, so a killed process loses at most about
    the last second; a clean :meth:`close` also writes the cues (seeking).

    Counters: ``written`` units muxed, ``dropped`` units not recorded, ``errors`` units the
    muxer refused (e.g. timestamps going backwards further than the B-frame allowance).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        streams: Sequence[RecordedStream],
        *,
        cluster_ms: int = 1000,
    ) -> None:
        if not streams:
            raise MediaError("a recording needs at least one stream")
        for spec in streams:
            if spec.codec not in _MUX_CODECS:
                known = ", ".join(sorted(_MUX_CODECS))
                raise MediaError(f"cannot record {spec.codec!r} (supported: {known})")
            if spec.clock_rate <= 0:
                raise MediaError(f"bad clock rate {spec.clock_rate} for {spec.codec}")
            if spec.codec == "aac" and not spec.extradata:
                raise MediaError("recording AAC needs its AudioSpecificConfig (SDP config=)")
        self.path = Path(path)
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._tracks = [_Track(spec) for spec in streams]
        self._pending: list[tuple[int, EncodedUnit]] = []
        self._started = False
        self._closed = False
        try:
            self._file = open(self.path, "wb", buffering=0)
        except OSError as exc:
            raise MediaError(f"cannot record to {self.path}: {exc.strerror or exc}") from exc
        try:
            self._container = av.open(
                self._file,
                "w",
                format="matroska",
                options={"cluster_time_limit": str(cluster_ms)},
                container_options={"flush_packets": "1", "max_interleave_delta": "1000000"},
            )
        except (av.FFmpegError, ValueError) as exc:
            self._file.close()
            raise MediaError(f"cannot record to {self.path}: {exc}") from exc

    def __enter__(self) -> StreamRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, stream_index: int, unit: EncodedUnit) -> None:
        """Record one access unit of stream ``stream_index`` (its RTP timestamp as pts)."""
        if self._closed:
            raise MediaError("the recorder is closed")
        track = self._tracks[stream_index]
        if not track.accepting:
            if not unit.keyframe:  # a video recording starts at a key frame
                self.dropped += 1
                return
            if not track.ready:
                track.learn_from_keyframe(unit.data)
            if not track.ready:
                self.dropped += 1
                return
            track.accepting = True
        if not self._started:
            self._pending.append((stream_index, unit))
            if all(t.ready for t in self._tracks):
                self._start()
            elif len(self._pending) > _MAX_PENDING:
                self._pending.pop(0)
                self.dropped += 1
            return
        self._mux(stream_index, unit)

    def _start(self) -> None:
        scratch = av.open(io.BytesIO(), "w", format="matroska")
        try:
            for track in self._tracks:
                track.stream = self._add_stream(scratch, track)
            self._container.start_encoding()
        except (av.FFmpegError, ValueError) as exc:
            self._closed = True  # the header cannot be retried once streams were added
            self._file.close()
            raise MediaError(f"cannot start recording {self.path}: {exc}") from exc
        finally:
            scratch.close()
        self._started = True
        pending, self._pending = self._pending, []
        for stream_index, unit in pending:
            self._mux(stream_index, unit)

    def _add_stream(self, scratch: av.container.OutputContainer, track: _Track) -> av.stream.Stream:
        # A stream "from a template" gets a codec context that is never opened: packets are
        # muxed as they are. The template only names the codec (an unopened encoder).
        template = scratch.add_stream(_MUX_CODECS[track.spec.codec].name)
        stream = self._container.add_stream_from_template(template, opaque=True)
        context = stream.codec_context
        spec = track.spec
        extradata = track.extradata
        if spec.codec == "opus" and not extradata:
            extradata = opus_head(spec.channels or 2)
        if extradata:
            context.extradata = extradata
        if isinstance(context, VideoCodecContext):
            context.width = track.width or 0
            context.height = track.height or 0
        elif isinstance(context, AudioCodecContext):
            rate = spec.sample_rate or (48000 if spec.codec == "opus" else spec.clock_rate)
            context.sample_rate = rate
            context.layout = channel_layout(spec.channels or 1)
        stream.time_base = track.time_base
        return stream

    def _mux(self, stream_index: int, unit: EncodedUnit) -> None:
        track = self._tracks[stream_index]
        if not unit.data:
            self.dropped += 1
            return
        if track.stream is None:  # pragma: no cover - every track has a stream once started
            raise MediaError("recording has not started")
        pts, dts = track.next_times(unit.timestamp)
        if dts > pts:
            self.errors += 1  # reordered beyond the allowance, or time went backwards
            return
        transform = _MUX_CODECS[track.spec.codec].transform
        packet = av.Packet(unit.data if transform is None else transform(unit.data))
        packet.stream = track.stream
        packet.time_base = track.time_base
        packet.pts, packet.dts = pts, dts
        packet.is_keyframe = unit.keyframe
        try:
            self._container.mux(packet)
        except OSError as exc:  # PyAV's I/O errors are OSErrors: the disk, not the stream
            raise MediaError(f"cannot write {self.path}: {exc}") from exc
        except (av.FFmpegError, ValueError) as exc:
            self.errors += 1
            logger.debug("muxer refused a %s unit: %s", track.spec.codec, exc)
            return
        track.last_dts = dts
        self.written += 1

    def close(self) -> None:
        """Write the trailer (cues, sizes) and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.dropped += len(self._pending)
        self._pending = []
        try:
            self._container.close()
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot finish {self.path}: {exc}") from exc
        finally:
            self._file.close()
