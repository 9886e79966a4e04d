"""The receiving end of a video stream: NACK then retransmission fills a hole without a key
frame; a hole that stays asks for one (PLI, or FIR when only that was negotiated); nothing that
was not negotiated is sent. Real libvpx frames, clocks walked by argument."""

from __future__ import annotations

import pytest
from video_support import Wire, encode

from softphone.rtp.depacketize.vp8 import Vp8Depacketizer
from softphone.rtp.packet import RtpPacket, parse_rtcp
from softphone.rtp.packetize.vp8 import Vp8Packetizer
from softphone.rtp.video_feedback import Fir, Nack, Pli, parse_feedback
from softphone.rtp.video_receiver import VideoReceiver

ALL = frozenset({"nack", "nack pli", "ccm fir", "goog-remb"})


def stream(gop: int) -> list[RtpPacket]:
    """8 libvpx frames (a key frame every ``gop``) in packets of at most 60 bytes."""
    frames = encode("vp8", 8, gop=gop)
    packetizer = Vp8Packetizer(max_payload=60)
    wire = Wire(seq=1000)
    return [
        p
        for i, (data, _) in enumerate(frames)
        for p in wire.packets(packetizer.packetize(data, i * 6000))
    ]


@pytest.fixture(scope="module")
def packets() -> list[RtpPacket]:
    return stream(gop=100)


LOST = 10  # a packet inside the third frame


def feedback(data: bytes | None) -> list[object]:
    assert data is not None
    _head, *rest = parse_rtcp(data)
    return [parse_feedback(p) for p in rest]


def test_a_nacked_packet_that_comes_again_repairs_the_hole(packets: list[RtpPacket]) -> None:
    receiver = VideoReceiver(Vp8Depacketizer(), our_ssrc=99, feedback=ALL)
    lost = LOST
    units = []
    for i, p in enumerate(packets):
        if i != lost:
            units += receiver.receive(p, now=0.001 * i)
    sent = feedback(receiver.rtcp_to_send(now=0.05, rtt_s=0.02))
    assert sent == [Nack(99, 7, (packets[lost].sequence,))]
    units += receiver.receive(packets[lost], now=0.07)  # the retransmission
    units += receiver.poll(now=1.0)
    assert len(units) == 8 and units[0].keyframe
    assert receiver.rtcp_to_send(now=1.0, rtt_s=0.02) is None
    assert receiver.keyframe_requests == 0 and receiver.nacks_sent == 1


def test_a_hole_that_stays_asks_for_a_key_frame_every_interval(packets: list[RtpPacket]) -> None:
    receiver = VideoReceiver(Vp8Depacketizer(), our_ssrc=99, feedback=ALL)
    units = [u for i, p in enumerate(packets) if i != LOST for u in receiver.receive(p, now=0.0)]
    units += receiver.poll(now=0.5)  # the reorder buffer gives up on the hole
    assert 0 < len(units) < 8 and receiver.keyframe_needed
    first = feedback(receiver.rtcp_to_send(now=0.5))
    assert Pli(99, 7) in first
    again = receiver.rtcp_to_send(now=0.7)  # NACK retries may go on; no second PLI yet
    assert again is None or Pli(99, 7) not in feedback(again)
    assert Pli(99, 7) in feedback(receiver.rtcp_to_send(now=1.01))
    assert receiver.keyframe_requests == 2


def test_fir_keeps_its_number_until_a_key_frame_answers() -> None:
    packets = stream(gop=4)
    second = next(i for i, p in enumerate(packets) if p.timestamp == 6000)
    receiver = VideoReceiver(Vp8Depacketizer(), our_ssrc=99, feedback=frozenset({"ccm fir"}))
    receiver.receive(packets[second], now=0.0)  # joined at the second frame: no key frame yet
    assert feedback(receiver.rtcp_to_send(now=0.0)) == [Fir(99, ((7, 1),))]
    assert feedback(receiver.rtcp_to_send(now=0.6)) == [Fir(99, ((7, 1),))]  # the same request
    units = [u for p in packets[second + 1 :] for u in receiver.receive(p, now=0.7)]
    assert [u.timestamp for u in units if u.keyframe] == [4 * 6000]
    receiver.poll(now=2.0)
    receiver.decode_failed()  # a new problem: a new request
    assert feedback(receiver.rtcp_to_send(now=2.0)) == [Fir(99, ((7, 2),))]


def test_only_negotiated_feedback_is_sent(packets: list[RtpPacket]) -> None:
    receiver = VideoReceiver(Vp8Depacketizer(), our_ssrc=99)
    assert receiver.rtcp_to_send(now=0.0) is None  # nothing received yet
    for i, p in enumerate(packets):
        if i != LOST:
            receiver.receive(p, now=0.0)
    receiver.poll(now=1.0)
    assert receiver.keyframe_needed and receiver.rtcp_to_send(now=1.0) is None


def test_a_decoder_failure_asks_for_a_key_frame(packets: list[RtpPacket]) -> None:
    receiver = VideoReceiver(Vp8Depacketizer(), our_ssrc=99, feedback=frozenset({"nack pli"}))
    for p in packets:
        receiver.receive(p, now=0.0)
    assert receiver.rtcp_to_send(now=0.0) is None
    receiver.decode_failed()
    assert feedback(receiver.rtcp_to_send(now=0.1)) == [Pli(99, 7)]
    assert receiver.rtcp_to_send(now=0.2) is None  # asked; not needed any more
