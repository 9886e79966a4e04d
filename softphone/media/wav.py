"""WAV file input and crash-safe WAV recording.

- ``read_wav(path)``: RIFF/WAVE with PCM (8-bit unsigned, 16/24/32-bit signed), IEEE float
  (32/64-bit) or WAVE_FORMAT_EXTENSIBLE wrapping either; any channel count, downmixed to mono
  float32 in [-1, 1). Junk raises ``WavError`` with the reason. The stdlib ``wave`` module in
  Python 3.11 reads neither float nor extensible files, hence our own chunk walker.
- ``WavWriter``: 16-bit PCM. The RIFF and ``data`` sizes in the header are rewritten in place
  (data first, then sizes) after every ``write()``, or, with ``sync_s``, once that much audio
  has been written since the last time: a process killed at any moment leaves a valid file
  holding everything but, at most, the last write (or the last ``sync_s`` of audio).
- ``StereoRecorder``: call recording, local (microphone) left, remote (what we play) right.

Format facts: Microsoft "Multimedia Programming Interface and Data Specifications 1.0" (RIFF,
``fmt ``/``data`` chunks, word-aligned chunks) and the WAVE_FORMAT_EXTENSIBLE note (sub-format
GUID whose first two bytes are the format tag).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.float32]

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_HEADER_BYTES: Final = 44  # RIFF(12) + fmt chunk(8 + 16) + data chunk header(8)
_MAX_DATA_BYTES: Final = 0xFFFFFFFF - (_HEADER_BYTES - 8)
RECORDING_SYNC_S: Final = 0.1
"""How much of a call's recording a killed process may leave out of the header, at most."""
_ALMOST_ONE: Final = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


class WavError(Exception):
    """A WAV file that cannot be read, or a recording that cannot go on."""


def read_wav(path: str | Path) -> tuple[Pcm, int]:
    """Read a WAV file as mono float32 (channels averaged) and its sample rate."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WavError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_wav(data, name=str(path))


def parse_wav(data: bytes, *, name: str = "WAV data") -> tuple[Pcm, int]:
    """``read_wav`` on bytes already in memory."""
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt: bytes | None = None
    body: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        start = pos + 8
        if chunk_id == b"fmt ":
            fmt = data[start : start + size]
        elif chunk_id == b"data":
            # A writer that was killed (or streams) may leave 0 or 0xFFFFFFFF: take what is there.
            end = len(data) if size in (0, 0xFFFFFFFF) else min(start + size, len(data))
            body = data[start:end]
            break
        pos = start + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise WavError(f"{name}: no 'fmt ' chunk before the audio data")
    if body is None:
        raise WavError(f"{name}: no 'data' chunk")
    if len(fmt) < 16:
        raise WavError(f"{name}: 'fmt ' chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise WavError(f"{name}: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if channels == 0 or rate == 0:
        raise WavError(f"{name}: {channels} channels at {rate} Hz")
    width = bits // 8
    if bits % 8 or block_align != width * channels:
        raise WavError(f"{name}: unsupported layout ({bits} bits, block align {block_align})")
    frames = len(body) // block_align
    raw = body[: frames * block_align]
    samples = _decode(raw, tag, bits, name)
    mono = samples.reshape(frames, channels).mean(axis=1, dtype=np.float64)
    out: Pcm = np.clip(mono, -1.0, _ALMOST_ONE).astype(np.float32)
    return out, rate


def _decode(raw: bytes, tag: int, bits: int, name: str) -> npt.NDArray[np.float64]:
    if tag == WAVE_FORMAT_PCM:
        if bits == 8:
            return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
        if bits == 16:
            return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
        if bits == 24:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            value = np.where(value >= 1 << 23, value - (1 << 24), value)
            return value.astype(np.float64) / float(1 << 23)
        if bits == 32:
            return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        if bits == 32:
            return np.nan_to_num(np.frombuffer(raw, dtype="<f4").astype(np.float64))
        if bits == 64:
            doubles: npt.NDArray[np.float64] = np.nan_to_num(np.frombuffer(raw, dtype="<f8"))
            return doubles
    else:
        raise WavError(f"{name}: unsupported WAV format tag 0x{tag:04x} (PCM or float only)")
    raise WavError(f"{name}: unsupported sample size {bits} bits for format 0x{tag:04x}")


def to_int16(pcm: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Float in [-1, 1) to s16, rounded and clipped."""
    scaled = np.asarray(pcm, dtype=np.float64) * 32768.0  # a new array: rounded in place
    np.rint(scaled, out=scaled)
    np.minimum(scaled, 32767.0, out=scaled)  # ufuncs: np.clip's wrappers cost more per block
    np.maximum(scaled, -32768.0, out=scaled)
    return scaled.astype(np.int16)


class WavWriter:
    """Write a 16-bit PCM WAV whose header stays valid after every ``write()``."""

    def __init__(
        self, path: str | Path, sample_rate: int, channels: int = 1, *, sync_s: float = 0.0
    ) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"bad WAV format: {channels} channels at {sample_rate} Hz")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.channels = channels
        self.frames_written = 0
        self._data_bytes = 0
        # A call's recorder writes every few ms: the header (two small writes and a flush of the
        # data, three system calls) is brought up to date once per ``sync_s`` of audio instead.
        self._sync_bytes = int(sync_s * sample_rate) * 2 * channels
        self._synced_bytes = 0
        try:
            self._file: BinaryIO | None = self.path.open("wb")
            self._file.write(self._header())
            self._file.flush()
        except OSError as exc:
            raise WavError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _header(self) -> bytes:
        block_align = 2 * self.channels
        return b"".join(
            (
                b"RIFF",
                struct.pack("<I", _HEADER_BYTES - 8 + self._data_bytes),
                b"WAVE",
                b"fmt ",
                struct.pack(
                    "<IHHIIHH",
                    16,
                    WAVE_FORMAT_PCM,
                    self.channels,
                    self.sample_rate,
                    self.sample_rate * block_align,
                    block_align,
                    16,
                ),
                b"data",
                struct.pack("<I", self._data_bytes),
            )
        )

    def write(self, pcm: npt.NDArray[np.floating]) -> None:
        """Append frames: shape ``(n,)`` for mono or ``(n, channels)``, floats in [-1, 1)."""
        if self._file is None:
            raise WavError(f"{self.path}: write after close")
        frames = np.asarray(pcm)
        if frames.ndim == 1:
            frames = frames.reshape(-1, 1)
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channel(s), got shape {frames.shape}")
        payload = to_int16(frames).astype("<i2").tobytes()
        if self._data_bytes + len(payload) > _MAX_DATA_BYTES:
            raise WavError(f"{self.path}: WAV size limit (4 GiB) reached")
        try:
            self._file.write(payload)
            self._data_bytes += len(payload)
            self.frames_written += frames.shape[0]
            if self._data_bytes - self._synced_bytes >= self._sync_bytes:
                self._sync()
        except OSError as exc:
            raise WavError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _sync(self) -> None:
        """Hand the data to the OS (it survives SIGKILL, not a power cut), then the sizes that
        cover it: a kill in between leaves the old, still valid sizes (the reader ignores the
        unaccounted tail). The sizes go in with pwrite: the file's position stays at the end."""
        assert self._file is not None
        self._file.flush()
        fd = self._file.fileno()
        os.pwrite(fd, struct.pack("<I", _HEADER_BYTES - 8 + self._data_bytes), 4)
        os.pwrite(fd, struct.pack("<I", self._data_bytes), _HEADER_BYTES - 4)
        self._synced_bytes = self._data_bytes

    def close(self) -> None:
        if self._file is not None:
            try:
                if self._synced_bytes != self._data_bytes:
                    self._sync()
            except OSError as exc:
                raise WavError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StereoRecorder:
    """Call recording: local audio on the left, remote audio on the right, same sample rate.

    The two directions arrive in separate calls (``write_local``/``write_remote``). Whatever
    both sides have covered is interleaved and written at once; the side that is ahead waits
    for the other. If one side falls more than ``max_lag_ms`` behind (on hold, a stalled
    stream), it is padded with zeros so memory stays bounded; ``close()`` pads the rest.
    """

    def __init__(
        self, path: str | Path, sample_rate: int, *, max_lag_ms: int = 200, sync_s: float = 0.0
    ) -> None:
        self._writer = WavWriter(path, sample_rate, channels=2, sync_s=sync_s)
        self.sample_rate = sample_rate
        self._max_lag = sample_rate * max_lag_ms // 1000
        self._pending: tuple[list[Pcm], list[Pcm]] = ([], [])
        self._pending_len = [0, 0]
        self.padded_samples = [0, 0]

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def write_local(self, pcm: Pcm) -> None:
        self._push(0, pcm)

    def write_remote(self, pcm: Pcm) -> None:
        self._push(1, pcm)

    def _push(self, side: int, pcm: Pcm) -> None:
        if pcm.shape[0] == 0:
            return
        self._pending[side].append(np.asarray(pcm, dtype=np.float32).reshape(-1))
        self._pending_len[side] += pcm.shape[0]
        lead = self._pending_len[side] - self._pending_len[1 - side]
        if lead > self._max_lag:
            self._pad(1 - side, lead - self._max_lag)
        self._flush(min(self._pending_len))

    def _pad(self, side: int, samples: int) -> None:
        self._pending[side].append(np.zeros(samples, dtype=np.float32))
        self._pending_len[side] += samples
        self.padded_samples[side] += samples

    def _take(self, side: int, samples: int) -> Pcm:
        joined: Pcm = (
            np.concatenate(self._pending[side]) if self._pending[side] else np.zeros(0, np.float32)
        )
        rest = joined[samples:]
        self._pending[side].clear()
        if rest.shape[0]:
            self._pending[side].append(rest)
        self._pending_len[side] -= samples
        return joined[:samples]

    def _flush(self, samples: int) -> None:
        if samples <= 0:
            return
        left = self._take(0, samples)
        right = self._take(1, samples)
        self._writer.write(np.stack((left, right), axis=1))

    def close(self) -> None:
        """Pad the lagging side, write everything still pending, close the file."""
        short = self._pending_len[0] - self._pending_len[1]
        if short > 0:
            self._pad(1, short)
        elif short < 0:
            self._pad(0, -short)
        self._flush(self._pending_len[0])
        self._writer.close()

    def __enter__(self) -> StereoRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
