"""``softphone bench cpu|latency|device|setup``: the performance benchmarks of real calls.

    softphone bench cpu     [--seconds 60] [--speech REF.wav] [--srtp] [--workdir DIR] [--json]
    softphone bench latency [--clicks 30] [--interval-ms 400] [--codec NAME ...] [--json]
    softphone bench device  [--seconds 60] [--speech REF.wav] [--workdir DIR] [--json]
    softphone bench mouth-to-ear [--clicks 20] [--seed 1] [--codec opus|PCMU ...]
                            [--pair softphone|baresip ...] [--no-echo-cancellation]
                            [--baresip-jitter MIN-MAX] [--workdir DIR] [--json]
    softphone bench setup   [--calls 10] [--topology loopback|ice-host|ice-srflx|ice-relay|ice]
                            [--workdir DIR] [--json]

- ``cpu`` (call_cpu.py): CPU seconds of a full-duplex Opus call, softphone vs baresip, and
  baresip vs baresip, in the same run. ``--srtp`` (call_srtp.py): softphone's CPU in the same
  call plain, with SDES-SRTP and with DTLS-SRTP, against the target of at most 10 % more.
- ``latency`` (call_latency.py): mouth-to-ear delay on loopback from audio timestamps, per
  codec, against the 60 ms budget.
- ``device`` (call_device.py): xruns and pace of the PortAudio path on JACK's dummy driver.
- ``mouth-to-ear`` (mouth_to_ear.py): the same delay through a virtual sound card (JACK's
  dummy driver), softphone calling softphone and baresip calling baresip in one run, per codec,
  in frames of the card's clock.
- ``setup`` (call_setup.py): INVITE to the first audio both ways, read off the wire, softphone
  and baresip calling the same baresip.

Everything runs on 127.0.0.1; every process started is stopped by its pid. ``bench/cli.py``
hooks these in with :func:`add_commands` and :func:`run`. Exit status: 0 done, 1 a target
missed (latency over budget or a click lost; any xrun), 2 usage errors or a peer that is missing
or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from softphone.bench.workdir import add_output_options, number, whole_number, workdir

COMMANDS: Final = ("cpu", "latency", "device", "setup", "mouth-to-ear")
DEFAULT_SPEECH: Final = Path("tests/data/audio/speech16k.wav")
EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_ERROR = 2


_positive_int = whole_number(1, 1000)
_positive_float = number(0, 3600, above=True)


def add_commands(subparsers: Any) -> None:
    """Add ``cpu``, ``latency``, ``device`` and ``setup`` to ``softphone bench``'s subparsers."""
    cpu = subparsers.add_parser("cpu", help="CPU of a full-duplex Opus call, softphone vs baresip")
    _seconds(cpu)
    _speech(cpu)
    cpu.add_argument(
        "--srtp",
        action="store_true",
        help="compare softphone's CPU with plain RTP, SDES-SRTP and DTLS-SRTP instead",
    )
    add_output_options(cpu, keeps="configs and peer logs")

    latency = subparsers.add_parser("latency", help="mouth-to-ear delay on loopback, per codec")
    latency.add_argument(
        "--clicks",
        type=_positive_int,
        default=30,
        metavar="N",
        help="clicks per codec (default 30)",
    )
    latency.add_argument(
        "--interval-ms",
        type=_interval,
        default=400,
        metavar="MS",
        help="time between clicks (default 400)",
    )
    latency.add_argument(
        "--codec",
        action="append",
        choices=["opus", "G722", "PCMU", "PCMA"],
        help="codec to measure (repeatable; default opus, G722, PCMU)",
    )
    latency.add_argument("--json", action="store_true", help="one JSON object on stdout")

    device = subparsers.add_parser("device", help="xruns of the device path on JACK's dummy driver")
    _seconds(device)
    _speech(device)
    add_output_options(device, keeps="configs and peer logs")

    m2e = subparsers.add_parser(
        "mouth-to-ear",
        help="mouth-to-ear delay through JACK's dummy card, softphone vs baresip, per codec",
    )
    m2e.add_argument(
        "--clicks", type=_positive_int, default=20, metavar="N", help="clicks per pair and codec"
    )
    m2e.add_argument("--seed", type=int, default=1, help="seed of the click spacing (default 1)")
    m2e.add_argument(
        "--codec",
        action="append",
        choices=["opus", "PCMU"],
        help="codec to measure (repeatable; default opus and PCMU)",
    )
    m2e.add_argument(
        "--pair",
        action="append",
        choices=["softphone", "baresip"],
        help="pair to measure (repeatable; default both)",
    )
    m2e.add_argument(
        "--no-echo-cancellation",
        action="store_true",
        help="softphone's microphone without echo cancellation (default: as configured, on)",
    )
    m2e.add_argument(
        "--baresip-jitter",
        type=_packets,
        default=(5, 10),
        metavar="MIN-MAX",
        help="the baresips' jitter buffer in packets (default 5-10, baresip's own default)",
    )
    add_output_options(m2e, keeps="configs and peer logs")

    setup = subparsers.add_parser(
        "setup", help="INVITE to first audio both ways, softphone vs baresip (needs root)"
    )
    setup.add_argument(
        "--calls",
        type=_positive_int,
        default=10,
        metavar="N",
        help="calls by each caller (default 10)",
    )
    setup.add_argument(
        "--topology",
        choices=("loopback", "ice-host", "ice-srflx", "ice-relay", "ice"),
        default="loopback",
        help="loopback without ICE (default), or ICE in the NAT lab: host candidates, through"
        " two routers (server-reflexive), through two random-mapping routers (TURN relay), or"
        " 'ice' for all three",
    )
    add_output_options(setup, keeps="configs and peer logs")


def _seconds(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seconds",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="seconds of established call (default 60)",
    )


def _speech(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speech",
        type=Path,
        default=DEFAULT_SPEECH,
        metavar="REF.wav",
        help=f"speech both sides send, looped (default {DEFAULT_SPEECH})",
    )


def _packets(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        pair = (int(low), int(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN-MAX (e.g. 5-10)") from None
    if not 1 <= pair[0] <= pair[1] <= 50:
        raise argparse.ArgumentTypeError("1 <= MIN <= MAX <= 50 packets")
    return pair


def _interval(text: str) -> int:
    value = _positive_int(text)
    if value < 150:
        raise argparse.ArgumentTypeError(
            "at least 150 ms, so that one click is heard before the next"
        )
    return value


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run the benchmark ``args.command`` names; returns the exit status."""
    from softphone.lab.process import LabError  # the peer lab loads only when a bench runs

    stream = out or sys.stdout
    try:
        if args.command == "latency":
            return _latency(args, stream)
        if args.command == "setup":
            return _setup(args, stream)
        if args.command == "mouth-to-ear":
            return _mouth_to_ear(args, stream)
        if not args.speech.is_file():
            print(
                f"softphone bench: {args.speech}: no such file (give --speech REF.wav)",
                file=sys.stderr,
            )
            return EXIT_ERROR
        if args.command == "cpu":
            return _cpu(args, stream)
        return _device(args, stream)
    except LabError as exc:
        print(f"softphone bench {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _emit(args: argparse.Namespace, out: TextIO, payload: dict[str, Any], table: str) -> None:
    if args.json:
        out.write(json.dumps(payload) + "\n")
    else:
        out.write(table + "\n")
    out.flush()


def _cpu(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench.call_cpu import run_cpu

    if args.srtp:
        from softphone.bench.call_srtp import run_srtp_cpu

        with workdir(args.workdir, prefix="softphone-bench-") as where:
            srtp = run_srtp_cpu(where, args.speech.resolve(), args.seconds)
        _emit(args, out, srtp.to_json(), srtp.table())
        return EXIT_OK if srtp.met else EXIT_TARGET_MISSED

    with workdir(args.workdir, prefix="softphone-bench-") as where:
        report = run_cpu(where, args.speech.resolve(), args.seconds)
    _emit(args, out, report.to_json(), report.table())
    return EXIT_OK


def _latency(args: argparse.Namespace, out: TextIO) -> int:
    import asyncio

    from softphone.bench.call_latency import BUDGET_MS, CODECS, latency_table, measure_latency

    codecs = tuple(args.codec) if args.codec else CODECS

    async def all_codecs() -> list[Any]:
        return [
            await measure_latency(c, clicks=args.clicks, interval_s=args.interval_ms / 1000)
            for c in codecs
        ]

    results = asyncio.run(all_codecs())
    payload = {
        "benchmark": "latency",
        "budget_ms": BUDGET_MS,
        "results": [r.to_json() for r in results],
    }
    _emit(args, out, payload, latency_table(results))
    return EXIT_OK if all(r.within_budget for r in results) else EXIT_TARGET_MISSED


def _device(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench.call_device import run_device

    with workdir(args.workdir, prefix="softphone-bench-") as where:
        report = run_device(where, args.speech.resolve(), args.seconds)
    _emit(args, out, report.to_json(), report.table())
    return EXIT_OK if report.xruns == 0 else EXIT_TARGET_MISSED


def _setup(args: argparse.Namespace, out: TextIO) -> int:
    if args.topology != "loopback":
        from softphone.bench import call_setup_ice

        names = tuple(call_setup_ice.TOPOLOGIES) if args.topology == "ice" else (args.topology,)
        with workdir(args.workdir, prefix="softphone-bench-") as where:
            result = call_setup_ice.run(where, args.calls, names)
        _emit(args, out, {"benchmark": "setup", **result}, call_setup_ice.report(result))
        return EXIT_OK

    from softphone.bench.call_setup import report, run

    with workdir(args.workdir, prefix="softphone-bench-") as where:
        result = run(where, args.calls)
    _emit(args, out, {"benchmark": "setup", **result}, report(result))
    return EXIT_OK


def _mouth_to_ear(args: argparse.Namespace, out: TextIO) -> int:
    from softphone.bench.mouth_to_ear import CODECS, PAIRS, run_mouth_to_ear

    with workdir(args.workdir, prefix="softphone-m2e-") as where:
        report = run_mouth_to_ear(
            where,
            clicks=args.clicks,
            seed=args.seed,
            codecs=tuple(args.codec or CODECS),
            pairs=tuple(args.pair or PAIRS),
            echo_cancellation=not args.no_echo_cancellation,
            baresip_jitter_frames=args.baresip_jitter,
        )
    _emit(args, out, report.to_json(), report.table())
    return EXIT_OK if report.complete and report.target_met else EXIT_TARGET_MISSED
