"""Helpers for the video calls against baresip (tests/interop/test_video_calls.py,
test_video_h264.py): bounded waits on the phone's ``video_*`` statistics, and the frame counter
of the pictures baresip's ``snapshot`` module saved from what it decoded of ours."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import av

from softphone import lab
from softphone.media.video_source import read_counter
from softphone.phone.phone import Phone

STEP_S = 10.0
FRAMES = 15  # one second of baresip's 15 fps


def baresip_config(*modules: str) -> str:
    """baresip's video: ``modules`` (its codec modules) with fakevideo as the camera and
    snapshot to save what it decodes, at 320x240 and 15 pictures a second."""
    return (
        "".join(f"module\t\t\t{m}.so\n" for m in modules)
        + "module\t\t\tfakevideo.so\nmodule\t\t\tsnapshot.so\n"
        "video_source\t\tfakevideo,nil\nvideo_display\t\t\nvideo_size\t\t320x240\n"
        "video_bitrate\t\t300000\nvideo_fps\t\t15\n"
    )


async def until(condition: Callable[[], bool], timeout_s: float = STEP_S) -> None:
    """Wait for ``condition`` (checked every 20 ms), at most ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def stat(phone: Phone, call_id: str, key: str) -> object:
    return (phone.call_stats(call_id) or {}).get(key)


def received(phone: Phone, call_id: str) -> int:
    value = stat(phone, call_id, "video_frames_received")
    return value if isinstance(value, int) else 0


async def snapshot_counter(bob: lab.Baresip, path: Path, size: tuple[int, int] = (320, 240)) -> int:
    """The frame counter of the next picture baresip decodes from us (snapshot module), a
    picture of ``size``."""
    mark = bob.mark()
    bob.command("snapshot_recv", str(path))
    await asyncio.to_thread(bob.wait_for, f"png: wrote {path}", STEP_S, mark)
    # baresip says so before it closes the file: read it once it is whole.
    frame: av.VideoFrame | None = None

    def whole() -> bool:
        nonlocal frame
        try:
            with av.open(str(path)) as container:
                frame = next(container.decode(video=0))
        except (av.FFmpegError, StopIteration):
            return False
        return True

    await until(whole, 2.0)
    assert frame is not None and (frame.width, frame.height) == size
    return read_counter(frame)


async def both_ways(
    phone: Phone,
    call_id: str,
    bob: lab.Baresip,
    codec: str,
    tmp: Path,
    sent_size: tuple[int, int] = (320, 240),
) -> None:
    """We decode baresip's fakevideo; baresip decodes our pattern (of ``sent_size``), moving."""
    await until(lambda: received(phone, call_id) >= FRAMES)
    stats = phone.call_stats(call_id) or {}
    assert stats["video_codec"] == codec.upper()
    assert (stats["video_width"], stats["video_height"]) == (320, 240)  # fakevideo's size
    first = await snapshot_counter(bob, tmp / "first.png", sent_size)
    sent = int(stat(phone, call_id, "video_frames_sent") or 0)  # type: ignore[call-overload]
    await until(lambda: int(stat(phone, call_id, "video_frames_sent") or 0) >= sent + 8)  # type: ignore[call-overload]
    second = await snapshot_counter(bob, tmp / "second.png", sent_size)
    # Our pattern, moving, decoded by baresip (the first may be picture 0 on a loaded machine:
    # pictures the encoder is too busy for are skipped, so fewer have gone by then).
    assert first < second, (first, second)
