"""``softphone bench setup``'s reading of the wire: which datagram is the INVITE, whose media
port is whose, and when the first RTP reached each end."""

from __future__ import annotations

from softphone.bench.call_setup import SetupTime, audio_port, measure, summary
from softphone.lab.sniff import Datagram

CALLEE = ("127.0.0.1", 5080)
CALLER_SIP = ("127.0.0.1", 5090)
RTP = bytes([0x80, 111, 0, 1]) + bytes(8)
RTCP = bytes([0x81, 200, 0, 6]) + bytes(8)
STUN = bytes([0x00, 0x01, 0, 0]) + bytes(8)


def sip(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


INVITE = sip(
    "INVITE sip:bob@127.0.0.1:5080 SIP/2.0\nCSeq: 1 INVITE\n\nv=0\nm=audio 4000 RTP/AVP 111\n"
)
OK = sip("SIP/2.0 200 OK\nCSeq: 1 INVITE\n\nv=0\nm=audio 6000 RTP/AVP 111\n")


def dgram(at: float, src: tuple[str, int], dst: tuple[str, int], head: bytes, out: bool = False):
    return Datagram(at, out, src, dst, head)


def test_audio_port_reads_the_sdp_of_a_sip_message() -> None:
    assert audio_port(INVITE) == 4000 and audio_port(OK) == 6000
    assert audio_port(sip("SIP/2.0 180 Ringing\nCSeq: 1 INVITE\n\n")) is None


def test_the_later_of_the_two_first_rtp_arrivals_counts_from_the_invite() -> None:
    wire = [
        dgram(9.0, ("127.0.0.1", 4000), ("127.0.0.1", 6000), RTP),  # before the INVITE: not it
        dgram(10.000, CALLER_SIP, CALLEE, INVITE, out=True),
        dgram(10.0001, CALLER_SIP, CALLEE, INVITE),  # the same datagram arriving (loopback)
        dgram(10.005, CALLEE, CALLER_SIP, OK, out=True),
        dgram(10.006, ("127.0.0.1", 6000), ("127.0.0.1", 4000), RTP, out=True),  # leaving
        dgram(10.007, ("127.0.0.1", 6000), ("127.0.0.1", 4000), RTCP),  # RTCP is not audio
        dgram(10.008, ("127.0.0.1", 6000), ("127.0.0.1", 4000), STUN),
        dgram(10.009, ("127.0.0.1", 6000), ("127.0.0.1", 4000), RTP),  # reaches the caller
        dgram(10.030, ("127.0.0.1", 4000), ("127.0.0.1", 6000), RTP),  # reaches the callee
        dgram(10.050, ("127.0.0.1", 4000), ("127.0.0.1", 6000), RTP),
    ]
    found = measure(reversed(wire), CALLEE)  # read in any order: sorted by kernel time
    assert found == SetupTime(10.0, at_callee=10.030, at_caller=10.009)
    assert found.complete and round(found.both_ways_ms or 0, 3) == 30.0
    assert round(found.leg_ms(found.at_caller) or 0, 3) == 9.0


def test_no_invite_to_the_callee_is_no_measurement_and_one_way_is_incomplete() -> None:
    other = ("127.0.0.1", 5999)
    assert measure([dgram(1.0, CALLER_SIP, other, INVITE, out=True)], CALLEE) is None
    one_way = measure(
        [
            dgram(1.0, CALLER_SIP, CALLEE, INVITE, out=True),
            dgram(1.01, CALLEE, CALLER_SIP, OK, out=True),
            dgram(1.02, ("127.0.0.1", 6000), ("127.0.0.1", 4000), RTP),
        ],
        CALLEE,
    )
    assert one_way is not None and not one_way.complete and one_way.both_ways_ms is None


def test_summary_gives_median_and_p90() -> None:
    assert summary([10.0, 20.0, 30.0, 40.0, 100.0]) == {
        "calls": 5,
        "median_ms": 30.0,
        "p90_ms": 100.0,
    }
    assert summary([])["median_ms"] is None
