"""Picture protocols for the video pane: the kitty graphics protocol and sixel, as strings.

Pure functions over (h, w, 3) uint8 RGB arrays (numpy, base64, zlib; no Textual, no ``av``):
:class:`VideoView <softphone.tui.video.VideoView>` decides where and when, this module only says
how. Both return ``str`` (ASCII) because Textual's driver writes text.

kitty graphics protocol (https://sw.kovidgoyal.net/kitty/graphics-protocol/): one image is sent
as APC commands ``ESC _ G <key=value,...> ; <base64> ESC \\``:

- ``a=T`` transmit and display, ``f=24`` raw RGB with ``s=`` width and ``v=`` height in pixels,
  ``o=z`` when the pixels are zlib-deflated (RFC 1950) first;
- ``i=`` the image id and ``p=`` the placement id: sending the same pair again replaces the
  picture in place, so video needs no delete between frames;
- ``c=``/``r=`` the columns and rows the picture is stretched over, ``C=1`` keeps the cursor where
  it is, ``q=2`` suppresses every reply (Textual owns stdin and must not see them);
- the base64 payload is cut in chunks of at most 4096 bytes, each a multiple of 4 but the last;
  every chunk but the last carries ``m=1``, the last ``m=0``, and only the first carries the other
  keys ("Remote client" / "chunked transmission" in the spec).

sixel (DEC VT330/340 "Sixel Graphics", ``ESC P p1;p2;p3 q ... ESC \\``): each character ``?``..``~``
paints a column of six pixels (bit 0 on top) in the selected colour register; ``#n`` selects a
register, ``#n;2;r;g;b`` defines one in percent, ``!n<c>`` repeats ``c`` n times, ``$`` returns
to the start of the band for the next colour and ``-`` moves to the next band of six rows.
``p2=1`` leaves unpainted pixels alone (no background fill below the last band) and the raster
attributes ``"1;1;w;h`` give square pixels and the picture's size. The palette is fixed: the
6x6x6 colour cube plus 24 greys (240 registers, within the 256 that xterm, foot, mlterm and
contour offer), so quantising is a few vectorised numpy operations and needs no per-frame
palette search (a 64x64x64 look-up table). The encoder is vectorised end to end: numpy builds
every (band, colour) line of sixel characters at once, finds the runs and writes the output
bytes, run-length compression included, with no Python loop over pixels, runs or lines.
"""

from __future__ import annotations

import base64
import functools
import time
import zlib
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

Rgb: TypeAlias = npt.NDArray[np.uint8]

ESC: Final = "\x1b"
ST: Final = "\x1b\\"  # String Terminator, closes both APC (kitty) and DCS (sixel)
SYNC_START: Final = "\x1b[?2026h"  # synchronized output (BSU): the terminal holds the screen...
SYNC_END: Final = "\x1b[?2026l"  # ...until ESU, so a frame never shows half drawn
SAVE_CURSOR: Final = "\x1b7"  # DECSC
RESTORE_CURSOR: Final = "\x1b8"  # DECRC

KITTY_CHUNK: Final = 4096  # the spec's maximum base64 bytes per escape code
# zlib pays when the deflated pixels are at most this part of the raw ones (the terminal must
# inflate them again; camera noise usually defeats it, test cards and black bars do not).
KITTY_ZLIB_WORTH: Final = 0.8
KITTY_ZLIB_RETRY: Final = 30  # frames before trying again after zlib did not pay

SIXEL_CUBE_LEVELS: Final = 6
SIXEL_GREYS: Final = 24
SIXEL_PALETTE_SIZE: Final = SIXEL_CUBE_LEVELS**3 + SIXEL_GREYS  # 240
_CUBE_STEP: Final = 51  # 255 / 5: cube levels 0, 51, ..., 255 (0, 20, ..., 100 %)
_GREY_FIRST, _GREY_STEP = 8, 10  # greys 8, 18, ..., 238 (xterm's 256-colour ramp)


def _check_rgb(rgb: Rgb) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (h, w, 3) uint8 RGB, not {rgb.shape} {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("an empty picture cannot be encoded")


# --- kitty graphics protocol -----------------------------------------------------------------


def kitty_command(keys: dict[str, str | int], payload: str = "") -> str:
    """One APC graphics command: ``ESC _ G k=v,... [; payload] ESC \\``."""
    control = ",".join(f"{key}={value}" for key, value in keys.items())
    return f"{ESC}_G{control}{';' + payload if payload else ''}{ST}"


def kitty_image(
    rgb: Rgb,
    *,
    image_id: int,
    columns: int,
    rows: int,
    placement_id: int = 1,
    compress: bool = False,
    chunk_size: int = KITTY_CHUNK,
) -> str:
    """Transmit-and-display ``rgb`` (24-bit, ``f=24``) at the cursor over ``columns`` x ``rows``
    cells, replacing the picture of the same ``image_id``/``placement_id``; ``compress`` deflates
    the pixels first (``o=z``). The cursor does not move (``C=1``), the terminal does not reply
    (``q=2``)."""
    _check_rgb(rgb)
    if not 1 <= image_id < 1 << 32 or not 1 <= placement_id < 1 << 32:
        raise ValueError("kitty image and placement ids are 1 .. 2**32 - 1")
    if columns < 1 or rows < 1:
        raise ValueError(f"a placement needs at least one cell, not {columns}x{rows}")
    if chunk_size < 4 or chunk_size > KITTY_CHUNK or chunk_size % 4:
        raise ValueError(f"chunk_size must be a multiple of 4 up to {KITTY_CHUNK}")
    height, width = rgb.shape[:2]
    pixels = np.ascontiguousarray(rgb).tobytes()
    if compress:
        pixels = zlib.compress(pixels, 1)
    payload = base64.standard_b64encode(pixels).decode("ascii")
    keys: dict[str, str | int] = {"a": "T", "f": 24, "s": width, "v": height}
    if compress:
        keys["o"] = "z"
    keys.update({"i": image_id, "p": placement_id, "c": columns, "r": rows, "C": 1, "q": 2})
    chunks = [payload[at : at + chunk_size] for at in range(0, len(payload), chunk_size)]
    out: list[str] = []
    for number, chunk in enumerate(chunks):
        more = 1 if number < len(chunks) - 1 else 0
        first = keys if number == 0 else {"q": 2}
        out.append(kitty_command({**first, "m": more}, chunk))
    return "".join(out)


def kitty_delete(image_id: int, *, free: bool = False) -> str:
    """Delete every placement of ``image_id`` (``d=i``); ``free`` also drops its pixels (``d=I``)."""
    return kitty_command({"a": "d", "d": "I" if free else "i", "i": image_id, "q": 2})


class KittyEncoder:
    """:func:`kitty_image` with zlib only when it pays (``compress=None``, the default).

    Each frame is deflated (zlib level 1) and sent deflated if that saves at least 20%. When it
    does not (camera noise), the next ``KITTY_ZLIB_RETRY`` frames go raw without trying, then
    zlib is tried again. ``compress=True``/``False`` forces it.
    """

    def __init__(self, *, image_id: int, compress: bool | None = None) -> None:
        self.image_id = image_id
        self._compress = compress
        self._skip = 0
        self.frames_compressed = 0

    def encode(self, rgb: Rgb, *, columns: int, rows: int) -> str:
        compress = self._compress
        if compress is None:
            compress = self._worth_compressing(rgb)
        if compress:
            self.frames_compressed += 1
        return kitty_image(
            rgb, image_id=self.image_id, columns=columns, rows=rows, compress=compress
        )

    def _worth_compressing(self, rgb: Rgb) -> bool:
        if self._skip > 0:
            self._skip -= 1
            return False
        raw = np.ascontiguousarray(rgb).tobytes()
        if len(zlib.compress(raw, 1)) <= KITTY_ZLIB_WORTH * len(raw):
            return True
        self._skip = KITTY_ZLIB_RETRY
        return False


# --- sixel -----------------------------------------------------------------------------------


def sixel_palette() -> Rgb:
    """The fixed palette, (240, 3) uint8: register 36r+6g+b is the cube colour (r, g, b in 0..5,
    51 apart), registers 216..239 are the greys 8, 18, ..., 238."""
    levels = np.arange(SIXEL_CUBE_LEVELS, dtype=np.uint16) * _CUBE_STEP
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    cube = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=-1)
    greys = _GREY_FIRST + _GREY_STEP * np.arange(SIXEL_GREYS, dtype=np.uint16)
    return np.concatenate([cube, np.repeat(greys[:, None], 3, axis=1)]).astype(np.uint8)


def _nearest(rgb: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """Exact nearest register (squared error) of the nearer of the cube colour and the grey."""
    cube_levels = (rgb + _CUBE_STEP // 2) // _CUBE_STEP  # round(v / 51), 0..5
    cube_error = ((rgb - cube_levels * _CUBE_STEP) ** 2).sum(axis=-1)
    cube = cube_levels[..., 0] * 36 + cube_levels[..., 1] * 6 + cube_levels[..., 2]
    sum3 = rgb.sum(axis=-1)  # 3x the mean, kept in integers
    steps = (sum3 - 3 * _GREY_FIRST + 3 * _GREY_STEP // 2) // (3 * _GREY_STEP)
    steps = np.clip(steps, 0, SIXEL_GREYS - 1)
    grey_error = ((rgb - (_GREY_FIRST + _GREY_STEP * steps)[..., None]) ** 2).sum(axis=-1)
    grey = SIXEL_CUBE_LEVELS**3 + steps
    return np.where(grey_error < cube_error, grey, cube).astype(np.uint8)


@functools.cache
def _lookup_table() -> npt.NDArray[np.uint8]:
    """Register per 6-bit-per-channel colour (64**3 entries), from the centre of each bin: one
    table look-up per pixel instead of a dozen array operations (built once, 256 KiB)."""
    centres = (np.arange(64, dtype=np.int32) << 2) | 2
    r, g, b = np.meshgrid(centres, centres, centres, indexing="ij")
    return _nearest(np.stack([r.ravel(), g.ravel(), b.ravel()], axis=-1))


def sixel_quantise(rgb: Rgb) -> npt.NDArray[np.uint8]:
    """(h, w) palette registers: per pixel, the nearer (squared error) of the nearest cube colour
    and the nearest grey, looked up at 6 bits per channel (at most 2 more levels of error)."""
    channels = (rgb >> 2).astype(np.int32)
    key = (channels[..., 0] << 12) | (channels[..., 1] << 6) | channels[..., 2]
    registers: npt.NDArray[np.uint8] = _lookup_table()[key]
    return registers


def _percent(value: int) -> int:
    return (value * 100 + 127) // 255


def _digits(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    count = np.ones_like(values)
    for power in (10, 100, 1000, 10000, 100000):
        count += values >= power
    return count


def _put_numbers(
    out: npt.NDArray[np.uint8],
    at: npt.NDArray[np.int64],
    values: npt.NDArray[np.int64],
    digits: npt.NDArray[np.int64],
) -> None:
    """Write each value in decimal, ``digits[i]`` characters starting at ``out[at[i]]``."""
    for place in range(int(digits.max(initial=0))):
        has = digits > place
        out[(at + digits - 1 - place)[has]] = (values[has] // 10**place) % 10 + ord("0")


def _exclusive_cumsum(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    total = np.cumsum(values)
    return total - values


def _sixel_body(
    sixels: npt.NDArray[np.uint8],
    lengths: npt.NDArray[np.int64],
    registers: npt.NDArray[np.int64],
    bands: npt.NDArray[np.int64],
) -> bytes:
    """The data part of a sixel picture, with run-length compression, built by numpy alone.

    One line per (band, register) pair, in order: ``#register`` and its sixel characters
    (trailing blanks already cut by ``lengths``), ``$`` between two lines of the same band, ``-``
    where a new band starts. Each run of 4 or more equal characters becomes ``!n<c>`` ("!4x" is
    as long as "xxxx": from 4 on it is never longer).
    """
    lines, width = sixels.shape
    if lines == 0:
        return b""
    kept = np.arange(width)[None, :] < lengths[:, None]
    chars = sixels[kept]  # every line back to back
    line_end = np.cumsum(lengths)
    boundary = np.ones(len(chars), bool)
    np.not_equal(chars[1:], chars[:-1], out=boundary[1:])
    boundary[line_end[:-1]] = True  # a run never goes on into the next line
    run_start = np.flatnonzero(boundary)
    run_length = np.diff(np.append(run_start, len(chars)))
    run_char = chars[run_start] + np.uint8(63)
    run_line = np.searchsorted(line_end, run_start, side="right")
    long = run_length >= 4
    length_digits = _digits(run_length)
    run_size = np.where(long, 2 + length_digits, run_length)

    separator = np.zeros(lines, np.int64)
    separator[1:] = 1
    register_digits = _digits(registers)
    header_size = separator + 1 + register_digits
    runs_per_line = np.bincount(run_line, weights=run_size, minlength=lines).astype(np.int64)
    line_start = _exclusive_cumsum(header_size + runs_per_line)
    run_at = (
        line_start[run_line]
        + header_size[run_line]
        + (_exclusive_cumsum(run_size) - _exclusive_cumsum(runs_per_line)[run_line])
    )
    out = np.empty(int(line_start[-1] + header_size[-1] + runs_per_line[-1]), np.uint8)

    new_band = np.zeros(lines, bool)
    new_band[1:] = bands[1:] != bands[:-1]
    out[line_start[1:]] = np.where(new_band[1:], ord("-"), ord("$"))
    out[line_start + separator] = ord("#")
    _put_numbers(out, line_start + separator + 1, registers, register_digits)

    short_length = run_length[~long]
    short_at = np.repeat(run_at[~long] - _exclusive_cumsum(short_length), short_length)
    out[short_at + np.arange(len(short_at))] = np.repeat(run_char[~long], short_length)
    long_at, long_length, long_digits = run_at[long], run_length[long], length_digits[long]
    out[long_at] = ord("!")
    _put_numbers(out, long_at + 1, long_length, long_digits)
    out[long_at + 1 + long_digits] = run_char[long]
    return out.tobytes()


def sixel_image(rgb: Rgb) -> str:
    """A complete sixel picture (DCS ... ST) of ``rgb`` in the fixed palette, drawn at the cursor.

    Only the registers used are defined. Per band of six rows, one line of sixel characters per
    colour present, trailing blank columns dropped, ``$`` between colours and ``-`` between bands;
    runs of 4 or more equal characters become ``!n<c>``.
    """
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    bands = -(-height // 6)
    none = SIXEL_PALETTE_SIZE  # padding below the last row: no colour at all
    index = np.full((bands * 6, width), none, np.int32)
    index[:height] = sixel_quantise(rgb)
    # One key per (band, register), numbered in order (band by band, registers ascending) by
    # counting rather than sorting: the keys are small integers.
    band_of_row = (np.arange(bands * 6, dtype=np.int32) // 6)[:, None]
    key_of_pixel = band_of_row * (none + 1) + index
    present = np.bincount(key_of_pixel.ravel(), minlength=bands * (none + 1)) > 0
    keys = np.flatnonzero(present)
    pair_of_pixel = (np.cumsum(present, dtype=np.int32) - 1)[key_of_pixel]
    sixels = np.zeros((len(keys), width), np.uint8)
    columns = np.arange(width)[None, :]
    for row in range(6):  # within one row of a band each (pair, column) appears once: no collisions
        sixels[pair_of_pixel[row::6], columns] |= np.uint8(1 << row)
    band_of_pair, register_of_pair = np.divmod(keys, none + 1)
    painted = register_of_pair != none
    sixels = sixels[painted]
    band_of_pair, register_of_pair = band_of_pair[painted], register_of_pair[painted]
    # Trailing blank columns are not sent: each line ends at its last painted column.
    lengths = width - np.argmax(sixels[:, ::-1] != 0, axis=1)

    used = np.unique(register_of_pair)
    palette = sixel_palette()
    out = [f'{ESC}P0;1;0q"1;1;{width};{height}']
    out.extend(
        f"#{n};2;{_percent(r)};{_percent(g)};{_percent(b)}"
        for n, (r, g, b) in zip(used.tolist(), palette[used].tolist(), strict=True)
    )
    out.append(_sixel_body(sixels, lengths, register_of_pair, band_of_pair).decode("ascii"))
    out.append(ST)
    return "".join(out)


# --- framing ---------------------------------------------------------------------------------


def at_cell(x: int, y: int, sequence: str) -> str:
    """``sequence`` drawn with the cursor at screen cell (x, y) (0-based), the cursor (and its
    attributes) saved before and restored after (DECSC/DECRC)."""
    return f"{SAVE_CURSOR}{ESC}[{y + 1};{x + 1}H{sequence}{RESTORE_CURSOR}"


def synchronized(sequence: str) -> str:
    """Wrapped in synchronized output (mode 2026): shown all at once, never half drawn."""
    return f"{SYNC_START}{sequence}{SYNC_END}"


def encode_cost(
    mode: Literal["kitty", "sixel"], width: int, height: int, frames: int, *, seed: int = 0
) -> float:
    """Milliseconds per frame to encode camera-like ``width`` x ``height`` frames (a moving
    gradient with sensor noise, every frame different) in ``mode``; kitty with zlib decided per
    frame as in the widget. Excludes the terminal's own work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sources: list[Rgb] = []
    for i in range(frames):
        r = 128 + 100 * np.sin((x + 3 * i) / 37)
        g = 128 + 100 * np.sin((y + 2 * i) / 23)
        b = 128 + 100 * np.cos((x + y + i) / 51)
        noisy = np.stack([r, g, b], axis=-1) + rng.normal(0, 3, (height, width, 3))
        sources.append(np.clip(noisy, 0, 255).astype(np.uint8))
    kitty = KittyEncoder(image_id=1)
    start = time.perf_counter()
    for frame in sources:
        if mode == "kitty":
            kitty.encode(frame, columns=max(1, width // 10), rows=max(1, height // 20))
        else:
            sixel_image(frame)
    return (time.perf_counter() - start) * 1000.0 / max(1, frames)
