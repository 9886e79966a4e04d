"""phone/video.py's part of each offer and answer: the m=video after the audio, kept with
port 0 once video is turned off (RFC 3264 §8.2), the public host behind a NAT, receive-only
without a source."""

from __future__ import annotations

import random

from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.nat import MediaAddress
from softphone.phone.video import CallVideo, VideoSettings
from softphone.sdp import Direction, SessionDescription

AUDIO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Endpoint:
    port = 5000
    rtcp_port = 5001

    def close(self) -> None:
        pass


def make(settings: VideoSettings) -> tuple[CallVideo, list[pe.PhoneEvent]]:
    events: list[pe.PhoneEvent] = []
    video = CallVideo(
        settings,
        rng=random.Random(1),
        emit=events.append,
        open_rtp=lambda: Endpoint(),  # type: ignore[arg-type, return-value]
    )
    video.address = "192.168.1.10"
    return video, events


def call(media_address: MediaAddress | None = None) -> CallInfo:
    return CallInfo(
        call_id="c1",
        account="a",
        direction="outgoing",
        remote="sip:bob@example.com",
        state="calling",
        started_at=0.0,
        media_address=media_address,
    )


def test_the_offer_names_the_public_host_behind_a_nat_with_the_video_socket_port() -> None:
    video, _ = make(VideoSettings(source="pattern", offer=True))
    info = call(MediaAddress("203.0.113.7", 4000, 4001, "registrar"))
    offer = SessionDescription.parse(AUDIO_OFFER.format(host="203.0.113.7").encode())
    video.offer(info, offer)
    m = offer.media[1]
    assert (m.media, m.port, m.connection) == ("video", 5000, None)  # the session's c= is it
    assert offer.media_address(m) == "203.0.113.7"
    assert "96" in m.formats and "0" not in m.formats  # the audio's numbers kept apart
    assert offer.direction_of(m) is Direction.SENDRECV


def test_without_a_nat_the_local_address_and_without_a_source_recvonly() -> None:
    video, _ = make(VideoSettings(offer=True))
    info = call()
    offer = SessionDescription.parse(AUDIO_OFFER.format(host="198.51.100.1").encode())
    video.offer(info, offer)
    m = offer.media[1]
    assert m.connection is not None and m.connection.address == "192.168.1.10"
    assert offer.direction_of(m) is Direction.RECVONLY


def test_video_turned_off_keeps_its_m_line_with_port_0() -> None:
    video, _ = make(VideoSettings(source="pattern", offer=True))
    info = call()
    first = SessionDescription.parse(AUDIO_OFFER.format(host="192.168.1.10").encode())
    video.offer(info, first)
    info.local_sdp = first
    video.want(info, False)
    again = SessionDescription.parse(AUDIO_OFFER.format(host="192.168.1.10").encode())
    video.offer(info, again)
    assert [(m.media, m.port) for m in again.media] == [("audio", 4000), ("video", 0)]


def test_no_video_wanted_and_none_before_adds_nothing() -> None:
    video, events = make(VideoSettings(source="pattern"))  # a source, but no --video
    offer = SessionDescription.parse(AUDIO_OFFER.format(host="192.168.1.10").encode())
    video.offer(call(), offer)
    assert [m.media for m in offer.media] == ["audio"] and events == []
