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

Higher resolution (kitty graphics / sixel) is not drawn here yet: :func:`graphics_mode` only
tells what the terminal could do, from the environment; half blocks are the default everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from rich.color import Color, ColorType
from rich.color_triplet import ColorTriplet
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

Rgb: TypeAlias = npt.NDArray[np.uint8]
GraphicsMode: TypeAlias = Literal["halfblock", "kitty", "sixel"]

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
    """Shows the newest RGB frame with half blocks, and one overlay (status) line at the bottom.

    Attributes go down: ``show(rgb)`` (an (h, w, 3) uint8 array no bigger than the wanted pixel
    size, centred with black bars) and ``set_overlay(text)``. Messages go up:
    :class:`VideoView.SizeChanged` with the wanted pixel size (cols x 2*(rows-1)) on every resize.
    A frame shown before the previous one was drawn replaces it (``frames_dropped``); nothing
    queues. Call from the app's thread (from a worker thread: ``app.call_from_thread``).
    """

    DEFAULT_CSS = """
    VideoView {
        width: 1fr;
        height: 1fr;
        background: black;
    }
    """

    class SizeChanged(Message):
        """The pixel size frames should be scaled to (two pixels per cell vertically)."""

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
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
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

    # --- attributes down ---

    def show(self, rgb: Rgb) -> None:
        """Draw this frame next; a frame not drawn yet is dropped, not queued."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"show() takes (h, w, 3) uint8 RGB, not {rgb.shape} {rgb.dtype}")
        if self._pending:
            self.frames_dropped += 1
        self._frame = rgb
        self._pending = True
        self.refresh()

    def set_overlay(self, text: str) -> None:
        """One status line at the bottom: codec, resolution, fps, transport, loss, state."""
        if text != self._overlay:
            self._overlay = text
            self.refresh()

    @property
    def overlay(self) -> str:
        return self._overlay

    @property
    def pixel_size(self) -> tuple[int, int]:
        """(width_px, height_px) that frames should be scaled to, at most."""
        return (self.size.width, 2 * max(0, self.size.height - 1))

    @property
    def rows_built(self) -> int:
        """Cell rows built from scratch so far (rows unchanged since the last frame are not)."""
        return 0 if self._renderer is None else self._renderer.rows_built

    @property
    def colour(self) -> bool:
        return self._colour if self._colour is not None else not self.app.no_color

    # --- Textual ---

    def on_resize(self, event: events.Resize) -> None:
        self._layout = None  # rebuild at the next render
        width_px, height_px = self.pixel_size
        self.post_message(self.SizeChanged(self, width_px, height_px))

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if y == height - 1:
            style = _OVERLAY_STYLE if self.colour else _OVERLAY_STYLE_NO_COLOR
            return Strip([Segment(f" {self._overlay}", style)]).adjust_cell_length(width, style)
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
    if environ.get("TMUX") or term.startswith(("tmux", "screen")) or program == "tmux":
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
