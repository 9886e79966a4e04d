"""Video encoding for calls through PyAV: libvpx (VP8), libvpx-vp9 (VP9), libx264 (H.264).

:class:`VideoEncoder` takes pictures from a source (media/video_source.py) with their RTP
timestamp and gives :class:`EncodedFrame` objects for the packetisers (rtp/packetize/).

Real-time settings: no look-ahead (``lag-in-frames`` 0, x264 ``zerolatency``), so that each
picture comes out as it goes in and a superframe with a hidden frame never appears; fast
presets (VP8 below); a key frame at least every ``keyframe_interval_s`` and whenever asked
(:meth:`request_keyframe`: a PLI or FIR came, RFC 4585 §6.3.1, RFC 5104 §4.3.1). x264 makes an
IDR of a forced key frame (``forced-idr``), which a decoder can start from.

Bitrate: ``bitrate_bps`` within ``min_bitrate_bps``..``max_bitrate_bps``. Measured with PyAV 18
/ FFmpeg: libvpx and libx264 read the bitrate only when the encoder opens; changing it on an
open context changes nothing. So :meth:`set_bitrate` re-opens the encoder, which costs a key
frame, and does it only for a change of ``min_change`` (20 %) or more and at most once per
``min_reconfigure_s`` (the caller's rate controller moves in smaller steps more often; the
last target wins at the next reopen).

H.264 in packetization-mode 0 (RFC 6184 §6.2: one NAL unit per RTP packet, no fragments) needs
every NAL unit to fit a packet: ``max_slice_bytes`` is x264's ``slice-max-size``, which cuts a
picture into slices of at most that many bytes (measured: with 1,200, noise at 640x480 and
1.5 Mbit/s gave NAL units of at most 1,191 bytes; without it a key frame was one of 139 kB).

``level``: the H.264 level x264 writes in the sequence parameter set (the peer's, see
sdp/video_limits.py); without it x264 picks one from the size, frame rate and bitrate.

VP8 encodes at a fixed speed 6 (``cpu-used`` -6, WebRTC's choice on desktop x86). Measured here
at 640x360, 30 fps, 1 Mbit/s, PyAV 18 (FFmpeg's ``mandelbrot`` and ``testsrc2`` sources, 240
pictures): 2.5-3.0 and 1.7-2.2 ms of CPU a picture, luma PSNR 33.85 and 43.90 dB. ``cpu-used``
8, our earlier setting, lets libvpx choose its speed from the time a picture may take: 4.1-5.3
and 2.4-3.1 ms for 33.90 and 45.06 dB. baresip's 16: 1.4-1.6 and 1.3 ms for 30.96 and 42.29 dB.

Threads: one by default. Measured here (PyAV 18, our test pattern, 30 fps), a second encoder
thread never saved CPU and libvpx's VP8 paid dearly for it: 640x360 took 1.7 ms of CPU a picture
with one thread and 10 ms with two (1280x720: 5.2 and 16 ms), its threads waiting on each other
by spinning; VP9 and x264 cost 0-40 % more with two. A call's picture encodes well within its
frame interval on one thread, so the second only burnt a core the audio shares.

PyAV's errors leave as :class:`~softphone.media.errors.MediaError`.
"""

from __future__ import annotations

import fractions
import re
from dataclasses import dataclass
from typing import Final

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

from softphone.media.errors import MediaError

RTP_VIDEO_CLOCK: Final = 90000
MIN_CHANGE: Final = 0.2
MIN_RECONFIGURE_S: Final = 2.0
_LEVEL: Final = re.compile(r"1b|[1-6](\.[0-3])?")  # H.264 Annex A level names

_ENCODERS: Final = {
    "vp8": ("libvpx", {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "-6"}),
    "vp9": (
        "libvpx-vp9",
        {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8", "row-mt": "1"},
    ),
    "h264": (
        "libx264",
        {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1", "profile": "baseline"},
    ),
}


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded picture: VP8/VP9 frame bytes or an H.264 Annex-B access unit."""

    data: bytes
    timestamp: int  # RTP timestamp (90 kHz, 32 bits)
    keyframe: bool


class VideoEncoder:
    """Pictures in, encoded frames out (see the module docstring). Counters: ``frames``,
    ``keyframes``, ``reopened`` (bitrate changes applied)."""

    def __init__(
        self,
        codec: str,
        *,
        width: int,
        height: int,
        fps: int = 15,
        bitrate_bps: int = 500_000,
        min_bitrate_bps: int = 100_000,
        max_bitrate_bps: int = 2_000_000,
        keyframe_interval_s: float = 10.0,
        min_change: float = MIN_CHANGE,
        min_reconfigure_s: float = MIN_RECONFIGURE_S,
        threads: int = 1,
        max_slice_bytes: int | None = None,
        level: str | None = None,
    ) -> None:
        if codec not in _ENCODERS:
            raise MediaError(f"no video encoder for {codec!r} (supported: {', '.join(_ENCODERS)})")
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise MediaError(f"a video size must be even and positive, not {width}x{height}")
        if not 0 < min_bitrate_bps <= max_bitrate_bps:
            raise MediaError(f"bitrate bounds {min_bitrate_bps}..{max_bitrate_bps} are not a range")
        if max_slice_bytes is not None and (codec != "h264" or max_slice_bytes <= 0):
            raise MediaError(f"a slice size limit is for h264 and positive, not {codec!r}")
        if level is not None and (codec != "h264" or not _LEVEL.fullmatch(level)):
            raise MediaError(f"an H.264 level is like 1, 1b or 3.1, not {level!r} for {codec}")
        self.codec = codec
        self.level = level
        self.max_slice_bytes = max_slice_bytes
        self.width = width
        self.height = height
        self.fps = max(1, fps)
        self.min_bitrate_bps = min_bitrate_bps
        self.max_bitrate_bps = max_bitrate_bps
        self.bitrate_bps = self._clamp(bitrate_bps)
        self.keyframe_interval_s = keyframe_interval_s
        self.min_change = min_change
        self.min_reconfigure_s = min_reconfigure_s
        self._threads = threads
        self._target_bps = self.bitrate_bps
        self._reopened_at: float | None = None
        self._force_keyframe = False
        self._last_ts: int | None = None
        self._pts = 0  # the RTP timestamp unwrapped: encoders want pts that only go up
        self.frames = 0
        self.keyframes = 0
        self.reopened = 0
        self._context = self._open()

    def _clamp(self, bps: int) -> int:
        return max(self.min_bitrate_bps, min(self.max_bitrate_bps, int(bps)))

    def _open(self) -> VideoCodecContext:
        name, options = _ENCODERS[self.codec]
        try:
            context = av.CodecContext.create(name, "w")
            if not isinstance(context, VideoCodecContext):
                raise MediaError(f"{name} is not a video encoder")
            context.width, context.height = self.width, self.height
            context.pix_fmt = "yuv420p"
            context.time_base = fractions.Fraction(1, RTP_VIDEO_CLOCK)
            context.framerate = fractions.Fraction(self.fps)
            context.bit_rate = self.bitrate_bps
            context.gop_size = max(1, round(self.keyframe_interval_s * self.fps))
            context.thread_count = self._threads
            extra = {}
            if self.max_slice_bytes is not None:
                extra["slice-max-size"] = str(self.max_slice_bytes)
            if self.level is not None:
                extra["level"] = self.level  # x264 writes it in the SPS as given
            context.options = {**options, **extra}
            context.open()
        except av.FFmpegError as exc:
            raise MediaError(f"cannot open the {name} encoder: {exc}") from exc
        return context

    @property
    def target_bitrate_bps(self) -> int:
        """The last bitrate asked for (clamped); ``bitrate_bps`` is the one encoding now."""
        return self._target_bps

    def request_keyframe(self) -> None:
        """Make the next picture a key frame (a PLI or FIR came)."""
        self._force_keyframe = True

    def set_bitrate(self, bps: int, now: float) -> bool:
        """Ask for ``bps`` (clamped to the bounds); True when the encoder was re-opened at it."""
        self._target_bps = self._clamp(bps)
        change = abs(self._target_bps - self.bitrate_bps) / self.bitrate_bps
        if change < self.min_change:
            return False
        if self._reopened_at is not None and now - self._reopened_at < self.min_reconfigure_s:
            return False
        self.bitrate_bps = self._target_bps
        self._reopened_at = now
        self._context = self._open()  # the new one starts with a key frame
        self.reopened += 1
        return True

    def encode(self, frame: VideoFrame, timestamp: int) -> list[EncodedFrame]:
        """Encode one picture taken at RTP ``timestamp``; scaled to the encoder's size when it
        differs. Usually one frame out, none while an encoder holds a picture back."""
        if (frame.width, frame.height) != (self.width, self.height) or (
            frame.format.name != "yuv420p"
        ):
            frame = frame.reformat(self.width, self.height, "yuv420p")
        timestamp &= 0xFFFF_FFFF
        if self._last_ts is not None:
            step = (timestamp - self._last_ts) & 0xFFFF_FFFF
            if step == 0 or step >= 1 << 31:
                raise MediaError(f"timestamp {timestamp} does not follow {self._last_ts}")
            self._pts += step
        self._last_ts = timestamp
        frame.pts = self._pts
        if self._force_keyframe:
            frame.pict_type = PictureType.I
            self._force_keyframe = False
        else:
            frame.pict_type = PictureType.NONE
        try:
            packets = self._context.encode(frame)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"the {self.codec} encoder failed: {exc}") from exc
        out = []
        for packet in packets:
            keyframe = bool(packet.is_keyframe)
            pts = packet.pts if packet.pts is not None else self._pts
            ts = (timestamp - (self._pts - pts)) & 0xFFFF_FFFF
            out.append(EncodedFrame(bytes(packet), ts, keyframe))
            self.keyframes += keyframe
        self.frames += len(out)
        return out
