"""Video (and RTSP audio) decoding, scaling and snapshots through PyAV.

This module (and media/record.py beside it) is where video meets ``av``, and where PyAV's errors
are translated: every ``av`` failure leaves it as :class:`MediaError`, or is counted when it is
the stream's fault (corrupt input never raises out of a decoder).

- :class:`VideoDecoder` turns access units (Annex-B H.264/H.265, JFIF MJPEG; the depacketisers'
  ``AccessUnit``, typed here by the :class:`EncodedUnit` protocol) into :class:`DecodedPicture`.
- :meth:`DecodedPicture.to_rgb` scales with swscale to the pane's pixel size; :func:`fit` keeps
  the display aspect ratio (sample aspect ratio from the bitstream included).
- :func:`save_png` writes a picture atomically (temporary file + rename).
- :class:`AudioDecoder` decodes AAC/Opus/G.711/L16 to float32 mono at the wanted rate.
- Recording (remuxing access units into Matroska) is media/record.py, loaded only to record.

Threading, measured on PyAV 18.1 / FFmpeg's h264 decoder (640x360, 2 cores): frame threading
(``FRAME``/``AUTO``) holds one more picture per extra thread on top of the stream's own B-frame
reordering (lag 1 frame at 2 threads for a stream without B-frames), and freeing a
frame-threaded decoder that still holds pictures deadlocks the process. ``SLICE`` threading with
``LOW_DELAY`` adds no lag, decodes at the same speed (~2-3 ms per 640x360 picture) and frees
cleanly, so that is what we use.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeAlias

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.codec.context import Flags
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame

from softphone.media.errors import MediaError

if TYPE_CHECKING:
    # numpy is imported where it is used: decoding video needs only PyAV, so a player's first
    # picture does not wait for numpy's import (~50 ms; see softphone/phone/preload.py).
    import numpy as np
    import numpy.typing as npt

    Rgb: TypeAlias = npt.NDArray[np.uint8]
    Pcm: TypeAlias = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)
_RTP_TS_MODULUS: Final = 1 << 32  # RFC 3550 §5.1: the timestamp field is 32 bits and wraps
_DEFAULT_INTERPOLATION: Final = "AREA"  # swscale: 0.13 ms for 640x360 -> 160x94, no aliasing


class EncodedUnit(Protocol):
    """What decoders and the recorder need from an access unit (``AccessUnit`` fits it)."""

    @property
    def data(self) -> bytes: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def keyframe(self) -> bool: ...
    @property
    def codec(self) -> str: ...


# --- codec descriptors (a registry, no if/elif) -------------------------------------------------


def _h264_nal_type(header: int) -> int:
    return header & 0x1F  # ITU-T H.264 §7.3.1: forbidden_zero_bit, nal_ref_idc(2), type(5)


def _hevc_nal_type(header: int) -> int:
    return (header >> 1) & 0x3F  # ITU-T H.265 §7.3.1.2: forbidden bit, type(6), layer id...


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoCodec:
    """How FFmpeg knows a video codec, and which NAL units hold its parameter sets."""

    decoder: str
    nal_type: Callable[[int], int] | None = None
    parameter_sets: frozenset[int] = frozenset()


VIDEO_CODECS: Final[Mapping[str, VideoCodec]] = {
    # RFC 6184 §1.3 / H.264 Table 7-1: SPS = 7, PPS = 8.
    "h264": VideoCodec(decoder="h264", nal_type=_h264_nal_type, parameter_sets=frozenset({7, 8})),
    # RFC 7798 §1.1.4 / H.265 Table 7-1: VPS = 32, SPS = 33, PPS = 34.
    "hevc": VideoCodec(
        decoder="hevc", nal_type=_hevc_nal_type, parameter_sets=frozenset({32, 33, 34})
    ),
    "vp8": VideoCodec(decoder="vp8"),  # RFC 7741 frames as libvpx writes them
    "vp9": VideoCodec(decoder="vp9"),  # RFC 9628 frames (superframes for spatial layers)
    "mjpeg": VideoCodec(decoder="mjpeg"),  # RFC 2435 frames rebuilt as complete JFIF images
    "mpeg4": VideoCodec(decoder="mpeg4"),  # RFC 6416 MP4V-ES (config in extradata)
}

# FFmpeg decoder name for each RTSP audio codec of the depacketisers.
AUDIO_CODECS: Final[Mapping[str, str]] = {
    "aac": "aac",
    "opus": "opus",
    "pcm_mulaw": "pcm_mulaw",
    "pcm_alaw": "pcm_alaw",
    "pcm_s16be": "pcm_s16be",
}


def _video_codec(codec: str) -> VideoCodec:
    try:
        return VIDEO_CODECS[codec]
    except KeyError:
        known = ", ".join(sorted(VIDEO_CODECS))
        raise MediaError(f"no video decoder for {codec!r} (supported: {known})") from None


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream (H.264/H.265 Annex B start codes, 3 or 4 bytes)."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        # Zero bytes before a start code (or at the end) are trailing_zero_8bits (H.264 B.1.1);
        # a NAL unit itself never ends in 0x00 (rbsp_trailing_bits end in a 1 bit).
        unit = (data[begin:] if end < 0 else data[begin:end]).rstrip(b"\x00")
        if unit:
            units.append(unit)
        start = end
    return units


def parameter_sets(codec: str, data: bytes) -> bytes | None:
    """The parameter-set NAL units (VPS/SPS/PPS) of an access unit as Annex-B, or None."""
    descriptor = _video_codec(codec)
    if descriptor.nal_type is None:
        return None
    nal_type = descriptor.nal_type
    found = [n for n in split_annexb(data) if nal_type(n[0]) in descriptor.parameter_sets]
    return b"".join(b"\x00\x00\x00\x01" + n for n in found) or None


class TimestampUnwrapper:
    """32-bit RTP timestamps -> monotonic-ish 64-bit ones (RFC 3550 §5.1 wrap-around).

    Each step is taken as the shortest signed distance modulo 2**32, so a wrap moves forward and a
    small backwards jump (B-frames, camera quirks) stays small instead of jumping 2**32.
    """

    def __init__(self) -> None:
        self._last: int | None = None
        self._extended = 0

    def extend(self, timestamp: int) -> int:
        timestamp %= _RTP_TS_MODULUS
        if self._last is None:
            self._extended = timestamp
        else:
            step = (timestamp - self._last) % _RTP_TS_MODULUS
            if step >= _RTP_TS_MODULUS // 2:
                step -= _RTP_TS_MODULUS
            self._extended += step
        self._last = timestamp
        return self._extended


# --- pictures ------------------------------------------------------------------------------------


def fit(
    src_w: int, src_h: int, box_w: int, box_h: int, *, pixel_aspect: Fraction = Fraction(1)
) -> tuple[int, int]:
    """Largest (w, h) inside box_w x box_h showing src_w x src_h at its display aspect ratio.

    ``pixel_aspect`` is the source's sample aspect ratio (H.264 VUI ``aspect_ratio_idc``): a
    720x576 picture with SAR 16:15 is shown 768 wide. The box is in square pixels (two half-block
    pixels per terminal cell are close to square). Returns (0, 0) for an empty box or source.
    """
    if src_w <= 0 or src_h <= 0 or box_w <= 0 or box_h <= 0:
        return (0, 0)
    aspect = pixel_aspect if pixel_aspect > 0 else Fraction(1)
    display_w = Fraction(src_w) * aspect
    scale = min(Fraction(box_w) / display_w, Fraction(box_h, src_h))
    width = max(1, min(box_w, round(display_w * scale)))
    height = max(1, min(box_h, round(src_h * scale)))
    return (width, height)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedPicture:
    """One decoded picture; ``timestamp`` is its RTP timestamp (32 bits, clock ticks)."""

    width: int
    height: int
    timestamp: int
    frame: VideoFrame
    sample_aspect_ratio: Fraction = Fraction(1)

    def fit(self, box_w: int, box_h: int) -> tuple[int, int]:
        """:func:`fit` for this picture, its sample aspect ratio included."""
        return fit(self.width, self.height, box_w, box_h, pixel_aspect=self.sample_aspect_ratio)

    def to_rgb(
        self, width: int, height: int, *, interpolation: str = _DEFAULT_INTERPOLATION
    ) -> Rgb:
        """Scale and convert with swscale: an (height, width, 3) uint8 array."""
        if width <= 0 or height <= 0:
            raise ValueError(f"to_rgb needs a positive size, not {width}x{height}")
        try:
            rgb = self.frame.reformat(width, height, "rgb24", interpolation=interpolation)
            array = rgb.to_ndarray()
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot scale a {self.width}x{self.height} picture: {exc}") from exc
        import numpy as np

        return np.ascontiguousarray(array, dtype=np.uint8).reshape(height, width, 3)


def _encode_png(picture: DecodedPicture) -> bytes:
    try:
        context = av.CodecContext.create("png", "w")
        context.width, context.height, context.pix_fmt = picture.width, picture.height, "rgb24"
        context.time_base = Fraction(1, 25)
        context.open()
        frame = picture.frame.reformat(format="rgb24")
        frame.pts = 0
        packets = context.encode(frame) + context.encode(None)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"cannot encode a PNG: {exc}") from exc
    return b"".join(bytes(packet) for packet in packets)


def save_png(picture: DecodedPicture, path: str | os.PathLike[str]) -> Path:
    """Write the picture as PNG (full size) to ``path`` atomically: temporary file + rename."""
    target = Path(path)
    data = _encode_png(picture)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise MediaError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise MediaError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


# --- decoders ------------------------------------------------------------------------------------


class VideoDecoder:
    """Access units in, pictures out, in presentation order. Never raises on corrupt input.

    Counters: ``decoded`` pictures returned, ``errors`` units FFmpeg rejected, ``corrupt``
    pictures FFmpeg flagged as concealed (dropped: no smeared frames), ``skipped`` units before
    the first key frame (after creation or :meth:`flush`).
    """

    def __init__(self, codec: str, extradata: bytes | None = None, *, threads: int = 2) -> None:
        descriptor = _video_codec(codec)
        self.codec = codec
        self.decoded = 0
        self.errors = 0
        self.corrupt = 0
        self.skipped = 0
        self._threads = max(1, threads)
        self._extradata = extradata
        self._decoder_name = descriptor.decoder
        self._context = self._open()
        self._timestamps = TimestampUnwrapper()
        self._waiting_for_keyframe = True

    def _open(self) -> VideoCodecContext:
        try:
            context = av.CodecContext.create(self._decoder_name, "r")
            if not isinstance(context, VideoCodecContext):
                raise MediaError(f"{self._decoder_name} is not a video decoder")
            if self._extradata:
                context.extradata = self._extradata
            context.thread_count = self._threads
            context.thread_type = "SLICE"  # see the module docstring: FRAME adds lag and hangs
            context.flags |= Flags.low_delay
            context.open()
        except av.FFmpegError as exc:
            raise MediaError(f"cannot open the {self.codec} decoder: {exc}") from exc
        return context

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting_for_keyframe

    def decode(self, unit: EncodedUnit) -> list[DecodedPicture]:
        """Decode one access unit; units before the first key frame are skipped."""
        if unit.codec != self.codec:
            raise MediaError(f"a {unit.codec} unit was given to the {self.codec} decoder")
        if self._waiting_for_keyframe and not unit.keyframe:
            self.skipped += 1
            return []
        if not unit.data:  # an empty packet would switch FFmpeg to draining mode
            self.errors += 1
            return []
        self._waiting_for_keyframe = False
        packet = av.Packet(unit.data)
        packet.pts = self._timestamps.extend(unit.timestamp)
        try:
            frames = self._context.decode(packet)
        except (av.FFmpegError, ValueError) as exc:
            self.errors += 1
            logger.debug("%s decoder rejected a unit: %s", self.codec, exc)
            return []
        return self._pictures(frames)

    def flush(self) -> list[DecodedPicture]:
        """End of stream (or a discontinuity): the pictures still held, then a fresh start
        that waits for the next key frame."""
        try:
            frames = self._context.decode(None)
        except (av.FFmpegError, ValueError) as exc:
            self.errors += 1
            logger.debug("%s decoder failed to drain: %s", self.codec, exc)
            frames = []
        pictures = self._pictures(frames)
        self._context = self._open()  # a drained FFmpeg decoder takes no more input
        self._timestamps = TimestampUnwrapper()
        self._waiting_for_keyframe = True
        return pictures

    def close(self) -> None:
        """Drop whatever the decoder holds (idempotent)."""
        try:
            self._context.flush_buffers()
        except av.FFmpegError:  # pragma: no cover - nothing useful to do
            pass

    def _pictures(self, frames: Sequence[VideoFrame]) -> list[DecodedPicture]:
        sar = self._context.sample_aspect_ratio
        aspect = sar if sar is not None and sar > 0 else Fraction(1)
        pictures: list[DecodedPicture] = []
        for frame in frames:
            if frame.is_corrupt:
                self.corrupt += 1
                continue
            pts = frame.pts if frame.pts is not None else 0
            pictures.append(
                DecodedPicture(
                    width=frame.width,
                    height=frame.height,
                    timestamp=pts % _RTP_TS_MODULUS,
                    frame=frame,
                    sample_aspect_ratio=aspect,
                )
            )
        self.decoded += len(pictures)
        return pictures


def channel_layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


class AudioDecoder:
    """RTSP audio access units -> float32 mono at ``output_rate`` (default ``sample_rate``).

    ``sample_rate`` and ``channels`` describe the stream (the SDP rtpmap); AAC's real rate and
    layout come from ``extradata`` (its AudioSpecificConfig), Opus always decodes at 48 kHz
    (RFC 7587 §4.1). Whatever the decoder gives is mixed down and resampled by swresample.
    Corrupt units are counted in ``errors`` and give an empty array.
    """

    def __init__(
        self,
        codec: str,
        extradata: bytes | None = None,
        *,
        sample_rate: int,
        channels: int = 1,
        output_rate: int | None = None,
    ) -> None:
        try:
            decoder_name = AUDIO_CODECS[codec]
        except KeyError:
            known = ", ".join(sorted(AUDIO_CODECS))
            raise MediaError(f"no audio decoder for {codec!r} (supported: {known})") from None
        if sample_rate <= 0 or channels <= 0:
            raise MediaError(f"bad audio format: {sample_rate} Hz, {channels} channels")
        self.codec = codec
        self.output_rate = output_rate or sample_rate
        self.errors = 0
        self.samples = 0
        try:
            context = av.CodecContext.create(decoder_name, "r")
            if not isinstance(context, AudioCodecContext):
                raise MediaError(f"{decoder_name} is not an audio decoder")
            context.sample_rate = sample_rate
            context.layout = channel_layout(channels)
            if extradata:
                context.extradata = extradata
            context.open()
        except av.FFmpegError as exc:
            raise MediaError(f"cannot open the {codec} decoder: {exc}") from exc
        self._context = context
        self._resampler = self._new_resampler()

    def _new_resampler(self) -> AudioResampler:
        return AudioResampler(format="flt", layout="mono", rate=self.output_rate)

    def decode(self, unit: EncodedUnit) -> Pcm:
        import numpy as np

        if unit.codec != self.codec:
            raise MediaError(f"a {unit.codec} unit was given to the {self.codec} decoder")
        if not unit.data:
            self.errors += 1
            return np.zeros(0, dtype=np.float32)
        try:
            frames = self._context.decode(av.Packet(unit.data))
        except (av.FFmpegError, ValueError) as exc:
            self.errors += 1
            logger.debug("%s decoder rejected a unit: %s", self.codec, exc)
            return np.zeros(0, dtype=np.float32)
        blocks = [block for frame in frames if (block := self._resample(frame)).size]
        if not blocks:
            return np.zeros(0, dtype=np.float32)
        pcm = np.concatenate(blocks).astype(np.float32, copy=False)
        self.samples += pcm.size
        return pcm

    def _resample(self, frame: AudioFrame) -> Pcm:
        import numpy as np

        frame.pts = None  # swresample re-times by sample count; RTP timing lives elsewhere
        try:
            out = self._resampler.resample(frame)
        except ValueError:  # the input format changed (e.g. AAC SBR switched): start over
            self._resampler = self._new_resampler()
            out = self._resampler.resample(frame)
        if not out:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.float32)
