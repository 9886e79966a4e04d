"""The video path of a call, end to end without a network: test pattern -> encoder (libvpx,
libvpx-vp9, libx264) -> packetiser -> RTP -> depacketiser -> decoder, the frame counter read
back from each decoded picture; loss answered by a key frame; bitrate changes; file and live
sources."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from softphone.media.errors import MediaError
from softphone.media.video import VideoDecoder
from softphone.media.video_encode import VideoEncoder
from softphone.media.video_source import FileSource, TestPattern, open_camera, read_counter
from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtp.packet import RtpPacket
from softphone.rtp.packetize.h264 import H264Packetizer
from softphone.rtp.packetize.vp8 import Vp8Packetizer
from softphone.rtp.packetize.vp9 import Vp9Packetizer

PACKETIZERS = {"vp8": Vp8Packetizer, "vp9": Vp9Packetizer, "h264": H264Packetizer}
TICKS = 6000  # 15 frames/s at 90 kHz


class Link:
    """Sender and receiver of one video stream; ``lose`` drops packets by their index."""

    def __init__(self, codec: str, *, start_ts: int = 0, **encoder: object) -> None:
        self.codec = codec
        self.pattern = TestPattern(320, 240)
        self.encoder = VideoEncoder(codec, width=320, height=240, fps=15, **encoder)  # type: ignore[arg-type]
        self.packetizer = PACKETIZERS[codec](max_payload=500)
        self.depacketizer = make_depacketizer(codec.upper(), 90000, {"packetization-mode": "1"})
        self.decoder = VideoDecoder(codec)
        self.ts = start_ts
        self.seq = 100
        self.sent = 0
        self.lost = 0  # packets lost since the last one delivered

    def step(self, lose: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
        """One picture through; the counters of the pictures decoded."""
        frames = self.encoder.encode(self.pattern.read(), self.ts)
        self.ts = (self.ts + TICKS) & 0xFFFF_FFFF
        counters = []
        for frame in frames:
            for payload in self.packetizer.packetize(frame.data, frame.timestamp):
                index, self.sent = self.sent, self.sent + 1
                self.seq = (self.seq + 1) & 0xFFFF
                if index in lose:
                    self.lost += 1
                    continue
                packet = RtpPacket(
                    payload_type=96,
                    sequence=self.seq,
                    timestamp=payload.timestamp,
                    ssrc=1,
                    marker=payload.marker,
                    payload=payload.payload,
                )
                units: list[AccessUnit] = self.depacketizer.push(packet, lost_before=self.lost)
                self.lost = 0
                for unit in units:
                    counters += [read_counter(p.frame) for p in self.decoder.decode(unit)]
        return counters


@pytest.mark.parametrize("codec", ["vp8", "vp9", "h264"])
def test_every_picture_arrives_and_reads_its_counter(codec: str) -> None:
    link = Link(codec, start_ts=0xFFFF_FFFF - 3 * TICKS)  # the RTP timestamp wraps on the way
    got = [c for _ in range(20) for c in link.step()]
    assert got == list(range(20))
    assert link.encoder.keyframes == 1 and link.encoder.frames == 20


@pytest.mark.parametrize("codec", ["vp8", "vp9", "h264"])
def test_loss_is_repaired_by_a_requested_key_frame(codec: str) -> None:
    link = Link(codec, keyframe_interval_s=100.0)
    got = [c for _ in range(5) for c in link.step()]
    assert got == list(range(5))
    lost_at = link.sent
    assert link.step(lose={lost_at}) == []  # picture 5 is damaged: dropped, not smeared
    assert link.step() == []  # picture 6 shows the gap: no key frame yet, nothing shown
    assert link.depacketizer.waiting_for_keyframe  # the receiver sends a PLI
    link.encoder.request_keyframe()  # what a PLI does
    assert link.step() == [7]
    assert link.step() == [8] and link.encoder.keyframes == 2


def test_a_broken_stream_never_raises_from_the_decoder() -> None:
    decoder = VideoDecoder("vp8")
    key = AccessUnit(
        data=b"\x10\x06\x00\x9d\x01\x2a\xa0\x00\x78\x00" + bytes(48),
        timestamp=0,
        keyframe=True,
        codec="vp8",
    )
    pictures = decoder.decode(key)
    assert pictures == [] or all(p.width == 160 for p in pictures)
    garbage = AccessUnit(data=bytes(range(40)), timestamp=3000, keyframe=False, codec="vp8")
    assert decoder.decode(garbage) == []
    assert decoder.errors + decoder.corrupt >= 1


def busy_frames(count: int) -> list[av.VideoFrame]:
    """Pictures with detail and motion (FFmpeg's testsrc2), so that the encoder spends what the
    bitrate allows."""
    source = FileSource("testsrc2=size=320x240:rate=15", format="lavfi", loop=False)
    frames = [source.read() for _ in range(count)]
    source.close()
    return [f for f in frames if f is not None]


def test_a_bitrate_change_reopens_the_encoder_with_a_key_frame() -> None:
    encoder = VideoEncoder(
        "vp8",
        width=320,
        height=240,
        fps=15,
        bitrate_bps=1_500_000,
        min_bitrate_bps=100_000,
        max_bitrate_bps=2_000_000,
        keyframe_interval_s=100.0,
    )

    pictures = busy_frames(60)

    def sizes(start: int) -> list[int]:
        frames = pictures[start : start + 30]
        return [
            len(f.data)
            for i, picture in enumerate(frames)
            for f in encoder.encode(picture, (start + i) * TICKS)
        ]

    high = sizes(0)
    assert not encoder.set_bitrate(1_400_000, now=0.0)  # under 20 %: not worth a key frame
    assert encoder.set_bitrate(50_000, now=0.0)  # clamped to the floor
    assert encoder.bitrate_bps == 100_000 and encoder.reopened == 1
    low = sizes(30)
    assert encoder.keyframes == 2  # the reopened encoder started with one
    assert sum(low[10:]) < sum(high[10:]) / 3
    assert not encoder.set_bitrate(2_000_000, now=1.0)  # too soon after the last reopen
    assert encoder.target_bitrate_bps == 2_000_000 and encoder.bitrate_bps == 100_000
    assert encoder.set_bitrate(2_000_000, now=2.5)


def test_a_file_plays_in_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    pattern = TestPattern(256, 144)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
        stream.bit_rate = 1_000_000
        for _ in range(6):
            out.mux(stream.encode(pattern.read()))
        out.mux(stream.encode(None))
    source = FileSource(str(path))
    counters = [read_counter(source.read()) for _ in range(14)]  # type: ignore[arg-type]
    assert counters == [0, 1, 2, 3, 4, 5] * 2 + [0, 1]
    assert source.loops == 2
    once = FileSource(str(path), loop=False)
    assert sum(1 for _ in range(10) if once.read() is not None) == 6
    source.close()
    once.close()


def test_a_live_input_through_its_demuxer() -> None:
    # The same path a V4L2 camera takes (a format and demuxer options), with FFmpeg's lavfi.
    source = FileSource("testsrc2=size=160x120:rate=10", format="lavfi", loop=False)
    frames = [source.read() for _ in range(3)]
    assert all(f is not None and (f.width, f.height) == (160, 120) for f in frames)
    assert all(f is not None and f.format.name == "yuv420p" for f in frames)
    source.close()


def test_bad_sources_and_settings_are_media_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot open"):
        open_camera(str(tmp_path / "video9"), width=640, height=480, fps=15)
    (tmp_path / "not-video.txt").write_text("hello")
    with pytest.raises(MediaError):
        FileSource(str(tmp_path / "not-video.txt"))
    with pytest.raises(MediaError, match="too small"):
        TestPattern(64, 48)
    with pytest.raises(MediaError, match="no video encoder"):
        VideoEncoder("h263", width=320, height=240)
    with pytest.raises(MediaError, match="even"):
        VideoEncoder("vp8", width=321, height=240)
    encoder = VideoEncoder("vp8", width=320, height=240)
    encoder.encode(TestPattern().read(), 1000)
    with pytest.raises(MediaError, match="does not follow"):
        encoder.encode(TestPattern().read(), 1000)
