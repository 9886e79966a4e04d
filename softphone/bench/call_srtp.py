"""``softphone bench cpu --srtp``: what SRTP costs in CPU, softphone calling baresip.

The same full-duplex Opus call as ``softphone bench cpu`` (bench/call_cpu.py), run three times one
after the other: plain RTP, SDES-keyed SRTP (softphone ``media_encryption = "srtp"``, baresip
``mediaenc=srtp-mand``) and DTLS-SRTP (``dtls-srtp`` against baresip's ``dtls_srtp``). CPU is
softphone's utime+stime over the established call. The target: SRTP adds at most 10 % CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from softphone.bench.call_cpu import PACKETS_PER_S, CallCpu, softphone_to_baresip
from softphone.bench.call_peers import looped_wav
from softphone.lab.process import LabError

TARGET_RATIO: Final = 1.10

# label -> softphone's media_encryption, baresip's mediaenc
MODES: Final = {
    "plain": ("none", None),
    "sdes": ("srtp", "srtp-mand"),
    "dtls-srtp": ("dtls-srtp", "dtls_srtp"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SrtpCpuReport:
    calls: dict[str, CallCpu]
    suites: dict[str, str]

    def ratio(self, mode: str) -> float:
        """softphone's CPU in ``mode`` over its CPU with plain RTP (per second of call)."""
        plain = self.calls["plain"]
        call = self.calls[mode]
        return (call.caller_cpu_s / call.seconds) / max(plain.caller_cpu_s / plain.seconds, 1e-9)

    @property
    def met(self) -> bool:
        return all(self.ratio(m) <= TARGET_RATIO for m in self.calls if m != "plain")

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "cpu-srtp",
            "codec": "opus",
            "calls": {
                mode: {
                    "seconds": round(c.seconds, 3),
                    "softphone_cpu_s": round(c.caller_cpu_s, 3),
                    "softphone_percent": round(c.caller_percent, 2),
                    "baresip_cpu_s": round(c.callee_cpu_s, 3),
                    "suite": self.suites.get(mode),
                    "ratio_vs_plain": round(self.ratio(mode), 3),
                }
                for mode, c in self.calls.items()
            },
            "target_ratio": TARGET_RATIO,
            "met": self.met,
        }

    def table(self) -> str:
        rows = [
            f"{'call':11s} {'suite':25s} {'softphone CPU s':>15s} {'% core':>7s} "
            f"{'baresip CPU s':>13s} {'vs plain':>8s}"
        ]
        for mode, c in self.calls.items():
            rows.append(
                f"{mode:11s} {self.suites.get(mode) or '-':25s} {c.caller_cpu_s:15.2f} "
                f"{c.caller_percent:7.2f} {c.callee_cpu_s:13.2f} {self.ratio(mode):8.3f}"
            )
        seconds = self.calls["plain"].seconds
        verdict = "met" if self.met else "NOT met"
        rows.append(
            f"over {seconds:.1f} s of established call each (Opus 20 ms, both ways); "
            f"target: SRTP adds at most {100 * (TARGET_RATIO - 1):.0f} % CPU: {verdict}"
        )
        return "\n".join(rows)


def run_srtp_cpu(workdir: Path, speech: Path, seconds: float) -> SrtpCpuReport:
    wav = looped_wav(speech, workdir / "speech48k.wav", seconds + 60.0)
    calls: dict[str, CallCpu] = {}
    suites: dict[str, str] = {}
    for mode, (ours, theirs) in MODES.items():
        cpu, sent, received, suite = softphone_to_baresip(
            workdir,
            wav,
            seconds,
            media_encryption=ours,
            mediaenc=theirs,  # type: ignore[arg-type]
            label=f"softphone -> baresip {mode}",
        )
        if min(sent, received) < 0.9 * PACKETS_PER_S * seconds:
            raise LabError(
                f"{mode}: media did not flow both ways ({sent} sent, {received} received)"
            )
        calls[mode] = cpu
        if suite:
            suites[mode] = suite
    return SrtpCpuReport(calls=calls, suites=suites)
