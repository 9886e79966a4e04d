"""``softphone bench mouth-to-ear``: softphone and baresip through one virtual sound card.

    softphone bench mouth-to-ear [--clicks 20] [--seed 1] [--codec opus|PCMU ...]
                                 [--pair softphone|baresip ...] [--no-echo-cancellation]
                                 [--baresip-jitter MIN-MAX] [--workdir DIR] [--json]

One JACK server with the dummy driver (softphone/lab/jack.py, 48 kHz, 480-frame periods) is the
sound card of every phone in the run, and its frame clock is the one clock of every delay. For
each codec (Opus as softphone sends it, PCMU: no codec look-ahead) two pairs call, one after
the other, on 127.0.0.1:

- softphone calls softphone: two ``softphone`` processes, ``listen --auto-answer`` and
  ``dial``, each with its own config (``input_device``/``output_device`` = the JACK "system"
  device through PortAudio, as a user would set it) and ``JACK_DEFAULT_SERVER``;
- baresip calls baresip: two baresip 1.0 with the ``jack`` module, auto-answer, Opus encoded
  as softphone does (``OPUS_AS_SOFTPHONE``), with baresip's default jitter buffer (5-10
  packets; ``--baresip-jitter MIN-MAX`` sets another).

Once the call is up, the measuring client (bench/m2e_jack.py) cuts every connection the pair
made and feeds the caller's capture port and records the callee's playback port; clicks go in
at seeded random frame positions 0.5-1 s apart and are found again in the recording
(bench/m2e_clicks.py). Delay = heard frame - written frame: exact, and the same however busy
the machine is (a late cycle delays both ends of the measure alike). The caller's playback goes
nowhere and the callee's capture is silence.

For softphone the callee's last ``call_stats`` (its jitter buffer and target) come with each
figure. The target (the audio issue): softphone's mean at most 32 ms and below baresip's.
Exit status 0 done and the target met, 1 a click lost or the target missed, 2 a peer missing or
failing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

import softphone
from softphone.bench.m2e_clicks import MAX_GAP_S, MIN_GAP_S, click_schedule
from softphone.bench.m2e_jack import JackMeasurer, MeasurerError, Take, jack_clients_of_process
from softphone.lab.baresip import OPUS_AS_SOFTPHONE, Baresip
from softphone.lab.jack import JackServer
from softphone.lab.process import HOST, LabError, LabProcess, softphone_env

CODECS: Final = ("opus", "PCMU")
PAIRS: Final = ("softphone", "baresip")
BARESIP_CODECS: Final = {"opus": "opus/48000/1", "PCMU": "PCMU"}
TARGET_MS: Final = 32.0
JACK_DEVICE: Final = "system"
SETTLE_S: Final = 1.0  # between the route and the first click: the playout settles
WINDOW_S: Final = MIN_GAP_S - 0.05  # a click is paired with one heard at most this much later
CALL_TIMEOUT_S: Final = 20.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PairResult:
    pair: str
    codec: str
    clicks: int
    delays_ms: tuple[float, ...]
    extra: int
    xruns: int
    cycles: int
    routes: dict[str, list[str]] = field(default_factory=dict)
    jitter_buffer_ms: float | None = None
    target_delay_ms: float | None = None

    @property
    def found(self) -> int:
        return len(self.delays_ms)

    def _stat(self, q: float) -> float:
        return float(np.percentile(self.delays_ms, q)) if self.delays_ms else float("nan")

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.delays_ms)) if self.delays_ms else float("nan")

    @property
    def p50_ms(self) -> float:
        return self._stat(50)

    @property
    def p95_ms(self) -> float:
        return self._stat(95)

    def to_json(self) -> dict[str, Any]:
        return {
            "pair": self.pair,
            "codec": self.codec,
            "clicks": self.clicks,
            "found": self.found,
            "extra": self.extra,
            "mean_ms": round(self.mean_ms, 2),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "min_ms": round(min(self.delays_ms), 2) if self.delays_ms else None,
            "max_ms": round(max(self.delays_ms), 2) if self.delays_ms else None,
            "jack_xruns": self.xruns,
            "jack_cycles": self.cycles,
            "callee_jitter_buffer_ms": self.jitter_buffer_ms,
            "callee_target_delay_ms": self.target_delay_ms,
            "routes": self.routes,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MouthToEarReport:
    results: tuple[PairResult, ...]
    seed: int
    rate: int
    period: int
    echo_cancellation: bool
    baresip_jitter_frames: tuple[int, int] = (5, 10)

    def result(self, pair: str, codec: str) -> PairResult | None:
        return next((r for r in self.results if r.pair == pair and r.codec == codec), None)

    def ratio(self, codec: str) -> float | None:
        ours, theirs = self.result("softphone", codec), self.result("baresip", codec)
        if ours is None or theirs is None or not ours.delays_ms or not theirs.delays_ms:
            return None
        return ours.mean_ms / theirs.mean_ms

    @property
    def complete(self) -> bool:
        return all(r.found == r.clicks and r.extra == 0 for r in self.results)

    @property
    def target_met(self) -> bool:
        """softphone's mean at most TARGET_MS and below baresip's, for every codec measured."""
        ours = [r for r in self.results if r.pair == "softphone"]
        return bool(ours) and all(
            r.mean_ms <= TARGET_MS and (self.ratio(r.codec) or 0.0) < 1.0 for r in ours
        )

    def to_json(self) -> dict[str, Any]:
        codecs = dict.fromkeys(r.codec for r in self.results)
        return {
            "benchmark": "mouth-to-ear",
            "card": f"JACK dummy, {self.rate} Hz, {self.period}-frame periods",
            "seed": self.seed,
            "echo_cancellation": self.echo_cancellation,
            "baresip_jitter_buffer_packets": list(self.baresip_jitter_frames),
            "results": [r.to_json() for r in self.results],
            "ratio_ours_vs_baresip": {
                c: (round(x, 3) if (x := self.ratio(c)) is not None else None) for c in codecs
            },
            "target_ms": TARGET_MS,
            "target_met": self.target_met,
            "complete": self.complete,
        }

    def table(self) -> str:
        rows = [
            f"{'pair':10s} {'codec':6s} {'clicks':>7s} {'mean':>7s} {'p50':>7s} {'p95':>7s} "
            f"{'min':>7s} {'max':>7s} {'jb':>6s}"
        ]
        for r in self.results:
            jb = f"{r.jitter_buffer_ms:6.1f}" if r.jitter_buffer_ms is not None else f"{'-':>6s}"
            lo = min(r.delays_ms) if r.delays_ms else float("nan")
            hi = max(r.delays_ms) if r.delays_ms else float("nan")
            rows.append(
                f"{r.pair:10s} {r.codec:6s} {f'{r.found}/{r.clicks}':>7s} {r.mean_ms:7.1f} "
                f"{r.p50_ms:7.1f} {r.p95_ms:7.1f} {lo:7.1f} {hi:7.1f} {jb}"
            )
        for codec in dict.fromkeys(r.codec for r in self.results):
            if (x := self.ratio(codec)) is not None:
                rows.append(f"ours/baresip {codec}: {x:.2f} (mean)")
        rows.append(
            f"ms, caller's capture port to callee's playback port in JACK frames ({self.rate} Hz,"
            f" {self.period}-frame periods; the card's own buffering excluded); jb = softphone"
            f" callee's jitter buffer; baresip's jitter buffer"
            f" {self.baresip_jitter_frames[0]}-{self.baresip_jitter_frames[1]} packets; target:"
            f" softphone's mean <= {TARGET_MS:.0f} ms and below"
            f" baresip's: {'met' if self.target_met else 'missed'}"
        )
        return "\n".join(rows)


# --------------------------------------------------------------------------- the pairs


def _softphone_env(root: Path, jack: JackServer) -> dict[str, str]:
    env = softphone_env(root)
    # The phones run the softphone this bench runs from (its cwd is elsewhere: a relative
    # PYTHONPATH would find another one, or none).
    tree = str(Path(softphone.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    return {**env, **jack.client_env()}


def _json_events(process: LabProcess) -> list[dict[str, Any]]:
    events = []
    for line in process.lines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def _last_stats(process: LabProcess) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for event in _json_events(process):
        if event.get("event") in ("call_stats", "call_ended") and event.get("stats"):
            stats = event["stats"]
    return stats


def _client_of(pid: int, what: str) -> str:
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while not (names := jack_clients_of_process(pid)):
        if time.monotonic() >= deadline:
            raise LabError(f"{what} (pid {pid}) opened no JACK client")
        time.sleep(0.05)
    if len(names) != 1:
        raise LabError(f"{what} (pid {pid}) holds JACK clients {sorted(names)}, not one")
    return names.pop()


@contextlib.contextmanager
def softphone_pair(
    workdir: Path, jack: JackServer, codec: str, *, echo_cancellation: bool, seconds: float
) -> Iterator[tuple[list[str], list[str], LabProcess]]:
    """A softphone calling a softphone, both on the JACK "system" device; yields (the caller's
    JACK client names, the callee's, the callee's process)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "softphone.toml"
    config.write_text(
        f'codecs = ["{codec}"]\ninput_device = "{JACK_DEVICE}"\noutput_device = "{JACK_DEVICE}"\n'
        f"echo_cancellation = {'true' if echo_cancellation else 'false'}\n"
    )
    # Port 0: each binds what the kernel gives it (a port probed free first could be taken by
    # another process before it binds); the callee's "listening" event says which.
    common = [sys.executable, "-m", "softphone", "--config", str(config), "--bind", HOST]
    common += ["--sip-port", "0"]
    with contextlib.ExitStack() as stack:
        callee = LabProcess(
            [*common, "listen", "--auto-answer", "--json"],
            name="softphone-callee",
            cwd=workdir,
            env=_softphone_env(workdir / "callee", jack),
            log_path=workdir / "callee.log",
        )
        stack.callback(callee.stop)
        listening = callee.wait_for(r'"event":"listening".*?"port":(\d+)', CALL_TIMEOUT_S)
        uri = f"sip:softphone@{HOST}:{listening.group(1)}"
        duration = ["--duration", f"{seconds:.0f}"]
        caller = LabProcess(
            [*common, "dial", uri, "--json", *duration],
            name="softphone-caller",
            cwd=workdir,
            env=_softphone_env(workdir / "caller", jack),
            log_path=workdir / "caller.log",
        )
        stack.callback(caller.stop)  # SIGTERM: it hangs up first
        caller.wait_for(r'"state":"established"', CALL_TIMEOUT_S)
        caller_client = _client_of(caller.pid, "the calling softphone")
        callee_client = _client_of(callee.pid, "the answering softphone")
        yield [caller_client], [callee_client], callee


@contextlib.contextmanager
def baresip_pair(
    workdir: Path, jack: JackServer, codec: str, *, jitter_frames: tuple[int, int] = (5, 10)
) -> Iterator[tuple[list[str], list[str]]]:
    """A baresip calling a baresip, both on JACK; yields (the caller's JACK client names, the
    callee's). baresip's jack module opens one client for its source and one
    for its player, named ``jack_client_name`` and ``<name>-01`` in the order it opens them."""
    common: dict[str, Any] = {
        "codecs": BARESIP_CODECS[codec],
        "extra_config": OPUS_AS_SOFTPHONE,
        "env": jack.client_env(),
        "jitter_frames": jitter_frames,
    }
    with contextlib.ExitStack() as stack:
        bob = Baresip(
            workdir / "bob", user="bob", auto_answer=True, jack_client="m2e-bob", **common
        ).start()
        stack.callback(bob.stop)
        alice = Baresip(workdir / "alice", user="alice", jack_client="m2e-alice", **common)
        alice.start()
        stack.callback(alice.stop)
        alice.dial(bob.uri)
        alice.wait_event("CALL_ESTABLISHED", CALL_TIMEOUT_S)
        bob.wait_event("CALL_ESTABLISHED", CALL_TIMEOUT_S)
        yield ["m2e-alice", "m2e-alice-01"], ["m2e-bob", "m2e-bob-01"]


def _ports(
    measurer: JackMeasurer, caller_clients: list[str], callee_clients: list[str]
) -> tuple[list[str], str]:
    """The callers' capture ports, and the callee's one playback port (waiting for both)."""
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        capture = [p for c in caller_clients for p in measurer.ports_of(c)[0]]
        playback = [p for c in callee_clients for p in measurer.ports_of(c)[1]]
        if capture and len(playback) == 1:
            return capture, playback[0]
        if time.monotonic() >= deadline:
            raise LabError(
                f"JACK ports not found: capture {capture} of {caller_clients}, "
                f"playback {playback} of {callee_clients}"
            )
        time.sleep(0.05)


def _take(
    measurer: JackMeasurer,
    caller_clients: list[str],
    callee_clients: list[str],
    *,
    clicks: int,
    seed: int,
) -> tuple[Take, dict[str, list[str]]]:
    capture, playback = _ports(measurer, caller_clients, callee_clients)
    measurer.route(mouth_to=capture, ear_from=playback, peers=[*caller_clients, *callee_clients])
    mouth, ear = measurer.connections()
    rate = measurer.rate
    positions = click_schedule(clicks, start=measurer.frame_time + int(SETTLE_S * rate), seed=seed)
    seconds = (positions[-1] - measurer.frame_time) / rate + WINDOW_S
    take = measurer.measure(positions, window=int(WINDOW_S * rate), timeout_s=seconds + 30.0)
    return take, {"mouth_to": mouth, "ear_from": ear}


def _result(
    pair: str,
    codec: str,
    take: Take,
    rate: int,
    routes: dict[str, list[str]],
    stats: dict[str, Any] | None = None,
) -> PairResult:
    def number(key: str) -> float | None:
        value = (stats or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else None

    return PairResult(
        pair=pair,
        codec=codec,
        clicks=len(take.written),
        delays_ms=tuple(1000.0 * d / rate for d in take.found.delays),
        extra=take.found.extra,
        xruns=take.xruns,
        cycles=take.cycles,
        routes=routes,
        jitter_buffer_ms=number("jitter_buffer_ms"),
        target_delay_ms=number("target_delay_ms"),
    )


def run_mouth_to_ear(
    workdir: Path,
    *,
    clicks: int = 20,
    seed: int = 1,
    codecs: tuple[str, ...] = CODECS,
    pairs: tuple[str, ...] = PAIRS,
    echo_cancellation: bool = True,
    baresip_jitter_frames: tuple[int, int] = (5, 10),
) -> MouthToEarReport:
    """Every pair, for every codec, on one JACK server; the same click spacing for all.
    ``baresip_jitter_frames``: the baresips' jitter buffer in packets (default theirs)."""
    for codec in codecs:
        if codec not in BARESIP_CODECS:
            raise LabError(f"codec {codec!r}: one of {', '.join(BARESIP_CODECS)}")
    jack = JackServer(workdir / "jack").start()
    results: list[PairResult] = []
    try:
        try:
            measurer = JackMeasurer(jack.name)
        except MeasurerError as exc:
            raise LabError(str(exc)) from exc
        try:
            seconds = clicks * MAX_GAP_S + SETTLE_S + 60.0
            for codec in codecs:
                if "softphone" in pairs:
                    where = workdir / f"softphone-{codec}"
                    with softphone_pair(
                        where, jack, codec, echo_cancellation=echo_cancellation, seconds=seconds
                    ) as (callers, callees, callee):
                        take, routes = _take(measurer, callers, callees, clicks=clicks, seed=seed)
                    # The callee's stats as the call ended (the caller has hung up by now).
                    stats = _last_stats(callee)
                    results.append(_result("softphone", codec, take, measurer.rate, routes, stats))
                if "baresip" in pairs:
                    where = workdir / f"baresip-{codec}"
                    with baresip_pair(where, jack, codec, jitter_frames=baresip_jitter_frames) as (
                        callers,
                        callees,
                    ):
                        take, routes = _take(measurer, callers, callees, clicks=clicks, seed=seed)
                    results.append(_result("baresip", codec, take, measurer.rate, routes))
            rate = measurer.rate
        finally:
            measurer.close()
    finally:
        jack.stop()
    return MouthToEarReport(
        results=tuple(results),
        seed=seed,
        rate=rate,
        period=jack.period,
        echo_cancellation=echo_cancellation,
        baresip_jitter_frames=baresip_jitter_frames,
    )
