"""Frame-per-packet audio (PCMU, PCMA, L16, Opus) and the make_depacketizer registry."""

from __future__ import annotations

import pytest

from softphone.rtp.depacketize import (
    AccessUnit,
    UnsupportedCodec,
    make_depacketizer,
    supported_encodings,
)
from softphone.rtp.errors import RtpError
from softphone.rtp.packet import RtpPacket


def packet(payload: bytes, ts: int = 160) -> RtpPacket:
    return RtpPacket(payload_type=0, sequence=1, timestamp=ts, ssrc=1, payload=payload)


@pytest.mark.parametrize(
    ("encoding", "clock_rate", "channels", "codec"),
    [
        ("PCMU", 8000, 1, "pcm_mulaw"),
        ("pcma", 8000, 1, "pcm_alaw"),
        ("L16", 44100, 2, "pcm_s16be"),
        ("opus", 48000, 2, "opus"),
    ],
)
def test_one_unit_per_packet_with_the_payload_untouched(
    encoding: str, clock_rate: int, channels: int, codec: str
) -> None:
    dep = make_depacketizer(encoding, clock_rate, {}, channels)
    payload = bytes(range(160))
    assert dep.push(packet(payload, ts=4000), lost_before=3) == [
        AccessUnit(data=payload, timestamp=4000, keyframe=True, codec=codec)
    ]
    assert dep.push(packet(b"")) == []  # an empty payload carries no frame
    assert dep.flush() == [] and dep.extradata is None and not dep.waiting_for_keyframe


def test_registry_is_case_insensitive_and_refuses_unknown_encodings() -> None:
    assert {
        "h264",
        "h265",
        "jpeg",
        "mpeg4-generic",
        "mp4a-latm",
        "pcmu",
        "pcma",
        "l16",
        "opus",
    } <= set(supported_encodings())
    assert type(make_depacketizer("H264", 90000, {})) is type(make_depacketizer("h264", 90000, {}))
    with pytest.raises(UnsupportedCodec) as info:
        make_depacketizer("G723.1", 8000, {})
    assert isinstance(info.value, RtpError) and info.value.encoding == "G723.1"
    assert str(info.value) == "no depacketiser for G723.1"
