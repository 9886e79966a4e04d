"""WAV reading (many sample formats), crash-safe writing and the stereo call recorder."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from softphone.media.wav import StereoRecorder, WavError, WavWriter, parse_wav, read_wav

SPEECH = Path(__file__).parent.parent / "data" / "audio" / "speech16k.wav"


def riff(
    fmt_tag: int, channels: int, rate: int, bits: int, data: bytes, *, extensible: bool = False
) -> bytes:
    """Build a WAV file by hand (so the reader is not tested against itself)."""
    align = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * align, align, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt_tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * align, align, bits)
    odd = b"\x00" if len(data) % 2 else b""
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip (padded)
    chunks += b"data" + struct.pack("<I", len(data)) + data + odd
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


EXPECTED = np.array([0.0, 0.5, -0.5, -1.0, 0.25], dtype=np.float64)


@pytest.mark.parametrize(
    ("tag", "bits", "payload"),
    [
        (1, 16, (EXPECTED * 32768).clip(-32768, 32767).astype("<i2").tobytes()),
        (1, 32, (EXPECTED * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes()),
        (3, 32, EXPECTED.astype("<f4").tobytes()),
        (3, 64, EXPECTED.astype("<f8").tobytes()),
        (1, 8, (EXPECTED * 128 + 128).clip(0, 255).astype(np.uint8).tobytes()),
    ],
)
def test_reads_each_sample_format(tag: int, bits: int, payload: bytes) -> None:
    for extensible in (False, True):
        pcm, rate = parse_wav(riff(tag, 1, 22050, bits, payload, extensible=extensible))
        assert rate == 22050 and pcm.dtype == np.float32
        assert np.allclose(pcm, EXPECTED, atol=1 / 128)


def test_reads_24_bit_exactly() -> None:
    values = np.array([0, 1, -1, 2**23 - 1, -(2**23), 4096], dtype=np.int64)
    payload = b"".join(int(v).to_bytes(3, "little", signed=True) for v in values)
    pcm, _ = parse_wav(riff(1, 1, 48000, 24, payload))
    assert np.array_equal(pcm, (values / 2**23).astype(np.float32))


def test_stereo_is_downmixed_to_mono() -> None:
    left = np.array([1000, -2000, 3000], dtype="<i2")
    right = np.array([3000, 2000, -3000], dtype="<i2")
    payload = np.stack((left, right), axis=1).tobytes()
    pcm, rate = parse_wav(riff(1, 2, 8000, 16, payload))
    assert rate == 8000
    assert np.allclose(pcm, np.array([2000, 0, 0]) / 32768)


def test_float_input_is_clipped_into_range() -> None:
    pcm, _ = parse_wav(riff(3, 1, 8000, 32, np.array([1.5, -3.0, 1.0], "<f4").tobytes()))
    assert pcm.max() < 1.0 and pcm.min() == -1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello world, not a wav", "not a WAV file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no 'fmt ' chunk"),
        (riff(1, 1, 8000, 16, b"")[:36], "no 'data' chunk"),
        (riff(0x55, 1, 8000, 16, b"\x00\x00"), "unsupported WAV format tag 0x0055"),
        (riff(1, 1, 8000, 12, b"\x00\x00"), "unsupported layout"),
        (riff(3, 1, 8000, 16, b"\x00\x00"), "unsupported sample size 16 bits"),
        (riff(1, 0, 8000, 16, b""), "0 channels"),
    ],
)
def test_junk_raises_wav_error_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        parse_wav(data)


def test_a_streamed_wav_with_unknown_data_size_reads_to_the_end() -> None:
    payload = np.array([100, -100, 200], dtype="<i2").tobytes()
    data = bytearray(riff(1, 1, 8000, 16, payload))
    size_at = data.index(b"data") + 4
    data[size_at : size_at + 4] = b"\xff\xff\xff\xff"  # what a writer to a pipe leaves
    pcm, _ = parse_wav(bytes(data))
    assert np.array_equal(pcm, np.array([100, -100, 200], dtype=np.float32) / 32768)


def test_missing_file_is_a_wav_error(tmp_path: Path) -> None:
    with pytest.raises(WavError, match="cannot read"):
        read_wav(tmp_path / "absent.wav")


def test_reads_the_speech_sample() -> None:
    pcm, rate = read_wav(SPEECH)
    with wave.open(str(SPEECH)) as w:
        frames = w.getnframes()
        raw = np.frombuffer(w.readframes(frames), dtype="<i2")
    assert rate == 16000 and pcm.shape == (frames,)
    assert np.array_equal(pcm, (raw / 32768).astype(np.float32))


def test_writer_header_is_valid_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    writer = WavWriter(path, 16000, channels=1)
    signal_ = np.sin(np.arange(1600) / 7.0).astype(np.float32) * 0.5
    for i in range(5):
        writer.write(signal_[i * 320 : (i + 1) * 320])
        with wave.open(str(path)) as w:  # the file is still open for writing
            assert w.getnframes() == 320 * (i + 1)
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
    writer.close()
    pcm, rate = read_wav(path)
    assert rate == 16000
    assert np.max(np.abs(pcm - signal_)) <= 1 / 32768  # rounded to the nearest s16 step


def test_a_syncing_writer_updates_the_header_once_per_interval_and_at_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.wav"
    writer = WavWriter(path, 16000, channels=1, sync_s=0.05)  # 800 frames
    block = np.full(320, 0.25, dtype=np.float32)
    seen = []
    for _ in range(6):
        writer.write(block)
        with wave.open(str(path)) as w:
            seen.append(w.getnframes())
    assert seen == [0, 0, 960, 960, 960, 1920]  # synced once 800 frames had gathered
    writer.close()
    with wave.open(str(path)) as w:
        assert w.getnframes() == 1920
    pcm, _ = read_wav(path)
    assert len(pcm) == 1920 and np.allclose(pcm, 0.25, atol=1 / 32768)


def test_writer_clips_and_checks_channels(tmp_path: Path) -> None:
    with WavWriter(tmp_path / "c.wav", 8000, channels=2) as writer:
        writer.write(np.array([[2.0, -2.0]], dtype=np.float32))
        with pytest.raises(ValueError, match="2 channel"):
            writer.write(np.zeros(4, dtype=np.float32))
    with wave.open(str(tmp_path / "c.wav")) as w:
        assert np.frombuffer(w.readframes(1), "<i2").tolist() == [32767, -32768]
    with pytest.raises(WavError, match="after close"):
        writer.write(np.zeros((1, 2), dtype=np.float32))


WRITER_CHILD = """
import sys
import numpy as np
from softphone.media.wav import WavWriter
writer = WavWriter(sys.argv[1], 16000, channels=1, sync_s=float(sys.argv[2]))
block = 320
n = 0
while True:
    t = np.arange(n * block, (n + 1) * block)
    writer.write(((t % 1000) / 1000.0 - 0.5).astype(np.float32))
    n += 1
    print(n, flush=True)
"""


@pytest.mark.parametrize("sync_s", [0.0, 0.1])
def test_a_writer_killed_with_sigkill_leaves_a_readable_file(tmp_path: Path, sync_s: float) -> None:
    path = tmp_path / "killed.wav"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_CHILD, str(path), str(sync_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        blocks = 0
        for line in child.stdout:  # waits on the child's progress, bounded by its count
            blocks = int(line)
            if blocks >= 100:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # by pid: our own child
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with wave.open(str(path)) as w:
        frames = w.getnframes()
        data = np.frombuffer(w.readframes(frames), dtype="<i2")
    # Everything up to the kill, but for one write (or sync_s of audio) not yet in the header.
    unaccounted = path.stat().st_size - 44 - frames * 2
    assert frames % 320 == 0 and frames >= 100 * 320 - sync_s * 16000
    assert 0 <= unaccounted <= max(640, 2 * sync_s * 16000 + 640)
    t = np.arange(frames)
    expected = np.rint(((t % 1000) / 1000.0 - 0.5).astype(np.float32) * 32768).astype(np.int16)
    assert np.array_equal(data, expected)


def test_stereo_recorder_interleaves_local_left_remote_right(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    local = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    remote = np.linspace(0.25, -0.25, 1000, dtype=np.float32)
    with StereoRecorder(path, 8000) as rec:
        # The two sides arrive in different chunk sizes; only what both cover is written.
        rec.write_local(local[:160])
        rec.write_remote(remote[:400])
        assert rec.frames_written == 160
        rec.write_local(local[160:500])
        rec.write_remote(remote[400:500])
        assert rec.frames_written == 500
        rec.write_remote(remote[500:])
        rec.write_local(local[500:])
        assert rec.frames_written == 1000 and rec.padded_samples == [0, 0]
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getnframes() == 1000
        frames = np.frombuffer(w.readframes(1000), dtype="<i2").reshape(-1, 2) / 32768
    assert np.allclose(frames[:, 0], local, atol=1 / 32768)
    assert np.allclose(frames[:, 1], remote, atol=1 / 32768)


def test_stereo_recorder_pads_a_silent_side_after_the_lag_limit_and_at_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hold.wav"
    rec = StereoRecorder(path, 8000, max_lag_ms=100)
    for _ in range(10):  # 200 ms of local audio, the remote side says nothing (on hold)
        rec.write_local(np.full(160, 0.5, dtype=np.float32))
    assert rec.frames_written == 1600 - 800  # all but the allowed 100 ms lag is written
    rec.write_remote(np.full(80, -0.5, dtype=np.float32))  # late remote audio goes after the pad
    rec.close()
    with wave.open(str(path)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert frames.shape == (1600, 2)
    assert np.all(frames[:, 0] == 16384)
    assert np.all(frames[:800, 1] == 0)
    assert np.all(frames[800:880, 1] == -16384) and np.all(frames[880:, 1] == 0)
    assert rec.padded_samples == [0, 800 + 720]
