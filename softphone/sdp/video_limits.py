"""What the peer can receive, from the negotiated video codec's parameters, and the picture size,
frame rate and bitrate we send within it (sans-IO, pure).

- H.264 (RFC 6184 §8.1): the level of ``profile-level-id`` (absent: Baseline level 1.0) gives
  ITU-T H.264 Table A-1's MaxFS (macroblocks a picture), MaxMBPS (macroblocks a second) and
  MaxBR (kbit/s, times cpbBrVclFactor of Table A-2: 1000 for Baseline, Constrained Baseline,
  Main and Extended). ``max-fs``, ``max-mbps`` and ``max-br`` raise them: RFC 6184 §8.1 says
  each MUST be at least the level's value, so a smaller one is a peer's mistake and the
  level's value stands. Which level counts (RFC 6184 §8.2.2): the peer's own when both sides
  allow level asymmetry, else the answer's, which is the lower of the two (``level_cap``).
- VP8 (RFC 7741 §6.1) and VP9 (RFC 9628 §6): ``max-fs`` (macroblocks of 16x16 a picture) and
  ``max-fr`` (pictures a second) are the limits themselves; without them, none.

A picture of ``width`` x ``height`` pixels is ``ceil(width / 16) * ceil(height / 16)``
macroblocks (the encoder pads the last row and column), and neither side may be more than
``sqrt(8 * MaxFS)`` macroblocks (H.264 A.3.1 items f and g / A.3.2; RFC 6184 §8.1 and RFC 7741
§6.1 for max-fs): a very long, thin picture does not fit even when its area does.

:func:`send_format` scales our pictures down to the largest size within those limits that keeps
the aspect ratio (even sides, for 4:2:0), caps the frame rate at MaxMBPS over the picture's
macroblocks (and max-fr), the bitrate at the maximum, and names the H.264 level for the
encoder to write in its sequence parameter set (x264 picks one from the size, frame rate and
bitrate otherwise: level 1b for 176x132 at 15 fps and 64 kbit/s, above a level-1 peer's). Fmtp values that are not whole
numbers are a peer's junk: they are ignored (a peer's offer never raises here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from softphone.sdp.errors import SdpError
from softphone.sdp.h264_profile import ProfileLevelId

MACROBLOCK: Final = 16  # pixels a side (H.264 §3.75; VP8 and VP9's max-fs count the same)


@dataclass(frozen=True, slots=True)
class LevelLimits:
    """One row of ITU-T H.264 Table A-1 (the columns a sender needs)."""

    max_mbps: int  # MaxMBPS: macroblocks a second
    max_fs: int  # MaxFS: macroblocks a picture
    max_br_kbps: int  # MaxBR: in units of cpbBrVclFactor bits/s (Table A-2)


LEVEL_1B: Final = "1b"
# ITU-T H.264 (08/2021) Table A-1, by level_idc; level 1b has no level_idc of its own (it is 9,
# or 11 with constraint_set3_flag in the Baseline/Main family: sdp/h264_profile.py).
LEVELS: Final[Mapping[int | str, LevelLimits]] = {
    10: LevelLimits(1_485, 99, 64),
    LEVEL_1B: LevelLimits(1_485, 99, 128),
    11: LevelLimits(3_000, 396, 192),
    12: LevelLimits(6_000, 396, 384),
    13: LevelLimits(11_880, 396, 768),
    20: LevelLimits(11_880, 396, 2_000),
    21: LevelLimits(19_800, 792, 4_000),
    22: LevelLimits(20_250, 1_620, 4_000),
    30: LevelLimits(40_500, 1_620, 10_000),
    31: LevelLimits(108_000, 3_600, 14_000),
    32: LevelLimits(216_000, 5_120, 20_000),
    40: LevelLimits(245_760, 8_192, 20_000),
    41: LevelLimits(245_760, 8_192, 50_000),
    42: LevelLimits(522_240, 8_704, 50_000),
    50: LevelLimits(589_824, 22_080, 135_000),
    51: LevelLimits(983_040, 36_864, 240_000),
    52: LevelLimits(2_073_600, 36_864, 240_000),
    60: LevelLimits(4_177_920, 139_264, 240_000),
    61: LevelLimits(8_355_840, 139_264, 480_000),
    62: LevelLimits(16_711_680, 139_264, 800_000),
}
# ITU-T H.264 Table A-2: cpbBrVclFactor by profile_idc (1000 for the rest: Baseline, Main,
# Extended). RFC 6184 §8.1 counts max-br in the same units.
_VCL_FACTOR: Final[Mapping[int, int]] = {
    0x64: 1_250,  # High
    0x6E: 3_000,  # High 10
    0x7A: 4_000,  # High 4:2:2
    0xF4: 4_000,  # High 4:4:4 Predictive
    0x2C: 4_000,  # CAVLC 4:4:4 Intra
}


def _level_key(profile_level_id: ProfileLevelId) -> int | str:
    """The level's key in LEVELS; a level_idc the table does not have counts as the highest
    level below it (level 1 below all), so that we never send above what the peer named."""
    if profile_level_id.is_level_1b:
        return LEVEL_1B
    idc = profile_level_id.level_idc
    return max((k for k in LEVELS if isinstance(k, int) and k <= idc), default=10)


def level_limits(profile_level_id: ProfileLevelId) -> LevelLimits:
    """Table A-1's row for the level (see ``_level_key`` for levels it lacks)."""
    return LEVELS[_level_key(profile_level_id)]


def level_name(profile_level_id: ProfileLevelId) -> str:
    """The level as H.264 Annex A names it: "1", "1b", "1.1", "3.1", "4" ..."""
    key = _level_key(profile_level_id)
    if isinstance(key, str):
        return key
    major, minor = divmod(key, 10)
    return f"{major}.{minor}" if minor else str(major)


@dataclass(frozen=True, slots=True)
class SendLimits:
    """What the peer can receive; None: no limit of that kind."""

    max_fs: int | None = None  # macroblocks a picture
    max_mbps: int | None = None  # macroblocks a second
    max_fr: float | None = None  # pictures a second
    max_bitrate_bps: int | None = None
    h264_level: str | None = None  # the level as H.264 writes it ("1", "1b", "3.1"): for the SPS

    @property
    def max_side_mbs(self) -> int | None:
        """The longest side in macroblocks: sqrt(8 * max-fs) (module docstring)."""
        return math.isqrt(8 * self.max_fs) if self.max_fs is not None else None


NO_LIMITS: Final = SendLimits()


def _whole(params: Mapping[str, str], key: str) -> int | None:
    text = params.get(key, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _raise(level_value: int, param: int | None) -> int:
    return max(level_value, param) if param is not None else level_value


def h264_send_limits(
    params: Mapping[str, str], *, level_cap: ProfileLevelId | None = None
) -> SendLimits:
    """The limits of an H.264 receiver with these fmtp ``params`` (lower-case keys); its level
    lowered to ``level_cap``'s when that is lower (RFC 6184 §8.2.2, module docstring). A
    ``profile-level-id`` that is not 3 bytes of hex counts as absent: level 1.0."""
    try:
        plid = ProfileLevelId.parse(params.get("profile-level-id"))
    except SdpError:
        plid = ProfileLevelId.parse(None)
    if level_cap is not None and level_cap.level < plid.level:
        plid = plid.with_level_of(level_cap)
    row = level_limits(plid)
    factor = _VCL_FACTOR.get(plid.profile_idc, 1_000)
    return SendLimits(
        max_fs=_raise(row.max_fs, _whole(params, "max-fs")),
        max_mbps=_raise(row.max_mbps, _whole(params, "max-mbps")),
        max_bitrate_bps=_raise(row.max_br_kbps, _whole(params, "max-br")) * factor,
        h264_level=level_name(plid),
    )


def vpx_send_limits(params: Mapping[str, str]) -> SendLimits:
    """VP8 (RFC 7741 §6.1) and VP9 (RFC 9628 §6): ``max-fs`` and ``max-fr`` as given."""
    fr = _whole(params, "max-fr")
    return SendLimits(max_fs=_whole(params, "max-fs"), max_fr=float(fr) if fr else None)


def send_limits(
    encoding: str, params: Mapping[str, str], *, level_cap: ProfileLevelId | None = None
) -> SendLimits:
    """The peer's receive limits for the codec ``encoding`` (H264, VP8, VP9; others: none)."""
    name = encoding.upper()
    lowered = {k.strip().lower(): v.strip() for k, v in params.items()}
    if name == "H264":
        return h264_send_limits(lowered, level_cap=level_cap)
    if name in ("VP8", "VP9"):
        return vpx_send_limits(lowered)
    return NO_LIMITS


def macroblocks(side: int) -> int:
    """Macroblocks along a side of ``side`` pixels, the last one padded."""
    return -(-side // MACROBLOCK)


def frame_macroblocks(width: int, height: int) -> int:
    return macroblocks(width) * macroblocks(height)


def fits(width: int, height: int, limits: SendLimits) -> bool:
    """Whether a ``width`` x ``height`` picture is within ``limits``' size (module docstring)."""
    if limits.max_fs is None:
        return True
    side = limits.max_side_mbs
    assert side is not None
    return (
        frame_macroblocks(width, height) <= limits.max_fs
        and macroblocks(width) <= side
        and macroblocks(height) <= side
    )


def fit_picture(width: int, height: int, limits: SendLimits) -> tuple[int, int]:
    """The largest even ``w`` x ``h`` within ``limits`` with ``width``:``height``'s aspect (the
    height rounded to even from the width); the size itself when it fits. Raises SdpError for a
    size that is not even and positive (our own misuse: the settings check it)."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise SdpError(f"a picture size is even and positive, not {width}x{height}")
    if fits(width, height, limits):
        return width, height
    for w in range(width - 2, 1, -2):  # bounded: width / 2 steps of a few operations
        h = max(2, 2 * round(w * height / width / 2))
        if fits(w, h, limits):
            return w, h
    return 2, 2  # unreachable for a max-fs of 1 macroblock or more: 2x2 is one macroblock


@dataclass(frozen=True, slots=True)
class SendFormat:
    """What we send: picture size, frame rate and the bitrate bounds for the rate controller."""

    width: int
    height: int
    fps: int
    min_bitrate_bps: int
    start_bitrate_bps: int
    max_bitrate_bps: int
    h264_level: str | None = None  # the level the H.264 encoder writes in its SPS


def send_format(
    limits: SendLimits,
    *,
    width: int,
    height: int,
    fps: int,
    min_bitrate_bps: int,
    start_bitrate_bps: int,
    max_bitrate_bps: int,
) -> SendFormat:
    """Our configured format brought within ``limits``: the picture by :func:`fit_picture`, the
    frame rate at most ``max_mbps`` over the picture's macroblocks and ``max_fr`` (whole
    pictures a second, at least 1), and the three bitrates at most the peer's maximum (the
    minimum and start follow it down, so that the bounds stay a range)."""
    w, h = fit_picture(width, height, limits)
    rate = float(max(1, fps))
    if limits.max_mbps is not None:
        rate = min(rate, limits.max_mbps / frame_macroblocks(w, h))
    if limits.max_fr is not None:
        rate = min(rate, limits.max_fr)
    top = max_bitrate_bps
    if limits.max_bitrate_bps is not None:
        top = min(top, limits.max_bitrate_bps)
    return SendFormat(
        width=w,
        height=h,
        fps=max(1, math.floor(rate)),
        min_bitrate_bps=min(min_bitrate_bps, top),
        start_bitrate_bps=min(start_bitrate_bps, top),
        max_bitrate_bps=top,
        h264_level=limits.h264_level,
    )


__all__ = [
    "LEVELS",
    "NO_LIMITS",
    "LevelLimits",
    "SendFormat",
    "SendLimits",
    "fit_picture",
    "fits",
    "frame_macroblocks",
    "h264_send_limits",
    "level_limits",
    "level_name",
    "send_format",
    "send_limits",
    "vpx_send_limits",
]
