"""Lip sync in a call's video stream (phone/video_stream.py with rtp/lipsync.py): pictures of a
peer whose SRs say the audio plays 250 ms after the video arrives are held that long; without
SRs they are shown at once. Arrival times are walked by argument (the stand-in endpoint of
test_video_stream.py hands the datagrams over with them)."""

from __future__ import annotations

import random

import pytest

from softphone.media.video_source import read_counter
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.phone.video_stream import VideoStream
from softphone.rtp.lipsync import AudioPlayout, SenderClock
from softphone.rtp.ntp import ntp_timestamp
from softphone.rtp.report import sender_report
from softphone.sdp.session import Direction
from softphone.sdp.video import NegotiatedVideo, NegotiatedVideoCodec
from tests.phone.test_phone_video import (  # noqa: F401 (make is a fixture)
    PATTERN,
    Start,
    call,
    make,
    until,
)
from tests.phone.test_video_stream import PEER, SSRC, Endpoint, Peer

T0 = 100.0  # local clock when the peer's wall clock read 1000.0
WALL = 1000.0
AUDIO_BEHIND_S = 0.25


class Audio:
    """The call's audio as lip sync sees it: the peer's audio SR maps RTP 0 to 1000.0 (8 kHz);
    that instant's audio reached our speaker at T0 + 0.25."""

    def __init__(self, cname: str | None = None) -> None:
        self.remote_cname = cname

    def sync_point(self) -> tuple[SenderClock, AudioPlayout] | None:
        return SenderClock(ntp_timestamp(WALL), 0, 8000), AudioPlayout(0, T0 + AUDIO_BEHIND_S)


def make_stream(endpoint: Endpoint, audio: Audio | None) -> VideoStream:
    codec = NegotiatedVideoCodec(96, "VP8", 90000, {}, frozenset({"nack", "nack pli"}))
    negotiated = NegotiatedVideo(
        remote_address=PEER[0],
        remote_port=PEER[1],
        remote_rtcp_port=PEER[1],
        codec=codec,
        receive_codecs=(codec,),
        direction=Direction.RECVONLY,
        rtcp_mux=True,
        remote_bitrate_bps=None,
    )
    return VideoStream(
        endpoint=endpoint,  # type: ignore[arg-type]
        negotiated=negotiated,
        settings=VideoSettings(),
        rng=random.Random(1),
        cname="test",
        audio=lambda: audio,
    )


def video_sr(cname: str = "peer@lab") -> bytes:
    """The peer's video SR: RTP timestamp 0 is its wall clock 1000.0 (the Peer's picture i has
    timestamp 6000 (i + 1): captured at 1000 + (i + 1) / 15)."""
    packets = sender_report(
        SSRC,
        (),
        cname=cname,
        ntp_timestamp=ntp_timestamp(WALL),
        rtp_timestamp=0,
        packet_count=1,
        octet_count=1,
    )
    return b"".join(map(bytes, packets))


def run(stream: VideoStream, endpoint: Endpoint, pictures: int, *, sr: bool) -> list[int | None]:
    """Picture i arrives 1/15 s after i - 1 (and 2 ms after its capture instant), the video's
    SR after the first; the counter shown right after each one arrived."""
    peer = Peer()
    assert endpoint.timed_sink is not None
    shown: list[int | None] = []
    for i in range(pictures):
        at = T0 + (i + 1) / 15 + 0.002
        for data in peer.picture(keyframe=i == 0):
            endpoint.timed_sink(data, PEER, False, at)
        if sr and i == 0:  # after the first packets: the SDES names the source we receive
            endpoint.timed_sink(video_sr(), PEER, False, at)
        last = stream.last_picture
        shown.append(read_counter(last.frame) if last is not None else None)
    return shown


async def test_pictures_wait_for_the_audio_captured_with_them() -> None:
    endpoint = Endpoint()
    stream = make_stream(endpoint, Audio())
    shown = run(stream, endpoint, 15, sr=True)
    # Picture i is due at T0 + 0.25 + (i + 1) / 15: when picture 14 arrives (T0 + 1.002),
    # picture 10 (due T0 + 0.983) is on screen, not 14.
    assert shown[:3] == [None, None, None]  # the first ones are still held
    assert shown[-1] == 10
    stats = stream.stats()
    assert stats["video_sync"] == "active"
    assert stats["video_sync_ms"] == pytest.approx(248.0, abs=1.0)
    # Time goes on with no packet: the held pictures come out when due, in order.
    stream.release(T0 + AUDIO_BEHIND_S + 15 / 15 - 0.001)
    assert read_counter(stream.last_picture.frame) == 13  # type: ignore[union-attr]
    stream.release(T0 + AUDIO_BEHIND_S + 15 / 15)
    assert read_counter(stream.last_picture.frame) == 14  # type: ignore[union-attr]
    stream.close()


async def test_without_sender_reports_pictures_are_shown_at_once() -> None:
    endpoint = Endpoint()
    stream = make_stream(endpoint, Audio())
    shown = run(stream, endpoint, 6, sr=False)
    assert shown[1:] == [1, 2, 3, 4, 5]  # (the first waits for the second: RFC 3550 §A.1)
    assert stream.stats()["video_sync"] == "off"
    assert stream.stats()["video_sync_ms"] == 0.0
    stream.close()


async def test_without_audio_pictures_are_shown_at_once() -> None:
    endpoint = Endpoint()
    stream = make_stream(endpoint, None)
    assert run(stream, endpoint, 4, sr=True)[1:] == [1, 2, 3]
    assert stream.stats()["video_sync"] == "off"
    stream.close()


async def test_streams_of_another_cname_are_not_synchronised() -> None:
    # RFC 3550 §6.5.1: only one participant's streams share a wall clock.
    endpoint = Endpoint()
    stream = make_stream(endpoint, Audio(cname="someone-else@lab"))
    assert run(stream, endpoint, 4, sr=True)[1:] == [1, 2, 3]
    assert stream.stats()["video_sync"] == "mismatched"
    stream.close()


async def test_two_phones_time_each_others_pictures_to_the_audio(make: Start) -> None:  # noqa: F811
    """End to end: our SRs (audio and video on the call's one wall clock, capture instants
    mapped) let the other phone's lip sync turn active with a short hold. With the video's
    SRs on another clock than the audio's, the hold would be out of range."""
    a = await make("a", PATTERN)
    b = await make("b", VideoSettings(source="pattern"))
    ours, theirs = await call(a, b)

    def sync(phone: Phone, call_id: str) -> tuple[object, float]:
        stats = phone.call_stats(call_id) or {}
        return stats.get("video_sync"), float(stats.get("video_sync_ms") or 0.0)  # type: ignore[arg-type]

    # The first RTCP reports go at 1.25-3.75 s (RFC 3550 §6.3.1 with a 5 s interval).
    await until(lambda: sync(a, ours)[0] == sync(b, theirs)[0] == "active", timeout_s=10.0)
    holds = [sync(a, ours)[1], sync(b, theirs)[1]]
    assert all(0.0 <= hold < 300.0 for hold in holds), holds
    assert a.call(ours).ntp_offset_s is not None
