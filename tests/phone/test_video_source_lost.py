"""Our video source fails mid-call (a camera unplugged, a file removed): the sender stops, the
call and its audio go on, and ``video_source_lost`` is emitted once (phone/video_send.py,
phone/video_stream.py). Two Phones on 127.0.0.1, as in test_phone_video.py."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest
from av.video.frame import VideoFrame

from softphone.media.video_source import TestPattern
from softphone.phone import events as pe
from softphone.phone import video_send
from softphone.phone.phone import Phone
from softphone.phone.text import describe
from softphone.phone.video import VideoSettings
from tests.phone.test_phone_video import (  # noqa: F401 (make is a fixture)
    PATTERN,
    Start,
    call,
    make,
    pattern_clip,
    received,
    until,
)


class UnpluggedCamera:
    """A camera that gives ``frames`` pictures, then fails as V4L2 does once unplugged."""

    def __init__(self, frames: int) -> None:
        self.pattern = TestPattern(320, 240)
        self.left = frames

    def read(self) -> VideoFrame | None:
        if self.left == 0:
            raise OSError(errno.ENODEV, "No such device")
        self.left -= 1
        return self.pattern.read()


def audio_packets(phone: Phone, call_id: str, key: str) -> int:
    stats = phone.call_stats(call_id) or {}
    return int(stats.get(key) or 0)  # type: ignore[call-overload]


async def events_until(phone: Phone, state: str) -> list[pe.PhoneEvent]:
    """Every event up to the first call state ``state``, within 10 s."""
    seen: list[pe.PhoneEvent] = []
    async with asyncio.timeout(10.0):
        while True:
            event = await phone.next_event()
            seen.append(event)
            if isinstance(event, pe.CallStateChanged) and event.state == state:
                return seen


async def test_a_camera_unplugged_mid_call_stops_our_video_and_the_call_goes_on(
    make: Start,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(video_send, "open_source", lambda settings: UnpluggedCamera(10))
    a = await make("a", PATTERN)
    b = await make("b", None)
    ours, theirs = await call(a, b)
    seen: list[pe.PhoneEvent] = []
    async with asyncio.timeout(10.0):
        while not isinstance(event := await a.next_event(), pe.VideoSourceLost):
            seen.append(event)
    seen.append(event)
    assert event.call_id == ours and "No such device" in event.reason
    assert received(b, theirs) <= 10  # the far end got what there was
    # The call goes on: audio both ways, packets still counted after the loss.
    sent, got = audio_packets(a, ours, "packets_sent"), audio_packets(b, theirs, "packets_received")
    await until(
        lambda: (
            audio_packets(a, ours, "packets_sent") >= sent + 25
            and audio_packets(b, theirs, "packets_received") >= got + 25
        )
    )
    assert a.call(ours).state == "established"
    # A re-INVITE (hold, resume) does not bring the dead source back, nor a second event.
    await a.hold(ours)
    seen += await events_until(a, "held")
    await a.resume(ours)
    seen += await events_until(a, "established")
    assert sum(isinstance(e, pe.VideoSourceLost) for e in seen) == 1
    stats = a.call_stats(ours) or {}
    assert stats["video_frames_sent"] == 10


async def test_a_video_file_removed_mid_call_stops_our_video(
    make: Start,  # noqa: F811
    tmp_path: Path,
) -> None:
    clip = pattern_clip(tmp_path / "clip.webm", 8)
    a = await make("a", VideoSettings(source="file", path=str(clip), offer=True))
    b = await make("b", None)
    ours, theirs = await call(a, b)
    await until(lambda: received(b, theirs) >= 3)
    clip.unlink()  # read to its end, it is opened again to loop: that fails now
    async with asyncio.timeout(10.0):
        while not isinstance(event := await a.next_event(), pe.VideoSourceLost):
            pass
    assert event.call_id == ours and "clip.webm" in event.reason
    sent = audio_packets(a, ours, "packets_sent")
    await until(lambda: audio_packets(a, ours, "packets_sent") >= sent + 25)
    assert a.call(ours).state == "established"


def test_the_events_in_json_and_in_words() -> None:
    lost = pe.VideoSourceLost(call_id="c1", reason="No such device")
    assert lost.to_json() == {
        "event": "video_source_lost",
        "call_id": "c1",
        "reason": "No such device",
    }
    assert describe(lost) == "our video stopped: No such device (the call goes on without it)"
    broken = pe.VideoPictureChanged(call_id="c1", broken=True, reason="no key frame")
    assert broken.to_json()["event"] == "video_picture"
    assert (
        describe(broken) == "the far end's picture is broken: no key frame (asking for a key frame)"
    )
    back = pe.VideoPictureChanged(call_id="c1", broken=False, reason="the picture is back")
    assert describe(back) == "the far end's picture is back"
