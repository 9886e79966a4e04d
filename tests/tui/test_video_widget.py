"""VideoView: half-block colours at known cells, black bars, the row cache, frame dropping,
SizeChanged, the overlay line, NO_COLOR, and graphics-mode detection. Driven by Textual's Pilot."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest
from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.strip import Strip

import softphone.tui.video as video_module
from softphone.tui.video import (
    GREY_RAMP,
    HALF_BLOCK,
    HalfBlockRenderer,
    VideoView,
    graphics_mode,
    place,
    render_cost,
)

COLS, ROWS = 40, 12  # the view fills the screen: 11 video rows (22 pixels) + 1 overlay line
VIDEO_PX = (COLS, 2 * (ROWS - 1))
# Multiples of 4 survive the default 6-bit quantisation unchanged.
RED, BLUE, GREEN, WHITE = (200, 40, 100), (20, 60, 240), (0, 180, 40), (252, 252, 252)


class VideoApp(App[None]):
    def compose(self) -> ComposeResult:
        yield VideoView(id="video")


async def until(pilot: Pilot[None], cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():
            await pilot.pause()


def triplet(style: Style, attr: str) -> tuple[int, int, int]:
    colour = getattr(style, attr)
    assert colour is not None and colour.triplet is not None
    return tuple(colour.triplet)


def known_frame() -> np.ndarray:
    """Left half: RED above BLUE in every cell; right half: GREEN above WHITE."""
    frame = np.zeros((VIDEO_PX[1], VIDEO_PX[0], 3), np.uint8)
    frame[0::2, : COLS // 2] = RED
    frame[1::2, : COLS // 2] = BLUE
    frame[0::2, COLS // 2 :] = GREEN
    frame[1::2, COLS // 2 :] = WHITE
    return frame


async def test_known_frame_is_drawn_with_half_blocks_in_the_right_colours() -> None:
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        view.show(known_frame())
        await until(pilot, lambda: view.frames_shown == 1)
        await pilot.pause()
        for x, y, top, bottom in [
            (0, 0, RED, BLUE),
            (19, 10, RED, BLUE),
            (20, 0, GREEN, WHITE),
            (39, 5, GREEN, WHITE),
        ]:
            style = app.screen.get_style_at(x, y)
            assert (triplet(style, "color"), triplet(style, "bgcolor")) == (top, bottom)
            assert view.render_line(y).text[x] == HALF_BLOCK


async def test_a_smaller_frame_is_centred_between_black_bars() -> None:
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        view.show(np.full((10, 20, 3), RED, np.uint8))  # 20x10 px in 40x22: bars of 10 and 6
        await until(pilot, lambda: view.frames_shown == 1)
        await pilot.pause()
        inside = app.screen.get_style_at(20, 5)
        assert triplet(inside, "color") == RED and triplet(inside, "bgcolor") == RED
        for x, y in [(5, 5), (35, 5), (20, 1), (20, 9)]:
            bar = app.screen.get_style_at(x, y)
            assert triplet(bar, "bgcolor") == (0, 0, 0), (x, y)


async def test_an_identical_frame_rebuilds_no_rows_and_a_changed_row_rebuilds_one() -> None:
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        frame = known_frame()
        view.show(frame)
        await until(pilot, lambda: view.frames_shown == 1)
        built = view.rows_built
        assert built == 2  # 11 rows, but only two distinct ones (identical rows share a Strip)
        view.show(frame.copy())
        await until(pilot, lambda: view.frames_shown == 2)
        assert view.rows_built == built
        changed = frame.copy()
        changed[7, 3] = (100, 100, 100)  # pixel row 7 is cell row 3
        view.show(changed)
        await until(pilot, lambda: view.frames_shown == 3)
        assert view.rows_built == built + 1
        style = app.screen.get_style_at(3, 3)
        assert triplet(style, "bgcolor") == (100, 100, 100)


async def test_a_new_frame_replaces_the_pending_one() -> None:
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        view.show(np.full((4, 4, 3), RED, np.uint8))
        view.show(np.full((4, 4, 3), GREEN, np.uint8))  # before any redraw
        await until(pilot, lambda: view.frames_shown == 1)
        await pilot.pause()
        assert view.frames_dropped == 1
        assert triplet(app.screen.get_style_at(20, 5), "color") == GREEN


async def test_size_changed_is_posted_on_mount_and_resize() -> None:
    seen: list[Message] = []
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS), message_hook=seen.append) as pilot:
        view = app.query_one(VideoView)

        def sizes() -> list[tuple[int, int]]:
            return [(m.width_px, m.height_px) for m in seen if isinstance(m, VideoView.SizeChanged)]

        await until(pilot, lambda: VIDEO_PX in sizes())
        assert view.pixel_size == VIDEO_PX
        await pilot.resize_terminal(60, 20)
        await until(pilot, lambda: (60, 38) in sizes())
        assert view.pixel_size == (60, 38)


async def test_overlay_line_is_shown_at_the_bottom() -> None:
    app = VideoApp()
    text = "h264 640x360 25 fps | udp | loss 0 | playing"
    async with app.run_test(size=(COLS + 20, ROWS)) as pilot:
        view = app.query_one(VideoView)
        view.show(known_frame())
        view.set_overlay(text)
        await until(pilot, lambda: view.frames_shown == 1)
        await pilot.pause()
        bottom = view.render_line(ROWS - 1)
        assert bottom.text.strip() == text and bottom.cell_length == COLS + 20
        assert view.render_line(ROWS - 2).text[0] == HALF_BLOCK  # video stops above it
        assert view.overlay == text


async def test_no_color_draws_a_grey_ramp_without_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        assert app.no_color
        view = app.query_one(VideoView)
        frame = np.zeros((VIDEO_PX[1], VIDEO_PX[0], 3), np.uint8)
        frame[:, COLS // 2 :] = 255
        view.show(frame)
        await until(pilot, lambda: view.frames_shown == 1)
        line = view.render_line(0)
        assert line.text == " " * (COLS // 2) + GREY_RAMP[-1] * (COLS // 2)
        assert all(s.style is None or not (s.style.color or s.style.bgcolor) for s in line)


def test_renderer_merges_runs_and_quantises() -> None:
    renderer = HalfBlockRenderer(colour_bits=6)
    canvas = np.zeros((2, 8, 3), np.uint8)
    canvas[:, 4:] = (201, 42, 103)  # -> (200, 40, 100) at 6 bits
    (strip,) = renderer.render(canvas)
    segments = list(strip)
    assert [s.text for s in segments] == [HALF_BLOCK * 4, HALF_BLOCK * 4]
    assert segments[1].style is not None and triplet(segments[1].style, "color") == RED
    assert renderer.rows_built == 1


def test_place_centres_and_crops() -> None:
    small = np.full((2, 2, 3), 7, np.uint8)
    canvas = place(small, 4, 6)
    assert canvas[1:3, 2:4].min() == 7 and canvas.sum() == 7 * 12
    big = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    assert np.array_equal(place(big, 4, 4), big[3:7, 3:7])


async def test_show_rejects_arrays_that_are_not_rgb() -> None:
    app = VideoApp()
    async with app.run_test(size=(COLS, ROWS)):
        view = app.query_one(VideoView)
        with pytest.raises(ValueError, match="uint8 RGB"):
            view.show(np.zeros((4, 4), np.uint8))
        with pytest.raises(ValueError, match="uint8 RGB"):
            view.show(np.zeros((4, 4, 3), np.float32))


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({"TERM": "xterm-kitty"}, "kitty"),
        ({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, "halfblock"),
        ({"TERM": "tmux-256color", "KITTY_WINDOW_ID": "1"}, "halfblock"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "kitty"),
        ({"TERM": "foot"}, "sixel"),
        ({"TERM": "xterm-256color"}, "halfblock"),
        ({}, "halfblock"),
    ],
)
def test_graphics_mode_from_the_environment(environ: dict[str, str], mode: str) -> None:
    assert graphics_mode(environ) == mode


@pytest.mark.parametrize("content", ["video", "noise"])
def test_render_cost_times_every_frame_different_and_gives_ms_per_frame(
    monkeypatch: pytest.MonkeyPatch, content: Literal["video", "noise"]
) -> None:
    """What the bench reports: the time taken (clock walked here: 12 ms in all) over the
    frames, each one a new pane-sized canvas drawn to terminal sequences."""
    drawn: list[np.ndarray] = []
    sequences: list[str] = []
    real_render, real_to_text = HalfBlockRenderer.render, Strip.render

    def render(self: HalfBlockRenderer, canvas: np.ndarray) -> list[Strip]:
        drawn.append(canvas.copy())
        return real_render(self, canvas)

    def to_text(self: Strip, console: Console) -> str:
        sequences.append(real_to_text(self, console))
        return sequences[-1]

    clock = iter([5.0, 5.012])
    monkeypatch.setattr(HalfBlockRenderer, "render", render)
    monkeypatch.setattr(Strip, "render", to_text)
    monkeypatch.setattr(video_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert render_cost(20, 6, 3, content=content) == pytest.approx(4.0)
    assert [canvas.shape for canvas in drawn] == [(12, 20, 3)] * 3  # 6 rows of half blocks
    assert len(sequences) == 3 * 6 and all("\x1b[" in text for text in sequences)  # SGR colours
    assert all(not np.array_equal(a, b) for a, b in itertools.combinations(drawn, 2))


def test_the_widget_imports_neither_av_nor_softphone_media() -> None:
    code = (
        "import sys, softphone.tui.video\n"
        "print(sorted(m for m in sys.modules if m == 'av' or m.startswith(('av.', 'softphone.media'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
