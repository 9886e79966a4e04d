"""Where a benchmark keeps its configs and peer logs: ``--workdir DIR``, or a temporary directory.

Shared by the benchmarks that start peers (``bench/call.py``, ``bench/rtsp.py``, ...), with the
``--json`` switch that goes with it, and the bounded numbers their options take.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
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


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}")
        return value

    return parse


def number(
    low: float, high: float, *, above: bool = False, why: str = ""
) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` (or ``above`` it) to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (low < value if above else low <= value) or value > high:
            bounds = f"above {low} and at most {high}" if above else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}" + (f" ({why})" if why else ""))
        return value

    return parse


@contextmanager
def workdir(path: Path | None, *, prefix: str) -> Iterator[Path]:
    """``path`` (created if need be, absolute), or a temporary directory removed afterwards."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
