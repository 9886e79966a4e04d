"""``softphone bench jitter-report``: every profile through our playout, the hindsight oracles
and PJSIP's jitter buffer, in one run and one table.

Targets per profile: late loss <= 1.5 %, mean <= 1.15 x the oracle's, lower than the fixed
60 ms buffer's wherever that one's late loss is within 1.5 %, stretched <= 5 %, and a mean lower
than PJSIP's (pjsua's defaults, softphone/bench/pjsip_jbuf.py). Without the PJSIP library the
report says so once and leaves its columns empty; with it they always run.
"""

from __future__ import annotations

import argparse
from typing import Final, TextIO

MAX_LATE_PCT: Final = 1.5
MAX_ORACLE_RATIO: Final = 1.15
MAX_STRETCHED_PCT: Final = 5.0
EXIT_OK: Final = 0
EXIT_TARGET_MISSED: Final = 1

HEADER: Final = (
    f"{'profile':30s} {'late%':>6s} {'mean':>7s} {'oracle':>7s} {'ratio':>6s} "
    f"{'s-orcl':>7s} {'s-ratio':>7s} {'b-orcl':>7s} {'b-ratio':>7s} {'fix60':>7s} "
    f"{'fix60%':>7s} {'concld':>8s} {'strch%':>7s} {'pjsip':>7s} {'pj-lt%':>6s} "
    f"{'vs-pj':>6s}  result"
)
LEGEND: Final = (
    "oracle/ratio: the hindsight oracle (offset may change 5 ms every packet, i.e. up to 25 % "
    "stretched);",
    "s-orcl/s-ratio: the stretch-paying oracle (1 ms of offset change costs {price:.0f} ms of "
    "summed delay; late <= 1 %);",
    "b-orcl/b-ratio: the same oracle held to our stretch budget (total |offset change| "
    "<= 5 % of the trace);",
    "pjsip/pj-lt%/vs-pj: PJSIP 2.15's pjmedia_jbuf with pjsua's defaults (progressive discard), "
    "mean over 4 sound-card phases, its late loss, and our mean / its mean",
)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The report for ``args`` (trace, speech, codec, profile); the exit status."""
    from softphone.bench import pjsip_jbuf
    from softphone.bench.jitter import read_speech, run, score
    from softphone.bench.oracle import (
        STRETCH_PRICE,
        budget_oracle,
        fixed_buffer,
        oracle,
        stretch_oracle,
    )
    from softphone.bench.traces import UNSEEN_PROFILES, load_trace, profile_names
    from softphone.media.codecs import get_codec

    codec = get_codec(args.codec)
    names = list(args.profile) if args.profile else profile_names(args.trace)
    speech = read_speech(args.speech, codec.sample_rate)
    pjsip_missing = pjsip_jbuf.available()
    print(f"codec {args.codec}; ms unless marked; 'unseen' = not tuned on", file=out)
    for line in LEGEND:
        print(line.format(price=STRETCH_PRICE), file=out)
    if pjsip_missing is not None:
        print(f"PJSIP columns left empty: {pjsip_missing}", file=out)
    print(HEADER, file=out)
    failed = 0
    details: list[str] = []
    for name in names:
        send, arrival = load_trace(args.trace, name)
        log, _ = run(send, arrival, speech, args.codec)
        s = score(send, arrival, log)
        best = oracle(send, arrival)
        paying = stretch_oracle(send, arrival)
        budget = budget_oracle(send, arrival)
        fixed = fixed_buffer(send, arrival)
        pj = None if pjsip_missing else pjsip_jbuf.run(send, arrival, codec.clock_rate)
        misses = []
        if s.late_loss_pct > MAX_LATE_PCT:
            misses.append("late")
        if s.mean_ms > MAX_ORACLE_RATIO * best.mean_ms:
            misses.append("oracle")
        if fixed.late_fraction * 100 <= MAX_LATE_PCT and s.mean_ms >= fixed.mean_ms:
            misses.append("fixed60")
        if s.stretched_pct > MAX_STRETCHED_PCT:
            misses.append("stretch")
        if pj is not None and s.mean_ms >= pj.mean_ms:
            misses.append("pjsip")
        failed += bool(misses)
        verdict = "PASS" if not misses else "FAIL " + ",".join(misses)
        if s.mean_ms > MAX_ORACLE_RATIO * budget.mean_ms:
            verdict += " (b-oracle too)"
        tag = name + (" (unseen)" if name in UNSEEN_PROFILES else "")
        pj_cols = (
            f"{pj.mean_ms:7.1f} {pj.late_loss_pct:6.2f} {s.mean_ms / pj.mean_ms:6.2f}"
            if pj is not None
            else f"{'-':>7s} {'-':>6s} {'-':>6s}"
        )
        print(
            f"{tag:30s} {s.late_loss_pct:6.2f} {s.mean_ms:7.1f} {best.mean_ms:7.1f} "
            f"{s.mean_ms / best.mean_ms:6.2f} {paying.mean_ms:7.1f} "
            f"{s.mean_ms / paying.mean_ms:7.2f} {budget.mean_ms:7.1f} "
            f"{s.mean_ms / budget.mean_ms:7.2f} {fixed.mean_ms:7.1f} "
            f"{100 * fixed.late_fraction:7.2f} {s.concealed_ms:8.0f} {s.stretched_pct:7.2f} "
            f"{pj_cols}  {verdict}",
            file=out,
        )
        out.flush()
        paying_stretch = 100.0 * paying.stretched_ms / (len(send) * 20.0)
        pj_detail = (
            f"{pj.p95_ms:7.1f} {pj.concealed_ms:8.0f} {pj.discarded_pct:7.2f} {pj.rejected:7d} "
            f"{min(pj.phase_means_ms):7.1f} {max(pj.phase_means_ms):7.1f}"
            if pj is not None
            else f"{'-':>7s} {'-':>8s} {'-':>7s} {'-':>7s} {'-':>7s} {'-':>7s}"
        )
        details.append(f"{tag:30s} {paying_stretch:8.2f} {s.p95_ms:7.1f} {pj_detail}")
    print(
        "s-strch%: the stretch-paying oracle's stretched share; p95: 95th percentile "
        "mouth-to-ear; PJSIP's concealed (missing or empty frames), discarded frames' share "
        "(how it cuts delay: it does not time-stretch), packets refused as too late, and its "
        "lowest and highest mean over the 4 phases",
        file=out,
    )
    print(
        f"{'profile':30s} {'s-strch%':>8s} {'p95':>7s} {'pj-p95':>7s} {'pj-cncl':>8s} "
        f"{'pj-dsc%':>7s} {'pj-rejt':>7s} {'pj-min':>7s} {'pj-max':>7s}",
        file=out,
    )
    for line in details:
        print(line, file=out)
    return EXIT_OK if failed == 0 else EXIT_TARGET_MISSED
