"""Faults, each a scenario with a measured recovery time.

- :func:`registrar_restart`: the lab's Kamailio (bindings in memory) restarted under a
  registered softphone (and a registered baresip, for comparison): when each registers again,
  and when a call to the softphone's address of record gets through again.
- :func:`registrar_outage`: Kamailio frozen (SIGSTOP: no answer at all) for ``outage_s`` under
  a softphone registered for 60 s, then thawed: when calls get through again.
- :func:`packet_loss`: softphone and SIPp in two network namespaces; mid-call every packet of
  the softphone's side is dropped (nftables) for 5 s: the call must survive, and what the
  softphone hears (``--record``) must be the far end's tone again within 1 s of the link coming
  back.
- :func:`rtsp_restart` (faults_rtsp.py) and :func:`kill_during_call` (faults_crash.py).

Incoming calls are SIPp's ``call`` scenario from a caller the proxy does not challenge
(``load@example.net``) to ``alice``'s address of record through Kamailio: it either gets its 200
(the binding is there) or the proxy's 404.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softphone.bench.reliability.peers import SoftphoneListen
from softphone.bench.reliability.scan import account_config
from softphone.lab.baresip import Baresip
from softphone.lab.kamailio import Kamailio
from softphone.lab.netns_pair import NamespacePair, namespaces_usable
from softphone.lab.pki import make_pki
from softphone.lab.process import HOST, LabError
from softphone.lab.sipp import Sipp

__all__ = ["FaultResult", "packet_loss", "registrar_outage", "registrar_restart"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultResult:
    scenario: str
    figure: str  # what recovery_s measures
    recovery_s: float | None  # None: not within the scenario's bound
    target_s: float | None  # None: measured, no target
    detail: str = ""
    ok: bool = True  # the rest of the scenario's promise held (the call survived, ...)

    @property
    def passed(self) -> bool:
        if not self.ok:
            return False
        if self.target_s is None:
            return True
        return self.recovery_s is not None and self.recovery_s <= self.target_s


def _since(start: float) -> float:
    return time.monotonic() - start


def call_gets_through(workdir: Path, proxy_port: int, user: str, attempt: int) -> bool:
    """One SIPp call to ``user`` through the proxy: True when it is answered and ends well."""
    result = Sipp(
        workdir / f"call-{attempt}",
        "call",
        (HOST, proxy_port),
        service=user,
        rate=1,
        calls=1,
        call_ms=200,
        recv_timeout_ms=4000,
        timeout_s=10,
    ).start()
    return result.wait().successful == 1


def first_success(
    probe: Callable[[int], bool], *, bound_s: float, since: float, every_s: float = 1.0
) -> float | None:
    """Seconds from ``since`` to the first probe that succeeds, trying every ``every_s``;
    None when none did within ``bound_s``."""
    attempt = 0
    while _since(since) < bound_s:
        attempt += 1
        started = time.monotonic()
        if probe(attempt):
            return _since(since)
        time.sleep(max(0.0, every_s - _since(started)))  # paced attempts, bounded by bound_s
    return None


# --------------------------------------------------------------------------- the registrar


def registrar_restart(workdir: Path, *, bound_s: float = 60.0) -> list[FaultResult]:
    kamailio = Kamailio(workdir / "kamailio", make_pki(workdir / "pki")).start()
    phone = baresip = None
    try:
        phone = SoftphoneListen(
            workdir / "softphone",
            config=account_config(kamailio),
            args=("--auto-answer", "--no-audio"),
        ).start()
        phone.wait_event(lambda e: e.get("event") == "registered", 20, "registered")
        baresip = Baresip(workdir / "baresip", kamailio=kamailio, user="bob").start()
        if not call_gets_through(workdir / "before", kamailio.udp_port, "alice", 0):
            raise LabError("a call to alice did not get through before the restart")
        restarted = time.monotonic()
        kamailio.restart()
        up = _since(restarted)
        seen: dict[str, float] = {}

        def watch(user: str) -> None:
            with contextlib.suppress(LabError):
                kamailio.wait_for(rf"LAB REGISTERED {user} ", timeout_s=bound_s)
                seen[user] = _since(restarted)

        watchers = [threading.Thread(target=watch, args=(u,)) for u in ("alice", "bob")]
        for watcher in watchers:
            watcher.start()
        calls_back = first_success(
            lambda n: call_gets_through(workdir / "after", kamailio.udp_port, "alice", n),
            bound_s=bound_s,
            since=restarted,
        )
        for watcher in watchers:
            watcher.join(bound_s + 5)
    finally:
        for peer in (baresip, phone):
            if peer is not None:
                peer.stop()
        kamailio.stop()
    note = f"Kamailio back after {up:.1f} s (bindings in memory, so all lost)"
    return [
        FaultResult(
            scenario="registrar restart",
            figure="softphone registered again, s after the restart",
            recovery_s=seen.get("alice"),
            target_s=30.0,
            detail=note,
        ),
        FaultResult(
            scenario="registrar restart",
            figure="a call to softphone gets through again, s after the restart",
            recovery_s=calls_back,
            target_s=30.0,
        ),
        FaultResult(
            scenario="registrar restart",
            figure="baresip (regint 300) registered again, s after the restart",
            recovery_s=seen.get("bob"),
            target_s=None,
            detail=f"not within {bound_s:.0f} s" if "bob" not in seen else "",
        ),
    ]


def registrar_outage(
    workdir: Path, *, outage_s: float = 90.0, bound_s: float = 120.0
) -> list[FaultResult]:
    kamailio = Kamailio(workdir / "kamailio", make_pki(workdir / "pki")).start()
    phone = None
    try:
        phone = SoftphoneListen(
            workdir / "softphone",
            config=account_config(kamailio, expires=60),
            args=("--auto-answer", "--no-audio"),
        ).start()
        phone.wait_event(lambda e: e.get("event") == "registered", 20, "registered")
        group = kamailio.pid
        if group is None:
            raise LabError("kamailio has no pid")
        os.killpg(group, signal.SIGSTOP)
        try:
            time.sleep(outage_s)  # the outage itself: nothing answers for this long
        finally:
            os.killpg(group, signal.SIGCONT)
        back = time.monotonic()
        calls_back = first_success(
            lambda n: call_gets_through(workdir / "after", kamailio.udp_port, "alice", n),
            bound_s=bound_s,
            since=back,
        )
        failed = phone.count(lambda e: e.get("event") == "registration_failed")
    finally:
        if phone is not None:
            phone.stop()
        kamailio.stop()
    return [
        FaultResult(
            scenario=f"registrar unreachable {outage_s:.0f} s",
            figure="a call to softphone gets through again, s after the registrar is back",
            recovery_s=calls_back,
            target_s=30.0,
            detail=f"registered for 60 s; {failed} failed registration(s) reported meanwhile",
        )
    ]


# --------------------------------------------------------------------------- packet loss


def tone_wav(path: Path, seconds: float) -> Path:
    """A 440 Hz tone as a mu-law WAV (what SIPp streams as PCMU)."""
    import subprocess

    from softphone.lab.process import find_binary

    ffmpeg = find_binary("ffmpeg", "ffmpeg")
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
         "-ar", "8000", "-ac", "1", "-c:a", "pcm_mulaw", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def silent_gaps(pcm: np.ndarray, rate: int, *, frame_ms: int = 10) -> list[tuple[float, float]]:
    """(start, end) in seconds of every run of frames below -40 dBFS after the first loud one."""
    step = rate * frame_ms // 1000
    frames = len(pcm) // step
    if frames == 0:
        return []
    rms = np.sqrt(np.mean(pcm[: frames * step].reshape(frames, step) ** 2, axis=1) + 1e-12)
    loud = 20 * np.log10(rms) > -40
    gaps: list[tuple[float, float]] = []
    start: int | None = None
    heard = False
    for i, on in enumerate(loud):
        if on:
            if start is not None and heard:
                gaps.append((start * frame_ms / 1000, i * frame_ms / 1000))
            start, heard = None, True
        elif start is None:
            start = i
    return gaps


def packet_loss(workdir: Path, *, loss_s: float = 5.0, call_s: float = 20.0) -> list[FaultResult]:
    problem = namespaces_usable()
    if problem is not None:
        return [
            FaultResult(
                scenario=f"{loss_s:.0f} s total packet loss mid-call",
                figure="audio back, s after the link",
                recovery_s=None,
                target_s=1.0,
                detail=f"not run: {problem}",
                ok=False,
            )
        ]
    from softphone.media.wav import read_wav

    workdir.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(workdir / "tone.wav", call_s + 10)
    heard = workdir / "heard.wav"
    with NamespacePair("sp-loss") as pair:
        phone = SoftphoneListen(
            workdir / "softphone",
            args=("--auto-answer", "--record", str(heard)),
            host=pair.address("a"),
            prefix=pair.prefix("a"),
        ).start()
        try:
            sipp = Sipp(
                workdir / "sipp",
                "call",
                (pair.address("a"), phone.sip_port),
                service="softphone",
                rate=1,
                calls=1,
                call_ms=int(call_s * 1000),
                rtp_wav=tone,
                recv_timeout_ms=8000,
                timeout_s=call_s + 60,
                local_host=pair.address("b"),
                prefix=pair.prefix("b"),
            ).start()
            phone.wait_event(
                lambda e: e.get("event") == "call_state" and e.get("state") == "established",
                20,
                "the call established",
            )
            established = time.monotonic()
            time.sleep(5.0)  # five seconds of call before the link goes
            pair.drop_all("a")
            cut = _since(established)
            time.sleep(loss_s)  # the outage
            pair.restore("a")
            restored = _since(established)
            result = sipp.wait()
            ended = phone.wait_event(lambda e: e.get("event") == "call_ended", 20, "call_ended")
        finally:
            phone.stop()
    pcm, rate = read_wav(heard)
    gaps = [g for g in silent_gaps(pcm, rate) if g[1] - g[0] >= 1.0]
    survived = result.successful == 1 and ended.get("reason") == "remote hung up"
    back = None
    detail = f"call {'survived' if survived else 'did not survive'} ({ended.get('reason')})"
    if gaps:
        start, end = max(gaps, key=lambda g: g[1] - g[0])
        back = max(0.0, end - restored)
        detail += f"; silence heard {start:.2f}-{end:.2f} s, link cut {cut:.2f}-{restored:.2f} s"
    else:
        detail += "; no silence in the recording (nothing was lost?)"
        survived = False
    return [
        FaultResult(
            scenario=f"{loss_s:.0f} s total packet loss mid-call",
            figure="audio back, s after the link comes back",
            recovery_s=back,
            target_s=1.0,
            detail=detail,
            ok=survived,
        )
    ]
