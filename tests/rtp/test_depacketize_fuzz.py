"""Fuzzing: whatever the network sends, a depacketiser never raises and emits only well-formed
units (the contract of the RTP cores: only our parse error may escape, and depacketisers have
none to raise)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from softphone.rtp.depacketize import make_depacketizer
from softphone.rtp.packet import RtpPacket

STREAMS = [
    ("H264", 90000, {"packetization-mode": "1", "sprop-parameter-sets": "Z0LAHtoCgL8=,aM48gA=="}),
    ("H265", 90000, {"sprop-max-don-diff": "1"}),
    ("H265", 90000, {}),
    ("JPEG", 90000, {}),
    (
        "MPEG4-GENERIC",
        44100,
        {
            "mode": "AAC-hbr",
            "sizelength": "13",
            "indexlength": "3",
            "indexdeltalength": "3",
            "ctsdeltalength": "2",
            "randomaccessindication": "1",
            "auxiliarydatasizelength": "4",
        },
    ),
    ("MPEG4-GENERIC", 16000, {"mode": "AAC-lbr", "config": "1408"}),
    ("MP4A-LATM", 44100, {"cpresent": "0", "config": "400024103fc0"}),
    ("PCMU", 8000, {}),
    ("VP8", 90000, {}),
    ("VP9", 90000, {}),
]
CODECS = {
    "H264": "h264",
    "H265": "hevc",
    "JPEG": "mjpeg",
    "MPEG4-GENERIC": "aac",
    "MP4A-LATM": "aac",
    "PCMU": "pcm_mulaw",
    "VP8": "vp8",
    "VP9": "vp9",
}

# Payloads that start like the real structures more often than random bytes would.
PREFIXES = [
    b"",
    b"\x7c\x85",
    b"\x7c\x45",
    b"\x78\x00\x04",
    b"\x00\x00\x00\x01",
    b"\x62\x01\x85",
    b"\x60\x01\x00\x05",
    b"\x00\x10",
    b"\xff\xf1",
    b"\x00\x00\x00\x00\x01\xff",
    b"\xff\xff\x05",
    b"\x10\x10\x06\x00\x9d\x01\x2a",  # VP8: S, key frame tag, start code
    b"\x90\xe0\x80\x01\x05",  # VP8: X, I L T K, 15-bit picture id
    b"\x8c\x80\x01\x82\x49\x83\x42",  # VP9: I B E, picture id, key frame header
    b"\x0a\x38\x00\x10\x00\x10\x01\x04",  # VP9: B V, scalability structure
    b"\xf8\x01\x03\x05",  # VP9: flexible, references
]


@settings(max_examples=300, deadline=None)
@given(
    stream=st.sampled_from(STREAMS),
    packets=st.lists(
        st.tuples(
            st.sampled_from(PREFIXES),
            st.binary(max_size=60),
            st.booleans(),
            st.integers(0, 3),
            st.integers(0, 2),
        ),
        max_size=25,
    ),
)
def test_random_packets_never_raise(
    stream: tuple[str, int, dict[str, str]], packets: list[tuple[bytes, bytes, bool, int, int]]
) -> None:
    encoding, rate, fmtp = stream
    dep = make_depacketizer(encoding, rate, fmtp)
    units = []
    for seq, (prefix, body, marker, ts, lost) in enumerate(packets):
        packet = RtpPacket(
            payload_type=96,
            sequence=seq,
            timestamp=ts * 3000,
            ssrc=1,
            marker=marker,
            payload=prefix + body,
        )
        units += dep.push(packet, lost_before=lost)
    units += dep.flush()
    assert all(u.codec == CODECS[encoding] and 0 <= u.timestamp < 1 << 32 for u in units)
    assert isinstance(dep.waiting_for_keyframe, bool)
