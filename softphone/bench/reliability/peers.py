"""The phones the campaign measures: ``softphone listen`` as a child process, and what a process
costs (CPU, RSS, threads, open files) read from /proc.

:class:`SoftphoneListen` runs ``python -m softphone listen --json`` with its own config, log,
database and state directories under a work directory (XDG variables), so that nothing of the
person's own setup is read or written, and reads its JSON events line by line. It can be killed
hard (SIGKILL, for the crash scenario) and started again on the same directories and port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import softphone
from softphone.bench.call_peers import cpu_seconds, json_event
from softphone.lab.process import HOST, LabError, LabProcess

__all__ = ["ProcessSample", "SoftphoneListen", "sample_process"]

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessSample:
    cpu_s: float
    rss_mb: float
    threads: int
    fds: int


def sample_process(pid: int) -> ProcessSample:
    """CPU seconds (all threads), resident memory, threads and open descriptors of ``pid``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError as exc:
        raise LabError(f"cannot read /proc/{pid}: {exc}") from exc
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
    threads = int(fields.get("Threads", "0").strip())
    return ProcessSample(cpu_s=cpu_seconds(pid), rss_mb=rss_kb / 1024, threads=threads, fds=fds)


class SoftphoneListen:
    """``softphone listen --json`` in a child process (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        config: str = "",
        args: tuple[str, ...] = ("--auto-answer", "--no-audio"),
        sip_port: int = 0,
        env: dict[str, str] | None = None,
        host: str = HOST,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """``host``: the address it binds; ``prefix``: what runs it (``ip netns exec NS``)."""
        self.workdir = workdir
        self.config = config
        self.args = args
        self.sip_port = sip_port
        self.extra_env = env or {}
        self.host = host
        self.prefix = prefix
        self._process: LabProcess | None = None
        self.starts = 0
        self.last_events: list[Event] = []  # what the last run wrote, kept after stop()

    @property
    def process(self) -> LabProcess:
        if self._process is None:
            raise LabError("softphone is not running")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The child runs the softphone this code is part of, whatever the working directory
        # and whichever copy an installed package would point to.
        source = str(Path(softphone.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
        for name, sub in (("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
            env[name] = str(self.workdir / sub)
        env["XDG_CONFIG_HOME"] = str(self.workdir / "config-home")
        return {**env, **self.extra_env}

    def start(self, timeout_s: float = 20.0) -> SoftphoneListen:
        """Start it and wait until it listens on UDP; the port it got is kept for a restart."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.toml"
        config.write_text(self.config)
        config.chmod(0o600)
        self.starts += 1
        argv = [
            *self.prefix,
            sys.executable,
            "-m",
            "softphone",
            "--config",
            str(config),
            "--log-file",
            str(self.workdir / "softphone.log"),
            "listen",
            "--bind",
            self.host,
            "--sip-port",
            str(self.sip_port),
            "--json",
            *self.args,
        ]
        self._process = LabProcess(
            argv,
            name="softphone",
            cwd=self.workdir,
            env=self.env(),
            log_path=self.workdir / f"events-{self.starts}.jsonl",
            stderr_path=self.workdir / f"stderr-{self.starts}.log",
        )
        event = self.wait_event(
            lambda e: e.get("event") == "listening" and e.get("transport") == "udp",
            timeout_s,
            "listening on UDP",
        )
        self.sip_port = int(event["port"])
        return self

    @property
    def events(self) -> list[Event]:
        return [e for line in self.process.lines() if (e := json_event(line)) is not None]

    def count(self, match: Callable[[Event], bool]) -> int:
        return sum(1 for e in self.events if match(e))

    def find_event(
        self, match: Callable[[Event], bool], timeout_s: float, since: int = 0
    ) -> Event | None:
        def matching(line: str) -> Event | None:
            event = json_event(line)
            return event if event is not None and match(event) else None

        return self.process.log.search(matching, timeout_s, since)

    def wait_event(
        self, match: Callable[[Event], bool], timeout_s: float, what: str, since: int = 0
    ) -> Event:
        event = self.find_event(match, timeout_s, since)
        if event is None:
            state = "exited" if not self.process.alive() else "running"
            raise LabError(f"softphone ({state}): no {what} within {timeout_s:.0f} s")
        return event

    def mark(self) -> int:
        return self.process.mark()

    def kill_hard(self) -> None:
        """SIGKILL by pid, as a crash would end it: nothing of ours runs on the way out."""
        process = self.process
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.proc.wait(timeout=10)
        process.stop()

    def stop(self) -> None:
        """SIGTERM (the way a service manager stops it), then everything it wrote is kept in
        ``last_events``."""
        if self._process is not None:
            self._process.stop()
            self.last_events = self.events
            self._process = None

    def unended_calls(self) -> tuple[int, int]:
        """After :meth:`stop`: the calls it reported (incoming_call), and how many of them have
        no call_ended in what it wrote before it exited."""
        offered = {e.get("call_id") for e in self.last_events if e.get("event") == "incoming_call"}
        ended = {e.get("call_id") for e in self.last_events if e.get("event") == "call_ended"}
        return len(offered), len(offered - ended)
