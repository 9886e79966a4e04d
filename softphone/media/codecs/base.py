"""The codec seam: descriptors, options, the Encoder/Decoder protocols and CodecError.

A codec is described by a frozen :class:`CodecDescriptor` (baresip's ``struct aucodec``): what
SDP calls it, its RTP clock, the PCM rate its encoder and decoder work at, and two factories.
The registry in ``softphone.media.codecs`` is a dict of these keyed by encoding name.

PCM between components is float32 mono in [-1, 1) (:data:`Pcm`); int16 exists only inside codecs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

Pcm: TypeAlias = npt.NDArray[np.float32]
Pcm16: TypeAlias = npt.NDArray[np.int16]

INT16_SCALE: Final = 32768.0


class CodecError(Exception):
    """A codec cannot be used (unknown, library missing, bad options) or was fed junk."""


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """How to encode. ``fmtp`` holds the PEER's format parameters (what it wants to receive)."""

    frame_ms: int = 20
    fmtp: Mapping[str, str] = field(default_factory=dict)
    dtx: bool = False
    bitrate: int | None = None


@dataclass(frozen=True, slots=True)
class DecoderOptions:
    """How to decode. ``fmtp`` holds the parameters we advertised (or agreed) for receiving."""

    fmtp: Mapping[str, str] = field(default_factory=dict)


class Encoder(Protocol):
    """Turns exactly one frame (``frame_ms``) of mono PCM at ``sample_rate`` into one payload."""

    sample_rate: int

    def encode(self, pcm: Pcm) -> bytes: ...

    def set_packet_loss(self, percent: int) -> None: ...


class Decoder(Protocol):
    """Turns payloads back into mono PCM at ``sample_rate``."""

    sample_rate: int

    def decode(self, payload: bytes) -> Pcm: ...

    def conceal(self, samples: int) -> Pcm | None: ...

    def decode_fec(self, next_payload: bytes, samples: int) -> Pcm | None: ...


@dataclass(frozen=True, slots=True)
class CodecDescriptor:
    """Everything the rest of the phone needs to know about one codec."""

    encoding: str  # SDP spelling: "opus", "G722", "PCMU", "PCMA", "telephone-event"
    clock_rate: int  # RTP clock rate (RFC 3551 §4.5.2: G.722 says 8000 but samples at 16000)
    sample_rate: int  # PCM rate the encoder/decoder work at
    channels: int  # SDP channel count (opus is always "/2", RFC 7587 §6.2)
    static_payload_type: int | None  # RFC 3551 Table 4; None for dynamic
    fmtp: str | None  # what we advertise
    has_plc: bool  # decoder.conceal() is a real codec PLC
    has_fec: bool  # decoder.decode_fec() can rebuild a lost frame from the next payload
    make_encoder: Callable[[EncoderOptions], Encoder] | None
    make_decoder: Callable[[DecoderOptions], Decoder] | None


def to_int16(pcm: Pcm) -> Pcm16:
    """float32 [-1, 1) -> int16: scale by 32768, round to nearest, clip."""
    scaled = np.rint(np.asarray(pcm, dtype=np.float32) * np.float32(INT16_SCALE))
    result: Pcm16 = np.clip(scaled, -32768, 32767).astype(np.int16)
    return result


def to_float(pcm16: Pcm16) -> Pcm:
    """int16 -> float32 [-1, 1)."""
    return pcm16.astype(np.float32) / np.float32(INT16_SCALE)


def check_frame(pcm: Pcm, samples: int, name: str) -> None:
    """Raise CodecError unless ``pcm`` is one mono frame of exactly ``samples`` samples."""
    if pcm.ndim != 1 or pcm.shape[0] != samples:
        raise CodecError(
            f"{name}: expected {samples} mono samples per frame, got shape {pcm.shape}"
        )


def samples_per_frame(sample_rate: int, frame_ms: int) -> int:
    """Samples in one ``frame_ms`` frame; CodecError when that is not a whole number."""
    if frame_ms <= 0 or (sample_rate * frame_ms) % 1000:
        raise CodecError(f"unsupported frame duration {frame_ms} ms")
    return sample_rate * frame_ms // 1000
