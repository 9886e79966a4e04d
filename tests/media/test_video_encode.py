"""H.264 for packetization-mode 0 (media/video_encode.py ``max_slice_bytes``): a busy picture
is cut into slices that each fit one RTP packet, so RFC 6184 §6.2's single NAL unit packets
carry it, and FFmpeg decodes what they carry."""

from __future__ import annotations

import av
import numpy as np
import pytest
from video_support import decode

from softphone.media.errors import MediaError
from softphone.media.video_encode import VideoEncoder
from softphone.media.video_source import TestPattern
from softphone.rtp.depacketize.h264 import split_annex_b
from softphone.rtp.packetize import PacketizeError
from softphone.rtp.packetize.h264 import H264Packetizer

MAX_PAYLOAD = 1200


def noise(count: int, width: int = 640, height: int = 480) -> list[av.VideoFrame]:
    """Pictures of noise: the worst case for an encoder (a key frame of 100 kB and more)."""
    rng = np.random.default_rng(1)
    return [
        av.VideoFrame.from_ndarray(
            rng.integers(0, 256, (height, width, 3), dtype=np.uint8), format="rgb24"
        )
        for _ in range(count)
    ]


def encoder(**kwargs: object) -> VideoEncoder:
    return VideoEncoder(
        "h264",
        width=640,
        height=480,
        fps=15,
        bitrate_bps=1_500_000,
        max_bitrate_bps=1_500_000,
        **kwargs,  # type: ignore[arg-type]
    )


def test_h264_slices_fit_single_nal_unit_packets_and_decode() -> None:
    enc = encoder(max_slice_bytes=MAX_PAYLOAD)
    packetizer = H264Packetizer(max_payload=MAX_PAYLOAD, packetization_mode=0)
    units: list[bytes] = []
    sizes: list[int] = []
    for i, picture in enumerate(noise(4)):
        for frame in enc.encode(picture, i * 6000):
            units.append(frame.data)
            payloads = packetizer.packetize(frame.data, frame.timestamp)  # raises if one is big
            sizes += [len(p.payload) for p in payloads]
            assert all(1 <= p.payload[0] & 0x1F <= 23 for p in payloads)  # single NAL units
    assert max(sizes) <= MAX_PAYLOAD
    assert len(sizes) > 4 * 20  # each busy picture became many slices
    pictures = decode("h264", units)
    assert [(p.width, p.height) for p in pictures] == [(640, 480)] * 4


def test_without_the_limit_a_key_frame_does_not_fit_mode_0() -> None:
    """Why the limit is needed: the same key frame unsliced is one NAL unit far above a packet."""
    frames = encoder().encode(noise(1)[0], 0)
    assert max(len(n) for f in frames for n in split_annex_b(f.data)) > 10 * MAX_PAYLOAD
    with pytest.raises(PacketizeError, match="mode 0"):
        H264Packetizer(max_payload=MAX_PAYLOAD, packetization_mode=0).packetize(
            frames[0].data, frames[0].timestamp
        )


def test_the_slice_limit_survives_a_bitrate_change() -> None:
    enc = encoder(max_slice_bytes=MAX_PAYLOAD, min_reconfigure_s=0.0)
    pictures = noise(2)
    enc.encode(pictures[0], 0)
    assert enc.set_bitrate(400_000, now=1.0)  # the encoder re-opens, with a key frame
    frames = enc.encode(pictures[1], 6000)
    assert frames and frames[0].keyframe
    assert max(len(n) for f in frames for n in split_annex_b(f.data)) <= MAX_PAYLOAD


@pytest.mark.parametrize(("codec", "limit"), [("vp8", 1200), ("h264", 0)])
def test_a_slice_limit_is_for_h264_and_positive(codec: str, limit: int) -> None:
    with pytest.raises(MediaError, match="slice size limit"):
        VideoEncoder(codec, width=320, height=240, max_slice_bytes=limit)


def test_the_h264_level_goes_into_the_sps_and_a_bad_one_is_refused() -> None:
    encoder = VideoEncoder("h264", width=176, height=132, fps=15, bitrate_bps=64_000, level="1")
    frames = encoder.encode(TestPattern(176, 132).read(), 0)
    sps = [n for f in frames for n in split_annex_b(f.data) if n[0] & 0x1F == 7]
    assert sps and sps[0][3] == 10  # level_idc: level 1
    with pytest.raises(MediaError, match=r"H\.264 level"):
        VideoEncoder("h264", width=176, height=132, level="7")
    with pytest.raises(MediaError, match=r"H\.264 level"):
        VideoEncoder("vp8", width=176, height=132, level="1")
