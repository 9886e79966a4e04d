"""Proof that the RTSP protocol, RTP and depacketising in ``softphone play`` are ours.

The RTSP interop tests put this directory on PYTHONPATH with SOFTPHONE_MEDIA_GUARD=1, so Python
loads it at start-up in every softphone process they run. It makes ``av.open`` refuse network
URLs (FFmpeg would otherwise do RTSP for us) and makes any attempt to start ffmpeg, ffprobe or a
GStreamer tool fail loudly. Files (recordings, snapshots) still open normally.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

BANNED_PROGRAMS = frozenset(
    {"ffmpeg", "ffprobe", "ffplay", "gst-launch-1.0", "gst-play-1.0", "gst-discoverer-1.0"}
)


class MediaGuardError(RuntimeError):
    """The play path tried to hand networking or decoding to FFmpeg or GStreamer."""


def _program(args: Any) -> str:
    first = args[0] if isinstance(args, (list, tuple)) and args else args
    return os.path.basename(str(first).split()[0]) if first else ""


def install() -> None:
    import av

    real_open = av.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            isinstance(file, (str, os.PathLike))
            and "://" in os.fspath(file)
            and not os.fspath(file).startswith("file:")
        ):
            raise MediaGuardError(
                f"av.open({os.fspath(file)!r}): FFmpeg must not do the networking"
            )
        return real_open(file, *args, **kwargs)

    av.open = guarded_open  # type: ignore[assignment]

    real_init = subprocess.Popen.__init__

    def guarded_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        if _program(args) in BANNED_PROGRAMS:
            raise MediaGuardError(f"the play path must not run {_program(args)}")
        real_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = guarded_init  # type: ignore[method-assign]


if os.environ.get("SOFTPHONE_MEDIA_GUARD") == "1":
    install()
