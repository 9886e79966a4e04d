"""AAC depacketisers: RFC 3640 AAC-hbr (several AUs per packet, fragmented AUs), RFC 6416
MP4A-LATM (runs of 255 in PayloadLengthInfo, several subframes), ADTS inside RTP, fmtp quirks.

Real AAC frames come from PyAV's aac encoder and go back through PyAV's decoder. FFmpeg's own
packetisers were captured on 127.0.0.1 (tests/data/rtp/depack_ffmpeg_{aac,latm}.bin: `ffmpeg -f
lavfi -i sine=frequency=440:sample_rate=44100 -t 0.25 -ac 1 -c:a aac -b:a 64k [-rtpflags latm]
-f rtp rtp://127.0.0.1:PORT?pkt_size=400`; format: SDP rtpmap/fmtp lines, a blank line, then
16-bit length + RTP packet).
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import pytest
from rtp_captures import load_capture

from softphone.rtp.depacketize import AccessUnit, Depacketizer, UnsupportedCodec, make_depacketizer
from softphone.rtp.depacketize.aac import (
    LatmDepacketizer,
    Mpeg4GenericDepacketizer,
    parse_stream_mux_config,
)
from softphone.rtp.packet import RtpPacket

DATA = Path(__file__).parent.parent / "data" / "rtp"
HBR = {
    "streamtype": "5",
    "mode": "AAC-hbr",
    "sizelength": "13",
    "indexlength": "3",
    "indexdeltalength": "3",
}


@functools.cache
def aac_frames() -> tuple[bytes, tuple[bytes, ...]]:
    """(AudioSpecificConfig, raw AAC frames) of 0.5 s of a 440 Hz tone, 44.1 kHz mono."""
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 44100, "mono", "fltp"
    ctx.bit_rate = 64000
    ctx.open()
    frames: list[bytes] = []
    for i in range(22):
        t = (np.arange(1024) + 1024 * i) / 44100
        samples = (0.5 * np.sin(2 * math.pi * 440 * t)).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 1024 * i
        frames += [bytes(p) for p in ctx.encode(frame)]
    frames += [bytes(p) for p in ctx.encode(None)]
    assert ctx.extradata is not None
    return bytes(ctx.extradata), tuple(frames)


def packet(payload: bytes, seq: int, ts: int, marker: bool = True) -> RtpPacket:
    return RtpPacket(
        payload_type=97, sequence=seq, timestamp=ts, ssrc=5, marker=marker, payload=payload
    )


def hbr_payload(aus: Sequence[bytes], sizes: Sequence[int] | None = None) -> bytes:
    """RFC 3640 AAC-hbr: AU-headers-length, then 13-bit size + 3-bit index(-delta) per AU."""
    sizes = sizes or [len(a) for a in aus]
    headers = b"".join(struct.pack("!H", size << 3) for size in sizes)
    return struct.pack("!H", 16 * len(sizes)) + headers + b"".join(aus)


def latm_length(size: int) -> bytes:
    return b"\xff" * (size // 255) + bytes([size % 255])


def stream_mux_config(asc_bits: str, sub_frames: int = 1) -> str:
    """StreamMuxConfig (ISO/IEC 14496-3 §1.7.3.1), version 0, one program and layer, hex."""
    bits = (
        "0"
        + "1"
        + format(sub_frames - 1, "06b")
        + "0000"
        + "000"
        + asc_bits
        + "000"
        + "11111111"
        + "0"
        + "0"
    )
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)).hex()


def adts(frame: bytes, object_type: int = 2, rate_index: int = 4, channels: int = 1) -> bytes:
    length = len(frame) + 7
    header = (
        0xFFF << 44
        | 1 << 40
        | (object_type - 1) << 38
        | rate_index << 34
        | channels << 30
        | length << 13
        | 0x7FF << 2
    )
    return header.to_bytes(7, "big") + frame


def decode(units: Sequence[AccessUnit], extradata: bytes | None) -> list[av.AudioFrame]:
    ctx = av.CodecContext.create("aac", "r")
    ctx.extradata = extradata
    out: list[av.AudioFrame] = []
    for unit in units:
        out += ctx.decode(av.Packet(unit.data))
    return out


def run(
    dep: Depacketizer, packets: Sequence[RtpPacket], lost: int | None = None
) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for i, p in enumerate(packets):
        if i != lost:
            out += dep.push(p, lost_before=int(lost is not None and i == lost + 1))
    return out + dep.flush()


# --- RFC 3640 ------------------------------------------------------------------------------
def test_several_aus_per_packet_come_out_with_their_sizes_and_times() -> None:
    config, frames = aac_frames()
    dep = make_depacketizer("MPEG4-GENERIC", 44100, {**HBR, "config": config.hex()})
    packets = [packet(hbr_payload(frames[i : i + 3]), seq=i, ts=1024 * i) for i in range(0, 21, 3)]
    units = run(dep, packets)
    assert [u.data for u in units] == list(frames[:21])
    assert [u.timestamp for u in units] == [1024 * i for i in range(21)]
    assert all(u.keyframe and u.codec == "aac" for u in units)
    assert dep.extradata == config
    decoded = decode(units, dep.extradata)
    assert len(decoded) >= 19 and all(f.samples == 1024 for f in decoded)


def test_an_au_fragmented_over_packets_is_put_back_together() -> None:
    _, frames = aac_frames()
    big = b"".join(frames[5:10])  # any bytes: the depacketiser does not look inside
    chunks = [big[:100], big[100:250], big[250:]]
    packets = [
        packet(hbr_payload([c], sizes=[len(big)]), seq=i, ts=7000, marker=i == 2)
        for i, c in enumerate(chunks)
    ]
    packets.append(packet(hbr_payload([frames[0]]), seq=3, ts=8024))
    dep = Mpeg4GenericDepacketizer()
    assert [u.data for u in run(dep, packets)] == [big, frames[0]]
    # The middle fragment lost: that AU is dropped, the next one is fine.
    dep = Mpeg4GenericDepacketizer()
    assert [u.data for u in run(dep, packets, lost=1)] == [frames[0]]
    assert dep.dropped_frames == 1


def test_fmtp_with_trailing_semicolon_and_mixed_case_names() -> None:
    config, _ = aac_frames()
    dep = make_depacketizer(
        "mpeg4-generic",
        44100,
        {
            "mode": "AAC-hbr",
            "sizeLength": "13",
            "indexLength": "3",
            "indexDeltaLength": "3",
            "config": config.hex() + ";",
        },
    )
    assert isinstance(dep, Mpeg4GenericDepacketizer) and dep.size_length == 13
    assert dep.extradata == config


def test_adts_inside_rtp_is_stripped_and_gives_the_config() -> None:
    _, frames = aac_frames()
    dep = make_depacketizer("MPEG4-GENERIC", 44100, {"mode": "AAC-hbr"})  # no config= at all
    whole = packet(adts(frames[0]) + adts(frames[1]), seq=1, ts=0)  # a payload of ADTS frames
    inside = packet(hbr_payload([adts(frames[2])]), seq=2, ts=2048)  # ADTS inside an AU
    units = run(dep, [whole, inside])
    assert [u.data for u in units] == list(frames[:3])
    assert [u.timestamp for u in units] == [0, 1024, 2048]
    assert dep.extradata == bytes.fromhex("1208")  # AAC LC, 44.1 kHz, mono
    assert len(decode(units, dep.extradata)) >= 2


def test_unsupported_variants_are_refused() -> None:
    with pytest.raises(UnsupportedCodec, match="mode=CELP-cbr"):
        make_depacketizer("mpeg4-generic", 44100, {"mode": "CELP-cbr"})
    with pytest.raises(UnsupportedCodec, match="cpresent=1"):
        make_depacketizer("MP4A-LATM", 44100, {"cpresent": "1"})
    with pytest.raises(UnsupportedCodec, match="config"):
        make_depacketizer("MP4A-LATM", 44100, {"cpresent": "0", "config": "zz"})


# --- RFC 6416 LATM -------------------------------------------------------------------------
def test_stream_mux_config_gives_the_audio_specific_config() -> None:
    config, sub_frames = parse_stream_mux_config(bytes.fromhex("400024103fc0"))  # FFmpeg's
    assert (config.raw, config.sample_rate, config.channels, sub_frames) == (
        bytes.fromhex("1208"),
        44100,
        1,
        1,
    )
    assert stream_mux_config("0001001000001000") == "400024103fc0"


def test_stream_mux_config_cut_short_by_gstreamer_is_accepted() -> None:
    """rtpmp4apay (GStreamer 1.22) stops right after the AudioSpecificConfig: no frameLengthType."""
    config, sub_frames = parse_stream_mux_config(bytes.fromhex("40002420"))
    assert (config.object_type, config.sample_rate, config.channels) == (2, 44100, 2)
    assert sub_frames == 1
    depack = make_depacketizer("MP4A-LATM", 44100, {"cpresent": "0", "config": "40002420"}, 2)
    assert depack.extradata == bytes.fromhex("1210")  # AAC LC, 44.1 kHz, stereo


def test_latm_lengths_with_several_255_bytes() -> None:
    _, frames = aac_frames()
    big = bytes(range(256)) * 3  # 768 bytes: 255 255 255 3
    assert latm_length(len(big)) == b"\xff\xff\xff\x03"
    dep = make_depacketizer(
        "MP4A-LATM", 44100, {"cpresent": "0", "config": stream_mux_config("0001001000001000")}
    )
    assert dep.extradata == bytes.fromhex("1208")
    packets = [
        packet(latm_length(len(big)) + big, seq=1, ts=0),
        # two audioMuxElements in one packet
        packet(
            latm_length(len(frames[0])) + frames[0] + latm_length(len(frames[1])) + frames[1],
            seq=2,
            ts=1024,
        ),
        # one element fragmented over two packets, marker on the last
        packet((latm_length(len(frames[2])) + frames[2])[:20], seq=3, ts=3072, marker=False),
        packet((latm_length(len(frames[2])) + frames[2])[20:], seq=4, ts=3072),
        packet(latm_length(255) + bytes(255), seq=5, ts=4096),  # exactly 255: 255 then 0
    ]
    units = run(dep, packets)
    assert [u.data for u in units] == [big, frames[0], frames[1], frames[2], bytes(255)]
    assert [u.timestamp for u in units] == [0, 1024, 2048, 3072, 4096]


def test_latm_with_two_subframes_per_element() -> None:
    _, frames = aac_frames()
    dep = LatmDepacketizer.from_sdp(
        44100, {"config": stream_mux_config("0001001000001000", sub_frames=2)}, 1
    )
    payload = b"".join(latm_length(len(f)) + f for f in frames[3:5])
    units = run(dep, [packet(payload, seq=1, ts=500)])
    assert [(u.data, u.timestamp) for u in units] == [(frames[3], 500), (frames[4], 1524)]


def test_latm_truncated_element_is_dropped() -> None:
    dep = LatmDepacketizer.from_sdp(44100, {"config": "400024103fc0"}, 1)
    assert run(dep, [packet(b"\xff\xff\x10" + b"x" * 20, seq=1, ts=0)]) == []
    assert dep.dropped_frames == 1


# --- FFmpeg's packetisers ------------------------------------------------------------------
@pytest.mark.parametrize(("capture", "extradata"), [("aac", "120856e500"), ("latm", "1208")])
def test_ffmpeg_packetiser_capture_decodes(capture: str, extradata: str) -> None:
    cap = load_capture(capture)
    encoding, rate, fmtp, packets = cap.encoding, cap.clock_rate, cap.fmtp, cap.packets
    dep = make_depacketizer(encoding, rate, fmtp)
    units = run(dep, packets)
    assert dep.extradata == bytes.fromhex(extradata)
    assert len(units) >= len(packets) - 1
    assert [u.timestamp - units[0].timestamp for u in units] == [
        1024 * i for i in range(len(units))
    ]
    frames = decode(units, dep.extradata)
    assert len(frames) >= len(units) - 1 and all(f.samples == 1024 for f in frames)
