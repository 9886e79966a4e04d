"""Children of the lab: started in a session of their own, stopped by pid, their output kept.

Every peer the lab runs is a :class:`LabProcess`: its own session and process group (so that
stopping it also ends whatever it started), SIGTERM from Linux if our process dies first
(``PR_SET_PDEATHSIG``), and its output read line by line by a thread into a
:class:`ProcessLog`, which keeps the lines for waits and assertions and appends them to a log
file as they come (a later reader, even another process, sees them at once).

Waiting is always for a condition under a deadline: a line of output, a port that accepts, a
probe that succeeds. Between two looks at the condition the wait ends early when the child
prints something; nothing waits a fixed time and then hopes.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar, Final, TypeVar

__all__ = [
    "HOST",
    "PORT_ATTEMPTS",
    "PORT_TAKEN",
    "LabError",
    "LabProcess",
    "PeerMissing",
    "ProcessLog",
    "accepts",
    "can_bind",
    "family_of",
    "find_binary",
    "free_port_pair",
    "free_tcp_port",
    "hostport",
    "retry_taken_port",
    "stop_process",
    "wait_until",
]

HOST: Final = "127.0.0.1"
# Debian puts kamailio in /usr/sbin, which is not on every user's PATH.
SBIN_DIRS: Final = ("/usr/sbin", "/sbin", "/usr/local/sbin")

T = TypeVar("T")


class LabError(Exception):
    """A peer failed to start, misbehaved, or did not do what we waited for in time."""


class PeerMissing(LabError):
    """A peer, or a piece it needs, is not installed on this machine."""


def find_binary(name: str, package: str | None = None) -> str:
    """The path of the executable ``name`` (PATH, then the sbin directories)."""
    path = shutil.which(name) or next(
        (str(p) for d in SBIN_DIRS if (p := Path(d) / name).is_file() and os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        hint = f" (sudo apt-get install {package})" if package else ""
        raise PeerMissing(f"{name} is not installed{hint}")
    return path


# --------------------------------------------------------------------------- ports


def can_bind(family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int) -> bool:
    with socket.socket(family, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal (it has a colon), else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def hostport(host: str, port: int) -> str:
    """``host:port`` with an IPv6 literal in brackets, as peers' configurations write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def softphone_env(root: Path) -> dict[str, str]:
    """The environment of one ``softphone`` process started by a test or a bench: its XDG
    directories all under ``root`` (the user's own config, logs and data are never touched),
    its output unbuffered so that its JSON events arrive as they happen."""
    env = dict(os.environ)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_tcp_port(host: str = HOST) -> int:
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_pair(host: str = HOST) -> int:
    """A port P with UDP and TCP free on both P and P+1 (SIP, and SIP over TLS on the next)."""
    for _ in range(200):
        port = free_tcp_port(host)
        if port >= 65535:
            continue
        if all(
            can_bind(family_of(host), kind, host, p)
            for p in (port, port + 1)
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)
        ):
            return port
    raise LabError(f"no free port pair on {host}")


PORT_ATTEMPTS: Final = 3
PORT_TAKEN: Final = "Address already in use"  # what a peer logs when its port was taken


def retry_taken_port(start: Callable[[], T], attempts: int = PORT_ATTEMPTS) -> T:
    """``start()``, again (up to ``attempts`` in all) while it fails with :data:`PORT_TAKEN`.

    Free ports are found by binding to port 0 and letting go; another process (a test run
    beside this one) may take one before the peer binds it, and the peer then quits. ``start``
    picks new free ports each time; any other failure is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except LabError as exc:
            if attempt == attempts or PORT_TAKEN not in str(exc):
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


def accepts(port: int, host: str = HOST, timeout_s: float = 0.2) -> bool:
    """True when a TCP connection to ``host:port`` is accepted within ``timeout_s``."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


# --------------------------------------------------------------------------- waiting


def _pause(seconds: float) -> None:
    select.select([], [], [], seconds)


def wait_until(
    cond: Callable[[], bool],
    timeout_s: float,
    what: str,
    *,
    alive: Callable[[], bool] | None = None,
    poll_s: float = 0.02,
    pause: Callable[[float], object] = _pause,
) -> None:
    """Return once ``cond()`` holds; LabError when ``alive()`` turns false or ``timeout_s`` passes.

    Between two checks it calls ``pause(poll_s)``, which may return early (e.g. on new output).
    """
    deadline = time.monotonic() + timeout_s
    while not cond():
        if alive is not None and not alive():
            raise LabError(f"the process died while waiting for {what}")
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout_s:g} s waiting for {what}")
        pause(min(poll_s, max(0.0, deadline - time.monotonic())))


# --------------------------------------------------------------------------- output


class ProcessLog:
    """The lines a child prints, read by a thread, waited on with a condition variable.

    Each line is also appended to ``path`` (when given) and flushed as it arrives.
    """

    def __init__(self, stream: IO[str], name: str, path: Path | None = None) -> None:
        self.name = name
        self.path = path
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._closed = False
        self._thread = threading.Thread(
            target=self._pump, args=(stream,), name=f"lab-log-{name}", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        sink = self.path.open("a", encoding="utf-8") if self.path is not None else None
        try:
            for raw in stream:
                line = raw.rstrip("\r\n")
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the output has ended
        finally:
            if sink is not None:
                sink.close()
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once the child's output has ended (it exited, or closed it)."""
        with self._cond:
            return self._closed

    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def __len__(self) -> int:
        with self._cond:
            return len(self._lines)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines()[-n:])

    def search(
        self, match: Callable[[str], T | None], timeout_s: float, since: int = 0
    ) -> T | None:
        """The first non-None ``match(line)`` over lines[since:], waiting up to ``timeout_s``
        for more; None when the time passes or the output ends first (see ``closed``)."""
        deadline = time.monotonic() + timeout_s
        index = since
        with self._cond:
            while True:
                while index < len(self._lines):
                    if (found := match(self._lines[index])) is not None:
                        return found
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._cond.wait(remaining)

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        """First match of ``pattern`` (re.search) in lines[since:], waiting up to ``timeout_s``."""
        regex = re.compile(pattern)
        found = self.search(regex.search, timeout_s, since)
        if found is not None:
            return found
        why = "output closed" if self.closed else f"{timeout_s}s passed"
        raise LabError(
            f"{self.name}: no line matching {regex.pattern!r} ({why}); last lines:\n{self.tail()}"
        )

    def wait_output(self, seen: int, timeout_s: float) -> bool:
        """Wait until there are more than ``seen`` lines (or output ends); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._lines) > seen or self._closed, timeout_s)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


# --------------------------------------------------------------------------- processes


# util-linux's setpriv (Debian: essential) sets PR_SET_PDEATHSIG and execs the peer, which keeps
# it across the exec. It used to be set by a preexec_fn: Python code in the forked child of a
# process with threads (PortAudio's, encoders', the log readers'), which once hung there for good,
# on a lock another thread held at the fork, and held a CI run until it was stopped.
_SETPRIV: Final = shutil.which("setpriv")


def _die_with_parent(argv: list[str]) -> list[str]:
    """Best effort: ``argv`` run so that Linux SIGTERMs it if the thread that started it (and so
    our process) dies first; ``argv`` itself where setpriv is missing."""
    if _SETPRIV is None:
        return argv
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]


def stop_process(proc: subprocess.Popen[Any], term_wait_s: float = 5.0) -> int | None:
    """SIGTERM our child by pid, SIGKILL its process group after a bounded wait; its exit code.

    The group is the one ``start_new_session`` made for the child (its id is the child's pid),
    so the SIGKILL also ends anything the child left behind, and nobody else.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=term_wait_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=term_wait_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


class LabProcess:
    """``argv`` started in its own session, dying with us, its output in a :class:`ProcessLog`.

    Output is stdout and stderr together, unless ``stderr_path`` is given: then stderr goes to
    that file and the log holds stdout only (for children that print data on stdout).
    ``stdin_pipe``: keep a pipe to its stdin for :meth:`send_line` (peers driven by console
    commands); otherwise stdin is /dev/null.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        name: str,
        cwd: Path,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        stderr_path: Path | None = None,
        stdin_pipe: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        with contextlib.ExitStack() as stack:
            err: IO[bytes] | int = subprocess.STDOUT
            if stderr_path is not None:
                err = stack.enter_context(stderr_path.open("ab"))
            self.proc: subprocess.Popen[str] = subprocess.Popen(
                _die_with_parent(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        self.log = ProcessLog(self.proc.stdout, name, log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def lines(self) -> list[str]:
        return self.log.lines()

    def tail(self, n: int = 40) -> str:
        return self.log.tail(n)

    def mark(self) -> int:
        """An index to pass as ``since=`` so that a wait ignores what was printed before now."""
        return len(self.log)

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        return self.log.wait_for(pattern, timeout_s, since)

    def send_line(self, line: str) -> None:
        """Write ``line`` and a newline to its stdin (started with ``stdin_pipe=True``)."""
        if "\n" in line or "\r" in line:
            raise LabError(f"{self.name}: one line at a time, not {line!r}")
        stdin = self.proc.stdin
        if stdin is None:
            raise LabError(f"{self.name}: started without a stdin pipe")
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (OSError, ValueError) as exc:  # it exited, or we closed the pipe
            raise LabError(f"{self.name}: cannot send {line!r}: {exc}") from exc

    def wait_until(
        self, cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05
    ) -> None:
        """Like :func:`wait_until`, also failing when this process exits; a look at ``cond``
        comes at the latest ``poll_s`` after the previous one, or as soon as it prints."""
        try:
            wait_until(
                cond,
                timeout_s,
                what,
                alive=self.alive,
                poll_s=poll_s,
                pause=lambda s: self.log.wait_output(len(self.log), s),
            )
        except LabError:
            if not self.alive():
                self.log.join(2.0)  # all it printed before it died, for the caller's message
            raise

    def wait_port(self, port: int, timeout_s: float, *, host: str = HOST) -> None:
        """Until ``host:port`` accepts TCP connections."""
        self.wait_until(lambda: accepts(port, host), timeout_s, f"{host}:{port} to accept")

    def stop(self, term_wait_s: float = 5.0) -> int | None:
        """SIGTERM by pid, SIGKILL of its group after ``term_wait_s``; its exit code."""
        code = stop_process(self.proc, term_wait_s)
        self.log.join(2.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code


class OneProcessPeer:
    """What a peer that runs as one :class:`LabProcess` answers about it (its output stays
    readable after it stops). ``peer_name`` names it in errors."""

    peer_name: ClassVar[str] = "the peer"
    _process: LabProcess | None

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> int | None:
        """SIGTERM by pid (SIGKILL after a bounded wait); its output stays readable."""
        return self._process.stop() if self._process is not None else None

    def lines(self) -> list[str]:
        return self._process.lines() if self._process is not None else []

    def mark(self) -> int:
        return len(self.lines())

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        if self._process is None:
            raise LabError(f"{self.peer_name} was never started")
        return self._process.wait_for(pattern, timeout_s, since)
