"""SIPp against ``softphone listen`` and against baresip, the same scenario in the same run.

- :func:`flood`: a scanner's INVITEs to users that are not the phone's (``flood_calls`` at
  ``flood_rate``/s): every one must get its 404; unanswered INVITEs and the time to answer.
- :func:`ramp`: 1 s calls, the rate rising by ``step`` every ``step_s`` up to ``max_rate``/s
  and held there for ``hold_s``: failed calls and INVITE-to-200 p50/p99.
- :func:`held`: ``calls`` calls up at once with RTP both ways (SIPp streams mu-law speech),
  measured over ``seconds``: CPU per call, RSS, threads, open files.

Both phones answer on 127.0.0.1 without a registrar: softphone as ``listen --auto-answer
--no-audio`` (silence out, what comes in decoded and played nowhere), baresip with
``answermode=auto``, a tone as its microphone and no player. Each runs alone while SIPp drives it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from softphone.bench.reliability.peers import ProcessSample, SoftphoneListen, sample_process
from softphone.lab.baresip import Baresip
from softphone.lab.process import HOST, LabError
from softphone.lab.sipp import Sipp, SippResult

__all__ = ["FloodFigures", "HeldFigures", "RampFigures", "flood", "held", "ramp"]

Phone = Literal["softphone", "baresip"]
PHONES: tuple[Phone, ...] = ("softphone", "baresip")
SCANNED_USERS = ("100", "101", "1000", "admin", "test", "guest", "operator", "support", "sip")


@dataclass(slots=True)
class _Running:
    phone: Phone
    host: str
    port: int
    service: str
    pid: int
    offered: Callable[[], int]  # calls that reached it so far (rang or were answered)
    established: Callable[[], int]  # calls answered and up so far
    # softphone only: stop it (SIGTERM) and say (calls reported, calls without a call_ended)
    stop_counting: Callable[[], tuple[int, int]] | None = None

    def sample(self) -> ProcessSample:
        return sample_process(self.pid)


@contextlib.contextmanager
def running(phone: Phone, workdir: Path, *, max_calls: int) -> Iterator[_Running]:
    """The phone, answering on 127.0.0.1, for as long as the block runs."""
    if phone == "softphone":
        sp = SoftphoneListen(workdir / "softphone").start()

        def states(state: str) -> int:
            return sp.count(lambda e: e.get("event") == "call_state" and e.get("state") == state)

        def stop_counting() -> tuple[int, int]:
            sp.stop()
            return sp.unended_calls()

        try:
            yield _Running(
                phone,
                HOST,
                sp.sip_port,
                "softphone",
                sp.pid,
                lambda: sp.count(lambda e: e.get("event") == "incoming_call"),
                lambda: states("established"),
                stop_counting,
            )
        finally:
            sp.stop()
        return
    bs = Baresip(workdir / "baresip", user="bob", auto_answer=True, max_calls=max_calls).start()

    def seen(*types: str) -> int:
        return sum(1 for e in bs.events if e.get("type") in types)

    try:
        # With answermode=auto baresip reports an answered call as CALL_ESTABLISHED only.
        yield _Running(
            phone,
            HOST,
            bs.sip_port,
            "bob",
            bs.pid,
            lambda: seen("CALL_INCOMING", "CALL_ESTABLISHED"),
            lambda: seen("CALL_ESTABLISHED"),
        )
    finally:
        bs.stop()


# --------------------------------------------------------------------------- the scanner flood


@dataclass(frozen=True, slots=True, kw_only=True)
class FloodFigures:
    phone: Phone
    sent: int
    unanswered: int
    answer_p50_ms: float | None
    answer_p99_ms: float | None
    answer_max_ms: float | None
    retransmissions: int
    rang: int  # calls the phone was offered (must be 0: nobody it knows was called)
    cpu_s: float
    elapsed_s: float


def flood(workdir: Path, *, calls: int, rate: float) -> dict[Phone, FloodFigures]:
    users = [
        f"{SCANNED_USERS[i % len(SCANNED_USERS)]}{i // len(SCANNED_USERS)}" for i in range(calls)
    ]
    out: dict[Phone, FloodFigures] = {}
    for phone in PHONES:
        with running(phone, workdir / f"flood-{phone}", max_calls=4) as peer:
            before = peer.sample().cpu_s
            sipp = Sipp(
                workdir / f"flood-{phone}" / "sipp",
                "scanner_flood",
                (peer.host, peer.port),
                rate=rate,
                calls=calls,
                limit=max(1000, int(rate * 4)),
                users=users,
                recv_timeout_ms=8000,
                timeout_s=calls / rate + 60,
            ).start()
            result = sipp.wait()
            out[phone] = FloodFigures(
                phone=phone,
                sent=result.created,
                unanswered=result.unanswered,
                answer_p50_ms=result.answer_percentile(0.5),
                answer_p99_ms=result.answer_percentile(0.99),
                answer_max_ms=max(result.answer_ms, default=None),
                retransmissions=result.retransmissions,
                rang=peer.offered(),
                cpu_s=peer.sample().cpu_s - before,
                elapsed_s=result.elapsed_s,
            )
    return out


# --------------------------------------------------------------------------- the call-rate ramp


@dataclass(frozen=True, slots=True, kw_only=True)
class RampFigures:
    phone: Phone
    calls: int
    failed: int
    unanswered: int
    invite_to_200_p50_ms: float | None
    invite_to_200_p99_ms: float | None
    invite_to_200_max_ms: float | None
    cpu_s: float
    max_rate: float
    # softphone: calls it reported, and those without a call_ended once it had exited (SIGTERM
    # right after the ramp): the event stream must drain before exit
    reported: int | None = None
    unended: int | None = None


def ramp_calls(start: float, step: float, step_s: int, max_rate: float, hold_s: float) -> int:
    """How many calls SIPp makes climbing from ``start`` by ``step`` every ``step_s`` to
    ``max_rate``, then ``hold_s`` at ``max_rate``."""
    total, rate = 0.0, start
    while rate < max_rate:
        total += rate * step_s
        rate += step
    return int(total + max_rate * hold_s)


def ramp(
    workdir: Path, *, max_rate: float, step: float, step_s: int, hold_s: float, call_s: float
) -> dict[Phone, RampFigures]:
    calls = ramp_calls(step, step, step_s, max_rate, hold_s)
    out: dict[Phone, RampFigures] = {}
    for phone in PHONES:
        concurrent = int(max_rate * (call_s + 2)) + 20
        with running(phone, workdir / f"ramp-{phone}", max_calls=concurrent) as peer:
            before = peer.sample().cpu_s
            result = Sipp(
                workdir / f"ramp-{phone}" / "sipp",
                "call",
                (peer.host, peer.port),
                service=peer.service,
                rate=step,
                rate_increase=step,
                rate_period_s=step_s,
                rate_max=max_rate,
                calls=calls,
                limit=concurrent,
                call_ms=int(call_s * 1000),
                recv_timeout_ms=8000,
                timeout_s=calls / max_rate * 2 + 120,
            ).start()
            done = result.wait()
            cpu_s = peer.sample().cpu_s - before
            counted = peer.stop_counting() if peer.stop_counting is not None else (None, None)
            out[phone] = _ramp_figures(phone, done, cpu_s, max_rate, counted)
    return out


def _ramp_figures(
    phone: Phone,
    result: SippResult,
    cpu_s: float,
    max_rate: float,
    counted: tuple[int, int] | tuple[None, None] = (None, None),
) -> RampFigures:
    return RampFigures(
        phone=phone,
        calls=result.created,
        failed=result.failed,
        unanswered=result.unanswered,
        invite_to_200_p50_ms=result.answer_percentile(0.5),
        invite_to_200_p99_ms=result.answer_percentile(0.99),
        invite_to_200_max_ms=max(result.answer_ms, default=None),
        cpu_s=cpu_s,
        max_rate=max_rate,
        reported=counted[0],
        unended=counted[1],
    )


# --------------------------------------------------------------------------- held calls


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldFigures:
    phone: Phone
    calls: int
    seconds: float
    cpu_s: float
    rss_mb: float
    rss_idle_mb: float
    threads: int
    fds: int
    failed: int

    @property
    def cpu_ms_per_call_s(self) -> float:
        """CPU milliseconds per second of one call (= tenths of a percent of a core)."""
        return 1000 * self.cpu_s / (self.calls * self.seconds)


def held(workdir: Path, *, calls: int, seconds: float, rtp_wav: Path) -> dict[Phone, HeldFigures]:
    out: dict[Phone, HeldFigures] = {}
    for phone in PHONES:
        with running(phone, workdir / f"held-{phone}", max_calls=calls + 4) as peer:
            idle = peer.sample()
            sipp = Sipp(
                workdir / f"held-{phone}" / "sipp",
                "call",
                (peer.host, peer.port),
                service=peer.service,
                rate=10,
                calls=calls,
                limit=calls,
                call_ms=int((seconds + calls / 10 + 15) * 1000),
                rtp_wav=rtp_wav,
                timeout_s=seconds + calls / 10 + 90,
            ).start()
            deadline = time.monotonic() + calls / 10 + 20
            while peer.established() < calls and time.monotonic() < deadline:
                time.sleep(0.2)  # polling another process's counter; bounded by the deadline
            if peer.established() < calls:
                sipp.stop()
                raise LabError(f"{phone}: only {peer.established()} of {calls} calls are up")
            time.sleep(2.0)  # let the last answers and their first RTP settle before measuring
            start = peer.sample()
            time.sleep(seconds)
            end = peer.sample()
            result = sipp.wait()
            out[phone] = HeldFigures(
                phone=phone,
                calls=calls,
                seconds=seconds,
                cpu_s=end.cpu_s - start.cpu_s,
                rss_mb=end.rss_mb,
                rss_idle_mb=idle.rss_mb,
                threads=end.threads,
                fds=end.fds,
                failed=result.failed,
            )
    return out
