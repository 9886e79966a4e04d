"""A paced virtual sound card: a JACK server with the dummy driver (Debian's jackd2).

``jackd -n NAME -d dummy -r 48000 -p 480`` runs in real time, so PortAudio's callbacks come at
the pace a card would give them. The server has a private name, so it never meets anybody
else's JACK; a client finds it through :meth:`JackServer.client_env` (``JACK_DEFAULT_SERVER``).
It counts as ready once ``jack_lsp -s NAME`` can connect to it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Final

from softphone.lab.process import LabError, LabProcess, find_binary

__all__ = ["JackServer"]


class JackServer:
    """``jackd -n NAME -d dummy -r RATE -p PERIOD`` in ``workdir`` (its output in jackd.log)."""

    # A JACK client must never start a server of its own (jackd with the ALSA driver).
    CLIENT_ENV: Final = {"JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}

    def __init__(self, workdir: Path, *, rate: int = 48000, period: int = 480) -> None:
        self.workdir = workdir
        self.rate = rate
        self.period = period
        self.name = f"softphone-lab-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.log_path = workdir / "jackd.log"
        self._process: LabProcess | None = None

    def client_env(self) -> dict[str, str]:
        """What a client's environment needs to use this server (and only it)."""
        return {**self.CLIENT_ENV, "JACK_DEFAULT_SERVER": self.name}

    def start(self, timeout_s: float = 15.0) -> JackServer:
        """Start jackd and wait until a client can connect; PeerMissing without jackd2."""
        jackd = find_binary("jackd", "jackd2")
        lsp = find_binary("jack_lsp", "jackd2")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.CLIENT_ENV}
        argv = [jackd, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)]
        process = self._process = LabProcess(
            argv, name="jackd", cwd=self.workdir, env=env, log_path=self.log_path
        )

        def ready() -> bool:
            probe = subprocess.run(
                [lsp, "-s", self.name], env=env, capture_output=True, timeout=10, check=False
            )
            return probe.returncode == 0

        try:
            process.wait_until(ready, timeout_s, f"jackd {self.name} to accept clients")
        except LabError as exc:
            tail = process.tail()
            self.stop()
            raise LabError(f"{exc}\njackd output:\n{tail}") from None
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def lines(self) -> list[str]:
        return self._process.lines() if self._process is not None else []

    def stop(self) -> int | None:
        return self._process.stop() if self._process is not None else None
