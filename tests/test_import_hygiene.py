"""Importing softphone or a protocol core (sip, sdp, rtp, rtsp, auth: sans-IO) must not pull in
the IO world: no asyncio, socket, ssl, textual, sounddevice, av, opuslib or numpy. The peer lab (softphone.lab) is
for the tests and ``softphone bench`` only: the everyday commands never load it, and it loads
none of the layers above it. Each import runs in a fresh interpreter so nothing loaded by the
test process leaks in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import softphone

FORBIDDEN = ("asyncio", "socket", "ssl", "textual", "sounddevice", "av", "opuslib", "numpy")

SANS_IO_PACKAGES = ("sip", "sdp", "rtp", "rtsp", "auth")


def _sans_io_modules() -> list[str]:
    """Every module of the protocol cores, found on disk: a new module is covered without
    anyone remembering to list it."""
    root = Path(softphone.__file__).parent
    found = []
    for package in SANS_IO_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append(".".join(parts))
    return found


MODULES = ["softphone", "softphone.config", *_sans_io_modules()]


def test_the_sans_io_modules_are_found() -> None:
    assert {
        "softphone.sip.ua",
        "softphone.sip.registration",
        "softphone.rtp.jitter",
        "softphone.rtsp.client",
    } <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_core_imports_stay_sans_io(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "", f"importing {module} pulled in {out.stdout.strip()}"


def test_cli_help_does_not_import_the_world() -> None:
    """`softphone --help` stays fast: argument parsing needs none of the heavy packages."""
    code = (
        "import sys\nfrom softphone.__main__ import build_parser\nbuild_parser()\n"
        f"print(','.join(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def _loaded_after(module: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys, {module}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize(
    "module", ["softphone.__main__", "softphone.cli", "softphone.tui.app", "softphone.phone.phone"]
)
def test_the_everyday_commands_never_load_the_lab(module: str) -> None:
    assert _loaded_after(module, ("softphone.lab",)) == []


def test_the_lab_loads_nothing_above_it() -> None:
    above = ("softphone.phone", "softphone.tui", "softphone.cli", "softphone.bench")
    assert _loaded_after("softphone.lab", above) == []
