"""``softphone bench setup``: call set-up time, from the INVITE leaving the caller to the first
audio reaching both ends, softphone against baresip as the caller of the same baresip.

    softphone bench setup [--calls 10] [--workdir DIR] [--json]

What a person waits for is the far end's voice and their own reaching the other side: the time
from the INVITE to the *later* of the first RTP arriving at the callee and the first RTP
arriving at the caller. Only the wire knows these for baresip as well as for us, so they are
read from the kernel's timestamps of the datagrams themselves (:mod:`softphone.lab.sniff`):

- the INVITE: the first datagram starting ``INVITE`` sent to the callee's SIP address;
- the two media addresses: the ``m=audio`` ports of the INVITE's offer (the caller's) and of
  the callee's 200 to it (the callee's), both on 127.0.0.1 here;
- the first RTP (RFC 7983 first byte, RTCP left out) reaching each of them.

Each call is made by a new ``softphone dial`` process (its start-up is before the INVITE and
not counted) and by one long-running baresip, alternately, so that both see the same machine.
Everything runs on 127.0.0.1 and every process is stopped by its pid. The figures are the
median and the 90th percentile per caller and their ratio.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from softphone.bench.call_peers import SoftphoneDial, stopping
from softphone.lab.baresip import Baresip
from softphone.lab.process import HOST, LabError
from softphone.lab.sniff import Datagram, PacketSniffer, is_rtp

CALL_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.05
_AUDIO_PORT: Final = re.compile(rb"(?m)^m=audio (\d+) ")


@dataclass(frozen=True, slots=True)
class SetupTime:
    invite_at: float
    at_callee: float | None  # the first RTP reaching the callee
    at_caller: float | None  # the first RTP reaching the caller

    @property
    def complete(self) -> bool:
        return self.at_callee is not None and self.at_caller is not None

    def leg_ms(self, at: float | None) -> float | None:
        return None if at is None else (at - self.invite_at) * 1000.0

    @property
    def both_ways_ms(self) -> float | None:
        if self.at_callee is None or self.at_caller is None:
            return None
        return (max(self.at_callee, self.at_caller) - self.invite_at) * 1000.0


def audio_port(head: bytes) -> int | None:
    """The ``m=audio`` port of the SDP in a SIP message, None without one."""
    found = _AUDIO_PORT.search(head)
    return int(found.group(1)) if found else None


def measure(datagrams: Iterable[Datagram], callee_sip: tuple[str, int]) -> SetupTime | None:
    """The set-up of the first call to ``callee_sip`` in ``datagrams`` (one sniffer on the
    loopback interface, which sees each datagram leave and arrive): None before its INVITE."""
    invite: Datagram | None = None
    caller_port = callee_port = None
    at_callee = at_caller = None
    for d in sorted(datagrams, key=lambda d: d.at):
        if invite is None:
            if d.outgoing and d.dst == callee_sip and d.head.startswith(b"INVITE "):
                invite, caller_port = d, audio_port(d.head)
            continue
        if (
            callee_port is None
            and d.src == callee_sip
            and d.head.startswith(b"SIP/2.0 200 ")
            and b"INVITE" in d.head
        ):
            callee_port = audio_port(d.head)
        if d.outgoing or not is_rtp(d.head) or d.dst[0] != callee_sip[0]:
            continue
        if at_callee is None and callee_port is not None and d.dst[1] == callee_port:
            at_callee = d.at
        if at_caller is None and caller_port is not None and d.dst[1] == caller_port:
            at_caller = d.at
    if invite is None:
        return None
    return SetupTime(invite.at, at_callee, at_caller)


def summary(times_ms: Sequence[float]) -> dict[str, float | int | None]:
    if not times_ms:
        return {"calls": 0, "median_ms": None, "p90_ms": None}
    ordered = sorted(times_ms)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "calls": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(p90, 1),
    }


def _wait_measured(sniffer: PacketSniffer, callee: tuple[str, int], what: str) -> SetupTime:
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while time.monotonic() < deadline:
        found = measure(sniffer.datagrams(), callee)
        if found is not None and found.complete:
            return found
        time.sleep(POLL_S)
    raise LabError(f"{what}: no audio both ways within {CALL_TIMEOUT_S:g} s of the INVITE")


def legs_of(found: SetupTime) -> tuple[float, float]:
    return (found.leg_ms(found.at_callee) or 0.0, found.leg_ms(found.at_caller) or 0.0)


def run(workdir: Path, calls: int) -> dict[str, Any]:
    """``calls`` calls by each caller to one auto-answering baresip on 127.0.0.1."""
    sniffer = PacketSniffer(name="setup-sniffer")
    callee = Baresip(workdir / "callee", user="bob", auto_answer=True, codecs="opus/48000/2")
    caller = Baresip(workdir / "caller", user="alice", codecs="opus/48000/2")
    measured: dict[str, list[float]] = {"softphone": [], "baresip": []}
    legs: dict[str, list[tuple[float, float]]] = {"softphone": [], "baresip": []}
    with stopping(sniffer, callee, caller):
        sniffer.start()
        callee.start()
        caller.start()
        target = (HOST, callee.sip_port)
        for n in range(calls):
            sniffer.clear()
            dial = SoftphoneDial(
                workdir / f"softphone-{n}",
                callee.uri,
                play=None,
                codecs=("opus",),
                extra_args=("--no-audio", "--duration", "1", "--log-level", "DEBUG"),
                # The calls go into the run's own history, not the user's.
                env={**os.environ, "XDG_DATA_HOME": str(workdir / "data")},
            )
            with stopping(dial):
                dial.start()
                found = _wait_measured(sniffer, target, "softphone")
            measured["softphone"].append(found.both_ways_ms or 0.0)
            legs["softphone"].append(legs_of(found))

            sniffer.clear()
            mark = caller.mark()
            caller.dial(callee.uri)
            try:
                found = _wait_measured(sniffer, target, "baresip")
            finally:
                caller.hangup()
                caller.wait_event("CALL_CLOSED", timeout_s=CALL_TIMEOUT_S, since=mark)
            measured["baresip"].append(found.both_ways_ms or 0.0)
            legs["baresip"].append(legs_of(found))
    return {
        "topology": "loopback, no NAT, no ICE",
        "calls_per_caller": calls,
        **comparison(measured, legs),
    }


def comparison(
    measured: dict[str, list[float]], legs: dict[str, list[tuple[float, float]]]
) -> dict[str, Any]:
    """Each caller's summary, leg medians and times, and the softphone/baresip median ratio."""
    result: dict[str, Any] = {
        "softphone": summary(measured["softphone"]),
        "baresip": summary(measured["baresip"]),
        "legs_ms": {
            who: {
                "to_callee_median": round(statistics.median(t[0] for t in legs[who]), 1),
                "to_caller_median": round(statistics.median(t[1] for t in legs[who]), 1),
            }
            for who in legs
            if legs[who]
        },
        "softphone_ms": [round(t, 1) for t in measured["softphone"]],
        "baresip_ms": [round(t, 1) for t in measured["baresip"]],
    }
    ours, theirs = result["softphone"]["median_ms"], result["baresip"]["median_ms"]
    result["median_ratio"] = round(ours / theirs, 2) if ours and theirs else None
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"call set-up, INVITE to first audio both ways ({result['topology']}),"
        f" {result['calls_per_caller']} calls each, callee baresip:",
        f"  {'caller':<10} {'median ms':>10} {'p90 ms':>8}",
    ]
    for who in ("softphone", "baresip"):
        row = result[who]
        lines.append(f"  {who:<10} {row['median_ms']!s:>10} {row['p90_ms']!s:>8}")
    lines.append(f"  median ratio softphone/baresip: {result['median_ratio']}")
    for who, legs in result["legs_ms"].items():
        lines.append(
            f"  {who}: first RTP at the callee {legs['to_callee_median']} ms,"
            f" at the caller {legs['to_caller_median']} ms (medians)"
        )
    return "\n".join(lines)
