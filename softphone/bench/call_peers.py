"""What the call benchmarks add to the peer lab: ``softphone dial`` as a child, CPU time, audio.

The peers themselves (baresip, jackd) come from ``softphone.lab``; everything runs on
127.0.0.1, every process is started by us in its own session and stopped by its pid.

- :func:`cpu_seconds` reads utime+stime of a process (all its threads) from ``/proc/PID/stat``
  (proc(5): fields 14 and 15, in clock ticks).
- :class:`SoftphoneDial`: ``python -m softphone dial URI --json ...`` as a child process whose
  JSON events are read line by line.
- :func:`looped_wav`: a speech file resampled and looped to the length of a call.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from softphone.lab.netns import netns_argv
from softphone.lab.process import HOST, LabError, LabProcess
from softphone.media.resample import resample
from softphone.media.wav import WavWriter, read_wav

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")

Event = dict[str, Any]


# --------------------------------------------------------------------------- CPU time


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all threads), in seconds, from /proc/PID/stat.

    proc(5): the command name (field 2) is in parentheses and may hold spaces, so fields are
    counted after the last ')'; utime and stime are fields 14 and 15 (clock ticks).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise LabError(f"cannot read the CPU time of pid {pid}: {exc}") from exc
    return parse_stat_cpu(text)


def parse_stat_cpu(text: str) -> float:
    """utime + stime in seconds from the text of a /proc/PID/stat file."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime (14) and stime (15) are fields[11] and fields[12].
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --------------------------------------------------------------------------- test audio


def looped_wav(source: Path, out: Path, seconds: float, sample_rate: int = 48000) -> Path:
    """``source`` (any WAV) resampled to ``sample_rate`` mono and looped to ``seconds``."""
    pcm, rate = read_wav(source)
    pcm = resample(pcm, rate, sample_rate)
    if len(pcm) == 0:
        raise LabError(f"{source} holds no audio")
    total = int(seconds * sample_rate)
    looped = np.resize(pcm, total).astype(np.float32)
    with WavWriter(out, sample_rate, 1) as writer:
        writer.write(looped)
    return out


# --------------------------------------------------------------------------- softphone dial


def json_event(line: str) -> Event | None:
    """One line of ``--json`` output as an event; None for anything else."""
    with contextlib.suppress(ValueError):
        event = json.loads(line)
        if isinstance(event, dict):
            return event
    return None


class SoftphoneDial:
    """``softphone dial URI --json`` in a child process; events read from its stdout."""

    def __init__(
        self,
        workdir: Path,
        uri: str,
        *,
        play: Path | None,
        codecs: tuple[str, ...],
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        media_encryption: str | None = None,
        account: str | None = None,
        bind: str = HOST,
        netns: str | None = None,
    ) -> None:
        """``media_encryption``: dial from a peer-to-peer account with that setting (its DTLS
        certificate goes in ``workdir``); None: no account, as a fresh install dials.
        ``account``: an ``[[account]]`` table of the config instead (TOML). ``bind``: the
        address it binds, inside namespace ``netns`` when given."""
        self.media_encryption = media_encryption
        self.account = account
        self.bind = bind
        self.netns = netns
        self.exit_wait_s = 3.0
        self.workdir = workdir
        self.uri = uri
        self.play = play
        self.codecs = codecs
        self.extra_args = extra_args
        self.env = env
        self._process: LabProcess | None = None

    @property
    def process(self) -> LabProcess:
        if self._process is None:
            raise LabError("softphone is not running")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def events(self) -> list[Event]:
        return [e for line in self.process.lines() if (e := json_event(line)) is not None]

    def start(self) -> SoftphoneDial:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.toml"
        text = "codecs = [" + ", ".join(f'"{c}"' for c in self.codecs) + "]\n"
        if self.media_encryption is not None:
            text += (
                f'[[account]]\nname = "bench"\nuri = "sip:bench@{HOST}"\n'
                f'media_encryption = "{self.media_encryption}"\n'
            )
            self.env = {
                **(self.env or os.environ),
                "XDG_DATA_HOME": str(self.workdir / "data"),
            }
        elif self.account is not None:
            text += self.account
        config.write_text(text)
        argv = [
            sys.executable,
            "-m",
            "softphone",
            "--config",
            str(config),
            "--log-file",
            str(self.workdir / "softphone.log"),
            "dial",
            self.uri,
            "--bind",
            self.bind,
            "--sip-port",
            "0",
            "--json",
            *self.extra_args,
        ]
        if self.play is not None:
            argv += ["--play", str(self.play)]
        self._process = LabProcess(
            netns_argv(self.netns, argv),
            name="softphone",
            cwd=self.workdir,
            env=self.env,
            stderr_path=self.workdir / "stderr.log",
        )
        return self

    def find_event(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        """The first matching event so far, waiting up to ``timeout_s``; None on timeout.
        Raises LabError if the process exits first."""

        def matching(line: str) -> Event | None:
            event = json_event(line)
            return event if event is not None and match(event) else None

        found = self.process.log.search(matching, timeout_s)
        if found is None and self.process.log.closed:
            raise LabError(f"softphone exited ({self.process.proc.wait()}): {self.stderr_tail()}")
        return found

    def wait_event(self, match: Callable[[Event], bool], timeout_s: float, what: str) -> Event:
        event = self.find_event(match, timeout_s)
        if event is None:
            raise LabError(f"softphone: no {what} within {timeout_s:.0f} s: {self.stderr_tail()}")
        return event

    def stop(self) -> None:
        """Wait ``exit_wait_s`` for it to end by itself, then SIGTERM (it hangs up first)."""
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.proc.wait(timeout=self.exit_wait_s)
            self._process.stop()
            self._process = None

    def stderr_tail(self, lines: int = 10) -> str:
        path = self.workdir / "stderr.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


class Stoppable(Protocol):
    def stop(self) -> object: ...


@contextlib.contextmanager
def stopping(*peers: Stoppable) -> Iterator[None]:
    """Stop every peer on the way out, whatever happened."""
    try:
        yield
    finally:
        for peer in reversed(peers):
            peer.stop()
