"""Helpers for tests that run the real ``softphone`` command in subprocesses."""

from __future__ import annotations

import os
from pathlib import Path


def make_env(root: Path) -> dict[str, str]:
    """The environment of one softphone process: its XDG directories all under ``root``, so
    the user's own config, logs and data are never touched."""
    env = dict(os.environ)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["PYTHONUNBUFFERED"] = "1"
    return env
