"""``softphone bench rtsp-first-frame|rtsp-render``: the RTSP player's benchmarks.

    softphone bench rtsp-first-frame [--runs 10] [--transport tcp|udp] [--seed 1] [--cold]
                                     [--workdir DIR] [--json]
    softphone bench rtsp-render      [--seconds 20] [--no-call] [--speech REF.wav]
                                     [--workdir DIR] [--json]

Both start the peer lab's GStreamer RTSP server (``softphone/lab/rtsp_server.py``, run by the
system Python, 640x360, 25 fps, a key frame every 25 frames) on 127.0.0.1 and play its
``/h264`` mount (H.264 + AAC). This module is the command line; ``rtsp_runs.py`` runs the
peers and ``rtsp_report.py`` holds the figures, the targets and the printed reports.

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
import shlex
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from softphone.bench.workdir import add_output_options, number, whole_number, workdir

COMMANDS: Final = ("rtsp-first-frame", "rtsp-render")
EXIT_OK: Final = 0
EXIT_TARGET_MISSED: Final = 1
EXIT_ERROR: Final = 2
DEFAULT_SPEECH: Final = Path("tests/data/audio/speech16k.wav")


# --------------------------------------------------------------------------- command line


_runs = whole_number(1, 200)
_seconds = number(3, 600)


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
    add_output_options(first, keeps="logs and the viewer's stats")

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
    add_output_options(render, keeps="logs and the viewer's stats")


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
    # The runs and the peer lab load only when a benchmark runs, not for --help.
    from softphone.bench.rtsp_report import FirstFrameReport, RenderReport
    from softphone.bench.rtsp_runs import run_first_frame, run_render
    from softphone.lab.process import LabError

    stream = out or sys.stdout
    command = command_line(args)
    try:
        with workdir(args.workdir, prefix="softphone-bench-rtsp-") as where:
            report: FirstFrameReport | RenderReport
            if args.command == "rtsp-first-frame":
                report = run_first_frame(
                    where,
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
                    where,
                    seconds=args.seconds,
                    with_call=not args.no_call,
                    speech=speech,
                    command=command,
                )
    except (LabError, OSError, ValueError) as exc:
        print(f"softphone bench {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    stream.write((json.dumps(report.to_json()) if args.json else report.table()) + "\n")
    stream.flush()
    return EXIT_OK if report.met() else EXIT_TARGET_MISSED
