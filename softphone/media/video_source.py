"""Video sources for calls: a test pattern, a file played in a loop, a V4L2 camera (PyAV).

Every source gives ``yuv420p`` :class:`~av.video.frame.VideoFrame` objects of its own size, one
per :meth:`read`; pacing (when to read) and scaling to the encoder's size are the caller's
(the encoder reformats). PyAV's errors leave as :class:`~softphone.media.errors.MediaError`.

- :class:`TestPattern`: a moving bar over colour stripes, and the frame counter written in the
  picture as 16 black/white blocks (:func:`read_counter` reads it back): a test can tell which
  picture arrived, and a person can tell that the picture moves. Made directly in YUV (no
  colour conversion per frame).
- :class:`FileSource`: the video stream of a media file, from the start again at its end
  (``loop``), or a live input PyAV opens by format (``v4l2`` for a camera, ``lavfi`` in
  tests), which never ends. :func:`open_camera` is the V4L2 case.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

import av
from av.video.frame import VideoFrame

from softphone.media.errors import MediaError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

logger = logging.getLogger(__name__)

COUNTER_BITS: Final = 16
MIN_BLOCK: Final = 8  # pixels: smaller blocks do not survive a low-bitrate encoder
_STRIPES: Final = ((81, 90, 240), (145, 54, 34), (41, 240, 110), (210, 16, 146))  # Y, U, V
_MAX_EMPTY_LOOPS: Final = 2  # a file that decodes to nothing twice in a row has no pictures


def _block(width: int) -> int:
    return width // COUNTER_BITS


class TestPattern:
    """A synthetic picture sequence; frame ``i`` carries the counter ``i`` mod 2^16.

    ``width`` and ``height`` must be even (4:2:0) and wide enough for the counter blocks.
    """

    __test__ = False  # not a pytest class, whatever its name says

    def __init__(self, width: int = 320, height: int = 240) -> None:
        if width % 2 or height % 2:
            raise MediaError(f"a test pattern needs an even size, not {width}x{height}")
        if _block(width) < MIN_BLOCK or height < 2 * _block(width):
            raise MediaError(f"{width}x{height} is too small for the frame counter")
        self.width = width
        self.height = height
        self.index = 0
        self._background: npt.NDArray[np.uint8] | None = None

    def read(self) -> VideoFrame:
        """The next picture."""
        frame = self.picture(self.index)
        self.index += 1
        return frame

    def picture(self, index: int) -> VideoFrame:
        """Picture ``index``: the still background (stripes, the counter's grey strip) is drawn
        once, and each picture is a copy with the bar and the counter drawn on it (a full
        redraw was a millisecond a picture at 640x360, a third of a call's sending)."""
        import numpy as np

        w, h, block = self.width, self.height, _block(self.width)
        if self._background is None:
            self._background = self._draw_background()
        yuv = self._background.copy()
        y = yuv[:h]
        u = yuv[h : h + h // 4].reshape(h // 2, w // 2)
        v = yuv[h + h // 4 :].reshape(h // 2, w // 2)
        bar = (index * 4) % max(1, w - block)  # the moving part
        y[2 * block :, bar : bar + block] = 235
        u[block:, bar // 2 : (bar + block) // 2] = 128
        v[block:, bar // 2 : (bar + block) // 2] = 128
        # The counter: bit i (most significant first) as a block, white for 1, black for 0.
        value = index & (1 << COUNTER_BITS) - 1
        for bit in range(COUNTER_BITS):
            on = value >> (COUNTER_BITS - 1 - bit) & 1
            y[block // 2 : block // 2 + block, bit * block : (bit + 1) * block] = 235 if on else 16
        return VideoFrame.from_ndarray(np.ascontiguousarray(yuv), format="yuv420p")

    def _draw_background(self) -> npt.NDArray[np.uint8]:
        """The stripes, and the grey strip the counter sits on (so that its edges do not bleed
        into the stripes), as one yuv420p array of (height * 3 / 2, width)."""
        import numpy as np

        w, h, block = self.width, self.height, _block(self.width)
        y = np.empty((h, w), np.uint8)
        u = np.empty((h // 2, w // 2), np.uint8)
        v = np.empty((h // 2, w // 2), np.uint8)
        stripe = w // len(_STRIPES)
        for i, (ys, us, vs) in enumerate(_STRIPES):
            y[:, i * stripe : (i + 1) * stripe] = ys
            u[:, i * stripe // 2 : (i + 1) * stripe // 2] = us
            v[:, i * stripe // 2 : (i + 1) * stripe // 2] = vs
        y[:, len(_STRIPES) * stripe :] = _STRIPES[-1][0]
        y[: 2 * block] = 128
        u[:block] = 128
        v[:block] = 128
        return np.concatenate([y, u.reshape(-1, w), v.reshape(-1, w)])


def read_counter(frame: VideoFrame) -> int:
    """The counter a :class:`TestPattern` picture carries (after any codec: the middle of each
    block is compared with mid-grey)."""
    luma = _luma(frame)
    width = luma.shape[1]
    block = _block(width)
    value = 0
    for bit in range(COUNTER_BITS):
        top, left = block // 2 + block // 4, bit * block + block // 4
        patch = luma[top : top + block // 2, left : left + block // 2]
        value = value << 1 | int(patch.mean() > 128)
    return value


def _luma(frame: VideoFrame) -> npt.NDArray[np.uint8]:
    import numpy as np

    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    rows = np.frombuffer(bytes(plane), np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width]


class FileSource:
    """The video of a file or live input, decoded with PyAV (see the module docstring).

    ``loop``: start again at the end (files); a live input (camera) never ends. ``format`` and
    ``options`` go to FFmpeg's demuxer (``v4l2`` with ``video_size``, ``framerate``,
    ``input_format``). ``read`` returns None when a file without ``loop`` has ended.
    """

    def __init__(
        self,
        path: str,
        *,
        loop: bool = True,
        format: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.loop = loop
        self._format = format
        self._options = dict(options or {})
        self.loops = 0
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[VideoFrame] | None = None
        self._open()

    def _open(self) -> None:
        try:
            container = av.open(self.path, format=self._format, options=self._options)
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot open video {self.path!r}: {exc}") from exc
        if not container.streams.video:
            container.close()
            raise MediaError(f"{self.path!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self._frames = container.decode(stream)

    def read(self) -> VideoFrame | None:
        """The next picture (yuv420p), the file's first again after its last when looping."""
        empty_loops = 0
        while True:
            assert self._frames is not None
            try:
                frame = next(self._frames)
            except StopIteration:
                frame = None
            except (av.FFmpegError, OSError) as exc:
                raise MediaError(f"cannot read video from {self.path!r}: {exc}") from exc
            if frame is not None:
                if frame.format.name != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                return frame
            if not self.loop:
                return None
            empty_loops += 1
            if empty_loops >= _MAX_EMPTY_LOOPS:
                raise MediaError(f"{self.path!r} has no pictures to loop over")
            self.close()
            self.loops += 1
            self._open()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def open_camera(
    device: str = "/dev/video0",
    *,
    width: int | None = None,
    height: int | None = None,
    fps: int | None = None,
    input_format: str | None = None,
) -> FileSource:
    """A V4L2 camera through FFmpeg's v4l2 demuxer; the size, rate and pixel format (mjpeg,
    yuyv422) are requests the driver may round to what it has."""
    options: dict[str, str] = {}
    if width and height:
        options["video_size"] = f"{width}x{height}"
    if fps:
        options["framerate"] = str(fps)
    if input_format:
        options["input_format"] = input_format
    return FileSource(device, loop=False, format="v4l2", options=options)
