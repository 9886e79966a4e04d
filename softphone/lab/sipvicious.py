"""sipvicious (Debian ``sipvicious``) as the lab's scanner: ``svmap`` finds SIP devices, ``svwar``
guesses their users.

``svwar`` first sends its request for an extension that cannot exist, keeps that answer as the
"no such user" baseline, then reports every extension whose answer differs (``reqauth`` for a
401/407, ``noauth`` for a call that rings or a 200, ``weird`` for anything else it did not
expect). A device that answers every extension the same way gives it nothing to tell apart:
either nothing is reported, or every extension is, the made-up baseline one included.

Both run in the foreground and end by themselves; their result tables are parsed into lists.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from softphone.lab.process import HOST, LabError, find_binary

__all__ = ["ScanRow", "svmap", "svwar"]

_ROW: Final = re.compile(r"^\|\s*(\S[^|]*?)\s*\|\s*(\S[^|]*?)\s*\|")


@dataclass(frozen=True, slots=True)
class ScanRow:
    name: str  # svmap: the device ("127.0.0.1:5060"); svwar: the extension
    detail: str  # svmap: its User-Agent; svwar: reqauth / noauth / weird


def _table(text: str, header: str) -> list[ScanRow]:
    rows = []
    for line in text.splitlines():
        match = _ROW.match(line)
        if match and match.group(1) != header:
            rows.append(ScanRow(match.group(1), match.group(2)))
    return rows


def _run(argv: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{argv[0]} did not finish within {timeout_s:.0f} s") from exc
    return done.stdout + done.stderr


def svmap(port: int, host: str = HOST, *, timeout_s: float = 60.0) -> tuple[list[ScanRow], str]:
    """The devices svmap finds at ``host:port`` (OPTIONS), and its whole output."""
    binary = find_binary("svmap", "sipvicious")
    output = _run([binary, "-p", str(port), host], timeout_s)
    return _table(output, "SIP Device"), output


def svwar(
    port: int,
    users: Sequence[str],
    workdir: Path,
    *,
    method: str = "INVITE",
    host: str = HOST,
    timeout_s: float = 120.0,
) -> tuple[list[ScanRow], str]:
    """The extensions of ``users`` that svwar reports at ``host:port`` with ``method``, and its
    whole output."""
    binary = find_binary("svwar", "sipvicious")
    workdir.mkdir(parents=True, exist_ok=True)
    dictionary = workdir / "svwar-users.txt"
    dictionary.write_text("".join(f"{u}\n" for u in users))
    argv = [binary, "-d", str(dictionary), "-m", method, "-p", str(port), host]
    output = _run(argv, timeout_s)
    return _table(output, "Extension"), output
