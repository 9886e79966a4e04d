"""Fixtures for the media tests: a paced virtual sound card (JACK's dummy driver).

``jack_server`` starts ``jackd -n NAME -d dummy -r 48000 -p 480`` (a private server name, so it
never meets anybody else's JACK), waits until a client can connect, yields the name and stops it
by pid. Without ``jackd`` it skips, except in CI (``CI=true``) where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

JACK_RATE = 48000
JACK_PERIOD = 480
READY_TIMEOUT_S = 15.0

# PortAudio's JACK client must never auto-start a server of its own (jackd with the ALSA driver).
_CLIENT_ENV = {"JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}

_PROBE = """
import sounddevice as sd
apis = [api["name"] for api in sd.query_hostapis()]
raise SystemExit(0 if any("JACK" in name for name in apis) else 1)
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _client_ready(name: str, env: dict[str, str]) -> bool:
    """One connection attempt: jack_lsp if installed, else PortAudio in a child process."""
    lsp = shutil.which("jack_lsp")
    if lsp is not None:
        command = [lsp, "-s", name]
    else:
        command = [sys.executable, "-c", _PROBE]
    probe_env = {**env, "JACK_DEFAULT_SERVER": name}
    result = subprocess.run(command, env=probe_env, capture_output=True, timeout=10, check=False)
    return result.returncode == 0


@pytest.fixture
def jack_server(tmp_path: Path) -> Iterator[str]:
    jackd = shutil.which("jackd")
    if jackd is None:
        message = "jackd is not installed (sudo apt-get install jackd2)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    name = f"softphone-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **_CLIENT_ENV}
    log_path = tmp_path / "jackd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [jackd, "-n", name, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _client_ready(name, env):
            try:
                # Waits on the condition "jackd died" for a moment; a clean exit is a failure.
                code = proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                pytest.fail(f"jackd exited with {code}: {log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jackd not ready after {READY_TIMEOUT_S} s: {log_path.read_text(errors='replace')}"
                )
        yield name
    finally:
        proc.terminate()  # our own child, by pid
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
