"""One fuzz target under atheris (libFuzzer), in a process of its own.

    python -m softphone.bench.reliability.fuzz_worker TARGET OUT_DIR CORPUS... -- LIBFUZZER_FLAGS

The softphone modules are imported under atheris' instrumentation, so libFuzzer sees their
branch coverage. An input that breaks the target's contract does not stop the run: the first
input of each kind of failure (exception type and where it was raised) is written to
``OUT_DIR/broken-<sha1>.bin`` with a line in ``OUT_DIR/broken.jsonl``, and fuzzing goes on, so
that one run of a million inputs finds every distinct bug. ``OUT_DIR/progress.json`` holds the
count of inputs run and the slowest input's time, rewritten every few thousand inputs (libFuzzer
ends the process with exit(), past any clean-up of ours). What libFuzzer itself catches (a
timeout, memory over the limit, a crash of the interpreter) is written by libFuzzer to
``OUT_DIR/`` (``-artifact_prefix``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from pathlib import Path


def signature(exc: BaseException) -> str:
    """What makes two failures the same bug: the exception type and the innermost softphone
    frame it came from (file:line), or the innermost frame when none is ours."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/softphone/" in f.filename and "/reliability/" not in f.filename]
    chosen = ours or list(frames)
    if not chosen:
        return f"{type(exc).__name__} at ?"
    where = chosen[-1]
    return f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}"


def main(argv: list[str]) -> None:
    if "--" in argv:
        split = argv.index("--")
        ours, flags = argv[:split], argv[split + 1 :]
    else:
        ours, flags = argv, []
    name, out_dir, corpora = ours[0], Path(ours[1]), ours[2:]
    out_dir.mkdir(parents=True, exist_ok=True)

    import atheris

    with atheris.instrument_imports(include=["softphone"]):
        from softphone.bench.reliability.targets import TARGETS
    target = TARGETS[name]
    seen: set[str] = set()
    progress = out_dir / "progress.json"
    state = {"runs": 0, "slowest_s": 0.0, "started": time.monotonic()}

    def one_input(data: bytes) -> None:
        started = time.perf_counter()
        broken = target.check(data)
        took = time.perf_counter() - started
        state["runs"] += 1
        if took > state["slowest_s"]:
            state["slowest_s"] = took
            (out_dir / "slowest.bin").write_bytes(data)
        if broken is not None:
            sig = signature(broken)
            if sig not in seen:
                seen.add(sig)
                digest = hashlib.sha1(data).hexdigest()[:16]
                (out_dir / f"broken-{digest}.bin").write_bytes(data)
                with (out_dir / "broken.jsonl").open("a", encoding="utf-8") as log:
                    record = {"signature": sig, "file": f"broken-{digest}.bin"}
                    record["error"] = f"{type(broken).__name__}: {broken}"[:300]
                    log.write(json.dumps(record) + "\n")
        if state["runs"] % 5000 == 0:
            _write_progress(progress, state)

    _write_progress(progress, state)
    atheris.Setup(
        [sys.argv[0], *flags, f"-artifact_prefix={out_dir}/", *corpora],
        one_input,
    )
    atheris.Fuzz()


def _write_progress(path: Path, state: dict[str, float]) -> None:
    seconds = time.monotonic() - state["started"]
    body = {"runs": state["runs"], "slowest_s": state["slowest_s"], "seconds": seconds}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


if __name__ == "__main__":
    main(sys.argv[1:])
