"""Files and directories only their user may read.

What softphone keeps (the config with its passwords, the log with every SIP message at DEBUG,
the call history, recordings, the DTLS key) is its user's alone: directories 0700, files 0600,
made so from the start and tightened when found looser.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "private_dir", "private_file", "write_file"]

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600


def private_dir(path: Path) -> Path:
    """Make the directory ``path`` (its missing parents with the usual mode) and leave it 0700:
    what softphone keeps there is its user's alone. An existing one that others may enter is
    tightened. Raises OSError."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make the file ``path`` if missing, and leave it 0600 (an existing one is tightened), so
    that opening it for writing never creates it readable by others. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return path


def write_file(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """``data`` into ``path`` atomically: a temporary file beside it, made with ``mode`` (0600
    unless told), synced, then renamed over ``path``. A crash leaves the old file or the new
    one, never half of either. A missing directory is made 0700. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
