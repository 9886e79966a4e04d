"""Graphics modes of the video pane: the kitty and sixel encoders checked by decoding what they
write (a small sixel decoder lives here), the mode chosen per environment, and VideoView in
kitty/sixel mode under Pilot with the driver's writes captured (one picture per shown frame,
redrawn on resize, deleted when hidden, half blocks under tmux and after a failure)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import zlib
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen

import softphone.tui.graphics as graphics_module
import softphone.tui.video as video_module
from softphone.tui.graphics import (
    KITTY_CHUNK,
    RESTORE_CURSOR,
    SAVE_CURSOR,
    SIXEL_PALETTE_SIZE,
    SYNC_END,
    SYNC_START,
    KittyEncoder,
    at_cell,
    encode_cost,
    kitty_delete,
    kitty_image,
    sixel_image,
    sixel_palette,
    sixel_quantise,
    synchronized,
)
from softphone.tui.video import HALF_BLOCK, VideoMode, VideoView, resolve_mode

COLS, ROWS = 40, 12  # 11 video rows + the overlay line
CELL = (8, 16)  # pixels per cell, given to the widget (headless tests have no terminal)
BOX = (COLS * CELL[0], (ROWS - 1) * CELL[1])  # 320 x 176

_KITTY = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")


# --- test-side decoders ------------------------------------------------------------------------


def kitty_commands(text: str) -> list[tuple[dict[str, str], str]]:
    """Every APC graphics command in ``text``: (keys, payload)."""
    out = []
    for match in _KITTY.finditer(text):
        keys = dict(item.split("=", 1) for item in match.group(1).split(","))
        out.append((keys, match.group(2) or ""))
    return out


def kitty_pixels(text: str) -> tuple[dict[str, str], np.ndarray]:
    """The first transmitted image in ``text``: its first command's keys and its pixels."""
    commands = [c for c in kitty_commands(text) if c[0].get("a") != "d"]
    keys = commands[0][0]
    data = base64.standard_b64decode("".join(payload for _, payload in commands))
    if keys.get("o") == "z":
        data = zlib.decompress(data)
    width, height = int(keys["s"]), int(keys["v"])
    return keys, np.frombuffer(data, np.uint8).reshape(height, width, 3)


def decode_sixel(text: str) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """A minimal sixel decoder: (rgb (h, w, 3) int, painted mask, facts) of the first picture."""
    start = text.index("\x1bP")
    q = text.index("q", start)
    end = text.index("\x1b\\", q)
    params, body = text[start + 2 : q], text[q + 1 : end]
    facts: dict[str, object] = {"params": params, "bands": 1, "registers": {}}
    match = re.match(r'"(\d+);(\d+);(\d+);(\d+)', body)
    assert match, "raster attributes first"
    width, height = int(match.group(3)), int(match.group(4))
    facts["aspect"] = (int(match.group(1)), int(match.group(2)))
    body = body[match.end() :]
    rgb = np.zeros((height, width, 3), int)
    painted = np.zeros((height, width), bool)
    registers: dict[int, tuple[int, int, int]] = {}
    colour, x, y, i = 0, 0, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "#":
            m = re.match(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?", body[i:])
            assert m
            colour = int(m.group(1))
            if m.group(2) is not None:
                registers[colour] = tuple(round(int(m.group(k)) * 255 / 100) for k in (2, 3, 4))
            i += m.end()
            continue
        count = 1
        if ch == "!":
            m = re.match(r"!(\d+)(.)", body[i:])
            assert m
            count, ch = int(m.group(1)), m.group(2)
            i += m.end() - 1
        if ch == "$":
            x = 0
        elif ch == "-":
            x, y = 0, y + 6
            facts["bands"] = int(facts["bands"]) + 1  # type: ignore[call-overload]
        else:
            bits = ord(ch) - 63
            assert 0 <= bits < 64, f"not a sixel character: {ch!r}"
            for row in range(6):
                if bits >> row & 1:
                    assert y + row < height, "painted below the picture"
                    rgb[y + row, x : x + count] = registers[colour]
                    painted[y + row, x : x + count] = True
            x += count
        i += 1
    facts["registers"] = registers
    return rgb, painted, facts


def gradient(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], -1
    )
    return np.clip(frame + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)


# --- kitty encoder ----------------------------------------------------------------------------


def test_kitty_small_image_is_one_command_with_every_key() -> None:
    frame = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [1, 2, 3]]], np.uint8)
    payload = base64.standard_b64encode(frame.tobytes()).decode()
    assert kitty_image(frame, image_id=7, columns=3, rows=2) == (
        f"\x1b_Ga=T,f=24,s=2,v=2,i=7,p=1,c=3,r=2,C=1,q=2,m=0;{payload}\x1b\\"
    )


def test_kitty_chunks_are_at_most_4096_multiples_of_4_with_m_flags() -> None:
    frame = gradient(30, 100)  # 9000 bytes -> 12000 base64 -> 4096 + 4096 + 3808
    text = kitty_image(frame, image_id=42, columns=10, rows=3)
    commands = kitty_commands(text)
    assert "".join(_KITTY.sub("", text)) == ""  # nothing but graphics commands
    assert [len(p) for _, p in commands] == [KITTY_CHUNK, KITTY_CHUNK, 12000 - 2 * KITTY_CHUNK]
    assert [keys["m"] for keys, _ in commands] == ["1", "1", "0"]
    first = commands[0][0]
    assert first == {
        "a": "T",
        "f": "24",
        "s": "100",
        "v": "30",
        "i": "42",
        "p": "1",
        "c": "10",
        "r": "3",
        "C": "1",
        "q": "2",
        "m": "1",
    }
    assert all(set(keys) == {"m", "q"} for keys, _ in commands[1:])  # later chunks: m (and q)
    assert np.array_equal(kitty_pixels(text)[1], frame)


def test_kitty_chunk_size_cuts_on_multiples_of_4() -> None:
    frame = gradient(5, 7)
    commands = kitty_commands(kitty_image(frame, image_id=1, columns=1, rows=1, chunk_size=12))
    assert all(len(p) == 12 for _, p in commands[:-1]) and 0 < len(commands[-1][1]) <= 12
    with pytest.raises(ValueError, match="multiple of 4"):
        kitty_image(frame, image_id=1, columns=1, rows=1, chunk_size=10)


def test_kitty_zlib_round_trip_and_the_encoder_uses_it_only_when_it_pays() -> None:
    flat = np.full((60, 80, 3), (10, 200, 30), np.uint8)
    text = kitty_image(flat, image_id=3, columns=8, rows=3, compress=True)
    keys, pixels = kitty_pixels(text)
    assert keys["o"] == "z" and np.array_equal(pixels, flat)
    assert len(text) < flat.nbytes / 10

    encoder = KittyEncoder(image_id=3)
    assert kitty_pixels(encoder.encode(flat, columns=8, rows=3))[0].get("o") == "z"
    noise = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    keys, pixels = kitty_pixels(encoder.encode(noise, columns=8, rows=3))
    assert "o" not in keys and np.array_equal(pixels, noise)
    # After zlib did not pay, the next frames go raw without trying, even a flat one.
    assert "o" not in kitty_pixels(encoder.encode(flat, columns=8, rows=3))[0]
    assert encoder.frames_compressed == 1


def test_kitty_delete_and_framing() -> None:
    assert kitty_delete(9) == "\x1b_Ga=d,d=i,i=9,q=2\x1b\\"
    assert kitty_delete(9, free=True) == "\x1b_Ga=d,d=I,i=9,q=2\x1b\\"
    assert at_cell(4, 2, "X") == f"{SAVE_CURSOR}\x1b[3;5HX{RESTORE_CURSOR}"
    assert synchronized("X") == f"{SYNC_START}X{SYNC_END}" == "\x1b[?2026hX\x1b[?2026l"


def test_kitty_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        kitty_image(np.zeros((2, 2), np.uint8), image_id=1, columns=1, rows=1)
    with pytest.raises(ValueError, match="ids"):
        kitty_image(np.zeros((2, 2, 3), np.uint8), image_id=0, columns=1, rows=1)


# --- sixel encoder ----------------------------------------------------------------------------


def test_sixel_palette_is_the_cube_and_greys() -> None:
    palette = sixel_palette()
    assert palette.shape == (SIXEL_PALETTE_SIZE, 3) == (240, 3)
    assert tuple(palette[36 * 5 + 6 * 1 + 2]) == (255, 51, 102)
    assert tuple(palette[216]) == (8, 8, 8) and tuple(palette[239]) == (238, 238, 238)


def test_sixel_exact_colours_and_structure() -> None:
    red, teal, grey = (255, 0, 0), (0, 153, 153), (128, 128, 128)
    frame = np.zeros((7, 5, 3), np.uint8)
    frame[:] = red
    frame[3:, 2:] = grey
    frame[6, 4] = teal
    text = sixel_image(frame)
    rgb, painted, facts = decode_sixel(text)
    assert text.startswith('\x1bP0;1;0q"1;1;5;7') and text.endswith("\x1b\\")
    assert facts["params"] == "0;1;0"  # p2=1: pixels not painted stay as they are
    assert facts["bands"] == 2  # ceil(7 / 6)
    assert painted.all()  # every pixel painted, nothing below row 7 (the decoder checks)
    assert tuple(rgb[0, 0]) == red and tuple(rgb[6, 4]) == teal  # cube colours are exact
    assert np.abs(rgb[4, 3] - grey).max() <= 2  # grey 128 -> register for 128
    assert sorted(facts["registers"]) == sorted(  # type: ignore[arg-type]
        int(r) for r in np.unique(sixel_quantise(frame))
    )


def assert_within_palette_error(rgb: np.ndarray, frame: np.ndarray) -> None:
    """Each decoded pixel is about as near its source as the nearest palette colour is.

    Euclidean: the 6-bit look-up (bin centres at most 2 away per channel) costs at most
    2 * 2 * sqrt(3) = 7 more than the nearest palette colour, percent rounding 2.2 more.
    """
    pixels = frame.reshape(-1, 1, 3).astype(float)
    nearest = np.sqrt(((pixels - sixel_palette()[None].astype(float)) ** 2).sum(-1)).min(axis=1)
    error = np.sqrt(((rgb.reshape(-1, 3) - pixels[:, 0]) ** 2).sum(-1))
    assert (error <= nearest + 10).all()
    assert error.mean() <= nearest.mean() + 3


def test_sixel_colours_within_palette_error_on_a_gradient() -> None:
    frame = gradient(50, 90)
    rgb, painted, _ = decode_sixel(sixel_image(frame))
    assert painted.all() and rgb.shape == frame.shape
    assert_within_palette_error(rgb, frame)
    # Known pixels: (0, 0) is near black, (49, 89) near (255, 255, 138).
    assert np.abs(rgb[0, 0]).max() <= 8
    assert np.abs(rgb[49, 89] - frame[49, 89].astype(int)).max() <= 30


def test_sixel_run_length_compression() -> None:
    frame = np.zeros((6, 100, 3), np.uint8)
    frame[:, :] = (0, 0, 255)
    frame[:3, 50:53] = (255, 255, 255)  # a run of 3 top-half sixels: written out, not "!3"
    text = sixel_image(frame)
    body = text[text.index('"') : -2]
    assert "!50~" in body and "!47~" in body  # blue runs either side of the white patch
    without_counts = re.sub(r"!\d+.", "", body)
    assert not re.search(r"([?-~])\1{3}", without_counts)  # no run of 4 left uncompressed
    rgb, painted, _ = decode_sixel(text)
    assert (
        painted.all() and tuple(rgb[0, 51]) == (255, 255, 255) and tuple(rgb[5, 51]) == (0, 0, 255)
    )


def test_sixel_trailing_blanks_are_cut_and_one_line_per_colour_and_band() -> None:
    frame = np.zeros((12, 20, 3), np.uint8)
    frame[:, 0] = (255, 0, 0)  # red only in column 0: its line is a single character
    text = sixel_image(frame)
    body = text[text.index('"') : -2]
    lines = re.split(r"[$-]", re.sub(r'^"[\d;]+(#\d+;2;\d+;\d+;\d+)*', "", body))
    assert len(lines) == 4  # 2 bands x (black, red)
    assert sum(line.endswith("#180~") for line in lines) == 2  # red: "~" (all six), then nothing


# --- mode choice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "environ", "mode"),
    [
        ("auto", {"TERM": "xterm-kitty"}, "kitty"),
        ("auto", {"TERM": "xterm-256color", "TERM_PROGRAM": "ghostty"}, "kitty"),
        ("auto", {"TERM": "foot"}, "sixel"),
        ("auto", {"TERM": "xterm-256color", "TERM_PROGRAM": "contour"}, "sixel"),
        ("auto", {"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"}, "halfblock"),
        ("auto", {"TERM": "xterm-256color"}, "halfblock"),
        ("halfblock", {"TERM": "xterm-kitty"}, "halfblock"),
        ("kitty", {"TERM": "xterm-256color"}, "kitty"),  # forced: the user knows the terminal
        ("sixel", {}, "sixel"),
        ("kitty", {"TERM": "tmux-256color"}, "halfblock"),  # no passthrough in tmux
        ("sixel", {"TERM": "screen-256color"}, "halfblock"),
    ],
)
def test_resolve_mode(requested: VideoMode, environ: dict[str, str], mode: str) -> None:
    assert resolve_mode(requested, environ) == mode


# --- the widget -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class GraphicsApp(App[None]):
    def __init__(self, **view_options: object) -> None:
        super().__init__()
        self.view_options = view_options

    def compose(self) -> ComposeResult:
        yield VideoView(id="video", **self.view_options)  # type: ignore[arg-type]


async def until(pilot: Pilot[None], cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not cond():
            await pilot.pause()


def capture(app: App[None], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Everything written to the (headless) driver from now on."""
    writes: list[str] = []
    assert app._driver is not None
    monkeypatch.setattr(app._driver, "write", writes.append)
    return writes


def images(writes: list[str]) -> list[str]:
    return [w for w in writes if "a=T" in w or "\x1bP" in w]


def graphics_app(mode: VideoMode, clock: Clock, **options: object) -> GraphicsApp:
    environ: Mapping[str, str] = {"TERM": "xterm-256color"}
    return GraphicsApp(
        mode=mode, environ=environ, cell_size=CELL, clock=clock, image_id=77, **options
    )


async def test_kitty_mode_writes_one_image_per_shown_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, seen = Clock(), list[Message]()
    app = graphics_app("kitty", clock)
    async with app.run_test(size=(COLS, ROWS), message_hook=seen.append) as pilot:
        view = app.query_one(VideoView)
        await until(pilot, lambda: any(isinstance(m, VideoView.SizeChanged) for m in seen))
        assert view.mode_in_use == "kitty"
        sizes = [(m.width_px, m.height_px) for m in seen if isinstance(m, VideoView.SizeChanged)]
        assert sizes[-1] == view.pixel_size == BOX
        await pilot.pause()
        writes = capture(app, monkeypatch)
        frames = [gradient(BOX[1], BOX[0], seed) for seed in range(3)]
        frames[2] = gradient(5 * CELL[1], 20 * CELL[0], 9)  # a smaller one is centred
        for frame in frames:
            view.show(frame)
            clock.now += 0.1
        await until(pilot, lambda: view.frames_shown == 3)
        await pilot.pause()
        assert len(writes) == len(images(writes)) == 3 and view.frames_dropped == 0
        for write, frame in zip(writes, frames, strict=True):
            assert write.startswith(SYNC_START + SAVE_CURSOR) and write.endswith(
                RESTORE_CURSOR + SYNC_END
            )
            keys, pixels = kitty_pixels(write)
            assert np.array_equal(pixels, frame)
            assert (keys["i"], keys["p"], keys["C"], keys["q"]) == ("77", "1", "1", "2")
        first, last = kitty_pixels(writes[0])[0], kitty_pixels(writes[2])[0]
        assert (first["c"], first["r"]) == (str(COLS), str(ROWS - 1))
        assert (last["c"], last["r"]) == ("20", "5")
        assert "\x1b[1;1H" in writes[0] and "\x1b[4;11H" in writes[2]  # centred: row 3, col 10
        assert view.rows_built == 0  # no half blocks were built


async def test_sixel_mode_writes_one_picture_per_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    app = graphics_app("sixel", clock)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        assert view.mode_in_use == "sixel" and view.pixel_size == BOX
        writes = capture(app, monkeypatch)
        frames = [
            gradient(BOX[1], BOX[0], 1),
            np.full((BOX[1], BOX[0], 3), (0, 102, 255), np.uint8),
        ]
        for frame in frames:
            view.show(frame)
            clock.now += 0.1
        await until(pilot, lambda: view.frames_shown == 2)
        await pilot.pause()
        assert len(writes) == 2
        for write, frame in zip(writes, frames, strict=True):
            assert write.startswith(SYNC_START + SAVE_CURSOR + "\x1b[1;1H\x1bP")
            assert write.endswith("\x1b\\" + RESTORE_CURSOR + SYNC_END)
            rgb, painted, facts = decode_sixel(write)
            assert painted.all() and rgb.shape == frame.shape
            assert_within_palette_error(rgb, frame)
        assert facts["bands"] == -(-BOX[1] // 6)
        assert np.array_equal(rgb[0, 0], (0, 102, 255))


@pytest.mark.parametrize(
    ("mode", "cells", "at"), [("kitty", ("40", "11"), "\x1b[1;1H"), ("sixel", None, "\x1b[3;11H")]
)
async def test_large_panes_ask_for_at_most_max_image_pixels(
    monkeypatch: pytest.MonkeyPatch, mode: VideoMode, cells: tuple[str, str] | None, at: str
) -> None:
    clock = Clock()
    app = graphics_app(mode, clock, max_image_pixels=BOX[0] * BOX[1] // 4)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        assert view.pixel_size == (BOX[0] // 2, BOX[1] // 2)
        writes = capture(app, monkeypatch)
        view.show(gradient(BOX[1] // 2, BOX[0] // 2))
        assert len(writes) == 1 and at in writes[0]
        if cells is not None:  # kitty stretches it over the whole pane
            keys = kitty_pixels(writes[0])[0]
            assert (keys["c"], keys["r"]) == cells
        else:  # sixel draws it as it is, centred
            assert decode_sixel(writes[0])[0].shape == (BOX[1] // 2, BOX[0] // 2, 3)


async def test_frames_faster_than_the_cap_keep_only_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()  # never moves: every frame after the first comes too early
    app = graphics_app("kitty", clock, max_fps=20.0)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        frames = [np.full((BOX[1], BOX[0], 3), level, np.uint8) for level in (10, 20, 30)]
        for frame in frames:
            view.show(frame)
        assert len(writes) == 1 and view.frames_shown == 1
        await until(pilot, lambda: view.frames_shown == 2)  # the timer draws the newest
        assert view.frames_dropped == 1
        assert len(writes) == 2
        assert np.array_equal(kitty_pixels(writes[1])[1], frames[2])


async def test_overlay_updates_do_not_redraw_the_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    app = graphics_app("kitty", clock)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        view.show(gradient(BOX[1], BOX[0]))
        view.set_overlay("h264 640x360 25 fps | tcp | playing")
        await until(pilot, lambda: view.render_line(ROWS - 1).text.strip().startswith("h264"))
        await pilot.pause()
        assert len(images(writes)) == 1
        assert view.render_line(0).text == " " * COLS  # the picture's cells are plain black


async def test_resize_redraws_the_picture_at_the_new_size(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, seen = Clock(), list[Message]()
    app = graphics_app("kitty", clock)
    async with app.run_test(size=(COLS, ROWS), message_hook=seen.append) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        frame = gradient(BOX[1], BOX[0])
        view.show(frame)
        assert len(writes) == 1
        await pilot.resize_terminal(60, 20)
        await until(pilot, lambda: len(writes) >= 2)
        await pilot.pause()
        keys, pixels = kitty_pixels(writes[-1])
        assert np.array_equal(pixels, frame)  # the same frame until the player sends a new size
        assert (keys["c"], keys["r"]) == (str(COLS), str(ROWS - 1))
        assert "\x1b[5;11H" in writes[-1]  # centred in the 60 x 19 video cells
        sizes = [(m.width_px, m.height_px) for m in seen if isinstance(m, VideoView.SizeChanged)]
        assert sizes[-1] == (60 * CELL[0], 19 * CELL[1])
        assert view.frames_shown == 1  # a redraw is not a new frame


async def test_hidden_deletes_the_kitty_picture_and_shown_draws_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    app = graphics_app("kitty", clock)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        view.show(gradient(BOX[1], BOX[0]))
        view.display = False
        await until(pilot, lambda: kitty_delete(77) in writes)
        clock.now += 1
        view.show(gradient(BOX[1], BOX[0], 5))  # hidden: nothing is written
        await pilot.pause()
        assert len(images(writes)) == 1
        view.display = True
        await until(pilot, lambda: len(images(writes)) == 2)
        assert np.array_equal(kitty_pixels(images(writes)[1])[1], gradient(BOX[1], BOX[0], 5))
        await view.remove()
        assert writes[-1] == kitty_delete(77, free=True)


async def test_another_screen_on_top_deletes_the_picture_until_it_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    app = graphics_app("kitty", clock)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        view.show(gradient(BOX[1], BOX[0]))
        await app.push_screen(Screen())
        await until(pilot, lambda: kitty_delete(77) in writes)
        clock.now += 1
        view.show(gradient(BOX[1], BOX[0], 3))  # under another screen: not drawn
        await pilot.pause()
        assert len(images(writes)) == 1
        await app.pop_screen()
        await until(pilot, lambda: len(images(writes)) == 2)
        assert np.array_equal(kitty_pixels(images(writes)[1])[1], gradient(BOX[1], BOX[0], 3))
        assert view.frames_shown == 2


async def test_tmux_falls_back_to_half_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    app = GraphicsApp(
        mode="kitty", environ={"TERM": "tmux-256color", "TMUX": "/tmp/t,1,0"}, cell_size=CELL
    )
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        writes = capture(app, monkeypatch)
        assert view.mode_in_use == "halfblock"
        assert view.pixel_size == (COLS, 2 * (ROWS - 1))
        view.show(np.full((2 * (ROWS - 1), COLS, 3), (200, 40, 100), np.uint8))
        await until(pilot, lambda: view.frames_shown == 1)
        assert view.render_line(0).text == HALF_BLOCK * COLS
        assert images(writes) == []


async def test_sixel_without_a_cell_size_uses_half_blocks() -> None:
    app = GraphicsApp(mode="sixel", environ={"TERM": "foot"})  # headless: no pixel size known
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        await pilot.pause()
        assert app.query_one(VideoView).mode_in_use == "halfblock"


async def test_an_encoder_failure_falls_back_to_half_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(rgb: np.ndarray) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(video_module, "sixel_image", broken)
    clock, seen = Clock(), list[Message]()
    app = graphics_app("sixel", clock)
    async with app.run_test(size=(COLS, ROWS), message_hook=seen.append) as pilot:
        view = app.query_one(VideoView)
        await pilot.pause()
        view.show(np.full((BOX[1], BOX[0], 3), (200, 40, 100), np.uint8))  # no exception here
        assert view.mode_in_use == "halfblock"
        await until(pilot, lambda: view.frames_shown == 1)
        assert view.render_line(5).text[COLS // 2] == HALF_BLOCK
        await until(
            pilot,
            lambda: any(
                isinstance(m, VideoView.SizeChanged) and (m.width_px, m.height_px) == (COLS, 22)
                for m in seen
            ),
        )


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        VideoView(mode="ascii")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["kitty", "sixel"])
def test_encode_cost_times_every_frame_different_and_gives_ms_per_frame(
    monkeypatch: pytest.MonkeyPatch, mode: Literal["kitty", "sixel"]
) -> None:
    """What the bench reports: the time taken (clock walked here: 9 ms in all) over the
    frames, each one a new width x height picture encoded in ``mode`` (and only in it)."""
    encoded: dict[str, list[np.ndarray]] = {"kitty": [], "sixel": []}
    real_kitty, real_sixel = KittyEncoder.encode, graphics_module.sixel_image

    def kitty(self: KittyEncoder, rgb: np.ndarray, *, columns: int, rows: int) -> str:
        encoded["kitty"].append(rgb.copy())
        return real_kitty(self, rgb, columns=columns, rows=rows)

    def sixel(rgb: np.ndarray) -> str:
        encoded["sixel"].append(rgb.copy())
        return real_sixel(rgb)

    clock = iter([7.0, 7.009])
    monkeypatch.setattr(KittyEncoder, "encode", kitty)
    monkeypatch.setattr(graphics_module, "sixel_image", sixel)
    monkeypatch.setattr(graphics_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert encode_cost(mode, 64, 36, 3) == pytest.approx(3.0)
    frames, (other,) = encoded.pop(mode), encoded.values()
    assert other == []  # the other mode's encoder never ran
    assert [frame.shape for frame in frames] == [(36, 64, 3)] * 3
    assert all(not np.array_equal(a, b) for a, b in itertools.combinations(frames, 2))
