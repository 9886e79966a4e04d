"""Where a benchmark keeps its configs and peer logs: ``--workdir DIR``, or a temporary directory.

Shared by the benchmarks that start peers (``bench/call.py``, ``bench/rtsp.py``), with the
``--json`` switch that goes with it.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def add_output_options(parser: argparse.ArgumentParser, *, keeps: str) -> None:
    """``--workdir DIR`` (help: "keep ``keeps`` here") and ``--json``."""
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help=f"keep {keeps} here (default: a temporary directory)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


@contextmanager
def workdir(path: Path | None, *, prefix: str) -> Iterator[Path]:
    """``path`` (created if need be, absolute), or a temporary directory removed afterwards."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
