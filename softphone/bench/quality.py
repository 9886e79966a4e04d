"""``softphone bench quality``: speech quality of Opus calls with baresip, clean and under loss.

    softphone bench quality [--calls N] [--seconds S] [--loss clean|random|burst ...]
                            [--speech REF.wav] [--workdir DIR] [--json]

For every loss condition, ``--calls`` times (default 3), two calls run one after the other in
the same run, both to the same auto-answering baresip ("bob") that plays the speech (48 kHz
WAV, looped past the call), Opus only (baresip's ``opus/48000/1``; both baresips encode at 32
kbit/s mono, ``opus_bitrate``, ``opus_stereo no``, as softphone does):

1. ``softphone dial --play speech.wav --record heard.wav`` calls bob: what softphone heard;
2. a second baresip ("alice", recording with ``sndfile``) calls bob: what baresip heard.

WB-PESQ (ITU-T P.862.2) scores each recording against the speech, aligned by correlation
(:mod:`softphone.bench.quality_score`). Conditions:

- ``clean``: on 127.0.0.1, nothing lost. Target: softphone within 0.05 of Opus alone (the same
  speech through our Opus encoder and decoder at 32 kbit/s, offline, no network, no playout).
- ``random``: 5 % of RTP packets dropped at random, ``burst``: 5 in a row out of every 100; an
  nftables rule in the caller's namespace (:func:`nft_rules`) drops them both ways (RTP only,
  RTCP passes so that each side can report loss). The rule is loaded afresh for every call, so
  the burst counter starts with the call and the bursts fall on the same speech for both. The callers run in one network namespace and
  bob in another (:mod:`softphone.lab.netns_pair`), made and removed by the bench; it needs
  root. Target: softphone at least 0.3 above what baresip heard under the same loss.

The table gives the median of the calls (and their range) heard by softphone and by baresip,
their difference, the target and pass/fail. Exit status: 0 every target met, 1 a target
missed, 2 usage errors or a peer that is missing or failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final, TextIO

from softphone.bench.workdir import add_output_options, whole_number, workdir

COMMANDS: Final = ("quality",)
DEFAULT_SPEECH: Final = Path("tests/data/audio/speech16k.wav")
CLEAN_TOLERANCE: Final = 0.05
"""A clean call may score this much below Opus alone."""
LOSS_MARGIN: Final = 0.3
"""Under loss, softphone must score this much above baresip."""
LOSS_PERCENT: Final = 5
RTP_PORTS: Final = (30000, 30099)
"""bob's RTP port range (``rtp_ports``): the drop rule matches its even ports (RTP), not the odd
ones (RTCP, RFC 3550 §11), so that receiver reports still get through."""
EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_ERROR = 2


class Loss(Enum):
    """A loss condition and the nftables ``numgen`` expression that makes it."""

    CLEAN = "clean"
    RANDOM = "random"  # each packet dropped with probability 5 %
    BURST = "burst"  # 5 in a row out of every 100

    @property
    def numgen(self) -> str | None:
        if self is Loss.RANDOM:
            return f"numgen random mod 100 < {LOSS_PERCENT}"
        if self is Loss.BURST:
            return f"numgen inc mod 100 < {LOSS_PERCENT}"
        return None


TABLE: Final = "softphone_quality_loss"


def nft_rules(loss: Loss, far_host: str, rtp_ports: tuple[int, int] = RTP_PORTS) -> str:
    """An nftables ruleset for the callers' namespace that drops RTP to and from ``far_host``
    (its even ports in ``rtp_ports``) by ``loss``'s pattern, counting what it drops. Each
    direction has its own rule, so its own ``numgen`` (random draws, or a packet counter)."""
    numgen = loss.numgen
    if numgen is None:
        raise ValueError("a clean call needs no drop rule")
    low, high = rtp_ports
    if not 0 < low <= high < 65536 or low % 2:
        raise ValueError(f"bad RTP port range {low}-{high} (even start, within 1-65535)")
    return (
        f"table inet {TABLE} {{\n"
        "  chain in {\n"
        "    type filter hook input priority -100; policy accept;\n"
        f"    ip saddr {far_host} udp sport {low}-{high} udp sport & 1 == 0 {numgen} "
        "counter drop\n"
        "  }\n"
        "  chain out {\n"
        "    type filter hook output priority -100; policy accept;\n"
        f"    ip daddr {far_host} udp dport {low}-{high} udp dport & 1 == 0 {numgen} "
        "counter drop\n"
        "  }\n"
        "}\n"
    )


def parse_drop_counts(listing: str) -> tuple[int, int]:
    """Packets dropped (into the namespace, out of it) from ``nft list table``'s output."""
    counts = [0, 0]
    chain = -1
    for line in listing.splitlines():
        words = line.split()
        if words[:2] == ["chain", "in"]:
            chain = 0
        elif words[:2] == ["chain", "out"]:
            chain = 1
        elif "counter" in words and "packets" in words and chain >= 0:
            counts[chain] += int(words[words.index("packets") + 1])
    return counts[0], counts[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScore:
    """One call's WB-PESQ, with what the listener's playout said about it (softphone only)."""

    pesq: float
    lag_ms: float
    dropped_in: int = 0  # packets the rule dropped toward the callers
    dropped_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """Every call of one loss condition, and the verdict."""

    loss: Loss
    softphone: tuple[CallScore, ...]
    baresip: tuple[CallScore, ...]
    opus_alone: float

    @property
    def softphone_median(self) -> float:
        return statistics.median(c.pesq for c in self.softphone)

    @property
    def baresip_median(self) -> float:
        return statistics.median(c.pesq for c in self.baresip)

    @property
    def difference(self) -> float:
        return self.softphone_median - self.baresip_median

    @property
    def target(self) -> str:
        if self.loss is Loss.CLEAN:
            return f"every call >= {self.opus_alone - CLEAN_TOLERANCE:.2f} (Opus alone - {CLEAN_TOLERANCE})"
        return f"difference >= {LOSS_MARGIN}"

    @property
    def met(self) -> bool:
        if self.loss is Loss.CLEAN:
            floor = self.opus_alone - CLEAN_TOLERANCE
            return all(c.pesq >= floor - 1e-9 for c in self.softphone)
        return self.difference >= LOSS_MARGIN - 1e-9

    def to_json(self) -> dict[str, Any]:
        return {
            "loss": self.loss.value,
            "softphone": [round(c.pesq, 3) for c in self.softphone],
            "baresip": [round(c.pesq, 3) for c in self.baresip],
            "softphone_median": round(self.softphone_median, 3),
            "baresip_median": round(self.baresip_median, 3),
            "difference": round(self.difference, 3),
            "opus_alone": round(self.opus_alone, 3),
            "target": self.target,
            "met": self.met,
            "dropped": [[c.dropped_in, c.dropped_out] for c in self.softphone + self.baresip],
            "softphone_stats": [_stat_subset(c.stats) for c in self.softphone],
        }


STAT_KEYS: Final = (
    "packets_received",
    "packets_lost",
    "late_packets",
    "concealed_ms",
    "fec_frames",
    "stretched_ms",
    "jitter_buffer_ms",
)


def _stat_subset(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: stats[k] for k in STAT_KEYS if k in stats}


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def table(conditions: list[Condition], *, seconds: float) -> str:
    rows = [
        f"WB-PESQ of {seconds:g} s Opus calls with baresip (medians; range in brackets); "
        f"Opus alone {conditions[0].opus_alone:.2f}"
        if conditions
        else "no calls",
        f"{'loss':8s} {'softphone':>20s} {'baresip':>20s} {'diff':>6s}  {'target':40s} result",
    ]
    for c in conditions:
        ours = [s.pesq for s in c.softphone]
        theirs = [s.pesq for s in c.baresip]
        rows.append(
            f"{c.loss.value:8s} {c.softphone_median:8.2f} [{_span(ours):>9s}] "
            f"{c.baresip_median:8.2f} [{_span(theirs):>9s}] {c.difference:+6.2f}  "
            f"{c.target:40s} {'PASS' if c.met else 'FAIL'}"
        )
    for c in conditions:
        for i, (ours_i, theirs_i) in enumerate(zip(c.softphone, c.baresip, strict=False), 1):
            rows.append(
                f"  {c.loss.value} call {i}: softphone {ours_i.pesq:.2f}, baresip "
                f"{theirs_i.pesq:.2f}; dropped toward/from the callers "
                f"{ours_i.dropped_in}/{ours_i.dropped_out} (softphone), "
                f"{theirs_i.dropped_in}/{theirs_i.dropped_out} (baresip); "
                f"softphone's playout {_stat_subset(ours_i.stats)}"
            )
    return "\n".join(rows)


def add_commands(subparsers: Any) -> None:
    quality = subparsers.add_parser(
        "quality", help="WB-PESQ of Opus calls, softphone vs baresip, clean and under loss"
    )
    quality.add_argument("--calls", type=whole_number(1, 100), default=3, metavar="N")
    quality.add_argument(
        "--seconds", type=float, default=14.0, metavar="S", help="talk per call (default 14)"
    )
    quality.add_argument(
        "--loss",
        action="append",
        choices=[loss.value for loss in Loss],
        help="a condition (repeatable; default: clean, random and burst)",
    )
    quality.add_argument("--speech", type=Path, default=DEFAULT_SPEECH, metavar="REF.wav")
    add_output_options(quality, keeps="configs, recordings and peer logs")


def run(args: argparse.Namespace, *, out: TextIO) -> int:
    from softphone.lab.process import LabError

    if not args.speech.is_file():
        print(f"softphone bench quality: {args.speech}: no such file", file=sys.stderr)
        return EXIT_ERROR
    if not 6.0 <= args.seconds <= 60.0:
        print("softphone bench quality: --seconds must be within 6-60", file=sys.stderr)
        return EXIT_ERROR
    losses = [Loss(v) for v in (args.loss or [loss.value for loss in Loss])]
    try:
        import pesq  # noqa: F401
    except ImportError:
        print("softphone bench quality: needs the pesq package: pip install pesq", file=sys.stderr)
        return EXIT_ERROR
    from softphone.bench.quality_calls import run_condition
    from softphone.bench.quality_score import opus_alone

    try:
        with workdir(args.workdir, prefix="softphone-quality-") as where:
            reference = opus_alone(args.speech.resolve())
            conditions = [
                run_condition(
                    where / loss.value,
                    args.speech.resolve(),
                    loss,
                    calls=args.calls,
                    seconds=args.seconds,
                    opus_alone=reference,
                )
                for loss in losses
            ]
    except LabError as exc:
        print(f"softphone bench quality: {exc}", file=sys.stderr)
        return EXIT_ERROR
    met = all(c.met for c in conditions)
    if args.json:
        payload = {
            "benchmark": "quality",
            "seconds": args.seconds,
            "conditions": [c.to_json() for c in conditions],
            "met": met,
        }
        out.write(json.dumps(payload) + "\n")
    else:
        out.write(table(conditions, seconds=args.seconds) + "\n")
    out.flush()
    return EXIT_OK if met else EXIT_TARGET_MISSED
