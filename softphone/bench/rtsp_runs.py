"""The RTSP benchmarks' runs: the lab's RTSP server, the players timed, the viewer in tmux.

:func:`run_first_frame` and :func:`run_render` start the peer lab's GStreamer RTSP server
(640x360, 25 fps, a key frame every 25 frames, no /file mount) on 127.0.0.1 and play its
``/h264`` mount; they return the reports of ``rtsp_report.py``. Every process is started by us
in its own session and stopped by its pid (the tmux server through its private socket).
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from softphone.bench.rtsp_report import (
    FPS,
    GOP,
    HEIGHT,
    MOUNT,
    PANE,
    WIDTH,
    FirstFrameReport,
    PeerTimes,
    RenderReport,
    count_jack_xruns,
    first_frame_ms,
)
from softphone.lab.process import LabError, LabProcess, find_binary, stop_process, wait_until
from softphone.lab.rtsp_server import RtspServer, VideoFormat

REPO: Final = Path(__file__).resolve().parents[2]
PLAY_DURATION_S: Final = 5.0  # softphone's own limit per first-frame run
RUN_TIMEOUT_S: Final = 15.0  # a run that shows no picture by then counts as failed
SERVER_START_S: Final = 20.0
CALL_LEAD_S: Final = 40.0  # at most this long for the concurrent call to be established
CALL_MARGIN_S: Final = 15.0  # the call lasts this much longer than the viewer
SAMPLE_S: Final = 0.2  # /proc/PID/stat sampling period

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


@contextmanager
def _rtsp_server(workdir: Path) -> Iterator[RtspServer]:
    video = VideoFormat(width=WIDTH, height=HEIGHT, fps=FPS, gop=GOP)
    server = RtspServer(workdir, video=video, media_file=False)
    try:
        yield server.start(timeout_s=SERVER_START_S)
    finally:
        server.stop()


def _plays(server: RtspServer) -> int:
    return sum(1 for line in server.lab_lines() if line.startswith("LAB PLAY "))


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


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
        stop_process(proc)
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
        stop_process(proc)
    return (time.monotonic() - started) * 1000 if code == 0 else None


def _hold_stream(server: RtspServer, ffmpeg: str, transport: str, workdir: Path) -> LabProcess:
    """A background client (``ffmpeg -c copy``) on the shared mount, once the server saw its PLAY:
    every measured client then joins a running stream, as with a camera."""
    before = _plays(server)
    argv = [ffmpeg, "-nostdin", "-loglevel", "error", "-rtsp_transport", transport]
    argv += ["-i", server.url(MOUNT), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    holder = LabProcess(argv, name="holder", cwd=workdir, log_path=workdir / "holder.log")
    try:
        holder.wait_until(lambda: _plays(server) > before, 15.0, "the background client's PLAY")
    except LabError:
        holder.stop()
        raise
    return holder


def run_first_frame(
    workdir: Path, *, runs: int, transport: str, seed: int, cold: bool, pycache: bool, command: str
) -> FirstFrameReport:
    ffmpeg = find_binary("ffmpeg", "ffmpeg")
    rng = random.Random(seed)
    with _rtsp_server(workdir) as server:
        url = server.url(MOUNT)
        ours = softphone_play_argv(url, transport)
        default = ffmpeg_argv(ffmpeg, url, transport, low_delay=False)
        low = ffmpeg_argv(ffmpeg, url, transport, low_delay=True)
        holder: LabProcess | None = None
        try:
            if not cold:
                holder = _hold_stream(server, ffmpeg, transport, workdir)
            env = child_env(workdir, pycache=pycache)
            times: dict[str, list[float | None]] = {"sp": [], "wall": [], "ff": [], "low": []}
            order = ("sp", "ff", "low")
            # Round 0 is a warm-up (page cache, and the bytecode cache with ``pycache``): not counted.
            for i in range(-1, runs):
                for peer in order[i % 3 :] + order[: i % 3]:
                    _pause(rng.uniform(0.0, GOP / FPS))
                    if holder is not None and not holder.alive():
                        raise LabError("the background client (ffmpeg -c copy) stopped")
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
                holder.stop()
    wall_clock = "wall clock, spawn to exit"

    def timed(name: str, argv: list[str], clock: str, key: str, log: str = "") -> PeerTimes:
        last = _tail(workdir / log, 3) if log else ""
        return PeerTimes(
            name=name, argv=tuple(argv), clock=clock, times_ms=tuple(times[key]), last_output=last
        )

    return FirstFrameReport(
        command=command,
        transport=transport,
        holder=not cold,
        pycache=pycache,
        url=url,
        softphone=timed(
            "softphone first_frame",
            ours,
            "first_frame.ms (from main(), after interpreter start-up)",
            "sp",
            "softphone.log",
        ),
        softphone_wall=timed(
            "softphone spawn->line",
            ours,
            "wall clock, spawn to the first_frame line on our pipe",
            "wall",
        ),
        ffmpeg=timed("ffmpeg", default, wall_clock, "ff", "ffmpeg.log"),
        ffmpeg_low_delay=timed("ffmpeg low-delay", low, wall_clock, "low", "ffmpeg-low-delay.log"),
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
    except LabError:
        stop_process(proc)
        raise LabError(f"softphone bench device did not establish its call: {_tail(out)}") from None
    return proc, argv, out


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _finish_call(proc: subprocess.Popen[bytes], out: Path, timeout_s: float) -> dict[str, Any]:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise LabError("softphone bench device did not finish in time") from None
    for line in reversed(out.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            payload = json.loads(line)
            if isinstance(payload, dict):
                return payload
    raise LabError(f"softphone bench device gave no result (exit {proc.returncode}): {_tail(out)}")


def run_render(
    workdir: Path, *, seconds: float, with_call: bool, speech: Path, command: str
) -> RenderReport:
    find_binary("tmux", "tmux")
    stats_path = workdir / "viewer-stats.json"
    stats_path.unlink(missing_ok=True)
    socket_name = f"softphone-bench-{os.getpid()}"
    with _rtsp_server(workdir) as server:
        argv = [
            sys.executable,
            "-m",
            "softphone",
            "play",
            server.url(MOUNT),
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
                raise LabError(f"tmux new-session failed: {made.stderr.strip()}")
            shown = _tmux(socket_name, "display-message", "-p", "-t", "viewer", "#{pane_pid}")
            pid = int(shown.stdout.strip() or 0)
            if pid <= 0:
                raise LabError(f"no pane pid from tmux: {shown.stderr.strip()}")
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
                raise LabError(
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
                stop_process(call[0])
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
