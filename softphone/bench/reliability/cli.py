"""``softphone bench reliability ...``: the campaign's command line.

    softphone bench reliability seeds  [--data tests/data] [--out tests/fuzz]
    softphone bench reliability fuzz   [--target NAME ...] [--runs N] [--max-time S] [--no-save]
    softphone bench reliability load   [--flood-calls N] [--flood-rate R] [--ramp-max R]
                                       [--ramp-step R] [--ramp-step-s S] [--ramp-hold-s S]
                                       [--held N] [--held-seconds S]
    softphone bench reliability scan
    softphone bench reliability faults [--only NAME ...]
    softphone bench reliability soak   [--minutes M]
    softphone bench reliability all    [the options of the others]
    softphone bench reliability report PATH...

Each prints the campaign's table (report.py) for what it ran, or with ``--json`` one JSON
object; the exit status is 0 when every target was met, 1 when one was missed, 2 for usage
errors or a peer that is missing or failed. Work files (peer logs, SIPp statistics, the fuzzing
corpus) go to ``--workdir`` or a temporary directory, and each part's rows to
``--workdir/<part>.json``. ``report`` prints one table from rows written earlier (those files,
the directories holding them, or what ``--json`` printed): the parts can run apart, the soak and
the fuzzing side by side in the background, and still make one table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TextIO

from softphone.bench.workdir import add_output_options, workdir

COMMAND: Final = "reliability"
EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_ERROR = 2
FAULTS: Final = ("registrar_restart", "registrar_outage", "packet_loss", "rtsp_restart", "kill")
PARTS: Final = ("fuzz", "load", "scan", "faults", "soak")


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(COMMAND, help="the reliability campaign (make reliability)")
    sub = parser.add_subparsers(dest="part", metavar="PART", required=True)
    seeds = sub.add_parser("seeds", help="write the fuzz targets' seed corpus from tests/data")
    seeds.add_argument("--data", type=Path, default=Path("tests/data"), metavar="DIR")
    seeds.add_argument("--out", type=Path, default=Path("tests/fuzz"), metavar="DIR")
    for name, help_text in (
        ("fuzz", "coverage-guided fuzzing of every parser (atheris)"),
        ("load", "SIPp flood, call-rate ramp and held calls, softphone and baresip"),
        ("scan", "sipvicious and a probe against a registered phone"),
        ("faults", "registrar restart and outage, packet loss, RTSP restart, kill -9"),
        ("soak", "a call every few seconds for minutes, RSS/threads/fds sampled"),
        ("all", "every part, one table"),
    ):
        part = sub.add_parser(name, help=help_text)
        add_output_options(part, keeps="peer logs, SIPp statistics and the fuzzing corpus")
        if name in ("fuzz", "all"):
            _fuzz_options(part)
        if name in ("load", "all"):
            _load_options(part)
        if name in ("faults", "all"):
            part.add_argument("--only", action="append", choices=FAULTS, metavar="NAME")
        if name in ("soak", "all"):
            part.add_argument("--minutes", type=float, default=5.0, metavar="M")
    merge = sub.add_parser("report", help="one table from the rows the parts wrote (JSON)")
    merge.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a part's JSON (--workdir/<part>.json or its --json output), or a directory of them",
    )
    merge.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _fuzz_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", action="append", metavar="NAME", help="repeatable; default all")
    p.add_argument("--runs", type=int, default=1_000_000, metavar="N", help="inputs per target")
    p.add_argument(
        "--max-time", type=float, default=2700.0, metavar="S", help="per target (default 2700)"
    )
    p.add_argument("--corpus", type=Path, default=Path("tests/fuzz"), metavar="DIR")
    p.add_argument("--no-save", action="store_true", help="do not add the inputs found to --corpus")


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flood-calls", type=int, default=10_000, metavar="N")
    p.add_argument("--flood-rate", type=float, default=500.0, metavar="R")
    p.add_argument("--ramp-max", type=float, default=80.0, metavar="R")
    p.add_argument("--ramp-step", type=float, default=10.0, metavar="R")
    p.add_argument("--ramp-step-s", type=int, default=5, metavar="S")
    p.add_argument("--ramp-hold-s", type=float, default=30.0, metavar="S")
    p.add_argument("--held", type=int, default=40, metavar="N")
    p.add_argument("--held-seconds", type=float, default=60.0, metavar="S")


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from softphone.lab.process import LabError

    stream = out or sys.stdout
    if args.part == "seeds":
        from softphone.bench.reliability.seeds import write_seeds

        written = write_seeds(args.data, args.out)
        print(f"seeds written to {args.out}: {sum(written.values())} in {len(written)} targets",
              file=stream)  # fmt: skip
        return EXIT_OK
    from softphone.bench.reliability import report

    if args.part == "report":
        try:
            rows = report.read_rows(args.paths, order=PARTS)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"softphone bench reliability report: {exc}", file=sys.stderr)
            return EXIT_ERROR
        _write(rows, args.json, stream)
        return EXIT_TARGET_MISSED if report.missed(rows) else EXIT_OK
    parts = PARTS if args.part == "all" else (args.part,)
    rows = []
    try:
        with workdir(args.workdir, prefix="softphone-reliability-") as where:
            for part in parts:
                part_rows = PART_RUNNERS[part](args, where / part)
                rows += part_rows
                # Each part's rows on their own: ``report`` makes one table of parts run apart.
                (where / f"{part}.json").write_text(report.dumps(part_rows, part=part) + "\n")
                if not args.json:
                    print(f"-- {part} done", file=sys.stderr, flush=True)
    except LabError as exc:
        print(f"softphone bench reliability {args.part}: {exc}", file=sys.stderr)
        if not rows:
            return EXIT_ERROR
        rows.append(
            report.Row(area="error", figure=str(exc)[:200], value="-", target="-", passed=False)
        )
    _write(rows, args.json, stream)
    return EXIT_TARGET_MISSED if report.missed(rows) else EXIT_OK


def _write(rows: list[Any], as_json: bool, stream: TextIO) -> None:
    from softphone.bench.reliability import report

    stream.write((report.dumps(rows) if as_json else report.table(rows)) + "\n")


_PREFIX: Final = "softphone bench reliability"


def _fuzz(args: argparse.Namespace, where: Path) -> list[Any]:
    from softphone.bench.reliability import report
    from softphone.bench.reliability.fuzz import atheris_missing, run_target
    from softphone.bench.reliability.targets import TARGETS
    from softphone.lab.process import PeerMissing

    if (problem := atheris_missing()) is not None:
        raise PeerMissing(problem)
    names = args.target or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        raise PeerMissing(f"no fuzz target {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    results = []
    for name in names:
        result = run_target(
            name,
            runs=args.runs,
            workdir=where,
            seeds=args.corpus,
            max_time_s=args.max_time,
            save_to=None if args.no_save else args.corpus,
        )
        results.append(result)
        if not args.json:
            print(f"   {name}: {result.runs:,} inputs, {result.rate:,.0f}/s, "
                  f"{len(result.broken) + len(result.artifacts)} broken", file=sys.stderr,
                  flush=True)  # fmt: skip
    command = f"{_PREFIX} fuzz --runs {args.runs} --max-time {args.max_time:g}"
    return report.fuzz_rows(results, command)


def _load(args: argparse.Namespace, where: Path) -> list[Any]:
    from softphone.bench.reliability import load, report

    rows = report.flood_rows(
        load.flood(where, calls=args.flood_calls, rate=args.flood_rate),
        f"{_PREFIX} load --flood-calls {args.flood_calls} --flood-rate {args.flood_rate:g}",
    )
    ramp = load.ramp(
        where,
        max_rate=args.ramp_max,
        step=args.ramp_step,
        step_s=args.ramp_step_s,
        hold_s=args.ramp_hold_s,
        call_s=1.0,
    )
    rows += report.ramp_rows(
        ramp,
        f"{_PREFIX} load --ramp-max {args.ramp_max:g} --ramp-step {args.ramp_step:g} "
        f"--ramp-step-s {args.ramp_step_s} --ramp-hold-s {args.ramp_hold_s:g}",
    )
    speech = _speech_pcmu(where)  # speech, not a tone: the playout has real work to do
    rows += report.held_rows(
        load.held(where, calls=args.held, seconds=args.held_seconds, rtp_wav=speech),
        f"{_PREFIX} load --held {args.held} --held-seconds {args.held_seconds:g}",
    )
    return rows


def _speech_pcmu(where: Path) -> Path:
    """tests/data's speech as a mu-law WAV, what SIPp streams as PCMU."""
    import subprocess

    from softphone.bench.call import DEFAULT_SPEECH
    from softphone.lab.process import find_binary

    where.mkdir(parents=True, exist_ok=True)
    out = where / "speech-pcmu.wav"
    subprocess.run(
        [find_binary("ffmpeg", "ffmpeg"), "-loglevel", "error", "-y", "-i", str(DEFAULT_SPEECH),
         "-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out


def _scan(args: argparse.Namespace, where: Path) -> list[Any]:
    from softphone.bench.reliability import report
    from softphone.bench.reliability.scan import scan

    return report.scan_rows(scan(where), f"{_PREFIX} scan")


def _faults(args: argparse.Namespace, where: Path) -> list[Any]:
    from softphone.bench.reliability import faults, faults_crash, report

    chosen = args.only or list(FAULTS)
    runners: dict[str, Callable[[Path], list[faults.FaultResult]]] = {
        "registrar_restart": faults.registrar_restart,
        "registrar_outage": faults.registrar_outage,
        "packet_loss": faults.packet_loss,
        "rtsp_restart": faults_crash.rtsp_restart,
        "kill": faults_crash.kill_during_call,
    }
    rows = []
    for name in chosen:
        rows += report.fault_rows(runners[name](where / name), f"{_PREFIX} faults --only {name}")
    return rows


def _soak(args: argparse.Namespace, where: Path) -> list[Any]:
    from softphone.bench.reliability import report
    from softphone.bench.reliability.soak import soak

    figures = soak(where, seconds=args.minutes * 60, rtp_wav=_speech_pcmu(where))
    return report.soak_rows(figures, f"{_PREFIX} soak --minutes {args.minutes:g}")


PART_RUNNERS: Final[dict[str, Callable[[argparse.Namespace, Path], list[Any]]]] = {
    "fuzz": _fuzz,
    "load": _load,
    "scan": _scan,
    "faults": _faults,
    "soak": _soak,
}
