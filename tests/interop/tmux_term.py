"""A private tmux server for end-to-end tests of the TUI: start a command in a detached pane of
a given size, type into it, read the screen, wait for text. The server runs on its own socket
(``tmux -L``) and is ended with ``kill-server`` on that socket only: never anyone else's tmux."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class TmuxError(Exception):
    pass


class TmuxTerm:
    def __init__(self, name: str, *, size: tuple[int, int] = (100, 30)) -> None:
        if shutil.which("tmux") is None:
            raise TmuxError("tmux is not installed (make test installs it)")
        self.socket = f"{name}-{os.getpid()}"
        self.size = size
        self.pid: int | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="tmux-term-"))
        self._fifo_fd: int | None = None

    def _tmux(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=dict(env) if env is not None else None,
        )

    def start(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> TmuxTerm:
        import shlex

        made = self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(self.size[0]),
            "-y",
            str(self.size[1]),
            "-c",
            str(cwd),
            "exec " + shlex.join(argv),
            env=env,
        )
        if made.returncode != 0:
            raise TmuxError(f"tmux new-session failed: {made.stderr.strip()}")
        # Keep the pane after the program exits, so its last screen (a traceback?) can be read.
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")
        shown = self._tmux("display-message", "-p", "-t", "t", "#{pane_pid}")
        self.pid = int(shown.stdout.strip() or 0) or None
        # Everything the program writes is copied to a FIFO: waits wake on output, not on a timer.
        fifo = self._dir / "out"
        os.mkfifo(fifo)
        self._fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._tmux("pipe-pane", "-t", "t", "-o", f"cat > {fifo}")
        return self

    def _wait_output(self, timeout_s: float) -> None:
        """Block until the program writes something (or ``timeout_s`` passes)."""
        if self._fifo_fd is None:
            return
        ready, _, _ = select.select([self._fifo_fd], [], [], max(0.0, timeout_s))
        if ready:
            try:
                data = os.read(self._fifo_fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:  # the writer is gone: the program ended
                os.close(self._fifo_fd)
                self._fifo_fd = None

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t").stdout

    def dead(self) -> bool:
        out = self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}").stdout.strip()
        return out in ("1", "")

    def send(self, *keys: str, literal: bool = False) -> None:
        """tmux key names ("Enter", "Escape", "C-c") or, with ``literal``, text typed as is."""
        args = ["send-keys", "-t", "t", *(["-l"] if literal else []), *keys]
        if self._tmux(*args).returncode != 0:
            raise TmuxError(f"send-keys {keys!r} failed")

    def wait_until(self, cond: Callable[[str], bool], timeout_s: float, what: str) -> str:
        """Re-read the screen each time the program writes, until ``cond(screen)``; the screen."""
        deadline = time.monotonic() + timeout_s
        for _ in range(100_000):  # bounded: each turn waits for output or the deadline
            screen = self.screen()
            if cond(screen):
                return screen
            left = deadline - time.monotonic()
            if left <= 0 or self.dead():
                break
            self._wait_output(min(left, 0.5))  # 0.5 s: a screen may settle after its last write
        raise TmuxError(f"{what} did not show in {timeout_s:.0f} s; the screen:\n{self.screen()}")

    def wait_for(self, pattern: str, timeout_s: float = 15.0) -> re.Match[str]:
        """Re-read the screen each time the program writes, until ``pattern`` shows."""
        regex = re.compile(pattern)
        screen = self.wait_until(lambda s: regex.search(s) is not None, timeout_s, repr(pattern))
        match = regex.search(screen)
        assert match is not None
        return match

    def wait_dead(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        for _ in range(100_000):
            if self.dead():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wait_output(min(left, 0.2))
        raise TmuxError(
            f"the program did not exit in {timeout_s:.0f} s; the screen:\n{self.screen()}"
        )

    def close(self) -> None:
        self._tmux("kill-server")  # our private server (and the program in it) only
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
        shutil.rmtree(self._dir, ignore_errors=True)
