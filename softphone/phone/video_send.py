"""The sending half of a call's video (phone/video_stream.py): the configured source, the
encoder, the packetiser for the negotiated codec and the receiver's feedback it obeys.

The source is read and each picture encoded on a worker thread of the sender's own: PyAV lets
the GIL go while libvpx or x264 work, and a camera's read blocks until its next picture. A
source that fails (a V4L2 camera unplugged mid-call, a file that vanished) raises
:class:`SourceLost` there; the stream stops sending and the call goes on without our picture.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Final, Protocol

import av
from av.video.frame import VideoFrame

from softphone.media.errors import MediaError
from softphone.media.video_encode import EncodedFrame, VideoEncoder
from softphone.media.video_source import FileSource, TestPattern, open_camera
from softphone.phone.video import VideoSettings, sending_format
from softphone.rtp.packetize.h264 import H264Packetizer
from softphone.rtp.packetize.vp8 import Vp8Packetizer
from softphone.rtp.packetize.vp9 import Vp9Packetizer
from softphone.rtp.send_rate import SendRateController
from softphone.rtp.video_sender import VideoSenderFeedback
from softphone.sdp.video import NegotiatedVideoCodec

__all__ = ["MAX_PAYLOAD", "SourceLost", "VideoSender", "VideoSource", "codec_name", "open_source"]

MAX_PAYLOAD: Final = 1200  # bytes: an RTP packet of a frame stays under a 1,280-byte path MTU


class SourceLost(MediaError):
    """The video source failed or ended while a call sent it."""


class VideoSource(Protocol):
    """What the sender reads: a picture each call, None at the end (media/video_source.py)."""

    def read(self) -> VideoFrame | None: ...


def open_source(settings: VideoSettings) -> TestPattern | FileSource:
    """The configured source, opened; MediaError when it cannot be."""
    match settings.source:
        case "pattern" | None:
            return TestPattern(settings.width, settings.height)
        case "file":
            if not settings.path:
                raise MediaError("a video file source needs a path")
            return FileSource(settings.path, loop=True)
        case "camera":
            return open_camera(
                settings.path or "/dev/video0",
                width=settings.width,
                height=settings.height,
                fps=settings.fps,
            )


def _reads_p_diff_always(tool: str | None) -> bool:
    """baresip 1.0 (its SDP's ``a=tool``) misreads VP9 inter frames (rtp/packetize/vp9.py)."""
    return tool is not None and tool.strip().startswith("baresip 1.0.")


def codec_name(codec: NegotiatedVideoCodec) -> str:
    return codec.encoding.lower()  # VP8 -> vp8 (FFmpeg's names)


class VideoSender:
    """The sending half: source, encoder, packetiser and the feedback it obeys."""

    def __init__(
        self,
        codec: NegotiatedVideoCodec,
        settings: VideoSettings,
        ssrc: int,
        now: float,
        peer_tool: str | None,
    ) -> None:
        name = codec_name(codec)
        self.codec = codec
        self.source: VideoSource = open_source(settings)
        # Within what the peer can receive: its H.264 level, max-fs, max-fr (sdp/video_limits.py).
        fmt = sending_format(codec, settings)
        rate = SendRateController(
            min_bps=fmt.min_bitrate_bps,
            max_bps=fmt.max_bitrate_bps,
            start_bps=fmt.start_bitrate_bps,
        )
        # H.264 mode 0 (RFC 6184 §6.2) has no fragments: x264 cuts slices that fit a packet.
        mode = int(codec.fmtp.get("packetization-mode", "0") or "0")
        self.encoder = VideoEncoder(
            name,
            width=fmt.width,
            height=fmt.height,
            fps=fmt.fps,
            bitrate_bps=rate.target_bps,
            min_bitrate_bps=fmt.min_bitrate_bps,
            max_bitrate_bps=fmt.max_bitrate_bps,
            max_slice_bytes=MAX_PAYLOAD if name == "h264" and mode == 0 else None,
            level=fmt.h264_level if name == "h264" else None,
        )
        if name == "h264":
            self.packetizer: H264Packetizer | Vp8Packetizer | Vp9Packetizer = H264Packetizer(
                max_payload=MAX_PAYLOAD, packetization_mode=mode
            )
        elif name == "vp9":
            self.packetizer = Vp9Packetizer(
                max_payload=MAX_PAYLOAD, inter_flag=not _reads_p_diff_always(peer_tool)
            )
        else:
            self.packetizer = Vp8Packetizer(max_payload=MAX_PAYLOAD)
        self.feedback = VideoSenderFeedback(ssrc=ssrc, rate=rate, feedback=codec.feedback)
        self.fps = fmt.fps
        self.started = now
        self.ticks = -1
        self.pictures = 0  # source pictures taken
        self.last_frame: VideoFrame | None = None
        # The source is read and the encoder runs on a thread of the sender's own (PyAV lets
        # the GIL go while libvpx/x264 work; a camera's read blocks): the loop keeps the audio.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-encode")
        self.busy = False  # a picture is being encoded: a tick that comes meanwhile is skipped
        self.bitrate: tuple[int, float] | None = None  # asked for, applied before the next

    def take_and_encode(self, ticks: int) -> tuple[VideoFrame, list[EncodedFrame]]:
        """On the worker: the next picture, encoded. SourceLost when the source failed or
        ended; MediaError when the encoder did."""
        if self.bitrate is not None:
            bps, at = self.bitrate
            self.bitrate = None
            self.encoder.set_bitrate(bps, at)
        try:
            picture = self.source.read()
        except (MediaError, OSError, av.FFmpegError, ValueError, EOFError) as exc:
            # A camera unplugged (V4L2: ENODEV through FFmpeg), a file that vanished.
            raise SourceLost(str(exc)) from exc
        if picture is None:
            raise SourceLost("the video source ended")
        return picture, self.encoder.encode(picture, ticks & 0xFFFF_FFFF)

    def close(self) -> None:
        """After what the worker does now: the source closes, the worker ends."""
        if isinstance(self.source, FileSource):
            self.worker.submit(self.source.close)
        self.worker.shutdown(wait=False)
