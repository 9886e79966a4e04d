"""The calls of ``softphone bench quality`` (see :mod:`softphone.bench.quality`).

Clean calls run on 127.0.0.1. Lossy ones run in two network namespaces joined by a veth pair
(:class:`softphone.lab.netns_pair.NamespacePair`): the callers (softphone, then baresip alice)
in side ``a``, bob in side ``b``; the drop rule (:func:`softphone.bench.quality.nft_rules`) is
loaded into side ``a`` for both calls and its counters read after each. Every process is
started by us and stopped by its pid; the namespaces are removed on the way out.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from softphone.bench.call_peers import SoftphoneDial, looped_wav, stopping
from softphone.bench.quality import (
    RTP_PORTS,
    TABLE,
    CallScore,
    Condition,
    Loss,
    nft_rules,
    parse_drop_counts,
)
from softphone.bench.quality_score import ScoreError, score_files, scoring_seconds
from softphone.lab.baresip import OPUS_AS_SOFTPHONE, Baresip
from softphone.lab.netns_pair import NamespacePair, namespaces_usable
from softphone.lab.process import HOST, LabError, find_binary

ESTABLISH_TIMEOUT_S = 20.0
HANGUP_TIMEOUT_S = 10.0


class _Network:
    """Where the callers and bob live: loopback, or a namespace pair with a drop rule."""

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.pair: NamespacePair | None = None

    def __enter__(self) -> _Network:
        if self.loss is Loss.CLEAN:
            return self
        why = namespaces_usable()
        if why is not None:
            raise LabError(f"loss needs network namespaces: {why}")
        self.pair = NamespacePair("sp-quality").create()
        try:
            self.restart_rules()
        except LabError:
            self.pair.remove()
            raise
        return self

    def restart_rules(self) -> None:
        """(Re)load the drop rule before each call: a burst rule's packet counter starts at 0,
        so its bursts hit the same stretch of the speech in every call (whichever phone
        listens), and its counters count this call only."""
        if self.pair is None:
            return
        self._nft(["-f", "-"], f"table inet {TABLE}\ndelete table inet {TABLE}\n")
        self._nft(["-f", "-"], nft_rules(self.loss, self.pair.address("b")))

    def __exit__(self, *exc: object) -> None:
        if self.pair is not None:
            self.pair.remove()

    def _nft(self, args: list[str], stdin: str | None = None) -> str:
        assert self.pair is not None
        done = subprocess.run(
            [*self.pair.prefix("a"), find_binary("nft", "nftables"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode != 0:
            raise LabError(f"nft {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def dropped(self) -> tuple[int, int]:
        """Packets dropped so far (toward the callers, from them)."""
        if self.pair is None:
            return 0, 0
        return parse_drop_counts(self._nft(["list", "table", "inet", TABLE]))

    def host(self, side: str) -> str:
        return HOST if self.pair is None else self.pair.address("a" if side == "a" else "b")

    def netns(self, side: str) -> str | None:
        return None if self.pair is None else self.pair.namespace("a" if side == "a" else "b")


def _baresip(
    net: _Network, workdir: Path, speech: Path, user: str, side: str, *, record: bool
) -> Baresip:
    low, high = RTP_PORTS
    ports = f"rtp_ports\t\t{low}-{high}\n" if side == "b" else ""
    return Baresip(
        workdir,
        user=user,
        audio=speech,
        codecs="opus/48000/1",
        auto_answer=True,
        record=record,
        host=net.host(side),
        netns=net.netns(side),
        extra_config=OPUS_AS_SOFTPHONE + ports,
    ).start()


def _softphone_call(
    net: _Network, workdir: Path, speech: Path, seconds: float, score_s: float, reference: Path
) -> CallScore:
    bob = _baresip(net, workdir / "bob", speech, "bob", "b", record=False)
    heard = workdir / "softphone-heard.wav"
    phone = SoftphoneDial(
        workdir / "softphone",
        bob.uri,
        play=speech,
        codecs=("opus",),
        extra_args=("--record", str(heard)),
        bind=net.host("a"),
        netns=net.netns("a"),
    )
    net.restart_rules()
    before = net.dropped()
    with stopping(bob, phone):
        phone.start()
        phone.wait_event(
            lambda e: e.get("event") == "call_state" and e.get("state") == "established",
            ESTABLISH_TIMEOUT_S,
            "established call",
        )
        if phone.find_event(lambda e: e.get("event") == "call_ended", seconds) is not None:
            raise LabError(f"the call ended before {seconds:.0f} s of talk")
        bob.ctrl.command("hangup")
        last = phone.wait_event(
            lambda e: e.get("event") == "call_ended", HANGUP_TIMEOUT_S, "call_ended"
        )
    after = net.dropped()
    recorded = _recording(heard)
    try:
        scored = score_files(reference, recorded, seconds=score_s)
    except ScoreError as exc:
        raise LabError(f"softphone's recording: {exc}") from exc
    return CallScore(
        pesq=scored.pesq,
        lag_ms=scored.lag_ms,
        dropped_in=after[0] - before[0],
        dropped_out=after[1] - before[1],
        stats=dict(last.get("stats") or {}),
    )


def _recording(path: Path) -> Path:
    """``dial --record OUT.wav`` numbers the n-th call's file (OUT-1.wav): the one it wrote."""
    if path.is_file():
        return path
    numbered = sorted(path.parent.glob(f"{path.stem}*.wav"))
    if not numbered:
        raise LabError(f"softphone recorded nothing at {path}")
    return numbered[0]


def _baresip_call(
    net: _Network, workdir: Path, speech: Path, seconds: float, score_s: float, reference: Path
) -> CallScore:
    bob = _baresip(net, workdir / "bob2", speech, "bob", "b", record=False)
    alice = _baresip(net, workdir / "alice", speech, "alice", "a", record=True)
    net.restart_rules()
    before = net.dropped()
    with stopping(bob, alice):
        alice.ctrl.command("dial", bob.uri)
        alice.ctrl.wait_event("CALL_ESTABLISHED", ESTABLISH_TIMEOUT_S)
        if alice.ctrl.find_event("CALL_CLOSED", seconds) is not None:
            raise LabError(f"the baresip call ended before {seconds:.0f} s of talk")
        alice.ctrl.command("hangup")
        with contextlib.suppress(LabError):
            bob.ctrl.wait_event("CALL_CLOSED", HANGUP_TIMEOUT_S)
    after = net.dropped()
    decoded = [p for p in alice.recordings() if p.name.endswith("-dec.wav")]
    if not decoded:
        raise LabError(f"baresip alice recorded nothing in {alice.workdir}")
    try:
        scored = score_files(
            reference, max(decoded, key=lambda p: p.stat().st_size), seconds=score_s
        )
    except ScoreError as exc:
        raise LabError(f"baresip's recording: {exc}") from exc
    return CallScore(
        pesq=scored.pesq,
        lag_ms=scored.lag_ms,
        dropped_in=after[0] - before[0],
        dropped_out=after[1] - before[1],
    )


def run_condition(
    workdir: Path, reference: Path, loss: Loss, *, calls: int, seconds: float, opus_alone: float
) -> Condition:
    """``calls`` pairs of calls (softphone, then baresip, to the same kind of bob) under
    ``loss``; the speech is ``reference`` at 48 kHz, looped past the call."""
    workdir.mkdir(parents=True, exist_ok=True)
    speech = looped_wav(reference, workdir / "speech48k.wav", seconds + 60.0)
    score_s = scoring_seconds(reference, seconds)
    ours: list[CallScore] = []
    theirs: list[CallScore] = []
    with _Network(loss) as net:
        for n in range(1, calls + 1):
            where = workdir / f"call{n}"
            ours.append(_softphone_call(net, where, speech, seconds, score_s, reference))
            theirs.append(_baresip_call(net, where, speech, seconds, score_s, reference))
    return Condition(loss=loss, softphone=tuple(ours), baresip=tuple(theirs), opus_alone=opus_alone)
