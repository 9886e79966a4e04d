"""The soak: ``softphone listen --auto-answer`` taking a call every few seconds for minutes or an
hour, with what it costs sampled all along.

SIPp calls every ``every_s`` seconds (PCMU, mu-law speech streamed both ways, each call
``call_s`` long). Every ``sample_s`` the phone's RSS, threads, open files and CPU are read from
/proc. The figures: failed calls; RSS at the start of the second half and at the end, and its
growth per hour fitted (least squares) over the second half, when the caches and pools of the
first calls are warm; threads and open files at the end against the first sample taken with no
call up; and whether every call it reported has its call_ended in what it wrote before exiting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from softphone.bench.reliability.peers import ProcessSample, SoftphoneListen, sample_process
from softphone.lab.process import HOST
from softphone.lab.sipp import Sipp

__all__ = ["SoakFigures", "soak"]


@dataclass(slots=True)
class SoakFigures:
    seconds: float
    calls: int = 0
    failed: int = 0
    samples: list[tuple[float, ProcessSample]] = field(default_factory=list)
    # once it has exited (SIGTERM): calls it reported, and those it wrote no call_ended for
    reported: int | None = None
    unended: int | None = None

    def _half(self) -> list[tuple[float, ProcessSample]]:
        return [(t, s) for t, s in self.samples if t >= self.seconds / 2] or self.samples

    @property
    def rss_growth_mb_per_hour(self) -> float:
        half = self._half()
        if len(half) < 3:
            return 0.0
        t = np.array([t for t, _ in half])
        rss = np.array([s.rss_mb for _, s in half])
        slope = float(np.polyfit(t, rss, 1)[0])
        return slope * 3600

    @property
    def rss_mid_mb(self) -> float:
        return self._half()[0][1].rss_mb

    @property
    def rss_end_mb(self) -> float:
        return self.samples[-1][1].rss_mb

    @property
    def rss_max_mb(self) -> float:
        return max(s.rss_mb for _, s in self.samples)

    @property
    def idle(self) -> ProcessSample:
        return self.samples[0][1]

    @property
    def end(self) -> ProcessSample:
        return self.samples[-1][1]

    @property
    def cpu_percent(self) -> float:
        spent = self.samples[-1][1].cpu_s - self.samples[0][1].cpu_s
        return 100 * spent / max(self.samples[-1][0] - self.samples[0][0], 1e-9)


def soak(
    workdir: Path,
    *,
    seconds: float,
    rtp_wav: Path,
    every_s: float = 4.0,
    call_s: float = 2.0,
    sample_s: float = 10.0,
) -> SoakFigures:
    figures = SoakFigures(seconds=seconds)
    phone = SoftphoneListen(workdir / "softphone").start()
    try:
        started = time.monotonic()
        figures.samples.append((0.0, sample_process(phone.pid)))
        calls = max(1, int(seconds / every_s))
        sipp = Sipp(
            workdir / "sipp",
            "call",
            (HOST, phone.sip_port),
            service="softphone",
            rate=1,
            rate_period_ms=int(every_s * 1000),
            calls=calls,
            limit=4,
            call_ms=int(call_s * 1000),
            rtp_wav=rtp_wav,
            timeout_s=seconds + 120,
        ).start()
        next_at = started + sample_s
        while sipp.alive():
            # Sampling another process on a fixed schedule; the run's length bounds the loop.
            time.sleep(max(0.0, min(next_at, started + seconds + 120) - time.monotonic()))
            if time.monotonic() >= next_at:
                figures.samples.append((time.monotonic() - started, sample_process(phone.pid)))
                next_at += sample_s
            if time.monotonic() > started + seconds + 120:
                break
        result = sipp.wait()
        time.sleep(2.0)  # the last call's media and timers wind down before the last sample
        figures.samples.append((time.monotonic() - started, sample_process(phone.pid)))
        figures.calls, figures.failed = result.created, result.failed
        figures.seconds = time.monotonic() - started
    finally:
        phone.stop()
    figures.reported, figures.unended = phone.unended_calls()
    return figures
