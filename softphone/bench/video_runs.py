"""The calls of ``softphone bench video`` (bench/video.py prints and checks what they give).

Every call is sent by the same softphone (bench/video_peer.py, a child process: our moving test
pattern, VP8, 640x360 at 30 fps, 1 Mbit/s) and received in turn by a softphone (the same
child, answering receive-only) or by baresip 1.0 (``fakevideo`` sending back a still picture,
``vp8``, ``snapshot``; ``video_display fakevideo`` so that its display path runs). Plain RTP
both ways (an SDES call between two softphones would pay for SRTP that a plain baresip call does
not). Everything is on 127.0.0.1, or in a namespace pair made for the freeze part; every
process started is stopped by its pid.

- delay: our receiver logs every picture it draws (counter, instant), the sender every picture
  it makes; baresip is asked for a snapshot of its next decoded picture at random instants
  (``snapshot_recv``, ~3 a second), whose counter bounds its delay (bench/video_metrics.py
  ``sampled_delay``). The same snapshot arithmetic is also run on our receiver's log at random
  instants, so that both sides are shown by the one method as well. Both end where a picture
  is handed to be shown: ours when it becomes the picture ``VideoStream.picture`` returns,
  baresip's in its decode filter chain (``snapshot`` is a video filter), just before its display
  module; neither counts drawing on a screen. The sender, its encoder and the network are the
  same for both.
- cpu: as bench/call_cpu.py for audio: the CPU of the caller per second of established call,
  softphone calling an auto-answering baresip, then a baresip calling that same baresip.
- freeze: the sender in namespace ``a``, the receivers in ``b``; after a calm lead-in an nftables
  rule in ``b`` drops 2 % (``numgen random mod 100 < 2``) of the video RTP that comes from
  ``a`` (RTP version 2 with a dynamic payload type, ours and baresip's feedback untouched).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from softphone.bench.call_peers import cpu_seconds, json_event
from softphone.lab.baresip import Baresip
from softphone.lab.netns import netns_argv
from softphone.lab.process import HOST, LabError, LabProcess, find_binary

WIDTH: Final = 640
HEIGHT: Final = 360
FPS: Final = 30
BITRATE: Final = 1_000_000
WARM_UP_S: Final = 2.0  # after the call is up: key frame, rate controllers settled
SNAPSHOT_GAP_S: Final = (0.15, 0.45)  # random wait between baresip snapshots
ESTABLISH_TIMEOUT_S: Final = 20.0


def baresip_video_config(*, size: tuple[int, int] = (WIDTH, HEIGHT), fps: int = FPS) -> str:
    return (
        "module\t\t\tvp8.so\nmodule\t\t\tfakevideo.so\nmodule\t\t\tsnapshot.so\n"
        "video_source\t\tfakevideo,nil\nvideo_display\t\tfakevideo,nil\n"
        f"video_size\t\t{size[0]}x{size[1]}\nvideo_bitrate\t\t{BITRATE}\nvideo_fps\t\t{fps}\n"
    )


def start_baresip(
    workdir: Path, user: str, *, host: str = HOST, netns: str | None = None, video: bool = True
) -> Baresip:
    """``video`` False: no video module (its calls are audio only)."""
    return Baresip(
        workdir,
        user=user,
        codecs="PCMU",
        extra_config=baresip_video_config() if video else "",
        auto_answer=True,
        host=host,
        netns=netns,
    ).start()


# --------------------------------------------------------------------------- our peer


class Peer:
    """bench/video_peer.py in a child process; its JSON events read from stdout."""

    def __init__(self, workdir: Path, name: str, argv: list[str], netns: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.json"
        full = [
            sys.executable,
            "-m",
            "softphone.bench.video_peer",
            *argv,
            "--log",
            str(self.log_path),
        ]
        self.process = LabProcess(
            netns_argv(netns, full),
            name=name,
            cwd=workdir,
            stderr_path=workdir / f"{name}.stderr",
        )
        self.name = name

    @property
    def pid(self) -> int:
        return self.process.pid

    def event(self, kind: str, timeout_s: float) -> dict[str, Any]:
        found = self.process.log.search(
            lambda line: e if (e := json_event(line)) and e.get("event") == kind else None,
            timeout_s,
        )
        if found is None:
            raise LabError(f"{self.name}: no {kind!r} within {timeout_s:.0f} s: {self.lines()}")
        return found

    def lines(self) -> list[str]:
        return self.process.lines()[-5:]

    def finish(self, timeout_s: float) -> dict[str, Any]:
        """Wait for it to exit by itself (bounded), then read its log."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.proc.wait(timeout=timeout_s)
        self.process.stop()
        try:
            return dict(json.loads(self.log_path.read_text()))
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.name}: no log ({exc}): {self.lines()}") from None


def peer_argv(
    role: str,
    *,
    target: str | None = None,
    seconds: float = 10.0,
    bind: str = HOST,
    timing: bool = False,
    receive_only: bool = False,
    sample_every: float = 0.0,
    seed: int = 1,
) -> list[str]:
    argv = [role, *([target] if target else []), "--bind", bind, "--seconds", f"{seconds:g}"]
    argv += ["--size", f"{WIDTH}x{HEIGHT}", "--fps", str(FPS), "--bitrate", str(BITRATE)]
    argv += ["--seed", str(seed)]
    if timing:
        argv.append("--timing")
    if receive_only:
        argv.append("--receive-only")
    if sample_every > 0:
        argv += ["--sample-every", f"{sample_every:g}"]
    return argv


@contextlib.contextmanager
def stopped(*things: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for thing in reversed(things):
            if isinstance(thing, Peer):
                thing.process.stop()
            elif thing is not None:
                thing.stop()


# --------------------------------------------------------------------------- baresip snapshots


@dataclass
class Snapshot:
    """One ``snapshot_recv``: when it was sent and answered, when baresip said it wrote the
    picture, and the picture's counter and luma PSNR (read after the call)."""

    sent: float
    answered: float
    seen: float
    path: Path
    counter: int | None = None
    psnr: float | None = None


@dataclass
class SnapshotRun:
    shots: list[Snapshot] = field(default_factory=list)
    failed: int = 0


def take_snapshots(bob: Baresip, workdir: Path, until: float, rng: random.Random) -> SnapshotRun:
    """Snapshots of baresip's next decoded picture at random instants until ``until``."""
    run = SnapshotRun()
    workdir.mkdir(parents=True, exist_ok=True)
    n = 0
    while time.monotonic() + 1.0 < until and n < 2000:
        select_pause(rng.uniform(*SNAPSHOT_GAP_S))
        n += 1
        path = workdir / f"snap-{n:04d}.png"
        since = len(bob.lines())
        sent = time.monotonic()
        bob.command("snapshot_recv", str(path))
        answered = time.monotonic()
        try:
            # The wait wakes as the line comes in: the instant after it is when it was seen.
            bob.wait_for(re.escape(f"png: wrote {path}"), 3.0, since)
        except LabError:
            run.failed += 1
            continue
        seen = time.monotonic()
        run.shots.append(Snapshot(sent=sent, answered=answered, seen=seen, path=path))
    return run


def select_pause(seconds: float) -> None:
    import select

    select.select([], [], [], seconds)


def read_snapshots(run: SnapshotRun) -> None:
    """Read each PNG once baresip has finished it: the counter and PSNR against our pattern."""
    import av

    from softphone.bench.video_metrics import psnr
    from softphone.media.video_source import TestPattern, read_counter

    pattern = TestPattern(WIDTH, HEIGHT)
    for shot in run.shots:
        try:
            with av.open(str(shot.path)) as container:
                frame = next(container.decode(video=0))
        except (av.FFmpegError, StopIteration, OSError):
            run.failed += 1
            continue
        yuv = frame.reformat(format="yuv420p")
        shot.counter = read_counter(yuv)
        luma = yuv.to_ndarray()[:HEIGHT]
        expected = pattern.picture(shot.counter).to_ndarray()[:HEIGHT]
        shot.psnr = min(psnr(luma, expected), 99.0) if luma.shape == expected.shape else 0.0


# --------------------------------------------------------------------------- one call each


def ours_receiving(
    workdir: Path,
    seconds: float,
    *,
    seed: int,
    bind: str = HOST,
    sender_netns: str | None = None,
    sender_bind: str = HOST,
    receiver_netns: str | None = None,
    sample_every: float = 0.0,
    during: Any = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One call from our sender to our receiver; (sender log, receiver log). ``during(t0)`` is
    called once the call is up (t0: the sender's established instant)."""
    answer = Peer(
        workdir,
        "receiver",
        peer_argv(
            "answer",
            bind=bind,
            timing=True,
            receive_only=True,
            sample_every=sample_every,
            seed=seed,
        ),
        receiver_netns,
    )
    with stopped(answer):
        port = answer.event("ready", 20.0)["sip_port"]
        dial = Peer(
            workdir,
            "sender",
            peer_argv(
                "dial",
                target=f"sip:softphone@{bind}:{port}",
                seconds=seconds,
                bind=sender_bind,
                timing=True,
                seed=seed,
            ),
            sender_netns,
        )
        with stopped(dial):
            up = dial.event("established", ESTABLISH_TIMEOUT_S)
            if during is not None:
                during(float(up["t"]))
            sent = dial.finish(seconds + 20.0)
        drawn = answer.finish(10.0)
    return sent, drawn


def baresip_receiving(
    workdir: Path,
    bob: Baresip,
    seconds: float,
    *,
    seed: int,
    sender_netns: str | None = None,
    sender_bind: str = HOST,
    during: Any = None,
) -> tuple[dict[str, Any], SnapshotRun]:
    """One call from our sender to ``bob``, snapshots taken through it; (sender log, shots).
    ``during(t0)`` runs once the call is up, on a thread, beside the snapshots."""
    import threading

    rng = random.Random(seed)
    dial = Peer(
        workdir,
        "sender",
        peer_argv(
            "dial", target=bob.uri, seconds=seconds, bind=sender_bind, timing=True, seed=seed
        ),
        sender_netns,
    )
    with stopped(dial):
        up = dial.event("established", ESTABLISH_TIMEOUT_S)
        t0 = float(up["t"])
        helper = None
        if during is not None:
            helper = threading.Thread(target=during, args=(t0,), daemon=True)
            helper.start()
        select_pause(max(0.0, t0 + WARM_UP_S - time.monotonic()))
        shots = take_snapshots(bob, workdir / "snapshots", t0 + seconds, rng)
        sent = dial.finish(seconds + 20.0)
        if helper is not None:
            helper.join(seconds + 5.0)
    read_snapshots(shots)
    return sent, shots


# --------------------------------------------------------------------------- CPU


@dataclass(frozen=True, slots=True)
class CpuCall:
    caller: str
    seconds: float
    caller_cpu_s: float
    callee_cpu_s: float
    frames_sent: int | None = None
    frames_received: int | None = None

    @property
    def caller_per_s(self) -> float:
        return self.caller_cpu_s / self.seconds


def cpu_softphone(
    workdir: Path, bob: Baresip, seconds: float, seed: int, *, variant: str = ""
) -> CpuCall:
    """``variant``: "" our moving pattern; "still": one still picture over and over, as
    baresip's fakevideo sends; "no-video": an audio-only call (the baseline)."""
    argv = peer_argv("dial", target=bob.uri, seconds=seconds + WARM_UP_S, seed=seed)
    dial = Peer(workdir, "caller", [*argv, *([f"--{variant}"] if variant else [])])
    with stopped(dial):
        dial.event("established", ESTABLISH_TIMEOUT_S)
        select_pause(WARM_UP_S)
        a0, b0, t0 = cpu_seconds(dial.pid), cpu_seconds(bob.pid), time.monotonic()
        select_pause(seconds - 0.5)
        a1, b1, t1 = cpu_seconds(dial.pid), cpu_seconds(bob.pid), time.monotonic()
        log = dial.finish(15.0)
    stats = log.get("stats") or {}
    return CpuCall(
        caller=f"softphone ({variant})" if variant else "softphone",
        seconds=t1 - t0,
        caller_cpu_s=a1 - a0,
        callee_cpu_s=b1 - b0,
        frames_sent=int(stats.get("video_frames_sent") or 0),
        frames_received=int(stats.get("video_frames_received") or 0),
    )


def cpu_baresip(workdir: Path, bob: Baresip, seconds: float, *, video: bool = True) -> CpuCall:
    alice = start_baresip(workdir, "alice", video=video)
    with stopped(alice):
        mark = len(alice.ctrl.events)
        alice.ctrl.command("dial", bob.uri)
        alice.ctrl.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT_S, since=mark)
        select_pause(WARM_UP_S)
        a0, b0, t0 = cpu_seconds(alice.pid), cpu_seconds(bob.pid), time.monotonic()
        select_pause(seconds - 0.5)
        a1, b1, t1 = cpu_seconds(alice.pid), cpu_seconds(bob.pid), time.monotonic()
        mark = len(bob.ctrl.events)
        alice.ctrl.command("hangup")
        bob.ctrl.wait_event("CALL_CLOSED", 10.0, since=mark)
    name = "baresip" if video else "baresip (no-video)"
    return CpuCall(caller=name, seconds=t1 - t0, caller_cpu_s=a1 - a0, callee_cpu_s=b1 - b0)


# --------------------------------------------------------------------------- loss in a namespace

LOSS_TABLE: Final = "softphone_bench_video_loss"


def loss_ruleset(source: str, percent: int) -> str:
    """Drop ``percent`` % of the video RTP from ``source``: UDP whose payload starts as RTP
    version 2 (RFC 3550 §5.1: the top two bits of byte 0) with a dynamic payload type, 96-127
    (the low 7 bits of byte 1; RTCP's 200-206 reads 72-78 there and PCMU audio 0). Counted
    before and after the draw (named counters ``video`` and ``dropped``)."""
    if not 0 <= percent <= 100:
        raise ValueError("a loss percentage is 0 to 100")
    match = f"ip saddr {source} meta l4proto udp @th,64,2 2 @th,73,7 >= 96"
    return (
        f"table inet {LOSS_TABLE} {{\n"
        "  counter video { }\n  counter dropped { }\n"
        "  chain in {\n    type filter hook input priority -50; policy accept;\n"
        f"    {match} counter name video\n"
        f"    {match} numgen random mod 100 < {percent} counter name dropped drop\n"
        "  }\n}\n"
    )


def nft(netns: str, *args: str, stdin: str | None = None) -> str:
    argv = netns_argv(netns, [find_binary("nft", "nftables"), *args])
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=20, check=False
    )
    if done.returncode != 0:
        raise LabError(f"nft {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def loss_counters(netns: str) -> tuple[int, int]:
    """(video packets seen, dropped) by the loss table in ``netns``."""
    out = nft(netns, "-j", "list", "counters", "table", "inet", LOSS_TABLE)
    counts = {"video": 0, "dropped": 0}
    for item in json.loads(out).get("nftables", []):
        counter = item.get("counter")
        if counter and counter.get("name") in counts:
            counts[counter["name"]] = int(counter.get("packets", 0))
    return counts["video"], counts["dropped"]
