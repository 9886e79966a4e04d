"""``softphone bench video``: video calls measured against baresip 1.0 in the same run.

    softphone bench video [--part delay|cpu|freeze|all] [--calls 3] [--seconds 12]
                          [--threshold-ms 200] [--workdir DIR] [--json]

The calls are made by bench/video_runs.py (how each side is set up and measured is there); this
module runs them, pairs the logs (bench/video_metrics.py) and prints one row per part:
softphone, baresip, the ratio, the target and whether it is met. Each part is several calls
(``--calls`` each side, alternating), and the figures are medians over the calls, because the
machine is shared.

- delay: glass-to-glass on loopback (the pattern made -> the decoded picture becomes the one
  the pane draws), the median over pictures of each call. Target: lower than baresip.
- cpu: CPU seconds of the caller per call second, 640x360 30 fps VP8 both ways. Target: at
  most 1.5x baresip.
- freeze: with 2 % of the video RTP dropped, the share of call time with a frozen picture (no
  new picture for more than ``--threshold-ms``) or a broken one (luma PSNR against the pattern
  picture of the counter it shows under ``BROKEN_PSNR_DB``, or a counter never sent). Ours:
  frozen from every drawn picture's instant, broken from pictures on show at random instants
  (~3 a second). baresip's: both from its snapshots at random instants. A snapshot is the next
  picture baresip decodes, so its wait is the forward wait to a new picture, which over uniform
  instants has the distribution of the picture's age (bench/video_metrics.py); it is read as
  the time from the command's answer to baresip's "png: wrote" line, less the median of that
  time over the calm lead-in (writing the PNG) beyond half a frame interval. Target: no more
  than baresip.

The threshold: 200 ms is six frame intervals at 30 fps, and about where the W3C WebRTC
statistics count a freeze (``freezeCount``: a frame shown longer than max(3 x the mean frame
duration, mean + 150 ms), 183 ms at 30 fps), so jitter in a steady stream never counts.

Exit status: 0 targets met, 1 a target missed, 2 a peer missing or failed (bench/call.py's).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Final, TextIO

from softphone.bench.workdir import add_output_options, number, whole_number, workdir

COMMAND: Final = "video"
PARTS: Final = ("delay", "cpu", "freeze")
BROKEN_PSNR_DB: Final = 30.0  # clean pictures score 45-90 dB here (RGB PNG round trip: ~50)
LOSS_PERCENT: Final = 2
LEAD_IN_S: Final = 5.0  # of each freeze call before the loss starts: warm-up and calibration
CPU_TARGET: Final = 1.5
EXIT_OK, EXIT_MISSED, EXIT_ERROR = 0, 1, 2


_count = whole_number(1, 1000)
_seconds = number(8, 600, why="a warm-up and a lead-in come first")


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("video", help="video calls vs baresip: delay, CPU, freezes")
    p.add_argument("--part", choices=(*PARTS, "all"), default="all")
    p.add_argument("--calls", type=_count, default=3, metavar="N", help="calls per side (3)")
    p.add_argument(
        "--seconds", type=_seconds, default=12.0, metavar="S", help="length of each call (12)"
    )
    p.add_argument("--threshold-ms", type=_count, default=200, metavar="MS")
    add_output_options(p, keeps="configs, peer logs and snapshots")


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from softphone.lab.netns_pair import namespaces_usable
    from softphone.lab.process import LabError

    stream = out or sys.stdout
    parts: tuple[str, ...] = PARTS if args.part == "all" else (args.part,)
    if "freeze" in parts and (why := namespaces_usable()) is not None:
        if args.part == "freeze":
            print(
                f"softphone bench video: the freeze part needs namespaces: {why}", file=sys.stderr
            )
            return EXIT_ERROR
        print(f"softphone bench video: freeze left out ({why})", file=sys.stderr)
        parts = tuple(p for p in parts if p != "freeze")
    results: dict[str, Any] = {}
    try:
        with workdir(args.workdir, prefix="softphone-bench-video-") as where:
            for part in parts:
                started = time.monotonic()
                results[part] = RUNNERS[part](where / part, args)
                results[part]["wall_s"] = round(time.monotonic() - started, 1)
    except LabError as exc:
        print(f"softphone bench video: {exc}", file=sys.stderr)
        return EXIT_ERROR
    payload = {"benchmark": "video", "calls": args.calls, "seconds": args.seconds, **results}
    if args.json:
        stream.write(json.dumps(payload) + "\n")
    else:
        stream.write(table(results) + "\n")
    stream.flush()
    return EXIT_OK if all(r["met"] for r in results.values()) else EXIT_MISSED


# --------------------------------------------------------------------------- delay


def _delay(where: Path, args: argparse.Namespace) -> dict[str, Any]:
    from softphone.bench import video_runs as vr
    from softphone.bench.video_metrics import median, pair_delays

    ours_exact: list[float] = []
    ours_sampled: list[float] = []
    theirs: list[dict[str, float]] = []
    bob = vr.start_baresip(where / "baresip", "bob")
    with vr.stopped(bob):
        for i in range(args.calls):
            sent, drawn = vr.ours_receiving(where / f"ours-{i}", args.seconds, seed=i + 1)
            t0 = float(drawn.get("established_at") or 0.0) + vr.WARM_UP_S
            delays, _ = pair_delays(sent["sent"], [d for d in drawn["drawn"] if d[1] >= t0])
            if not delays:
                raise_lab(f"our receiver drew no picture in call {i + 1}")
            ours_exact.append(median(delays))
            ours_sampled.append(_snapshot_method(sent["sent"], drawn["drawn"], t0, i))
            sent_b, shots = vr.baresip_receiving(
                where / f"baresip-{i}", bob, args.seconds, seed=i + 1
            )
            theirs.append(_baresip_delay(sent_b["sent"], shots))
    ours = median(ours_exact)
    base = median(t["estimate"] for t in theirs)
    return {
        "unit": "ms",
        "softphone": _ms(ours),
        "softphone_by_snapshot_method": _ms(median(ours_sampled)),
        "baresip": _ms(base),
        "baresip_low": _ms(median(t["low"] for t in theirs)),
        "baresip_high": _ms(median(t["high"] for t in theirs)),
        "baresip_samples": int(sum(t["samples"] for t in theirs)),
        "per_call_softphone": [_ms(v) for v in ours_exact],
        "per_call_baresip": [_ms(t["estimate"]) for t in theirs],
        "ratio": round(ours / base, 3),
        "target": "< 1 (lower than baresip)",
        "met": ours < base,
    }


def raise_lab(text: str) -> None:
    from softphone.lab.process import LabError

    raise LabError(text)


def _snapshot_method(
    sent: list[list[float]], drawn: list[list[float]], t0: float, seed: int
) -> float:
    """Our receiver read the way baresip is read: at random instants, the next drawn picture's
    counter and the snapshot estimate (bench/video_metrics.py ``sampled_delay``)."""
    import bisect

    from softphone.bench.video_metrics import median, sampled_delay

    pairs = [(int(c), float(t)) for c, t in sent]
    draws = sorted((float(t), int(c)) for c, t in drawn if t >= t0)
    if len(draws) < 2:
        return float("nan")
    rng = random.Random(seed)
    times = [t for t, _ in draws]
    estimates: list[float] = []
    c = draws[0][0]
    while True:
        c += rng.uniform(0.15, 0.45)
        i = bisect.bisect_left(times, c)
        if i >= len(draws):
            break
        sample = sampled_delay(pairs, c, c, draws[i][1], draws[i][0])
        if sample is not None:
            estimates.append(sample.estimate)
    return median(estimates)


def _baresip_delay(sent: list[list[float]], shots: Any) -> dict[str, float]:
    from softphone.bench.video_metrics import median, sampled_delay

    pairs = [(int(c), float(t)) for c, t in sent]
    samples = [
        s
        for shot in shots.shots
        if shot.counter is not None
        and (s := sampled_delay(pairs, shot.sent, shot.answered, shot.counter, shot.seen))
        is not None
    ]
    if not samples:
        raise_lab("no baresip snapshot could be paired with a picture we sent")
    return {
        "estimate": median(s.estimate for s in samples),
        "low": median(s.low for s in samples),
        "high": median(s.high for s in samples if s.high is not None),
        "samples": len(samples),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


# --------------------------------------------------------------------------- CPU


def _cpu(where: Path, args: argparse.Namespace) -> dict[str, Any]:
    from softphone.bench import video_runs as vr
    from softphone.bench.video_metrics import median

    calls: dict[str, list[Any]] = {k: [] for k in ("ours", "still", "audio", "theirs", "b-audio")}
    bob = vr.start_baresip(where / "baresip-callee", "bob")
    with vr.stopped(bob):
        for i in range(args.calls):
            for key, variant in (("ours", ""), ("still", "still"), ("audio", "no-video")):
                calls[key].append(
                    vr.cpu_softphone(
                        where / f"softphone-{key}-{i}", bob, args.seconds, i + 1, variant=variant
                    )
                )
            calls["theirs"].append(vr.cpu_baresip(where / f"baresip-{i}", bob, args.seconds))
            calls["b-audio"].append(
                vr.cpu_baresip(where / f"baresip-audio-{i}", bob, args.seconds, video=False)
            )
    m = {k: median(c.caller_per_s for c in v) for k, v in calls.items()}
    ours, theirs = calls["ours"], calls["theirs"]
    a, a_still, b = m["ours"], m["still"], m["theirs"]
    # What video adds to an audio-only call of the same caller, each side.
    video_ours, video_theirs = a - m["audio"], b - m["b-audio"]
    return {
        "unit": "CPU s per call s (caller)",
        "softphone": round(a, 3),
        "baresip": round(b, 3),
        "callee_baresip_in_softphone_calls": round(
            median(c.callee_cpu_s / c.seconds for c in ours), 3
        ),
        "callee_baresip_in_baresip_calls": round(
            median(c.callee_cpu_s / c.seconds for c in theirs), 3
        ),
        "softphone_frames_sent": [c.frames_sent for c in ours],
        "softphone_frames_received": [c.frames_received for c in ours],
        "per_call_softphone": [round(c.caller_per_s, 3) for c in ours],
        "per_call_baresip": [round(c.caller_per_s, 3) for c in theirs],
        # The same content as baresip's fakevideo: one still picture, over and over.
        "softphone_still": round(a_still, 3),
        "per_call_softphone_still": [round(c.caller_per_s, 3) for c in calls["still"]],
        "ratio_still": round(a_still / b, 3),
        # Audio-only calls of each caller, and what video adds to them.
        "softphone_audio_only": round(m["audio"], 3),
        "baresip_audio_only": round(m["b-audio"], 3),
        "softphone_video_increment": round(video_ours, 3),
        "baresip_video_increment": round(video_theirs, 3),
        "ratio_video_increment": round(video_ours / video_theirs, 3) if video_theirs > 0 else None,
        "ratio": round(a / b, 3),
        "target": f"<= {CPU_TARGET}",
        "met": a / b <= CPU_TARGET,
    }


# --------------------------------------------------------------------------- freeze


def _freeze(where: Path, args: argparse.Namespace) -> dict[str, Any]:
    from softphone.bench import video_runs as vr
    from softphone.bench.video_metrics import median
    from softphone.lab.netns_pair import NamespacePair

    threshold = args.threshold_ms / 1000.0
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    with NamespacePair("sp-vb") as pair:
        a, b = pair.namespace("a"), pair.namespace("b")
        src, dst = pair.address("a"), pair.address("b")
        bob = vr.start_baresip(where / "baresip", "bob", host=dst, netns=b)
        with vr.stopped(bob):
            for i in range(args.calls):
                lossy = _LossAt(b, src)
                sent, drawn = vr.ours_receiving(
                    where / f"ours-{i}",
                    args.seconds,
                    seed=i + 1,
                    bind=dst,
                    sender_netns=a,
                    sender_bind=src,
                    receiver_netns=b,
                    sample_every=0.3,
                    during=lossy.start,
                )
                ours.append({**_our_freezes(sent, drawn, lossy, threshold), **lossy.finish()})
                lossy = _LossAt(b, src)
                sent, shots = vr.baresip_receiving(
                    where / f"baresip-{i}",
                    bob,
                    args.seconds,
                    seed=i + 1,
                    sender_netns=a,
                    sender_bind=src,
                    during=lossy.start,
                )
                theirs.append({**_baresip_freezes(sent, shots, lossy, threshold), **lossy.finish()})
    keys = ("frozen", "broken", "frozen_or_broken", "loss_percent")
    summary_ours = {k: median(c[k] for c in ours) for k in keys}
    summary_theirs = {k: median(c[k] for c in theirs) for k in keys}
    a_share, b_share = summary_ours["frozen_or_broken"], summary_theirs["frozen_or_broken"]
    return {
        "unit": "% of call time under loss",
        "threshold_ms": args.threshold_ms,
        "softphone": round(100 * a_share, 2),
        "baresip": round(100 * b_share, 2),
        "softphone_parts": {k: round(100 * v, 2) for k, v in summary_ours.items()},
        "baresip_parts": {k: round(100 * v, 2) for k, v in summary_theirs.items()},
        "per_call_softphone": ours,
        "per_call_baresip": theirs,
        "ratio": round(a_share / b_share, 3) if b_share > 0 else None,
        "target": "<= baresip",
        "met": a_share <= b_share,
    }


class _LossAt:
    """Starts the loss rule ``LEAD_IN_S`` after the call is up; reads the counters after."""

    def __init__(self, netns: str, source: str) -> None:
        self.netns, self.source = netns, source
        self.at: float | None = None

    def start(self, t0: float) -> None:
        from softphone.bench import video_runs as vr

        vr.select_pause(max(0.0, t0 + LEAD_IN_S - time.monotonic()))
        vr.nft(self.netns, "-f", "-", stdin=vr.loss_ruleset(self.source, LOSS_PERCENT))
        self.at = time.monotonic()

    def finish(self) -> dict[str, float]:
        from softphone.bench import video_runs as vr

        if self.at is None:
            raise_lab("the loss rule never started")
        seen, dropped = vr.loss_counters(self.netns)
        vr.nft(self.netns, "delete", "table", "inet", vr.LOSS_TABLE)
        return {"loss_percent": dropped / seen if seen else 0.0, "video_packets": seen}


def _our_freezes(
    sent: dict[str, Any], drawn: dict[str, Any], loss: _LossAt, threshold: float
) -> dict[str, float]:
    from softphone.bench.video_metrics import forward_waits, frozen_share, wait_share

    assert loss.at is not None
    end = float(drawn.get("ended_at") or sent.get("ended_at") or 0.0)
    draws = [float(t) for _, t in drawn["drawn"]]
    frozen = frozen_share(draws, loss.at, end, threshold)
    sent_counters = {int(c) for c, _ in sent["sent"]}
    samples = [s for s in drawn["samples"] if loss.at <= s["t"] <= end]
    broken = [
        s["counter"] is None or s["counter"] not in sent_counters or s["psnr"] < BROKEN_PSNR_DB
        for s in samples
    ]
    broken_share = sum(broken) / len(broken) if broken else 0.0
    waits = forward_waits(draws, [s["t"] for s in samples])
    return {
        "frozen": frozen,
        "frozen_by_snapshot_method": wait_share(waits, threshold),
        "broken": broken_share,
        "frozen_or_broken": min(1.0, frozen + broken_share),
        "samples": len(samples),
    }


def _baresip_freezes(
    sent: dict[str, Any], shots: Any, loss: _LossAt, threshold: float
) -> dict[str, float]:
    """baresip's forward waits: answer-to-"png: wrote" minus its calm overhead (the PNG
    writing and the log line: the median over the calm lead-in, less half a frame interval)."""
    from softphone.bench.video_metrics import median, wait_share

    assert loss.at is not None
    calm = [s for s in shots.shots if s.answered < loss.at]
    lossy = [s for s in shots.shots if s.sent >= loss.at]
    times = [float(t) for _, t in sent["sent"]]
    interval = (times[-1] - times[0]) / max(1, len(times) - 1) if len(times) > 1 else 1 / 30
    overhead = median(s.seen - s.answered for s in calm) - interval / 2 if calm else 0.0
    waits = [s.seen - s.answered - overhead for s in lossy]
    sent_counters = {int(c) for c, _ in sent["sent"]}
    broken = [
        s.counter is None or s.counter not in sent_counters or (s.psnr or 0.0) < BROKEN_PSNR_DB
        for s in lossy
    ]
    frozen = wait_share(waits, threshold) if waits else 0.0
    broken_share = sum(broken) / len(broken) if broken else 0.0
    return {
        "frozen": frozen,
        "broken": broken_share,
        "frozen_or_broken": min(1.0, frozen + broken_share),
        "samples": len(lossy),
        "calm_samples": len(calm),
        "overhead_ms": round(overhead * 1000, 1),
    }


RUNNERS: Final = {"delay": _delay, "cpu": _cpu, "freeze": _freeze}


# --------------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    rows = [
        f"{'benchmark':10s} {'softphone':>10s} {'baresip':>10s} {'ratio':>7s}  {'target':26s} result"
    ]
    for part, r in results.items():
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "-"
        rows.append(
            f"{part:10s} {r['softphone']:>10} {r['baresip']:>10} {ratio:>7s}  {r['target']:26s} "
            f"{'PASS' if r['met'] else 'FAIL'}   ({r['unit']})"
        )
    if "delay" in results:
        d = results["delay"]
        rows.append(
            f"delay: baresip by snapshot bounds [{d['baresip_low']}, {d['baresip_high']}] ms over "
            f"{d['baresip_samples']} snapshots; softphone by the same method "
            f"{d['softphone_by_snapshot_method']} ms"
        )
    if "cpu" in results:
        c = results["cpu"]
        rows.append(
            f"cpu: softphone sending a still picture as baresip's fakevideo does: "
            f"{c['softphone_still']} ({c['ratio_still']:.2f}x baresip); audio-only calls: "
            f"softphone {c['softphone_audio_only']}, baresip {c['baresip_audio_only']}; what video "
            f"adds: softphone {c['softphone_video_increment']}, baresip "
            f"{c['baresip_video_increment']}"
        )
    if "freeze" in results:
        f = results["freeze"]
        rows.append(
            f"freeze (> {f['threshold_ms']} ms or broken): softphone {f['softphone_parts']}; "
            f"baresip {f['baresip_parts']}"
        )
    return "\n".join(rows)
