"""Video decoding, scaling, PNG snapshots, RTSP audio decoding and Matroska remuxing.

Streams are encoded here with PyAV's own encoders (libx264, libx265, mjpeg, aac, libopus,
pcm_mulaw), cut into access units as the depacketisers hand them over (Annex-B H.264/H.265, JFIF,
raw AAC frames), and fed back through softphone.media.video (and media/record.py).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import Flags
from av.video.codeccontext import VideoCodecContext

from softphone.media.record import RecordedStream, StreamRecorder
from softphone.media.video import (
    AudioDecoder,
    DecodedPicture,
    EncodedUnit,
    MediaError,
    VideoDecoder,
    fit,
    parameter_sets,
    save_png,
    split_annexb,
)
from softphone.rtp.depacketize import AccessUnit

CLOCK = 90000
TICKS_PER_FRAME = 3000  # 30 fps
NEAR_WRAP = (1 << 32) - 4 * TICKS_PER_FRAME  # the RTP timestamp wraps after the 4th frame
ORANGE = (230, 120, 20)

_unit_type_check: EncodedUnit = AccessUnit(data=b"", timestamp=0, keyframe=True, codec="h264")


def _have_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
    except Exception:
        return False
    return True


def _moving_picture(i: int, width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = (i * 16) % 256
    img[:, (i * 7) % width :, 1] = 200
    return img


def encode_video(
    encoder: str,
    codec: str,
    *,
    frames: int = 12,
    width: int = 320,
    height: int = 180,
    start: int = 0,
    options: dict[str, str] | None = None,
    picture: Callable[[int, int, int], np.ndarray] = _moving_picture,
    sample_aspect_ratio: Fraction | None = None,
) -> list[AccessUnit]:
    """Encode ``frames`` pictures; one AccessUnit per packet, RTP-like 32-bit timestamps."""
    pix_fmt = "yuvj420p" if encoder == "mjpeg" else "yuv420p"
    context = av.CodecContext.create(encoder, "w")
    assert isinstance(context, VideoCodecContext)
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, CLOCK)
    context.framerate = Fraction(30)
    if sample_aspect_ratio is not None:
        context.sample_aspect_ratio = sample_aspect_ratio
    context.options = options or {}
    packets = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(picture(i, width, height), format="rgb24")
        frame = frame.reformat(format=pix_fmt)
        frame.pts = i * TICKS_PER_FRAME
        packets += context.encode(frame)
    packets += context.encode(None)
    return [
        AccessUnit(
            data=bytes(p),
            timestamp=(start + (p.pts or 0)) % (1 << 32),
            keyframe=p.is_keyframe,
            codec=codec,
        )
        for p in packets
    ]


def h264_units(**kwargs: object) -> list[AccessUnit]:
    options = {"tune": "zerolatency", "g": "6", "preset": "ultrafast"}
    return encode_video("libx264", "h264", options=options, **kwargs)  # type: ignore[arg-type]


def solid(colour: tuple[int, int, int]) -> Callable[[int, int, int], np.ndarray]:
    def picture(i: int, width: int, height: int) -> np.ndarray:
        return np.full((height, width, 3), colour, np.uint8)

    return picture


def decode_all(decoder: VideoDecoder, units: list[AccessUnit]) -> list[DecodedPicture]:
    pictures = [p for unit in units for p in decoder.decode(unit)]
    return pictures + decoder.flush()


# --- decoding ------------------------------------------------------------------------------------


def test_h264_decodes_every_unit_at_its_size_and_rtp_timestamp_across_the_wrap() -> None:
    units = h264_units(start=NEAR_WRAP)
    decoder = VideoDecoder("h264")
    pictures = decode_all(decoder, units)
    assert len(pictures) == len(units) == 12
    assert {(p.width, p.height) for p in pictures} == {(320, 180)}
    assert [p.timestamp for p in pictures] == [u.timestamp for u in units]
    assert pictures[4].timestamp < pictures[3].timestamp  # wrapped, still in order
    assert decoder.decoded == 12 and decoder.errors == 0


def test_slice_threaded_decoder_returns_each_picture_without_lag() -> None:
    """Low latency: with SLICE threading each access unit gives its picture at once."""
    decoder = VideoDecoder("h264", threads=2)
    lags = [len(decoder.decode(unit)) for unit in h264_units()]
    assert lags == [1] * 12


@pytest.mark.skipif(not _have_encoder("libx265"), reason="this PyAV has no libx265 encoder")
def test_hevc_decodes_to_pictures() -> None:
    options = {"x265-params": "log-level=error:bframes=0:keyint=6", "preset": "ultrafast"}
    units = encode_video("libx265", "hevc", options=options, width=256, height=144)
    assert units[0].keyframe and parameter_sets("hevc", units[0].data) is not None
    pictures = decode_all(VideoDecoder("hevc"), units)
    assert len(pictures) == 12
    assert {(p.width, p.height) for p in pictures} == {(256, 144)}


def test_mjpeg_decodes_to_pictures() -> None:
    units = encode_video("mjpeg", "mjpeg", frames=5, width=160, height=120)
    assert all(u.keyframe and u.data.startswith(b"\xff\xd8") for u in units)
    pictures = decode_all(VideoDecoder("mjpeg"), units)
    assert [(p.width, p.height) for p in pictures] == [(160, 120)] * 5


def test_units_before_the_first_keyframe_are_skipped() -> None:
    units = h264_units()
    decoder = VideoDecoder("h264")
    assert decoder.decode(units[1]) == [] and decoder.skipped == 1
    assert decoder.waiting_for_keyframe
    assert len(decoder.decode(units[0])) == 1
    assert not decoder.waiting_for_keyframe


def test_corrupt_units_are_counted_not_raised() -> None:
    decoder = VideoDecoder("mjpeg")
    garbage = AccessUnit(
        data=b"\xff\xd8" + bytes(range(256)) * 4, timestamp=0, keyframe=True, codec="mjpeg"
    )
    empty = AccessUnit(data=b"", timestamp=0, keyframe=True, codec="mjpeg")
    assert decoder.decode(garbage) == []
    assert decoder.decode(empty) == []
    assert decoder.errors == 2
    good = encode_video("mjpeg", "mjpeg", frames=1, width=64, height=48)[0]
    assert len(decoder.decode(good)) == 1  # and it goes on decoding


def test_truncated_h264_never_raises_and_the_next_keyframe_recovers() -> None:
    units = h264_units()
    decoder = VideoDecoder("h264")
    damaged = AccessUnit(
        data=units[0].data[: len(units[0].data) // 3], timestamp=0, keyframe=True, codec="h264"
    )
    noise = AccessUnit(data=bytes(range(256)) * 8, timestamp=3000, keyframe=False, codec="h264")
    decoder.decode(damaged)
    decoder.decode(noise)
    decoder.flush()
    pictures = decode_all(decoder, units[6:])  # units[6] is the next IDR (g=6)
    assert units[6].keyframe and len(pictures) == 6


def test_unknown_codecs_and_mismatched_units_raise_media_error() -> None:
    with pytest.raises(MediaError, match="no video decoder for 'theora'"):
        VideoDecoder("theora")
    with pytest.raises(MediaError, match="no audio decoder for 'g729'"):
        AudioDecoder("g729", sample_rate=8000)
    with pytest.raises(MediaError, match="hevc unit was given to the h264 decoder"):
        VideoDecoder("h264").decode(AccessUnit(data=b"x", timestamp=0, keyframe=True, codec="hevc"))


def test_annexb_split_and_parameter_sets() -> None:
    stream = b"\x00\x00\x00\x01\x67\x42\x00\x00\x01\x68\xce\x00\x00\x00\x01\x65\x88\x00"
    assert split_annexb(stream) == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]
    assert parameter_sets("h264", stream) == b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce"
    assert parameter_sets("h264", b"\x00\x00\x01\x41\x9a") is None
    assert parameter_sets("mjpeg", b"\xff\xd8") is None


# --- scaling -------------------------------------------------------------------------------------


def test_to_rgb_scales_a_solid_colour_frame() -> None:
    units = h264_units(frames=1, picture=solid(ORANGE))
    (picture,) = decode_all(VideoDecoder("h264"), units)
    rgb = picture.to_rgb(40, 22)
    assert rgb.shape == (22, 40, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.reshape(-1, 3).mean(axis=0) - ORANGE).max() < 6
    assert np.abs(rgb.astype(int) - ORANGE).max() < 12  # every pixel, not just the mean
    with pytest.raises(ValueError, match="positive size"):
        picture.to_rgb(0, 10)


def test_fit_keeps_the_display_aspect_ratio() -> None:
    assert fit(1920, 1080, 160, 96) == (160, 90)
    assert fit(640, 480, 160, 90) == (120, 90)
    assert fit(320, 180, 1000, 1000) == (1000, 562)  # scales up too
    assert fit(720, 576, 1000, 576, pixel_aspect=Fraction(16, 15)) == (768, 576)
    assert fit(640, 360, 0, 40) == (0, 0)


def test_picture_fit_uses_the_sample_aspect_ratio_from_the_bitstream() -> None:
    units = h264_units(frames=1, width=320, height=240, sample_aspect_ratio=Fraction(4, 3))
    (picture,) = decode_all(VideoDecoder("h264"), units)
    assert picture.sample_aspect_ratio == Fraction(4, 3)
    assert picture.fit(200, 100) == (178, 100)  # shown as 426.7x240, i.e. 16:9


# --- PNG -----------------------------------------------------------------------------------------


def test_save_png_writes_atomically_and_reads_back(tmp_path: Path) -> None:
    units = h264_units(frames=1, picture=solid(ORANGE))
    (picture,) = decode_all(VideoDecoder("h264"), units)
    target = save_png(picture, tmp_path / "snap.png")
    assert [p.name for p in tmp_path.iterdir()] == ["snap.png"]  # no temporary file left
    with av.open(str(target)) as container:
        (frame,) = list(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 180)
    rgb = frame.to_ndarray(format="rgb24")
    assert np.abs(rgb.reshape(-1, 3).mean(axis=0) - ORANGE).max() < 6


def test_save_png_to_a_missing_directory_raises_media_error(tmp_path: Path) -> None:
    (picture,) = decode_all(VideoDecoder("h264"), h264_units(frames=1))
    with pytest.raises(MediaError, match="cannot write"):
        save_png(picture, tmp_path / "missing" / "snap.png")


# --- audio ---------------------------------------------------------------------------------------


def sine(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def encode_audio(
    encoder: str, codec: str, rate: int, pcm: np.ndarray, frame_size: int
) -> tuple[list[AccessUnit], bytes | None]:
    context = av.CodecContext.create(encoder, "w")
    assert isinstance(context, AudioCodecContext)
    context.sample_rate, context.layout = rate, "mono"
    context.format = "fltp" if encoder == "aac" else ("flt" if encoder == "libopus" else "s16")
    context.time_base = Fraction(1, rate)
    context.flags |= Flags.global_header  # AAC: AudioSpecificConfig in extradata, raw frames
    context.open()
    samples = pcm if context.format.name.startswith("flt") else (pcm * 32767).astype(np.int16)
    packets = []
    for i in range(0, len(samples) - frame_size + 1, frame_size):
        frame = av.AudioFrame.from_ndarray(
            samples[i : i + frame_size].reshape(1, -1), format=context.format.name, layout="mono"
        )
        frame.sample_rate, frame.pts = rate, i
        packets += context.encode(frame)
    packets += context.encode(None)
    units = [
        AccessUnit(data=bytes(p), timestamp=(p.pts or 0) % (1 << 32), keyframe=True, codec=codec)
        for p in packets
    ]
    return units, context.extradata


def test_pcmu_decodes_to_float_mono() -> None:
    units, _ = encode_audio("pcm_mulaw", "pcm_mulaw", 8000, sine(1000, 8000, 0.2), 160)
    decoder = AudioDecoder("pcm_mulaw", sample_rate=8000)
    pcm = np.concatenate([decoder.decode(u) for u in units])
    assert pcm.dtype == np.float32 and pcm.shape == (1600,)
    assert abs(dominant_hz(pcm, 8000) - 1000) < 10
    assert 0.3 < np.abs(pcm).max() < 0.55


def test_aac_decodes_and_resamples_to_the_output_rate() -> None:
    units, config = encode_audio("aac", "aac", 48000, sine(1000, 48000, 0.5), 1024)
    assert config  # AudioSpecificConfig
    decoder = AudioDecoder("aac", config, sample_rate=48000, channels=1, output_rate=16000)
    pcm = np.concatenate([decoder.decode(u) for u in units])
    assert decoder.errors == 0
    assert abs(len(pcm) - 8000) < 1200  # 0.5 s at 16 kHz, less codec/resampler delay
    assert abs(dominant_hz(pcm[2000:], 16000) - 1000) < 20


@pytest.mark.skipif(not _have_encoder("libopus"), reason="this PyAV has no libopus encoder")
def test_opus_decodes_at_48k_and_garbage_is_counted() -> None:
    units, _ = encode_audio("libopus", "opus", 48000, sine(440, 48000, 0.4), 960)
    decoder = AudioDecoder("opus", sample_rate=48000, channels=2)
    pcm = np.concatenate([decoder.decode(u) for u in units])
    assert abs(dominant_hz(pcm[4800:], 48000) - 440) < 10
    assert decoder.decode(AccessUnit(data=b"", timestamp=0, keyframe=True, codec="opus")).size == 0
    assert decoder.errors == 1


# --- recording -----------------------------------------------------------------------------------


def probe(path: Path) -> list[tuple[str, str, int]]:
    """(type, codec, frames decoded) per stream of a recording."""
    with av.open(str(path)) as container:
        streams = list(container.streams)
        counts = dict.fromkeys(range(len(streams)), 0)
        for packet in container.demux():  # ends with an empty packet per stream: the flush
            counts[packet.stream.index] += len(packet.decode())
        return [(s.type, s.codec_context.name, counts[s.index]) for s in streams]


def test_recorder_remuxes_h264_learning_sps_pps_and_size_from_the_first_keyframe(
    tmp_path: Path,
) -> None:
    units = h264_units(frames=24, start=NEAR_WRAP)
    path = tmp_path / "rec.mkv"
    with StreamRecorder(path, [RecordedStream(codec="h264", clock_rate=CLOCK)]) as recorder:
        recorder.write(0, units[1])  # not a key frame: a recording starts at one
        for unit in units:
            recorder.write(0, unit)
    assert recorder.written == 24 and recorder.dropped == 1 and recorder.errors == 0
    assert probe(path) == [("video", "h264", 24)]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
        times = [f.time for f in container.decode(video=0)]
    assert times[-1] is not None and times[0] is not None
    assert times[-1] - times[0] == pytest.approx(23 / 30, abs=0.002)  # across the RTP wrap


@pytest.mark.skipif(not _have_encoder("libx265"), reason="this PyAV has no libx265 encoder")
def test_recorder_remuxes_hevc_learning_vps_sps_pps(tmp_path: Path) -> None:
    options = {"x265-params": "log-level=error:bframes=0:keyint=6", "preset": "ultrafast"}
    units = encode_video("libx265", "hevc", options=options, width=256, height=144)
    path = tmp_path / "hevc.mkv"
    with StreamRecorder(path, [RecordedStream(codec="hevc", clock_rate=CLOCK)]) as recorder:
        for unit in units:
            recorder.write(0, unit)
    assert probe(path) == [("video", "hevc", 12)]


def test_recorder_keeps_b_frames(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    units = encode_video(
        "libx264",
        "h264",
        frames=20,
        options={"x264-params": "bframes=2:b-adapt=0:keyint=10"},
        picture=lambda i, w, h: np.roll(noise, i * 4, axis=1),
    )
    assert any(b.timestamp < a.timestamp for a, b in itertools.pairwise(units))
    path = tmp_path / "b.mkv"
    with StreamRecorder(path, [RecordedStream(codec="h264", clock_rate=CLOCK)]) as recorder:
        for unit in units:
            recorder.write(0, unit)
    assert recorder.errors == 0
    assert probe(path) == [("video", "h264", 20)]


def test_recorder_muxes_mjpeg_with_pcmu_audio(tmp_path: Path) -> None:
    video = encode_video("mjpeg", "mjpeg", frames=10, width=160, height=120)
    audio, _ = encode_audio("pcm_mulaw", "pcm_mulaw", 8000, sine(500, 8000, 0.4), 160)
    streams = [
        RecordedStream(codec="pcm_mulaw", clock_rate=8000, channels=1),
        RecordedStream(codec="mjpeg", clock_rate=CLOCK),
    ]
    path = tmp_path / "av.mkv"
    with StreamRecorder(path, streams) as recorder:
        recorder.write(0, audio[0])  # held until the video stream's size is known
        for i, unit in enumerate(video):
            recorder.write(1, unit)
            for a in audio[1 + 2 * i : 3 + 2 * i]:
                recorder.write(0, a)
    assert recorder.written == 10 + 20 and recorder.errors == 0
    assert probe(path) == [("audio", "pcm_s16le", 20), ("video", "mjpeg", 10)]
    with av.open(str(path)) as container:
        recorded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    expected = np.concatenate(
        [AudioDecoder("pcm_mulaw", sample_rate=8000).decode(a) for a in audio]
    )
    assert np.array_equal(recorded, (expected * 32768).astype(np.int16))  # G.711 kept exactly


def test_recorder_writes_aac_with_its_config(tmp_path: Path) -> None:
    audio, config = encode_audio("aac", "aac", 48000, sine(1000, 48000, 0.3), 1024)
    path = tmp_path / "aac.mkv"
    spec = RecordedStream(codec="aac", clock_rate=48000, extradata=config, channels=1)
    with StreamRecorder(path, [spec]) as recorder:
        for unit in audio:
            recorder.write(0, unit)
    ((kind, codec, frames),) = probe(path)
    assert (kind, codec) == ("audio", "aac") and frames >= len(audio) - 2
    with pytest.raises(MediaError, match="AudioSpecificConfig"):
        StreamRecorder(tmp_path / "x.mkv", [RecordedStream(codec="aac", clock_rate=48000)])


def test_recording_cut_short_is_still_playable(tmp_path: Path) -> None:
    """A copy taken while recording (as if the process died) opens and holds the early frames."""
    units = h264_units(frames=90)  # 3 s at 30 fps, clusters of 0.5 s
    path = tmp_path / "live.mkv"
    recorder = StreamRecorder(
        path, [RecordedStream(codec="h264", clock_rate=CLOCK)], cluster_ms=500
    )
    for unit in units:
        recorder.write(0, unit)
    crashed = tmp_path / "crashed.mkv"
    shutil.copyfile(path, crashed)  # no trailer, no cues
    recorder.close()
    ((_, codec, frames),) = probe(crashed)
    assert codec == "h264" and 60 <= frames < 90
    assert probe(path) == [("video", "h264", 90)]


def test_recorder_rejects_bad_paths_and_codecs_before_writing(tmp_path: Path) -> None:
    spec = RecordedStream(codec="h264", clock_rate=CLOCK)
    with pytest.raises(MediaError, match=r"cannot record to .*missing.*No such file"):
        StreamRecorder(tmp_path / "missing" / "rec.mkv", [spec])
    with pytest.raises(MediaError, match="cannot record 'theora'"):
        StreamRecorder(tmp_path / "rec.mkv", [RecordedStream(codec="theora", clock_rate=CLOCK)])
    assert list(tmp_path.iterdir()) == []
