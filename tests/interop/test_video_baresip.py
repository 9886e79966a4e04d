"""baresip's VP8 and VP9 (modules vp8, vp9 and fakevideo) against our video pieces: its offer
is answered by sdp/video.py, its RTP depacketised by rtp/depacketize/ and decoded by
media/video.py, and our PLI (RFC 4585 §6.3.1) brings a key frame.

The test plays the callee on raw sockets (the phone's own video calls are
tests/interop/test_video_calls.py), so that it sees every packet and decides when the PLI goes:
a UDP socket that answers baresip's INVITE with 200 OK and our SDP, and two more for the
video's RTP and RTCP. baresip (standalone, no registrar) dials it through ctrl_tcp.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import dump, peers_required

from softphone import lab
from softphone.media.video import VideoDecoder
from softphone.rtp.depacketize import make_depacketizer
from softphone.rtp.feedback import pli_compound
from softphone.rtp.packet import RtpPacket, is_rtcp
from softphone.sdp.session import Direction, SessionDescription
from softphone.sdp.video import LocalVideo, NegotiatedVideo, VideoCodec, answer_video

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
FRAMES_BEFORE_PLI = 8
PLI_ANSWER_S = 1.5  # baresip's encoder makes the key frame at once; it sent none for 4 s alone


def _socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, port))
    return sock


class Callee:
    """The far end of baresip's call: SIP, audio (ignored) and video sockets on 127.0.0.1."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.sip = _socket()
        self.audio = _socket()
        # RTP on an even port and RTCP on the next (RFC 3550 §11): baresip sends RTCP there.
        for _ in range(20):
            self.video = _socket()
            try:
                self.video_rtcp = _socket(self.video.getsockname()[1] + 1)
                break
            except OSError:
                self.video.close()
        self.offer: SessionDescription | None = None
        self.negotiated: NegotiatedVideo | None = None

    @property
    def uri(self) -> str:
        return f"sip:cam@{HOST}:{self.sip.getsockname()[1]}"

    def answer_invite(self, timeout_s: float = 10.0) -> NegotiatedVideo:
        """Wait for the INVITE, answer 200 OK with our audio (PCMU) and video sections."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.sip.settimeout(max(0.01, deadline - time.monotonic()))
            data, addr = self.sip.recvfrom(65535)
            if data.startswith(b"INVITE "):
                break
        head, _, body = data.partition(b"\r\n\r\n")
        self.offer = SessionDescription.parse(body)
        video = next(m for m in self.offer.media if m.media == "video")
        ours = LocalVideo(
            address=HOST,
            port=self.video.getsockname()[1],
            can_send=False,
            rtcp_mux=False,
            codecs=(VideoCodec(self.codec.upper()),),
        )
        section, negotiated = answer_video(self.offer, video, ours)
        assert negotiated is not None, f"no video answer to {body.decode()}"
        self.negotiated = negotiated
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {self.audio.getsockname()[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=sendrecv\r\n" + "\r\n".join(section.lines()) + "\r\n"
        )
        lines = head.decode().split("\r\n")
        echoed = [h for h in lines[1:] if re.match(r"(?i)(via|from|call-id|cseq|record-route):", h)]
        to = next(h for h in lines if re.match(r"(?i)to:", h)) + ";tag=video1"
        response = (
            "SIP/2.0 200 OK\r\n"
            + "\r\n".join([*echoed, to])
            + f"\r\nContact: <{self.uri}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        )
        self.sip.sendto(response.encode(), addr)
        return negotiated

    def answer_bye(self, timeout_s: float = 3.0) -> bool:
        """Answer baresip's BYE with 200 OK (so that it ends the call at once when it quits);
        False when none came in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.sip.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, addr = self.sip.recvfrom(65535)
            except TimeoutError:
                break
            if not data.startswith(b"BYE "):
                continue
            lines = data.partition(b"\r\n\r\n")[0].decode().split("\r\n")
            echoed = [h for h in lines[1:] if re.match(r"(?i)(via|from|to|call-id|cseq):", h)]
            response = "SIP/2.0 200 OK\r\n" + "\r\n".join(echoed) + "\r\nContent-Length: 0\r\n\r\n"
            self.sip.sendto(response.encode(), addr)
            return True
        return False

    def close(self) -> None:
        for sock in (self.sip, self.audio, self.video, self.video_rtcp):
            sock.close()


@pytest.fixture
def baresip_video(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[lab.Baresip, str]]:
    """baresip sending the test's codec (``request.param``) from its fakevideo source."""
    codec = request.param
    extra = (
        f"module\t\t\t{codec}.so\nmodule\t\t\tfakevideo.so\nvideo_source\t\tfakevideo,nil\n"
        "video_size\t\t320x240\nvideo_bitrate\t\t300000\nvideo_fps\t\t15\n"
    )
    phone = lab.Baresip(tmp_path, codecs="PCMU", extra_config=extra)
    with peers_required():
        phone.start()
    try:
        yield phone, codec
    finally:
        phone.stop()


@pytest.mark.parametrize("baresip_video", ["vp8", "vp9"], indirect=True)
def test_baresip_video_is_received_decoded_and_answers_a_pli(
    baresip_video: tuple[lab.Baresip, str],
) -> None:
    phone, codec = baresip_video
    callee = Callee(codec)
    try:
        phone.ctrl.command("dial", callee.uri)
        negotiated = callee.answer_invite()
        # Its offer: one video stream with our codec, PLI for every format (a=rtcp-fb:* nack pli)
        assert negotiated.codec is not None and negotiated.codec.encoding == codec.upper()
        assert negotiated.codec.feedback == {"nack pli"}
        assert negotiated.direction is Direction.RECVONLY  # we have no camera here
        depacketizer = make_depacketizer(codec.upper(), 90000, negotiated.codec.fmtp)
        decoder = VideoDecoder(codec)
        sizes: list[tuple[int, int]] = []
        keyframes_after_pli = 0
        pli_sent_at: float | None = None
        media_ssrc = 0
        deadline = time.monotonic() + 15.0
        callee.video.settimeout(0.2)
        while time.monotonic() < deadline:
            if pli_sent_at is None and len(sizes) >= FRAMES_BEFORE_PLI:
                pli = pli_compound(sender_ssrc=0x5EED, media_ssrc=media_ssrc)
                assert negotiated.remote_rtcp_port is not None
                callee.video_rtcp.sendto(pli, (HOST, negotiated.remote_rtcp_port))
                pli_sent_at = time.monotonic()
            if pli_sent_at is not None and time.monotonic() - pli_sent_at > PLI_ANSWER_S:
                break
            try:
                data = callee.video.recv(65535)
            except TimeoutError:
                continue
            if is_rtcp(data):
                continue
            packet = RtpPacket.parse(data)
            media_ssrc = packet.ssrc
            for unit in depacketizer.push(packet):
                if pli_sent_at is not None and unit.keyframe:
                    keyframes_after_pli += 1
                sizes += [(p.width, p.height) for p in decoder.decode(unit)]
            if keyframes_after_pli:
                break
        assert len(sizes) >= FRAMES_BEFORE_PLI, f"{len(sizes)} pictures decoded"
        assert set(sizes) == {(320, 240)}
        assert decoder.errors == 0 and depacketizer.waiting_for_keyframe is False
        assert keyframes_after_pli == 1, "no key frame within 1.5 s of our PLI"
        phone.hangup()
        assert callee.answer_bye()
        phone.wait_event("CALL_CLOSED", timeout_s=5)
    except AssertionError:
        dump(f"baresip ({codec})", phone.lines())
        raise
    finally:
        callee.close()
