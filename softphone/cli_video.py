"""The video options of ``dial`` and ``listen``: ``--video`` (the configured camera, else a
moving test pattern), ``--video-file PATH`` (a file, looped), and what they make of the config's
``video_device`` (phone/video.py ``VideoSettings``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from softphone.config import Config

if TYPE_CHECKING:  # the phone is imported when a call is made, not to parse the command line
    from softphone.phone.video import VideoSettings

__all__ = ["add_video_options", "video_settings"]


def _video_file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such video file: {text}")
    return text


def add_video_options(p: argparse.ArgumentParser, *, answering: bool) -> None:
    what = "answer calls with video" if answering else "offer video"
    p.add_argument(
        "--video",
        action="store_true",
        help=f"{what}: the config's video_device, or a moving test pattern when none is set "
        "(a video offer is always taken, receive-only without this)",
    )
    p.add_argument(
        "--video-record",
        metavar="OUT.mkv",
        help="write the video received in calls to this Matroska file as it comes (the next "
        "calls: OUT-2.mkv, OUT-3.mkv ...)",
    )
    p.add_argument(
        "--video-file",
        type=_video_file,
        metavar="PATH",
        help=f"{what}, sending this file's video in a loop (implies --video)",
    )


def video_settings(config: Config, args: argparse.Namespace) -> VideoSettings:
    """What the phone sends as video, from the command line and the config."""
    from softphone.phone.video import VideoSettings

    record = getattr(args, "video_record", None)
    video_file = getattr(args, "video_file", None)
    if video_file is not None:
        return VideoSettings(source="file", path=video_file, offer=True, record=record)
    if not getattr(args, "video", False):
        return VideoSettings(record=record)
    if config.video_device is not None:
        return VideoSettings(source="camera", path=config.video_device, offer=True, record=record)
    return VideoSettings(source="pattern", offer=True, record=record)
