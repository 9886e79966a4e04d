"""Whether the process that wrote a row is still running: a lock file per open database.

A call is written to the history when it starts (its result "in progress") and completed when
it ends. Should the process die in between (kill -9, a crash, a power cut), the row must not
read "in progress" forever, yet a second softphone sharing the database (``softphone listen``
beside the TUI) must not have its live calls marked as ended either. So each open database
holds an exclusive ``flock`` on a file of its own, ``<db>.live/<token>``, and rows in progress
name that token as their owner. The kernel drops the lock when the process ends, however it
ends; whoever can take an owner's lock (or finds its file gone) knows the owner is dead. Process
ids alone would not do: a new process may reuse a dead one's id.

Without ``fcntl`` (not a POSIX system) no lock is held and no owner is ever judged dead: rows a
crash left in progress then stay so until the same program finishes them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Final

try:
    import fcntl
except ImportError:  # pragma: no cover - every system we run on has it
    fcntl = None  # type: ignore[assignment]

__all__ = ["LiveMark"]

logger = logging.getLogger(__name__)

_TOKEN: Final = re.compile(r"^[0-9]+-[0-9a-f]{12}$")


class LiveMark:
    """This process's mark beside the database at ``db_path``: :attr:`token` names it."""

    def __init__(self, directory: Path, token: str, fd: int | None) -> None:
        self.directory = directory
        self.token = token
        self._fd = fd

    @classmethod
    def take(cls, db_path: Path) -> LiveMark:
        directory = db_path.with_name(db_path.name + ".live")
        token = f"{os.getpid()}-{secrets.token_hex(6)}"
        if fcntl is None:  # pragma: no cover
            return cls(directory, token, None)
        fd: int | None = None
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(directory / token, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        except OSError as exc:  # a read-only directory, a file system without locks
            if fd is not None:
                os.close(fd)
            logger.warning(
                "cannot mark %s as in use (%s): another softphone may take our calls in "
                "progress for interrupted ones until they end",
                directory,
                exc,
            )
            return cls(directory, token, None)
        return cls(directory, token, fd)

    def release(self) -> None:
        """Drop the mark (the database is closed)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            (self.directory / self.token).unlink(missing_ok=True)
        except OSError:
            pass
        os.close(fd)

    def owner_alive(self, token: str) -> bool:
        """Whether the process that took the mark ``token`` still runs (True for our own)."""
        if token == self.token:
            return True
        if fcntl is None:  # pragma: no cover
            return True
        if not _TOKEN.match(token):
            return False  # not a mark any softphone made
        path = self.directory / token
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell: never end a call that may be live
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return True
        else:
            try:
                path.unlink(missing_ok=True)  # its owner is gone; so is the mark
            except OSError:
                pass
            return False
        finally:
            os.close(fd)
