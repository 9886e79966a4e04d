"""The RTSP benchmarks' figures: statistics over runs, and the two reports with their targets.

:class:`FirstFrameReport` (``softphone bench rtsp-first-frame``) compares softphone's time to
the first picture with FFmpeg's in the same run; :class:`RenderReport` (``softphone bench
rtsp-render``) holds the viewer's frames and CPU, and the concurrent call's xruns. Each prints a
table (``table()``) or one JSON object (``to_json()``) and says whether its targets were met.
Nothing here starts a process (``rtsp_runs.py`` does).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# The stream every run plays: the lab server's /h264 mount (H.264 + AAC).
MOUNT: Final = "/h264"
WIDTH: Final = 640
HEIGHT: Final = 360
FPS: Final = 25
GOP: Final = 25
PANE: Final = (100, 30)  # tmux cells of the viewer's terminal

# softphone / FFmpeg (default probing): the player must show its first picture in at most half
# FFmpeg's time, and no later than FFmpeg tuned for low delay.
TARGET_VS_DEFAULT: Final = 0.5
TARGET_VS_LOW_DELAY: Final = 1.0  # softphone / FFmpeg (low-delay flags)
TARGET_FRAME_RATIO: Final = 1.0
# The played time is known to about a frame (first picture vs --duration), and the pictures
# decoded in the last refresh before exit are never drawn: 1.0 within this much counts as met.
FRAME_RATIO_TOLERANCE: Final = 0.02
TARGET_CPU_PER_S: Final = 0.6


# --------------------------------------------------------------------------- statistics


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics.

    Hyndman & Fan's type 7 (numpy's default): position ``q * (n - 1)`` in the sorted values.
    """
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within 0..1, not {q}")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """Summary of one peer's times (ms); ``failed`` runs showed no picture in time."""

    runs: int
    failed: int
    median: float | None
    p90: float | None
    low: float | None
    high: float | None

    @staticmethod
    def of(samples: Sequence[float | None]) -> Spread:
        ok = [s for s in samples if s is not None]
        if not ok:
            return Spread(
                runs=len(samples), failed=len(samples), median=None, p90=None, low=None, high=None
            )
        return Spread(
            runs=len(samples),
            failed=len(samples) - len(ok),
            median=quantile(ok, 0.5),
            p90=quantile(ok, 0.9),
            low=min(ok),
            high=max(ok),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failed": self.failed,
            "median_ms": _round(self.median),
            "p90_ms": _round(self.p90),
            "min_ms": _round(self.low),
            "max_ms": _round(self.high),
        }


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """``ours / theirs``, or None when either is missing (or theirs is zero)."""
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def _when(t: float) -> str:
    if not math.isfinite(t):
        return "after exit"
    return "before" if t < 0 else f"{t:.1f}"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def first_frame_ms(line: str) -> float | None:
    """``ms`` of a ``{"event": "first_frame", ...}`` line of ``softphone play --json``, else None."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") != "first_frame":
        return None
    ms = event.get("ms")
    return float(ms) if isinstance(ms, int | float) else None


def count_jack_xruns(log_text: str) -> int:
    """How many xruns jackd reported (one ``JackEngine::XRun`` line each) in its log text."""
    return log_text.count("JackEngine::XRun")


def cpu_rate(samples: Sequence[tuple[float, float]], since_s: float) -> float | None:
    """CPU seconds per wall second between the first sample at or after ``since_s`` and the last.

    ``samples`` are ``(seconds since spawn, utime+stime seconds)`` in time order; None when fewer
    than two samples lie in that window or they span no time.
    """
    window = [s for s in samples if s[0] >= since_s]
    if len(window) < 2 or window[-1][0] <= window[0][0]:
        return None
    return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerTimes:
    """One peer of the first-frame benchmark: a name, its command, one time per run."""

    name: str
    argv: tuple[str, ...]
    clock: str
    times_ms: tuple[float | None, ...]
    last_output: str = ""  # the end of its stderr, shown when runs failed

    @property
    def spread(self) -> Spread:
        return Spread.of(self.times_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstFrameReport:
    command: str
    transport: str
    holder: bool
    pycache: bool
    url: str
    softphone: PeerTimes  # first_frame.ms (from main())
    softphone_wall: PeerTimes  # spawn -> first_frame line read
    ffmpeg: PeerTimes
    ffmpeg_low_delay: PeerTimes

    def ratios(self, ours: PeerTimes) -> dict[str, float | None]:
        a, d, low = ours.spread, self.ffmpeg.spread, self.ffmpeg_low_delay.spread
        return {
            "vs_ffmpeg_median": ratio(a.median, d.median),
            "vs_ffmpeg_p90": ratio(a.p90, d.p90),
            "vs_low_delay_median": ratio(a.median, low.median),
            "vs_low_delay_p90": ratio(a.p90, low.p90),
        }

    def met(self, ours: PeerTimes | None = None) -> bool:
        r = self.ratios(ours or self.softphone)
        vs_default, vs_low = r["vs_ffmpeg_median"], r["vs_low_delay_median"]
        return (
            vs_default is not None
            and vs_default <= TARGET_VS_DEFAULT
            and vs_low is not None
            and vs_low <= TARGET_VS_LOW_DELAY
            and self.softphone.spread.failed == 0
        )

    def to_json(self) -> dict[str, Any]:
        peers = (self.softphone, self.softphone_wall, self.ffmpeg, self.ffmpeg_low_delay)
        return {
            "benchmark": "rtsp-first-frame",
            "command": self.command,
            "transport": self.transport,
            "joined_running_stream": self.holder,
            "bytecode_cache": self.pycache,
            "url": self.url,
            "peers": {
                p.name: {
                    "argv": list(p.argv),
                    "clock": p.clock,
                    "times_ms": list(p.times_ms),
                    **p.spread.to_json(),
                }
                for p in peers
            },
            "ratios": {
                self.softphone.name: _rounded(self.ratios(self.softphone)),
                self.softphone_wall.name: _rounded(self.ratios(self.softphone_wall)),
            },
            "targets": {"vs_ffmpeg": TARGET_VS_DEFAULT, "vs_low_delay": TARGET_VS_LOW_DELAY},
            "met": self.met(),
            "met_by_wall_clock": self.met(self.softphone_wall),
        }

    def table(self) -> str:
        join = (
            "joined a running stream (a background client holds the shared mount)"
            if self.holder
            else "cold: the server starts the mount's pipeline for each client"
        )
        lines = [
            f"command: {self.command}",
            f"stream: {self.url} (H.264 {WIDTH}x{HEIGHT} {FPS} fps, key frame every {GOP} frames "
            f"+ AAC), RTP over {self.transport.upper()}; {join}",
            "each run waits a random 0-1 s (one GOP) first; the peers' order rotates per run; one "
            "uncounted warm-up round",
            "softphone's bytecode: "
            + (
                "cached in the workdir, as after pip install"
                if self.pycache
                else "compiled from source at every start"
            ),
            "",
            f"{'peer':24s} {'runs':>4s} {'fail':>4s} {'median':>7s} {'p90':>7s} {'min':>7s} "
            f"{'max':>7s}  clock",
        ]
        for p in (self.softphone, self.softphone_wall, self.ffmpeg, self.ffmpeg_low_delay):
            s = p.spread
            lines.append(
                f"{p.name:24s} {s.runs:4d} {s.failed:4d} {_fmt(s.median):>7s} "
                f"{_fmt(s.p90):>7s} {_fmt(s.low):>7s} {_fmt(s.high):>7s}  {p.clock}"
            )
        for p in (self.softphone, self.ffmpeg, self.ffmpeg_low_delay):
            if p.spread.failed:
                lines.append(
                    f"  {p.name}: {p.spread.failed} run(s) without a picture; its output ended: "
                    f"{p.last_output or '(nothing)'}"
                )
        lines.append("")
        lines.append(f"{'ratio (median / p90)':24s} {'vs ffmpeg':>15s} {'vs low-delay':>15s}")
        for p in (self.softphone, self.softphone_wall):
            r = self.ratios(p)
            lines.append(
                f"{p.name:24s} {_fmt(r['vs_ffmpeg_median'], '.2f'):>7s} / "
                f"{_fmt(r['vs_ffmpeg_p90'], '.2f'):<5s} {_fmt(r['vs_low_delay_median'], '.2f'):>7s} / "
                f"{_fmt(r['vs_low_delay_p90'], '.2f'):<5s}"
            )
        lines.append(
            f"{'target (median)':24s} {'<= ' + str(TARGET_VS_DEFAULT):>15s} "
            f"{'<= ' + str(TARGET_VS_LOW_DELAY):>15s}   "
            f"{'MET' if self.met() else 'MISSED'} (first_frame.ms); "
            f"{'MET' if self.met(self.softphone_wall) else 'MISSED'} (spawn wall clock)"
        )
        lines.append("")
        for p in (self.softphone, self.ffmpeg, self.ffmpeg_low_delay):
            lines.append(f"{p.name}: {shlex.join(p.argv)}")
        return "\n".join(lines)


def _rounded(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: _round(v, 3) for k, v in values.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderReport:
    command: str
    viewer_argv: tuple[str, ...]
    duration_s: float
    stats: Mapping[str, Any]
    cpu_samples: tuple[tuple[float, float], ...]
    wall_s: float
    showed_video: bool
    call: Mapping[str, Any] | None = None
    call_argv: tuple[str, ...] = field(default=())
    # JACK's own xrun lines (jackd.log), by when we saw them: seconds since the viewer's spawn
    # (negative: before it, while the call ran alone).
    jack_xruns_at: tuple[float, ...] = field(default=())

    @property
    def first_frame_s(self) -> float | None:
        ms = self.stats.get("first_frame_ms")
        return float(ms) / 1000 if isinstance(ms, int | float) else None

    @property
    def played_s(self) -> float:
        """Seconds the stream played: ``--duration`` counts from main(), the picture came later."""
        return max(0.0, self.duration_s - (self.first_frame_s or self.duration_s))

    def _per_source_frame(self, key: str) -> float | None:
        source = FPS * self.played_s
        count = self.stats.get(key)
        return count / source if isinstance(count, int) and source > 0 else None

    @property
    def shown_ratio(self) -> float | None:
        return self._per_source_frame("frames_shown")

    @property
    def decoded_ratio(self) -> float | None:
        return self._per_source_frame("video_frames")

    @property
    def drawn_per_decoded(self) -> float | None:
        shown, decoded = self.stats.get("frames_shown"), self.stats.get("video_frames")
        if isinstance(shown, int) and isinstance(decoded, int) and decoded > 0:
            return shown / decoded
        return None

    @property
    def cpu_total_s(self) -> float | None:
        return self.cpu_samples[-1][1] if self.cpu_samples else None

    @property
    def cpu_per_stream_s(self) -> float | None:
        """All the process's CPU (start-up included) per second of stream played."""
        total = self.cpu_total_s
        return total / self.played_s if total is not None and self.played_s > 0 else None

    @property
    def cpu_steady(self) -> float | None:
        """CPU per wall second from the first picture (+0.5 s) to the last sample."""
        first = self.first_frame_s
        return None if first is None else cpu_rate(self.cpu_samples, first + 0.5)

    @property
    def xruns(self) -> int | None:
        value = self.call.get("xruns") if self.call else None
        return value if isinstance(value, int) else None

    def met(self) -> bool:
        shown, cpu = self.shown_ratio, self.cpu_per_stream_s
        ok = (
            shown is not None
            and shown >= TARGET_FRAME_RATIO - FRAME_RATIO_TOLERANCE
            and cpu is not None
            and cpu <= TARGET_CPU_PER_S
        )
        if self.call is not None:
            ok = ok and self.xruns == 0
        return ok

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "rtsp-render",
            "command": self.command,
            "viewer_argv": list(self.viewer_argv),
            "pane_cells": list(PANE),
            "duration_s": self.duration_s,
            "wall_s": round(self.wall_s, 2),
            "played_s": round(self.played_s, 2),
            "stats": dict(self.stats),
            "shown_per_source_frame": _round(self.shown_ratio, 4),
            "decoded_per_source_frame": _round(self.decoded_ratio, 4),
            "drawn_per_decoded_frame": _round(self.drawn_per_decoded, 4),
            "cpu_total_s": _round(self.cpu_total_s, 2),
            "cpu_s_per_stream_s": _round(self.cpu_per_stream_s, 3),
            "cpu_s_per_s_steady": _round(self.cpu_steady, 3),
            "showed_video": self.showed_video,
            "call": dict(self.call) if self.call is not None else None,
            "call_argv": list(self.call_argv),
            "jack_xruns_at_s": [
                round(t, 1) if math.isfinite(t) else None for t in self.jack_xruns_at
            ],  # None: after the viewer exited
            "targets": {
                "shown_per_source_frame": TARGET_FRAME_RATIO,
                "cpu_s_per_stream_s": TARGET_CPU_PER_S,
                "xruns": 0,
            },
            "met": self.met(),
        }

    def table(self) -> str:
        s = self.stats
        lines = [
            f"command: {self.command}",
            f"viewer: {shlex.join(self.viewer_argv)}",
            f"  in tmux {PANE[0]}x{PANE[1]} cells, COLORTERM=truecolor; video mode "
            f"{s.get('video_mode', '?')}; picture on screen mid-run: "
            f"{'yes' if self.showed_video else 'NO'}",
            f"  first picture {_fmt(s.get('first_frame_ms'))} ms after main(); stream played "
            f"{self.played_s:.2f} s = {FPS * self.played_s:.0f} source frames",
            f"  decoded {s.get('video_frames')}, drawn {s.get('frames_shown')}, replaced before "
            f"drawing {s.get('frames_dropped')}, rows built {s.get('rows_built')}, "
            f"lost packets {s.get('lost_packets')}",
            f"  drawn / source frames   {_fmt(self.shown_ratio, '.3f')}   (target "
            f"{TARGET_FRAME_RATIO:.1f} within {FRAME_RATIO_TOLERANCE}; decoded / source "
            f"{_fmt(self.decoded_ratio, '.3f')}; drawn / decoded {_fmt(self.drawn_per_decoded, '.3f')})",
            f"  CPU s per stream s      {_fmt(self.cpu_per_stream_s, '.3f')}   (target <= "
            f"{TARGET_CPU_PER_S}; {_fmt(self.cpu_total_s, '.2f')} CPU s over the process's "
            f"{self.wall_s:.1f} s, start-up included; steady while playing "
            f"{_fmt(self.cpu_steady, '.3f')})",
        ]
        if self.call is None:
            lines.append("call: none (--no-call)")
        else:
            c = self.call
            lines.append(
                f"call at the same time: {c.get('seconds')} s on JACK dummy, xruns {c.get('xruns')} "
                f"(output underflows {c.get('output_underflows')}, ring underruns "
                f"{c.get('ring_underruns')}, zeros played {c.get('missing_samples')} samples), "
                f"pace {c.get('frames_played_per_elapsed')}"
            )
            if self.jack_xruns_at:
                seen = ", ".join(_when(t) for t in self.jack_xruns_at)
                lines.append(
                    f"  jackd logged {len(self.jack_xruns_at)} xrun(s) (each one counts as "
                    f"an input overflow and an output underflow), seen at {seen} s "
                    "after the viewer's spawn (to within 0.2 s)"
                )
            lines.append(f"  {shlex.join(self.call_argv)}")
        lines.append(f"result: {'MET' if self.met() else 'MISSED'}")
        return "\n".join(lines)
