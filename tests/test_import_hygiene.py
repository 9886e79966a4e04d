"""Importing softphone or a protocol core must not pull in the IO world (STYLE.md, "Layout"):
no asyncio, socket, ssl, textual, sounddevice, av or opuslib. The peer lab (softphone.lab) is
for the tests and ``softphone bench`` only: the everyday commands never load it, and it loads
none of the layers above it. Each import runs in a fresh interpreter so nothing loaded by the
test process leaks in."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("asyncio", "socket", "ssl", "textual", "sounddevice", "av", "opuslib", "numpy")

MODULES = [
    "softphone",
    "softphone.sip",
    "softphone.sip.uri",
    "softphone.sip.headers",
    "softphone.sip.message",
    "softphone.sip.framing",
    "softphone.sip.transaction",
    "softphone.sip.dialog",
    "softphone.auth.digest",
    "softphone.sip.ua",
    "softphone.sdp",
    "softphone.rtp",
    "softphone.rtsp",
    "softphone.rtsp.client",
    "softphone.rtp.reorder",
    "softphone.rtp.depacketize",
    "softphone.config",
]


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
