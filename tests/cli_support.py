"""Helpers for tests that run the real ``softphone`` command in subprocesses."""

from __future__ import annotations

from pathlib import Path

from softphone.lab.process import softphone_env


def make_env(root: Path) -> dict[str, str]:
    """The environment of one softphone process: its XDG directories all under ``root``, so
    the user's own config, logs and data are never touched."""
    return softphone_env(root)
