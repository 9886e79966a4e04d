"""Coverage-guided fuzzing of every target with atheris, one child process per target.

:func:`run_target` starts ``fuzz_worker`` with libFuzzer's flags (``-runs``, ``-max_len`` of
the target, a per-input ``-timeout``, an RSS limit and a total time limit), the campaign's own
corpus directory first (libFuzzer adds what finds new coverage there) and the seeds of
``tests/fuzz/<target>/`` after it. It reads back what the worker found (inputs that broke the
contract, libFuzzer's own artifacts) and libFuzzer's final statistics. With ``save_to``, every
input that broke the contract is copied to ``save_to/<target>/crash-<sha1>.bin``: the corpus
``make test`` replays (tests/fuzz/test_corpus.py), so each crash stays a regression test.

atheris comes from PyPI (the ``reliability`` extra); :func:`atheris_missing` says what to install
when it is not there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["Broken", "FuzzResult", "atheris_missing", "run_target"]

PER_INPUT_TIMEOUT_S: Final = 10
RSS_LIMIT_MB: Final = 3072
_DONE: Final = re.compile(r"DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_STAT: Final = re.compile(r"stat::(\w+):\s+(\d+)")


@dataclass(frozen=True, slots=True)
class Broken:
    signature: str  # "AttributeError at message.py:123"
    error: str
    path: Path  # the input, in the campaign's work directory


@dataclass(slots=True)
class FuzzResult:
    target: str
    entry: str
    runs_asked: int
    runs: int
    seconds: float
    coverage: int | None = None  # libFuzzer's edges covered
    corpus: int | None = None  # inputs kept for new coverage
    slowest_ms: float = 0.0
    broken: list[Broken] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)  # libFuzzer's crash-/timeout-/oom- files
    exit_code: int | None = None

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds > 0 else 0.0

    @property
    def clean(self) -> bool:
        """No input broke the contract, libFuzzer caught nothing, and the run finished."""
        return not self.broken and not self.artifacts and self.runs >= self.runs_asked

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "entry": self.entry,
            "runs_asked": self.runs_asked,
            "runs": self.runs,
            "seconds": round(self.seconds, 1),
            "rate_per_s": round(self.rate),
            "coverage": self.coverage,
            "corpus": self.corpus,
            "slowest_ms": round(self.slowest_ms, 1),
            "broken": [{"signature": b.signature, "error": b.error} for b in self.broken],
            "artifacts": [p.name for p in self.artifacts],
            "exit_code": self.exit_code,
        }


def atheris_missing() -> str | None:
    """None when atheris can be imported; otherwise how to get it."""
    if importlib.util.find_spec("atheris") is not None:
        return None
    return "atheris is not installed (pip install -e '.[reliability]', or make reliability)"


def run_target(
    name: str,
    *,
    runs: int,
    workdir: Path,
    seeds: Path,
    max_time_s: float,
    save_to: Path | None = None,
) -> FuzzResult:
    """Fuzz target ``name`` for ``runs`` inputs (or ``max_time_s``, whichever comes first)."""
    from softphone.bench.reliability.targets import TARGETS

    target = TARGETS[name]
    out = workdir / "found" / name
    corpus = workdir / "corpus" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    corpus.mkdir(parents=True, exist_ok=True)
    flags = [
        f"-runs={runs}",
        f"-max_len={target.max_len}",
        f"-timeout={PER_INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_total_time={int(max_time_s)}",
        "-print_final_stats=1",
    ]
    dirs = [str(corpus)] + ([str(seeds / name)] if (seeds / name).is_dir() else [])
    argv = [sys.executable, "-m", "softphone.bench.reliability.fuzz_worker", name, str(out)]
    log = workdir / f"fuzz-{name}.log"
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*argv, *dirs, "--", *flags],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=max_time_s + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    seconds = time.monotonic() - started
    result = _read_result(name, target.entry, runs, seconds, out, log)
    result.exit_code = code
    if save_to is not None:
        _save(result, save_to / name)
    return result


def _read_result(
    name: str, entry: str, runs_asked: int, seconds: float, out: Path, log: Path
) -> FuzzResult:
    progress: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        progress = json.loads((out / "progress.json").read_text())
    text = log.read_text(errors="replace") if log.exists() else ""
    stats = {key: int(value) for key, value in _STAT.findall(text)}
    done = _DONE.findall(text)
    result = FuzzResult(
        target=name,
        entry=entry,
        runs_asked=runs_asked,
        runs=stats.get("number_of_executed_units", int(progress.get("runs", 0))),
        seconds=seconds,
        coverage=int(done[-1][0]) if done else None,
        corpus=int(done[-1][2]) if done else None,
        slowest_ms=1000 * float(progress.get("slowest_s", 0.0)),
    )
    broken_log = out / "broken.jsonl"
    if broken_log.exists():
        for line in broken_log.read_text().splitlines():
            record = json.loads(line)
            result.broken.append(Broken(record["signature"], record["error"], out / record["file"]))
    result.artifacts = sorted(
        p for p in out.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))
    )
    return result


def _save(result: FuzzResult, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for item in [*(b.path for b in result.broken), *result.artifacts]:
        if item.exists():
            body = item.read_bytes()
            import hashlib

            (folder / f"crash-{hashlib.sha1(body).hexdigest()[:16]}.bin").write_bytes(body)
