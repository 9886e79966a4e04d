"""Terminal video: a Textual widget that draws RGB frames with truecolor half blocks.

Each terminal cell shows two pixels stacked: the glyph ``▀`` (UPPER HALF BLOCK) with the
foreground set to the top pixel and the background to the bottom one (what mpv's ``--vo=tct``
and timg do; it works in every truecolor terminal and inside tmux). The frame comes in already
scaled by the media layer (swscale) to at most ``VideoView.SizeChanged`` pixels; this module does
no scaling and imports neither ``av`` nor ``softphone.media`` (numpy, Rich and Textual only).

Speed (the terminal is usually the bottleneck, then Python): rows are turned into Rich segments
with numpy's help, merging runs of equal cells, with Styles cached by colour pair. Each row's
:class:`~textual.strip.Strip` is cached under the row's bytes, so a row that did not change is
not rebuilt and Textual's own per-Strip caches (cropping, styling, the ANSI string) are reused.
Colours are quantised to ``colour_bits`` per channel (default 6: invisible at two pixels per
cell, and it makes equal rows and runs far more common in camera video with sensor noise).

``NO_COLOR`` (https://no-color.org, exposed by Textual as ``App.no_color``): cells become a grey
ramp of characters by luminance, with no colour at all.

Higher resolution: ``VideoView(mode="kitty" | "sixel" | "auto")`` draws the picture with the kitty
graphics protocol or sixel (encoders in :mod:`softphone.tui.graphics`); ``"halfblock"`` is the
default, ``"auto"`` asks :func:`graphics_mode` (environment only). How the picture gets out
through Textual: Textual's own output is cells, so the picture is written as raw escape
sequences with the driver's ``write`` (tui/textual_internals.py), the one queue (Textual's writer
thread) that Textual's screen updates go through as well, so order is kept. In a graphics mode the video cells render
as constant black strips, so Textual never rewrites them for a new frame: ``show()`` writes the
picture directly (one write per frame, in synchronized output, the cursor saved and restored,
at most ``max_fps`` per second, only the newest frame). When a screen update does rewrite
those cells or moves the pane (resize, layout, shown again, our screen back on top),
:meth:`VideoView.render_lines` notices and draws the picture again *after* that update
(``call_after_refresh``), at the new place and size. Hidden, unmounted or under another
screen, the kitty placement is deleted (sixel pixels are simply painted over). Overlay updates repaint only the overlay line. Any
failure (no driver, no known cell size for sixel, an encoder error) falls back to half blocks
for good, with a log line, never a traceback; so do NO_COLOR, inline apps and tmux/screen.
Embedding the sequences in a Strip instead (what textual-image does) breaks as soon as Textual
crops or divides that line (another widget or a toast overlapping it), because Textual measures
segments by cell length and escape text is not zero-width.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import struct
import sys
import termios
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from softphone.tui.graphics import (
    KittyEncoder,
    at_cell,
    kitty_delete,
    sixel_image,
    synchronized,
)
from softphone.tui.textual_internals import terminal_driver

if TYPE_CHECKING:
    from textual.app import App
    from textual.screen import Screen
    from textual.timer import Timer

logger = logging.getLogger(__name__)

Rgb: TypeAlias = npt.NDArray[np.uint8]
GraphicsMode: TypeAlias = Literal["halfblock", "kitty", "sixel"]
VideoMode: TypeAlias = Literal["auto", "halfblock", "kitty", "sixel"]
VIDEO_MODES: Final[tuple[str, ...]] = get_args(VideoMode)  # for the CLI's --video choices
DEFAULT_CELL_PX: Final = (10, 20)  # kitty only, when the terminal does not tell its cell size
# Largest picture per mode (pixels), whatever the pane's size: kitty pictures are stretched back
# over the cells by the terminal (the bytes cost: 3 per pixel, base64'd); a sixel picture is
# drawn pixel for pixel, smaller and centred, and its encoding costs ~12 ms per 640x360 frame.
MAX_IMAGE_PIXELS: Final[Mapping[str, int]] = {"kitty": 1280 * 720, "sixel": 800 * 450}

HALF_BLOCK: Final = "\u2580"  # ▀ UPPER HALF BLOCK: fg paints the top pixel, bg the bottom one
GREY_RAMP: Final = " .:-=+*#%@"  # NO_COLOR: dark to light
_MAX_STYLES: Final = 1 << 16  # cached Styles before the cache is emptied (bounded memory)
_OVERLAY_STYLE: Final = Style(color="white", bgcolor="grey23")
_OVERLAY_STYLE_NO_COLOR: Final = Style(reverse=True)
_BLACK: Final = Style(bgcolor="black")
_PLAIN: Final = Style()


def _pack(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """(..., 3) uint8 -> (...) int64 0xRRGGBB."""
    p = pixels.astype(np.int64)
    return (p[..., 0] << 16) | (p[..., 1] << 8) | p[..., 2]


class HalfBlockRenderer:
    """RGB canvas (2*rows, cols, 3) -> one Strip per cell row, cached by row content.

    ``rows_built`` counts rows actually built (not taken from the cache): the number to watch.
    """

    def __init__(
        self, *, colour: bool = True, colour_bits: int = 6, truecolor: bool = True
    ) -> None:
        if not 1 <= colour_bits <= 8:
            raise ValueError(f"colour_bits must be 1..8, not {colour_bits}")
        self.colour = colour
        self.truecolor = truecolor
        self.rows_built = 0
        self._mask = np.uint8((0xFF << (8 - colour_bits)) & 0xFF)
        self._rows: dict[bytes, Strip] = {}
        self._styles: dict[int, Style] = {}
        self._colours: dict[int, Color] = {}
        self._ramp = np.array(list(GREY_RAMP))

    def render(self, canvas: Rgb) -> list[Strip]:
        height, cols = canvas.shape[0] // 2, canvas.shape[1]
        if height == 0 or cols == 0:
            return []
        pairs = canvas[: 2 * height].reshape(height, 2, cols, 3)
        if self.colour:
            quantised = pairs & self._mask
            keys = (_pack(quantised[:, 0]) << 24) | _pack(quantised[:, 1])
            build = self._colour_row
        else:
            luma = pairs.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            levels = (luma.mean(axis=1) * ((len(GREY_RAMP) - 1) / 255.0) + 0.5).astype(np.int64)
            keys = levels
            build = self._grey_row
        previous, rows = self._rows, dict[bytes, Strip]()
        strips: list[Strip] = []
        for row_keys in keys:
            signature = row_keys.tobytes()
            strip = rows.get(signature) or previous.get(signature)
            if strip is None:
                strip = build(row_keys, cols)
                self.rows_built += 1
            rows[signature] = strip
            strips.append(strip)
        self._rows = rows  # keep only what the last frame used
        return strips

    def _colour_row(self, row_keys: npt.NDArray[np.int64], cols: int) -> Strip:
        starts = np.flatnonzero(row_keys[1:] != row_keys[:-1]) + 1
        bounds = [0, *starts.tolist(), cols]
        values = row_keys[bounds[:-1]].tolist()
        styles = self._styles
        segments = []
        for value, start, end in zip(values, bounds, bounds[1:], strict=False):
            style = styles.get(value)
            if style is None:
                if len(styles) >= _MAX_STYLES:
                    styles.clear()
                    self._colours.clear()
                top, bottom = value >> 24, value & 0xFFFFFF
                style = styles[value] = Style.from_color(
                    self._colour_of(top), self._colour_of(bottom)
                )
                if self.truecolor:
                    # Pre-fill the SGR cache that Rich and Textual (Strip.render_ansi) keep on
                    # every Style: 40% of the cost of a new cell, and exactly what they would
                    # compute for a truecolor terminal (only then: other colour systems
                    # downgrade the colours, so they are left to compute it).
                    style._ansi = (
                        f"38;2;{top >> 16};{(top >> 8) & 0xFF};{top & 0xFF};"
                        f"48;2;{bottom >> 16};{(bottom >> 8) & 0xFF};{bottom & 0xFF}"
                    )
            segments.append(Segment(HALF_BLOCK * (end - start), style))
        return Strip(segments, cols)

    def _colour_of(self, rgb: int) -> Color:
        colour = self._colours.get(rgb)
        if colour is None:
            triplet = ColorTriplet(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
            colour = self._colours[rgb] = Color(f"#{rgb:06x}", ColorType.TRUECOLOR, None, triplet)
        return colour

    def _grey_row(self, row_keys: npt.NDArray[np.int64], cols: int) -> Strip:
        # A plain Style, not None: Textual's NO_COLOR filter reads every segment's style.
        return Strip([Segment("".join(self._ramp[row_keys].tolist()), _PLAIN)], cols)


def place(rgb: Rgb, height: int, width: int) -> Rgb:
    """A black (height, width, 3) canvas with ``rgb`` centred in it (cropped if too big)."""
    canvas = np.zeros((height, width, 3), np.uint8)
    h, w = min(rgb.shape[0], height), min(rgb.shape[1], width)
    sy, sx = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
    dy, dx = (height - h) // 2, (width - w) // 2
    canvas[dy : dy + h, dx : dx + w] = rgb[sy : sy + h, sx : sx + w]
    return canvas


class VideoView(Widget):
    """Shows the newest RGB frame, and one overlay (status) line at the bottom.

    Attributes go down: ``show(rgb)`` (an (h, w, 3) uint8 array no bigger than the wanted pixel
    size, centred with black bars) and ``set_overlay(text)``. Messages go up:
    :class:`VideoView.SizeChanged` with the wanted pixel size on every resize (half blocks:
    cols x 2*(rows-1); kitty/sixel: the video cells' size in screen pixels, scaled down to at
    most ``max_image_pixels``, by default :data:`MAX_IMAGE_PIXELS` for the mode). A frame shown
    before the previous one was drawn replaces it (``frames_dropped``); nothing queues. Call
    from the app's thread (from a worker thread: ``app.call_from_thread``).

    ``mode``: ``"halfblock"`` (default), ``"kitty"``, ``"sixel"`` or ``"auto"`` (from
    ``environ``, default ``os.environ``); see the module docstring for the graphics modes and
    their fall-back to half blocks. ``mode_in_use`` tells what is drawn now. ``cell_size`` (pixels
    per cell, width and height) overrides what the terminal reports; ``clock`` (monotonic
    seconds) paces the graphics frame rate.
    """

    DEFAULT_CSS = """
    VideoView {
        width: 1fr;
        height: 1fr;
        background: black;
    }
    """

    class SizeChanged(Message):
        """The pixel size frames should be scaled to (square pixels)."""

        def __init__(self, video_view: VideoView, width_px: int, height_px: int) -> None:
            super().__init__()
            self.video_view = video_view
            self.width_px = width_px
            self.height_px = height_px

        @property
        def control(self) -> VideoView:
            return self.video_view

        def can_replace(self, message: Message) -> bool:
            return (
                isinstance(message, VideoView.SizeChanged) and message.video_view is self.video_view
            )

    def __init__(
        self,
        *,
        colour: bool | None = None,
        colour_bits: int = 6,
        mode: VideoMode = "halfblock",
        environ: Mapping[str, str] | None = None,
        cell_size: tuple[int, int] | None = None,
        max_fps: float = 15.0,
        max_image_pixels: int | None = None,
        image_id: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if mode not in VIDEO_MODES:
            raise ValueError(f"mode must be one of {', '.join(VIDEO_MODES)}, not {mode!r}")
        if max_fps <= 0:
            raise ValueError(f"max_fps must be positive, not {max_fps}")
        self._colour = colour
        self._colour_bits = colour_bits
        self._renderer: HalfBlockRenderer | None = None
        self._frame: Rgb | None = None  # the newest frame, drawn or not
        self._pending = False
        self._overlay = ""
        self._strips: list[Strip] = []
        self._layout: tuple[int, int] | None = None
        self.frames_shown = 0
        self.frames_dropped = 0
        # graphics modes
        self.mode: VideoMode = mode
        self._environ = environ
        self._mode_in_use: GraphicsMode | None = None  # decided at mount
        self._cell_size_given = cell_size
        self._cell_size: tuple[int, int] | None = cell_size
        self._min_interval_s = 1.0 / max_fps
        self._max_image_pixels = max_image_pixels
        self.image_id = image_id if image_id is not None else (_address(self) % 0xFFFFFFFE) + 1
        self._clock = clock
        self._kitty = KittyEncoder(image_id=self.image_id)
        self._last_write = -math.inf
        self._timer: Timer | None = None
        self._repaint_scheduled = False
        self._rows_rebuilt = False  # render_line() rebuilt a video row in this render_lines()
        self._drawn_at: tuple[object, ...] | None = None  # where the last picture went
        self._placed = False  # a kitty placement may be on screen
        self._sequence: tuple[Rgb, tuple[object, ...], str] | None = None  # frame, geometry, bytes
        self.images_written = 0

    # --- attributes down ---

    def show(self, rgb: Rgb) -> None:
        """Draw this frame next; a frame not drawn yet is dropped, not queued."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"show() takes (h, w, 3) uint8 RGB, not {rgb.shape} {rgb.dtype}")
        if self._pending:
            self.frames_dropped += 1
        self._frame = rgb
        self._pending = True
        if self.mode_in_use == "halfblock":
            self.refresh()
            return
        wait_s = self._last_write + self._min_interval_s - self._clock()
        if wait_s <= 0:
            self._draw_image()
        elif self._timer is None:
            self._timer = self.set_timer(wait_s, self._on_frame_timer, name="video-frame")

    def clear(self) -> None:
        """Forget the frame (black until the next ``show``): a new stream never starts on the
        last picture of the one before."""
        if self._frame is None and not self._pending:
            return
        self._frame, self._pending, self._sequence = None, False, None
        self._layout = None
        if self.is_mounted:
            self._clear_image()
            self.refresh()

    def set_overlay(self, text: str) -> None:
        """One status line at the bottom: codec, resolution, fps, transport, loss, state."""
        if text != self._overlay:
            self._overlay = text
            if self.mode_in_use == "halfblock":
                self.refresh()
            else:  # leave the picture's cells alone: a repaint there would blank the picture
                width, height = self.size
                self.refresh(Region(0, max(0, height - 1), width, 1))

    @property
    def overlay(self) -> str:
        return self._overlay

    @property
    def mode_in_use(self) -> GraphicsMode:
        """What draws the picture now: decided at mount from ``mode``; half blocks after a failure."""
        return self._mode_in_use if self._mode_in_use is not None else "halfblock"

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width_px, height_px) that frames should be scaled to, at most."""
        if self.mode_in_use == "halfblock":
            return (self.size.width, 2 * max(0, self.size.height - 1))
        return self._image_box(self.size.width, max(0, self.size.height - 1))

    @property
    def rows_built(self) -> int:
        """Cell rows built from scratch so far (rows unchanged since the last frame are not)."""
        return 0 if self._renderer is None else self._renderer.rows_built

    @property
    def colour(self) -> bool:
        return self._colour if self._colour is not None else not self.app.no_color

    # --- Textual ---

    def on_mount(self) -> None:
        self._mode_in_use = self._choose_mode()
        if self._mode_in_use != "halfblock":
            self.app.screen_change_signal.subscribe(self, self._on_screen_change)

    def on_resize(self, event: events.Resize) -> None:
        self._layout = None  # rebuild at the next render
        if self.mode_in_use != "halfblock" and self._cell_size_given is None:
            self._cell_size = terminal_cell_size(self.app)  # the font size may have changed
        width_px, height_px = self.pixel_size
        self.post_message(self.SizeChanged(self, width_px, height_px))

    def on_hide(self, event: events.Hide) -> None:
        self._clear_image()

    def on_unmount(self, event: events.Unmount) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self._placed:
            self._write(kitty_delete(self.image_id, free=True), quiet=True)
            self._placed = False

    def _on_screen_change(self, screen: Screen[object]) -> None:
        if not self._screen_is_active():
            self._clear_image()  # another screen is on top; ours is repainted on its return

    def render_lines(self, crop: Region) -> list[Strip]:
        """Textual asks for our lines for a screen update. The picture is drawn again right
        after that update when it rebuilt a video row (resize, a full refresh: our cells are
        rewritten), or when there is a frame but no picture where the pane now is (first
        paint, moved, resized, shown again, our screen back on top after a clear).

        The compositor asks for every widget's lines on any update, and passes the whole widget
        as ``crop`` when it is not clipped, so neither the call nor ``crop`` tells that our
        cells are written; a rebuilt row and the geometry do. Another widget repainting over the
        pane from its cache (a toast going away) is not seen: kitty pictures survive text
        written over them, a sixel one is back with the next frame.
        """
        self._rows_rebuilt = False
        strips = super().render_lines(crop)
        if (
            self.mode_in_use != "halfblock"
            and not self._repaint_scheduled
            and (
                self._rows_rebuilt
                or (self._frame is not None and self._drawn_at != self._placed_geometry())
            )
        ):
            self._repaint_scheduled = True
            self.call_after_refresh(self._repaint_image)
        return strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if y == height - 1:
            style = _OVERLAY_STYLE if self.colour else _OVERLAY_STYLE_NO_COLOR
            return Strip([Segment(f" {self._overlay}", style)]).adjust_cell_length(width, style)
        if self.mode_in_use != "halfblock":
            self._rows_rebuilt = True  # so it is about to be written over the picture
            return Strip.blank(width, _BLACK)
        if self._pending or self._layout != (width, height):
            self._prepare(width, height)
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, _BLACK)

    def _prepare(self, width: int, height: int) -> None:
        if self._renderer is None:
            self._renderer = HalfBlockRenderer(
                colour=self.colour,
                colour_bits=self._colour_bits,
                truecolor=self.app.console.color_system == "truecolor",
            )
        rows = max(0, height - 1)
        canvas = np.zeros((2 * rows, width, 3), np.uint8)
        if self._frame is not None:
            canvas = place(self._frame, 2 * rows, width)
        self._strips = self._renderer.render(canvas)
        self._layout = (width, height)
        if self._pending:
            self.frames_shown += 1
            self._pending = False

    # --- graphics modes ---

    def _choose_mode(self) -> GraphicsMode:
        environ = os.environ if self._environ is None else self._environ
        mode = resolve_mode(self.mode, environ)
        if mode == "halfblock":
            return mode
        reason = ""
        if self.app.no_color:
            reason = "NO_COLOR is set"
        elif self.app.is_inline:
            reason = "the app runs inline"
        elif terminal_driver(self.app) is None:
            reason = "there is no terminal driver"
        elif self._cell_size is None and not self.app.is_headless:
            self._cell_size = terminal_cell_size(self.app)
        if not reason and mode == "sixel" and self._cell_size is None:
            reason = "the terminal does not tell its cell size in pixels"
        if reason:
            logger.info("video: %s requested but %s: half blocks", mode, reason)
            return "halfblock"
        logger.info("video: drawing with %s, cells of %s px", mode, self._cell_size)
        return mode

    def _image_box(self, cols: int, rows: int) -> tuple[int, int]:
        """The picture's pixel box for ``cols`` x ``rows`` cells: their size in pixels, scaled
        down (same aspect) to at most ``max_image_pixels``."""
        cell_w, cell_h = self._cell_size or DEFAULT_CELL_PX
        width, height = cols * cell_w, rows * cell_h
        limit = self._max_image_pixels or MAX_IMAGE_PIXELS.get(self.mode_in_use, 0)
        if limit and width * height > limit:
            scale = math.sqrt(limit / (width * height))
            width, height = int(width * scale), int(height * scale)
        return (max(0, width), max(0, height))

    def _on_frame_timer(self) -> None:
        self._timer = None
        if self._pending and self.mode_in_use != "halfblock":
            self._draw_image()

    def _repaint_image(self) -> None:
        self._repaint_scheduled = False
        if self._frame is not None and self.mode_in_use != "halfblock":
            self._draw_image()

    def _draw_image(self) -> None:
        """Write the newest frame as one picture (one write), or clear it if it cannot be seen."""
        try:
            sequence = self._image_sequence()
        except Exception:  # an encoder bug must not take the pane down: half blocks from now on
            logger.exception("video: cannot encode a %s picture", self.mode_in_use)
            self._fall_back()
            return
        if sequence is None:
            self._clear_image()
            return
        if not self._write(synchronized(sequence)):
            return
        self.images_written += 1
        self._placed = self.mode_in_use == "kitty"
        self._drawn_at = self._placed_geometry()
        self._last_write = self._clock()
        if self._pending:
            self.frames_shown += 1
            self._pending = False

    def _image_sequence(self) -> str | None:
        frame = self._frame
        if frame is None or not self._visible_whole():
            return None
        region = self.content_region
        cols, rows = region.width, region.height - 1
        box_w, box_h = self._image_box(cols, rows)
        if cols <= 0 or rows <= 0 or box_w <= 0 or box_h <= 0:
            return None
        geometry = (self.mode_in_use, region, self._cell_size, box_w, box_h)
        cached = self._sequence
        if cached is not None and cached[0] is frame and cached[1] == geometry:
            return cached[2]  # a repaint: the same picture at the same place
        if frame.shape[0] > box_h or frame.shape[1] > box_w:  # not scaled to this size yet
            frame = place(frame, min(frame.shape[0], box_h), min(frame.shape[1], box_w))
        height, width = frame.shape[:2]
        if self.mode_in_use == "kitty":
            columns = min(cols, max(1, round(width * cols / box_w)))
            lines = min(rows, max(1, round(height * rows / box_h)))
            picture = self._kitty.encode(frame, columns=columns, rows=lines)
            x, y = (cols - columns) // 2, (rows - lines) // 2
        else:  # sixel: drawn pixel for pixel, centred in the cells' pixels
            cell_w, cell_h = self._cell_size or DEFAULT_CELL_PX
            picture = sixel_image(frame)
            x = (cols * cell_w - width) // 2 // cell_w
            y = (rows * cell_h - height) // 2 // cell_h
        sequence = at_cell(region.x + x, region.y + y, picture)
        self._sequence = (self._frame, geometry, sequence) if self._frame is not None else None
        return sequence

    def _placed_geometry(self) -> tuple[object, ...]:
        return (self.content_region, self._cell_size)

    def _screen_is_active(self) -> bool:
        try:
            return self.screen.is_active
        except Exception:  # NoScreen while mounting or after removal
            return False

    def _visible_whole(self) -> bool:
        """Mounted, displayed, on the top screen and not clipped by a container."""
        if not self.is_mounted or not self.display or not self.visible:
            return False
        if not self._screen_is_active():
            return False
        try:
            geometry = self.screen.find_widget(self)
        except Exception:  # NoWidget: not in the screen's map (an ancestor is hidden)
            return False
        return geometry.visible_region == geometry.region

    def _clear_image(self) -> None:
        self._drawn_at = None
        if self._placed:
            self._write(kitty_delete(self.image_id), quiet=True)
            self._placed = False

    def _write(self, data: str, *, quiet: bool = False) -> bool:
        """Raw escape sequences to the terminal through Textual's output queue (keeps order with
        Textual's own screen updates). On failure: half blocks (unless ``quiet``)."""
        try:
            driver = terminal_driver(self.app)
            if driver is None:
                raise RuntimeError("the app has no driver")
            driver.write(data)
        except Exception:
            if not quiet:
                logger.exception("video: cannot write a %s picture", self.mode_in_use)
                self._fall_back()
            return False
        return True

    def _fall_back(self) -> None:
        """Half blocks for good: redraw the newest frame with them and ask for their size."""
        self._placed = False
        self._mode_in_use = "halfblock"
        self._sequence = None
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._pending = self._frame is not None
        self._layout = None
        self.refresh()
        width_px, height_px = self.pixel_size
        self.post_message(self.SizeChanged(self, width_px, height_px))


def _address(obj: object) -> int:
    """A process-unique number for an object (``id``, which ``__init__``'s argument hides)."""
    return id(obj)


def _in_multiplexer(environ: Mapping[str, str]) -> bool:
    term = environ.get("TERM", "").lower()
    program = environ.get("TERM_PROGRAM", "").lower()
    return bool(environ.get("TMUX")) or term.startswith(("tmux", "screen")) or program == "tmux"


def resolve_mode(requested: VideoMode, environ: Mapping[str, str]) -> GraphicsMode:
    """The mode to draw with: ``"auto"`` asks :func:`graphics_mode`; a forced graphics mode is
    kept except inside tmux or GNU screen, which do not pass the sequences through (half
    blocks there, whatever was asked)."""
    if requested == "auto":
        return graphics_mode(environ)
    if requested != "halfblock" and _in_multiplexer(environ):
        return "halfblock"
    return requested


def terminal_cell_size(app: App[object]) -> tuple[int, int] | None:
    """Pixels per cell (width, height): from Textual's in-band resize report (mode 2048, which
    carries the window's pixel size), else the tty's ``TIOCGWINSZ`` (``ws_xpixel``/``ws_ypixel``),
    else None. Headless apps have no terminal: None."""
    if app.is_headless:
        return None
    cols, rows = app.size
    resize = getattr(app, "_resize_event", None)
    pixels = getattr(resize, "pixel_size", None)
    if pixels is not None and cols > 0 and rows > 0 and pixels.width > 0 and pixels.height > 0:
        return (pixels.width // cols, pixels.height // rows)
    for stream in (sys.__stdout__, sys.__stderr__, sys.__stdin__):
        try:
            if stream is None:
                continue
            packed = fcntl.ioctl(stream.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        except (OSError, ValueError):
            continue
        rows_, cols_, width_px, height_px = struct.unpack("HHHH", packed)
        if rows_ and cols_ and width_px and height_px:
            return (width_px // cols_, height_px // rows_)
    return None


def graphics_mode(environ: Mapping[str, str]) -> GraphicsMode:
    """Which picture protocol the terminal most likely speaks, from its environment only.

    tmux (and GNU screen) get half blocks: the graphics protocols need passthrough there. kitty,
    WezTerm and Ghostty speak the kitty graphics protocol; foot, mlterm, contour and xterm
    started for sixel speak sixel. Anything else: half blocks. A definite answer needs a query
    to the terminal (DA1 attribute 4 for sixel, a kitty ``a=q`` command), which must be made
    before Textual takes over stdin.
    """
    term = environ.get("TERM", "").lower()
    program = environ.get("TERM_PROGRAM", "").lower()
    if _in_multiplexer(environ):
        return "halfblock"
    if term == "xterm-kitty" or environ.get("KITTY_WINDOW_ID") or program in ("wezterm", "ghostty"):
        return "kitty"
    if term.startswith(("foot", "mlterm", "contour")) or program in ("mlterm", "contour"):
        return "sixel"
    return "halfblock"


def _synthetic_frames(cols: int, rows: int, frames: int, content: str) -> list[Rgb]:
    height = 2 * rows
    rng = np.random.default_rng(0)
    if content == "noise":
        return [rng.integers(0, 256, (height, cols, 3), dtype=np.uint8) for _ in range(frames)]
    y, x = np.mgrid[0:height, 0:cols].astype(np.float32)
    out = []
    for i in range(frames):  # a moving colour gradient with a little sensor noise: camera-like
        r = 128 + 100 * np.sin((x + 3 * i) / 17)
        g = 128 + 100 * np.sin((y + 2 * i) / 11)
        b = 128 + 100 * np.cos((x + y + i) / 23)
        frame = np.stack([r, g, b], axis=-1) + rng.normal(0, 2, (height, cols, 3))
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def render_cost(
    cols: int, rows: int, frames: int, *, content: Literal["video", "noise"] = "video"
) -> float:
    """Milliseconds per frame to build the strips of a cols x rows pane and turn them into
    terminal sequences (Textual's ``Strip.render``), with every frame different.

    ``content="video"``: a moving gradient with noise (camera-like); ``"noise"``: every cell a
    new colour pair, the worst case. Excludes the terminal's own work and Textual's compositor.
    """
    renderer = HalfBlockRenderer()
    console = Console(color_system="truecolor", force_terminal=True, width=cols)
    sources = _synthetic_frames(cols, rows, frames, content)
    start = time.perf_counter()
    for frame in sources:
        for strip in renderer.render(frame):
            strip.render(console)
    return (time.perf_counter() - start) * 1000.0 / max(1, frames)
