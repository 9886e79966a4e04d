"""``softphone bench cpu``: CPU seconds of a full-duplex Opus call, softphone against baresip.

Two calls run one after the other in the same run, on 127.0.0.1, both directions carrying the
same looped speech (48 kHz mono WAV, so neither side resamples its microphone):

1. ``softphone dial`` (a child process, ``--play speech.wav``: it encodes the file and decodes
   what it receives through the jitter buffer, as in a call, only the sound card is absent)
   calls a baresip (``aufile`` microphone, ``audio_codecs opus/48000/1``, auto-answer);
2. a baresip calls another baresip configured the same way.

Every baresip encodes Opus as softphone does, 32 kbit/s mono (``OPUS_AS_SOFTPHONE``): left to
itself baresip 1.0 sends stereo CELT at ~100 kbit/s, whose encoder (libopus, complexity 10:
155 us a 20 ms frame here) costs 0.6x the SILK/CELT hybrid both sides use at 32 kbit/s mono
(262 us), so the ratio would compare different work.

CPU time is utime+stime from /proc/PID/stat (all threads), sampled when the call is established
and again ``seconds`` later, just before the hang-up; start-up and tear-down are not counted.
The ratios compare softphone with baresip in the same call and with a baresip caller in the
baresip-to-baresip call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from softphone.bench.call_peers import SoftphoneDial, cpu_seconds, looped_wav, stopping
from softphone.lab.baresip import OPUS_AS_SOFTPHONE, Baresip, MediaEnc
from softphone.lab.process import LabError

ESTABLISH_TIMEOUT_S = 20.0
HANGUP_TIMEOUT_S = 10.0
PACKETS_PER_S = 50  # 20 ms Opus frames


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCpu:
    """CPU seconds each process used over ``seconds`` of an established call."""

    label: str
    caller: str
    callee: str
    seconds: float
    caller_cpu_s: float
    callee_cpu_s: float

    @property
    def caller_percent(self) -> float:
        return 100.0 * self.caller_cpu_s / self.seconds

    @property
    def callee_percent(self) -> float:
        return 100.0 * self.callee_cpu_s / self.seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuReport:
    softphone_call: CallCpu  # softphone -> baresip
    baresip_call: CallCpu  # baresip -> baresip
    softphone_packets_sent: int
    softphone_packets_received: int

    @property
    def ratio_same_call(self) -> float:
        """softphone / the baresip it talked to."""
        return self.softphone_call.caller_cpu_s / max(self.softphone_call.callee_cpu_s, 1e-9)

    @property
    def ratio_vs_baresip_caller(self) -> float:
        """softphone caller / baresip caller (each in its own call)."""
        return self.softphone_call.caller_cpu_s / max(self.baresip_call.caller_cpu_s, 1e-9)

    @property
    def ratio_vs_baresip_mean(self) -> float:
        """softphone / the mean of the two baresips in the baresip-to-baresip call."""
        mean = (self.baresip_call.caller_cpu_s + self.baresip_call.callee_cpu_s) / 2
        return self.softphone_call.caller_cpu_s / max(mean, 1e-9)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": "cpu",
            "codec": "opus",
            "calls": [
                {
                    **asdict(c),
                    "seconds": round(c.seconds, 3),
                    "caller_cpu_s": round(c.caller_cpu_s, 3),
                    "callee_cpu_s": round(c.callee_cpu_s, 3),
                    "caller_percent": round(c.caller_percent, 2),
                    "callee_percent": round(c.callee_percent, 2),
                }
                for c in (self.softphone_call, self.baresip_call)
            ],
            "softphone_packets_sent": self.softphone_packets_sent,
            "softphone_packets_received": self.softphone_packets_received,
            "ratio_softphone_vs_baresip_same_call": round(self.ratio_same_call, 3),
            "ratio_softphone_vs_baresip_caller": round(self.ratio_vs_baresip_caller, 3),
            "ratio_softphone_vs_baresip_mean": round(self.ratio_vs_baresip_mean, 3),
        }

    def table(self) -> str:
        rows = [
            f"{'call':24s} {'process':18s} {'CPU s':>7s} {'% of 1 core':>11s}",
        ]
        for call in (self.softphone_call, self.baresip_call):
            rows.append(
                f"{call.label:24s} {call.caller + ' (caller)':18s} "
                f"{call.caller_cpu_s:7.2f} {call.caller_percent:11.2f}"
            )
            rows.append(
                f"{'':24s} {call.callee + ' (callee)':18s} "
                f"{call.callee_cpu_s:7.2f} {call.callee_percent:11.2f}"
            )
        rows += [
            f"over {self.softphone_call.seconds:.1f} s of established call each (Opus 20 ms, both ways); "
            f"softphone sent {self.softphone_packets_sent} / received "
            f"{self.softphone_packets_received} RTP packets",
            f"softphone / baresip, same call:           {self.ratio_same_call:.2f}",
            f"softphone / baresip caller (b2b call):    {self.ratio_vs_baresip_caller:.2f}",
            f"softphone / mean baresip (b2b call):      {self.ratio_vs_baresip_mean:.2f}",
        ]
        return "\n".join(rows)


def _baresip(workdir: Path, speech: Path, user: str, mediaenc: MediaEnc | None = None) -> Baresip:
    """A baresip without registrar that answers by itself and speaks Opus only, encoded as
    softphone encodes it (32 kbit/s mono: the same codec work on both sides of the ratio)."""
    return Baresip(
        workdir,
        user=user,
        audio=speech,
        codecs="opus/48000/1",
        extra_config=OPUS_AS_SOFTPHONE,
        auto_answer=True,
        mediaenc=mediaenc,
        rtcp_mux=mediaenc is not None and mediaenc.startswith("dtls"),
    ).start()


def _talk(seconds: float, ended: Callable[[float], object]) -> None:
    """Let the call run ``seconds``; fail if it ends before (``ended(timeout)`` is truthy)."""
    if ended(seconds):
        raise LabError(f"the call ended before {seconds:.0f} s of talk")


def softphone_to_baresip(
    workdir: Path,
    speech: Path,
    seconds: float,
    *,
    media_encryption: str | None = None,
    mediaenc: MediaEnc | None = None,
    label: str = "softphone -> baresip",
) -> tuple[CallCpu, int, int, str | None]:
    """``media_encryption``: softphone's account setting; ``mediaenc``: baresip's. Returns the
    CPU, the packets softphone sent and received, and the SRTP suite (None: plain)."""
    bob = _baresip(workdir / f"baresip-callee-{label.split()[-1]}", speech, "bob", mediaenc)
    phone = SoftphoneDial(
        workdir / f"softphone-{label.split()[-1]}",
        bob.uri,
        play=speech,
        codecs=("opus",),
        media_encryption=media_encryption,
    )
    with stopping(bob, phone):
        phone.start()
        phone.wait_event(
            lambda e: e.get("event") == "call_state" and e.get("state") == "established",
            ESTABLISH_TIMEOUT_S,
            "established call",
        )
        bob.ctrl.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT_S)
        start_sp, start_bob, t0 = cpu_seconds(phone.pid), cpu_seconds(bob.pid), time.monotonic()

        _talk(seconds, lambda t: phone.find_event(lambda e: e.get("event") == "call_ended", t))
        end_sp, end_bob, elapsed = (
            cpu_seconds(phone.pid),
            cpu_seconds(bob.pid),
            time.monotonic() - t0,
        )
        bob.ctrl.command("hangup")
        last = phone.wait_event(
            lambda e: e.get("event") == "call_ended", HANGUP_TIMEOUT_S, "call_ended"
        )
    stats = last.get("stats") or {}
    if media_encryption not in (None, "none") and not stats.get("srtp_suite"):
        raise LabError(f"the call was not encrypted: {stats}")
    cpu = CallCpu(
        label=label,
        caller="softphone",
        callee="baresip",
        seconds=elapsed,
        caller_cpu_s=end_sp - start_sp,
        callee_cpu_s=end_bob - start_bob,
    )
    suite = stats.get("srtp_suite")
    return (
        cpu,
        int(stats.get("packets_sent", 0)),
        int(stats.get("packets_received", 0)),
        str(suite) if suite else None,
    )


def baresip_to_baresip(workdir: Path, speech: Path, seconds: float) -> CallCpu:
    alice = _baresip(workdir / "baresip-caller", speech, "alice")
    bob = _baresip(workdir / "baresip-callee2", speech, "bob")
    with stopping(alice, bob):
        alice.ctrl.command("dial", bob.uri)
        alice.ctrl.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT_S)
        bob.ctrl.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT_S)
        start_a, start_b, t0 = cpu_seconds(alice.pid), cpu_seconds(bob.pid), time.monotonic()

        _talk(seconds, lambda t: alice.ctrl.find_event("CALL_CLOSED", t))
        end_a, end_b, elapsed = cpu_seconds(alice.pid), cpu_seconds(bob.pid), time.monotonic() - t0
        alice.ctrl.command("hangup")
        bob.ctrl.wait_event("CALL_CLOSED", HANGUP_TIMEOUT_S)
    return CallCpu(
        label="baresip -> baresip",
        caller="baresip",
        callee="baresip",
        seconds=elapsed,
        caller_cpu_s=end_a - start_a,
        callee_cpu_s=end_b - start_b,
    )


def run_cpu(workdir: Path, speech: Path, seconds: float) -> CpuReport:
    """Both calls, one after the other; ``speech`` is looped past the call's length."""
    wav = looped_wav(speech, workdir / "speech48k.wav", seconds + 60.0)
    ours, sent, received, _ = softphone_to_baresip(workdir, wav, seconds)
    if received < 0.9 * PACKETS_PER_S * seconds or sent < 0.9 * PACKETS_PER_S * seconds:
        raise LabError(f"media did not flow both ways (softphone sent {sent}, received {received})")
    theirs = baresip_to_baresip(workdir, wav, seconds)
    return CpuReport(
        softphone_call=ours,
        baresip_call=theirs,
        softphone_packets_sent=sent,
        softphone_packets_received=received,
    )
