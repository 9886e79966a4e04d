"""Whether the config file lets others read a password, and the fix.

A config that others can read and that holds a password is still read, never silently:
:func:`exposed_password` is the warning the front ends show, :func:`make_private` the fix they
offer.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from softphone.files import PRIVATE_FILE_MODE

if TYPE_CHECKING:
    from pathlib import Path

    from softphone.config import Config

__all__ = ["exposed_password", "make_private"]


def exposed_password(config: Config) -> str | None:
    """A warning when the config file holds a password (an account's, a camera's, or one in a
    camera URL) and users other than its owner may read it; None otherwise."""
    path = config.path
    if path is None or not _holds_password(config):
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o044:
        return None
    return (
        f"{path} holds a password and other users can read it (mode {mode:04o}); "
        f"make it private with: chmod 600 {path}"
    )


def make_private(path: Path) -> None:
    """The fix :func:`exposed_password` offers: the config file 0600. Raises OSError."""
    os.chmod(path, PRIVATE_FILE_MODE)


def _holds_password(config: Config) -> bool:
    if any(a.password or a.nat.turn_password for a in config.accounts) or any(
        c.password for c in config.cameras
    ):
        return True
    for camera in config.cameras:
        try:
            if urlsplit(camera.url).password:
                return True
        except ValueError:
            continue
    return False
