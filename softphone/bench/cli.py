"""``softphone bench ...``: the jitter-buffer benchmark's command line.

    softphone bench traces --out TRACES.npz [--seed N] [--profile NAME ...]
    softphone bench jitter --trace TRACES.npz --profile NAME --speech REF.wav [--codec opus|pcmu]
                           --out LOG.npz [--audio-out OUT.wav]
    softphone bench jitter-report --trace TRACES.npz --speech REF.wav [--codec opus|pcmu]
                                  [--profile NAME ...]      (bench/jitter_report.py)
    softphone bench cpu|latency|device|setup ...      (bench/call.py)
    softphone bench rtsp-first-frame|rtsp-render ...  (bench/rtsp.py)
    softphone bench tui [--seconds S]                 (bench/tui.py)
    softphone bench echo [--delay-ms MS ...] [--json] (bench/echo.py)
    softphone bench video [--part delay|cpu|freeze|all] ...  (bench/video.py)
    softphone bench quality [--calls N] [--loss clean|random|burst ...] [--json]  (bench/quality.py)
    softphone bench reliability seeds|fuzz|load|scan|faults|soak|all ...  (bench/reliability)

``main(argv)`` takes everything after ``bench`` and returns the exit status (0 ok, 1 a target
missed in ``jitter-report``, 2 usage or input errors).
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from softphone.bench import call, echo, quality, rtsp, video
from softphone.bench.reliability import cli as reliability

EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softphone bench", description="Benchmarks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    traces = sub.add_parser("traces", help="write the seeded network traces")
    traces.add_argument("--out", type=Path, required=True, metavar="TRACES.npz")
    traces.add_argument("--seed", type=int, default=1)
    traces.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="only this profile (repeatable; default: all)",
    )

    jitter = sub.add_parser("jitter", help="replay one trace through the playout")
    jitter.add_argument("--trace", type=Path, required=True, metavar="TRACES.npz")
    jitter.add_argument("--profile", required=True, metavar="NAME")
    jitter.add_argument("--speech", type=Path, required=True, metavar="REF.wav")
    jitter.add_argument("--codec", default="opus", choices=["opus", "pcmu"])
    jitter.add_argument("--out", type=Path, required=True, metavar="LOG.npz")
    jitter.add_argument("--audio-out", type=Path, metavar="OUT.wav")

    report = sub.add_parser("jitter-report", help="run every profile and print the targets")
    report.add_argument("--trace", type=Path, required=True, metavar="TRACES.npz")
    report.add_argument("--speech", type=Path, required=True, metavar="REF.wav")
    report.add_argument("--codec", default="opus", choices=["opus", "pcmu"])
    report.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="only this profile (repeatable; default: all in the file)",
    )
    call.add_commands(sub)
    echo.add_commands(sub)
    quality.add_commands(sub)
    rtsp.add_commands(sub)
    video.add_commands(sub)
    reliability.add_commands(sub)
    tui = sub.add_parser(
        "tui", help="key press -> screen latency and audio tick lateness in the TUI"
    )
    tui.add_argument("--seconds", type=float, default=10.0, metavar="S")
    tui.add_argument(
        "--interval", type=float, default=0.2, metavar="S", help="time between key presses"
    )
    tui.add_argument(
        "--same-loop",
        action="store_true",
        help="run the phone on the UI's event loop (the comparison) instead of its own thread",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command in call.COMMANDS:
        return call.run(args, out=out)
    if args.command in rtsp.COMMANDS:
        return rtsp.run(args, out=out)
    if args.command in echo.COMMANDS:
        return echo.run(args, out=out)
    if args.command == video.COMMAND:
        return video.run(args, out=out)
    if args.command in quality.COMMANDS:
        return quality.run(args, out=out)
    if args.command == reliability.COMMAND:
        return reliability.run(args, out=out)
    if args.command == "tui":
        import json

        from softphone.bench.tui import run_tui_bench

        result = run_tui_bench(args.seconds, interval_s=args.interval, threaded=not args.same_loop)
        result.pop("samples_ms", None)
        out.write(json.dumps(result, indent=2) + "\n")
        return EXIT_OK
    try:
        if args.command == "traces":
            return _traces(args, out)
        if args.command == "jitter":
            return _jitter(args, out)
        return _report(args, out)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"softphone bench: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _traces(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench.traces import PROFILES, write_traces

    names = tuple(args.profile) if args.profile else None
    for name in names or ():
        if name not in PROFILES:
            raise KeyError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    written = write_traces(args.out, args.seed, names)
    print(f"wrote {args.out}: {', '.join(written)}", file=out)
    return EXIT_OK


def _jitter(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench.jitter import read_speech, run, score, write_wav
    from softphone.bench.traces import load_trace
    from softphone.media.codecs import get_codec

    send, arrival = load_trace(args.trace, args.profile)
    codec = get_codec(args.codec)
    speech = read_speech(args.speech, codec.sample_rate)
    started = time.perf_counter()
    log, heard = run(send, arrival, speech, args.codec, collect_audio=args.audio_out is not None)
    log.save(args.out)
    if args.audio_out is not None and heard is not None:
        write_wav(args.audio_out, heard, codec.sample_rate)
    s = score(send, arrival, log)
    print(
        f"{args.profile}: late loss {s.late_loss_pct:.2f} %, mean mouth-to-ear {s.mean_ms:.1f} ms, "
        f"concealed {s.concealed_ms:.0f} ms, stretched {s.stretched_pct:.2f} %, "
        f"FEC frames {s.fec_frames} ({time.perf_counter() - started:.1f} s)",
        file=out,
    )
    return EXIT_OK


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench import jitter_report

    return jitter_report.run(args, out)


if __name__ == "__main__":
    sys.exit(main())
