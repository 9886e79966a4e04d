"""``softphone bench rtsp-first-frame|rtsp-render``: the RTSP player benchmarks of issue 4 §6.

    softphone bench rtsp-first-frame [--runs 10] [--transport tcp|udp] [--seed 1] [--cold]
                                     [--workdir DIR] [--json]
    softphone bench rtsp-render      [--seconds 20] [--no-call] [--speech REF.wav]
                                     [--workdir DIR] [--json]

Both start the interop lab's GStreamer RTSP server (``tests/interop/rtsp_server.py`` under the
system Python, 640x360, 25 fps, a key frame every 25 frames) on 127.0.0.1 and play its
``/h264`` mount (H.264 + AAC).

- ``rtsp-first-frame``: time to the first picture, softphone against FFmpeg in the same run. Per
  run, in a rotating order, after a random pause of 0-1 s (one GOP, so that the join phase is
  spread evenly): ``python -m softphone play URL --headless --json --no-audio --duration 5
  --transport T`` (its ``first_frame.ms`` counts from ``main()``, i.e. after the interpreter
  and ``softphone/__main__``'s own imports; the wall clock from spawn to that JSON line on our
  pipe is reported next to it), then FFmpeg ``-frames:v 1`` with default probing and with
  ``-fflags nobuffer -flags low_delay -probesize 32 -analyzeduration 0`` (wall clock from spawn
  to exit). By default a background client (``ffmpeg ... -c copy -f null -``) holds the shared
  mount so that every measured client joins a running stream, as with a camera; ``--cold`` drops
  it. softphone shows only decodable pictures (it waits for a key frame); FFmpeg's first frame
  may be a partly decoded one, so the ratio is the stricter for us.
- ``rtsp-render``: the viewer (``softphone play URL --stats-out F``) in a detached tmux session of
  100x30 cells (``COLORTERM=truecolor``) for ``seconds``: frames drawn per source frame
  (``frames_shown / (25 x seconds played)``), and CPU seconds per stream second of that process
  (utime+stime from ``/proc/PID/stat``, sampled every 0.2 s until it exits). Unless ``--no-call``,
  ``softphone bench device`` (a call on JACK's dummy driver to baresip) runs at the same time,
  for longer than the viewer, and its xruns are reported beside the render figures.

Every process is started by us in its own session and stopped by its pid (the tmux server
through its private socket). Exit status: 0 targets met, 1 a target missed, 2 a peer missing or
failed, or a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TextIO

COMMANDS: Final = ("rtsp-first-frame", "rtsp-render")
EXIT_OK: Final = 0
EXIT_TARGET_MISSED: Final = 1
EXIT_ERROR: Final = 2

HOST: Final = "127.0.0.1"
REPO: Final = Path(__file__).resolve().parents[2]
SERVER_SCRIPT: Final = REPO / "tests" / "interop" / "rtsp_server.py"
SYSTEM_PYTHON: Final = "/usr/bin/python3"
MOUNT: Final = "/h264"
WIDTH: Final = 640
HEIGHT: Final = 360
FPS: Final = 25
GOP: Final = 25
SERVER_CONFIG: Final = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": GOP}
DEFAULT_SPEECH: Final = Path("tests/data/audio/speech16k.wav")

PLAY_DURATION_S: Final = 5.0  # softphone's own limit per first-frame run
RUN_TIMEOUT_S: Final = 15.0  # a run that shows no picture by then counts as failed
PANE: Final = (100, 30)  # tmux cells
CALL_LEAD_S: Final = 40.0  # at most this long for the concurrent call to be established
CALL_MARGIN_S: Final = 15.0  # the call lasts this much longer than the viewer
SAMPLE_S: Final = 0.2  # /proc/PID/stat sampling period

TARGET_VS_DEFAULT: Final = 0.5  # softphone / FFmpeg (default probing), issue 4 §6
TARGET_VS_LOW_DELAY: Final = 1.0  # softphone / FFmpeg (low-delay flags)
TARGET_FRAME_RATIO: Final = 1.0
# The played time is known to about a frame (first picture vs --duration), and the pictures
# decoded in the last refresh before exit are never drawn: 1.0 within this much counts as met.
FRAME_RATIO_TOLERANCE: Final = 0.02
TARGET_CPU_PER_S: Final = 0.6

LOW_DELAY_FLAGS: Final = (
    "-fflags",
    "nobuffer",
    "-flags",
    "low_delay",
    "-probesize",
    "32",
    "-analyzeduration",
    "0",
)


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


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


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


# --------------------------------------------------------------------------- processes


class LabServer:
    """The interop lab's RTSP server, started by pid with its output in a log file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "rtsp-server.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> LabServer:
        from softphone.bench.call_peers import PeerError, start, wait_until

        if not SERVER_SCRIPT.is_file():
            raise PeerError(f"{SERVER_SCRIPT} is missing (run from a checkout of the repository)")
        if not Path(SYSTEM_PYTHON).is_file():
            raise PeerError(f"{SYSTEM_PYTHON} is missing (the lab server needs python3-gi)")
        argv = [
            SYSTEM_PYTHON,
            "-u",
            str(SERVER_SCRIPT),
            "--port",
            "0",
            "--config",
            json.dumps(SERVER_CONFIG),
        ]
        proc = self._proc = start(argv, cwd=self.workdir, log=self.log)
        wait_until(
            lambda: self._ready() is not None,
            timeout_s,
            "the RTSP lab server's READY line",
            alive=lambda: proc.poll() is None,
        )
        self.port = self._ready() or 0
        return self

    def _ready(self) -> int | None:
        for line in self.lines():
            if line.startswith("READY "):
                return int(line.split()[1])
            if line.startswith("MISSING"):
                from softphone.bench.call_peers import PeerError

                raise PeerError(f"the RTSP lab server lacks GStreamer elements: {line}")
        return None

    def lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def plays(self) -> int:
        return sum(1 for line in self.lines() if line.startswith("LAB PLAY "))

    @property
    def url(self) -> str:
        return f"rtsp://{HOST}:{self.port}{MOUNT}"

    def stop(self) -> None:
        from softphone.bench.call_peers import stop

        if self._proc is not None:
            stop(self._proc)
            self._proc = None


@contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="softphone-bench-rtsp-") as tmp:
        yield Path(tmp)


@contextmanager
def _lab(workdir: Path) -> Iterator[LabServer]:
    server = LabServer(workdir)
    try:
        yield server.start()
    finally:
        server.stop()


def _pause(seconds: float) -> None:
    """A deliberate, bounded wait (the random join phase); not a wait for a condition."""
    if seconds > 0:
        select.select([], [], [], seconds)


def child_env(workdir: Path, *, pycache: bool) -> dict[str, str]:
    """The environment of our Python children. With ``pycache``, compiled modules are cached in
    ``workdir`` (``PYTHONPYCACHEPREFIX``) even where ``PYTHONDONTWRITEBYTECODE`` is set, as they
    are after ``pip install``; without it every start compiles softphone from source."""
    env = dict(os.environ)
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def softphone_play_argv(url: str, transport: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "softphone",
        "play",
        url,
        "--headless",
        "--json",
        "--no-audio",
        "--duration",
        f"{PLAY_DURATION_S:g}",
        "--transport",
        transport,
    ]


def ffmpeg_argv(ffmpeg: str, url: str, transport: str, *, low_delay: bool) -> list[str]:
    """``-map 0:v:0``: with ``-probesize 32`` FFmpeg may not learn the picture size before the
    first packets and then maps only the audio stream, so ``-frames:v 1`` would never end."""
    return [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-rtsp_transport",
        transport,
        *(LOW_DELAY_FLAGS if low_delay else ()),
        "-i",
        url,
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-f",
        "null",
        "-",
    ]


def _time_softphone(
    argv: list[str], log: Path, env: dict[str, str]
) -> tuple[float | None, float | None]:
    """(first_frame.ms, wall ms from spawn to reading that line); None, None on failure."""
    from softphone.bench.call_peers import stop

    with log.open("ab") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
            cwd=REPO,
            env=env,
        )
    try:
        assert proc.stdout is not None
        found = _read_first_frame(proc.stdout, started + RUN_TIMEOUT_S)
        wall = (time.monotonic() - started) * 1000 if found is not None else None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # the player tears down (TEARDOWN) and exits
            try:
                proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                pass
        return found, wall
    finally:
        stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def _read_first_frame(stream: IO[bytes], deadline: float) -> float | None:
    fd = stream.fileno()
    buffer = b""
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break  # the player exited without a picture
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if (ms := first_frame_ms(line.decode(errors="replace"))) is not None:
                return ms
    return None


def _time_ffmpeg(argv: list[str], log: Path) -> float | None:
    """Wall ms from spawn to a clean exit, or None (error or no picture within the timeout)."""
    from softphone.bench.call_peers import stop

    with log.open("ab") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    finally:
        stop(proc)
    return (time.monotonic() - started) * 1000 if code == 0 else None


def run_first_frame(
    workdir: Path, *, runs: int, transport: str, seed: int, cold: bool, pycache: bool, command: str
) -> FirstFrameReport:
    from softphone.bench.call_peers import PeerError, start, stop, wait_until, which

    ffmpeg = which("ffmpeg", "ffmpeg")
    rng = random.Random(seed)
    with _lab(workdir) as lab:
        url = lab.url
        ours = softphone_play_argv(url, transport)
        default = ffmpeg_argv(ffmpeg, url, transport, low_delay=False)
        low = ffmpeg_argv(ffmpeg, url, transport, low_delay=True)
        holder = None
        if not cold:
            before = lab.plays()
            holder = start(
                [
                    ffmpeg,
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-rtsp_transport",
                    transport,
                    "-i",
                    url,
                    "-map",
                    "0:v:0",
                    "-c",
                    "copy",
                    "-f",
                    "null",
                    "-",
                ],
                cwd=workdir,
                log=workdir / "holder.log",
            )
            held = holder
            wait_until(
                lambda: lab.plays() > before,
                15.0,
                "the background client's PLAY",
                alive=lambda: held.poll() is None,
            )
        env = child_env(workdir, pycache=pycache)
        try:
            times: dict[str, list[float | None]] = {"sp": [], "wall": [], "ff": [], "low": []}
            order = ("sp", "ff", "low")
            # Round 0 is a warm-up (page cache, and the bytecode cache with ``pycache``): not counted.
            for i in range(-1, runs):
                for peer in order[i % 3 :] + order[: i % 3]:
                    _pause(rng.uniform(0.0, GOP / FPS))
                    if holder is not None and holder.poll() is not None:
                        raise PeerError("the background client (ffmpeg -c copy) stopped")
                    if i < 0:
                        if peer == "sp":
                            _time_softphone(ours, workdir / "softphone.log", env)
                        else:
                            _time_ffmpeg(default if peer == "ff" else low, workdir / "warm-up.log")
                    elif peer == "sp":
                        ms, wall = _time_softphone(ours, workdir / "softphone.log", env)
                        times["sp"].append(ms)
                        times["wall"].append(wall)
                    elif peer == "ff":
                        times["ff"].append(_time_ffmpeg(default, workdir / "ffmpeg.log"))
                    else:
                        times["low"].append(_time_ffmpeg(low, workdir / "ffmpeg-low-delay.log"))
        finally:
            if holder is not None:
                stop(holder)
    return FirstFrameReport(
        command=command,
        transport=transport,
        holder=not cold,
        pycache=pycache,
        url=url,
        softphone=PeerTimes(
            name="softphone first_frame",
            argv=tuple(ours),
            clock="first_frame.ms (from main(), after interpreter start-up)",
            times_ms=tuple(times["sp"]),
            last_output=_tail(workdir / "softphone.log", 3),
        ),
        softphone_wall=PeerTimes(
            name="softphone spawn->line",
            argv=tuple(ours),
            clock="wall clock, spawn to the first_frame line on our pipe",
            times_ms=tuple(times["wall"]),
        ),
        ffmpeg=PeerTimes(
            name="ffmpeg",
            argv=tuple(default),
            clock="wall clock, spawn to exit",
            times_ms=tuple(times["ff"]),
            last_output=_tail(workdir / "ffmpeg.log", 3),
        ),
        ffmpeg_low_delay=PeerTimes(
            name="ffmpeg low-delay",
            argv=tuple(low),
            clock="wall clock, spawn to exit",
            times_ms=tuple(times["low"]),
            last_output=_tail(workdir / "ffmpeg-low-delay.log", 3),
        ),
    )


def _tmux(
    socket_name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", socket_name, "-f", "/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env=env,
    )


def _cpu_or_none(pid: int) -> float | None:
    from softphone.bench.call_peers import parse_stat_cpu

    try:
        return parse_stat_cpu(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def _start_call(
    workdir: Path, seconds: float, speech: Path
) -> tuple[subprocess.Popen[bytes], list[str], Path]:
    """``softphone bench device`` in the background, once its call is established."""
    from softphone.bench.call_peers import PeerError, stop, wait_until

    calldir = workdir / "call"
    calldir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "softphone",
        "bench",
        "device",
        "--seconds",
        f"{seconds:g}",
        "--speech",
        str(speech),
        "--workdir",
        str(calldir),
        "--json",
    ]
    out = calldir / "device.json"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    baresip_log = calldir / "baresip" / "baresip.log"

    def established() -> bool:
        try:
            return "Call established" in baresip_log.read_text(errors="replace")
        except OSError:
            return False

    try:
        wait_until(
            established,
            CALL_LEAD_S,
            "the concurrent call (softphone bench device)",
            alive=lambda: proc.poll() is None,
            poll_s=0.1,
        )
    except PeerError:
        stop(proc)
        raise PeerError(
            f"softphone bench device did not establish its call: {_tail(out)}"
        ) from None
    return proc, argv, out


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _finish_call(proc: subprocess.Popen[bytes], out: Path, timeout_s: float) -> dict[str, Any]:
    from softphone.bench.call_peers import PeerError, stop

    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise PeerError("softphone bench device did not finish in time") from None
    for line in reversed(out.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            payload = json.loads(line)
            if isinstance(payload, dict):
                return payload
    raise PeerError(f"softphone bench device gave no result (exit {proc.returncode}): {_tail(out)}")


def run_render(
    workdir: Path, *, seconds: float, with_call: bool, speech: Path, command: str
) -> RenderReport:
    from softphone.bench.call_peers import PeerError, stop, wait_until, which

    which("tmux", "tmux")
    stats_path = workdir / "viewer-stats.json"
    stats_path.unlink(missing_ok=True)
    socket_name = f"softphone-bench-{os.getpid()}"
    with _lab(workdir) as lab:
        argv = [
            sys.executable,
            "-m",
            "softphone",
            "play",
            lab.url,
            "--viewer",
            "--no-audio",
            "--transport",
            "tcp",
            "--duration",
            f"{seconds:g}",
            "--stats-out",
            str(stats_path),
        ]
        env = child_env(workdir, pycache=True)
        # Compile the viewer's modules into the workdir's bytecode cache first (not measured).
        subprocess.run(
            [sys.executable, "-c", "import softphone.cli, softphone.tui.player_app"],
            cwd=REPO,
            env=env,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        call = None
        if with_call:
            call = _start_call(workdir, seconds + CALL_MARGIN_S, speech)
        samples: list[tuple[float, float]] = []
        jack_log = workdir / "call" / "jack" / "jackd.log"
        xruns_seen = count_jack_xruns(_read(jack_log)) if with_call else 0
        xruns_at: list[float] = [-1.0] * xruns_seen  # before the viewer started
        showed = False
        try:
            started = time.monotonic()
            made = _tmux(
                socket_name,
                "new-session",
                "-d",
                "-s",
                "viewer",
                "-x",
                str(PANE[0]),
                "-y",
                str(PANE[1]),
                "-e",
                "COLORTERM=truecolor",
                "-c",
                str(REPO),
                "exec " + shlex.join(argv),
                env=env,
            )
            if made.returncode != 0:
                raise PeerError(f"tmux new-session failed: {made.stderr.strip()}")
            shown = _tmux(socket_name, "display-message", "-p", "-t", "viewer", "#{pane_pid}")
            pid = int(shown.stdout.strip() or 0)
            if pid <= 0:
                raise PeerError(f"no pane pid from tmux: {shown.stderr.strip()}")
            deadline = started + seconds + RUN_TIMEOUT_S + 15.0
            while time.monotonic() < deadline:
                cpu = _cpu_or_none(pid)
                if cpu is None:
                    break  # exited; the last sample stands for its total
                now = time.monotonic() - started
                samples.append((now, cpu))
                if with_call and (n := count_jack_xruns(_read(jack_log))) > xruns_seen:
                    xruns_at += [now] * (n - xruns_seen)
                    xruns_seen = n
                if not showed and now > min(seconds / 2, 8.0):
                    screen = _tmux(socket_name, "capture-pane", "-p", "-t", "viewer").stdout
                    showed = screen.count("\u2580") + screen.count("\u2584") > 100
                _pause(SAMPLE_S)
            else:
                raise PeerError(
                    f"the viewer did not exit {seconds + RUN_TIMEOUT_S + 15.0:.0f} s "
                    "after it started"
                )
            wall = time.monotonic() - started
            wait_until(stats_path.is_file, 5.0, f"the viewer's --stats-out file {stats_path}")
            stats = json.loads(stats_path.read_text())
            call_result = None
            if call is not None:
                call_result = _finish_call(call[0], call[2], CALL_MARGIN_S + 60.0)
        finally:
            _tmux(socket_name, "kill-server")  # our private tmux server only
            if call is not None:
                stop(call[0])
    return RenderReport(
        command=command,
        viewer_argv=tuple(argv),
        duration_s=seconds,
        stats=stats,
        cpu_samples=tuple(samples),
        wall_s=wall,
        showed_video=showed,
        call=call_result,
        jack_xruns_at=tuple(
            xruns_at + [math.inf] * (count_jack_xruns(_read(jack_log)) - xruns_seen)
            if with_call
            else ()
        ),
        call_argv=tuple(call[1]) if call is not None else (),
    )


# --------------------------------------------------------------------------- command line


def add_commands(subparsers: Any) -> None:
    """Add ``rtsp-first-frame`` and ``rtsp-render`` to ``softphone bench``'s subparsers."""
    first = subparsers.add_parser(
        "rtsp-first-frame", help="time to the first picture, softphone vs FFmpeg"
    )
    first.add_argument(
        "--runs",
        type=_runs,
        default=10,
        metavar="N",
        help="runs per peer (default 10; at least 10 to see the GOP's spread)",
    )
    first.add_argument(
        "--transport",
        choices=["tcp", "udp"],
        default="tcp",
        help="RTP transport of every peer (default tcp)",
    )
    first.add_argument("--seed", type=int, default=1, help="seed of the random pauses (default 1)")
    first.add_argument(
        "--cold",
        action="store_true",
        help="no background client: each peer starts the server's pipeline",
    )
    first.add_argument(
        "--no-pycache",
        action="store_true",
        help="let softphone compile its modules at every start (no bytecode cache)",
    )
    _common(first)

    render = subparsers.add_parser(
        "rtsp-render", help="frames drawn and CPU of the viewer in a 100x30 tmux pane"
    )
    render.add_argument(
        "--seconds",
        type=_seconds,
        default=20.0,
        metavar="S",
        help="the viewer's --duration (default 20)",
    )
    render.add_argument(
        "--no-call", action="store_true", help="without the concurrent call on JACK's dummy driver"
    )
    render.add_argument(
        "--speech",
        type=Path,
        default=DEFAULT_SPEECH,
        metavar="REF.wav",
        help=f"speech of the concurrent call (default {DEFAULT_SPEECH})",
    )
    _common(render)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep logs and the viewer's stats here (default: a temporary directory)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _runs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("must be 1 to 200")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 3 <= value <= 600:
        raise argparse.ArgumentTypeError("must be 3 to 600")
    return value


def command_line(args: argparse.Namespace) -> str:
    """The ``softphone bench ...`` command that reproduces this run (printed with the figures)."""
    parts = ["softphone", "bench", str(args.command)]
    if args.command == "rtsp-first-frame":
        parts += ["--runs", str(args.runs), "--transport", args.transport, "--seed", str(args.seed)]
        if args.cold:
            parts.append("--cold")
        if args.no_pycache:
            parts.append("--no-pycache")
    else:
        parts += ["--seconds", f"{args.seconds:g}"]
        if args.no_call:
            parts.append("--no-call")
        elif args.speech != DEFAULT_SPEECH:
            parts += ["--speech", str(args.speech)]
    return shlex.join(parts)


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run the benchmark ``args.command`` names; returns the exit status."""
    from softphone.bench.call_peers import PeerError

    stream = out or sys.stdout
    command = command_line(args)
    try:
        with _workdir(args.workdir) as workdir:
            report: FirstFrameReport | RenderReport
            if args.command == "rtsp-first-frame":
                report = run_first_frame(
                    workdir,
                    runs=args.runs,
                    transport=args.transport,
                    seed=args.seed,
                    cold=args.cold,
                    pycache=not args.no_pycache,
                    command=command,
                )
            else:
                speech = args.speech if args.speech.is_absolute() else Path.cwd() / args.speech
                if not args.no_call and not speech.is_file():
                    print(
                        f"softphone bench: {args.speech}: no such file (give --speech REF.wav)",
                        file=sys.stderr,
                    )
                    return EXIT_ERROR
                report = run_render(
                    workdir,
                    seconds=args.seconds,
                    with_call=not args.no_call,
                    speech=speech,
                    command=command,
                )
    except (PeerError, OSError, ValueError) as exc:
        print(f"softphone bench {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    stream.write((json.dumps(report.to_json()) if args.json else report.table()) + "\n")
    stream.flush()
    return EXIT_OK if report.met() else EXIT_TARGET_MISSED
