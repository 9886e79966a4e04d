"""The V4L2 cameras of this machine, for ``softphone devices`` and the config's
``video_device``: each ``/dev/videoN`` with the name its driver gives in sysfs
(``/sys/class/video4linux/videoN/name``). Nothing is opened; metadata nodes that a camera's
driver adds beside its capture node are listed too (Linux names both the same)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Camera", "list_cameras"]

SYSFS: Final = Path("/sys/class/video4linux")


@dataclass(frozen=True, slots=True)
class Camera:
    device: str  # /dev/video0
    name: str


def list_cameras(sysfs: Path = SYSFS, dev: Path = Path("/dev")) -> list[Camera]:
    """The video devices, by number; none when the machine has no V4L2 (or no sysfs)."""
    try:
        entries = list(sysfs.iterdir())
    except OSError:
        return []
    found: list[tuple[int, Camera]] = []
    for entry in entries:
        match = re.fullmatch(r"video(\d+)", entry.name)
        if match is None:
            continue
        try:
            name = (entry / "name").read_text(errors="replace").strip()
        except OSError:
            name = ""
        found.append((int(match[1]), Camera(str(dev / entry.name), name or entry.name)))
    return [camera for _, camera in sorted(found, key=lambda item: item[0])]
