"""G.711 PCMU (mu-law) and PCMA (A-law), vectorised with numpy, exact to ITU-T G.711 (11/88).

Linear PCM is int16. The standard's normalised scales map to it as in ITU-T G.191's reference
software: A-law works on int16 >> 3 (the 13-bit scale of Table 1, 4096 = full scale), mu-law on
int16 >> 2 (the 14-bit scale of Table 2, 8159 = overload). A negative sample x is quantised by the
magnitude of its one's complement (-x - 1), so the quantiser is symmetric about -1/2 LSB.

Decoding gives the standard's decoder output values (the mid-point of each quantisation interval;
mu-law interval 0 decodes to 0), scaled back to int16.

Both directions go through lookup tables built once at import by the vectorised formulas below:
encoding is one fancy-index into a 65536-entry table, decoding one into a 256-entry table.
G.711 has no packet-loss concealment of its own (the playout uses the pitch concealer,
ITU-T G.711 Appendix I), so ``conceal`` and ``decode_fec`` return None.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from softphone.media.codecs.base import (
    CodecDescriptor,
    CodecError,
    Decoder,
    DecoderOptions,
    Encoder,
    EncoderOptions,
    Pcm,
    Pcm16,
    check_frame,
    samples_per_frame,
    to_float,
    to_int16,
)

Codes: TypeAlias = npt.NDArray[np.uint8]

SAMPLE_RATE: Final = 8000
ALAW_EVEN_BITS: Final = 0x55  # G.711 §2 (A-law): the even bits of the character are inverted
ULAW_BIAS: Final = 33  # G.711 Table 2 on the 14-bit scale: segment ends + 33 are powers of two


def _magnitude(x: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """|x| for x >= 0, one's complement (-x - 1) for x < 0 (the G.191 convention)."""
    return np.where(x >= 0, x, ~x)


def _alaw_encode_formula(x: npt.NDArray[np.int32]) -> Codes:
    """G.711 Table 1 (A-law): 8 segments of 16 intervals; steps 2, 2, 4, ..., 128 (of 4096)."""
    m = _magnitude(x) >> 3  # 0..4095 on the 13-bit scale
    # Segment 0 covers 0..31, segment s >= 1 covers 16 << s .. (32 << s) - 1.
    seg = np.clip(np.floor(np.log2(np.maximum(m, 1))).astype(np.int32) - 4, 0, 7)
    step_shift = np.maximum(seg, 1)  # segments 0 and 1 both step by 2 = 1 << 1
    interval = (m >> step_shift) & 0x0F
    positive = (x >= 0).astype(np.int32) << 7  # A-law: sign bit 1 = positive
    codes: Codes = ((positive | (seg << 4) | interval) ^ ALAW_EVEN_BITS).astype(np.uint8)
    return codes


def _alaw_decode_formula(codes: npt.NDArray[np.int32]) -> Pcm16:
    """Mid-point of the interval (G.711 Table 1 decoder output), times 8 for int16."""
    c = codes ^ ALAW_EVEN_BITS
    seg = (c >> 4) & 0x07
    interval = c & 0x0F
    # Segment 0: 2q + 1; segment s >= 1: ((16 + q) << s) + (1 << (s - 1)).
    value = np.where(
        seg == 0,
        2 * interval + 1,
        ((16 + interval) << seg) + (1 << np.maximum(seg - 1, 0)),
    )
    linear = value * 8
    return np.where(c & 0x80, linear, -linear).astype(np.int16)


def _ulaw_encode_formula(x: npt.NDArray[np.int32]) -> Codes:
    """G.711 Table 2 (mu-law): with the bias of 33, segment s spans 32 << s .. (64 << s) - 1."""
    biased = np.minimum((_magnitude(x) >> 2) + ULAW_BIAS, 0x1FFF)  # 33..8191, overload clipped
    seg = np.floor(np.log2(biased)).astype(np.int32) - 5  # 0..7
    interval = (biased >> (seg + 1)) & 0x0F
    n = (seg << 4) | interval  # 0..127, 0 = smallest magnitude
    positive = (x >= 0).astype(np.int32) << 7
    codes: Codes = ((positive | n) ^ 0x7F).astype(np.uint8)  # G.711 §3: magnitude bits inverted
    return codes


def _ulaw_decode_formula(codes: npt.NDArray[np.int32]) -> Pcm16:
    """Mid-point of the interval (G.711 Table 2 decoder output; interval 0 gives 0), times 4."""
    n = (codes & 0x7F) ^ 0x7F
    seg = n >> 4
    interval = n & 0x0F
    value = ((16 + interval) << (seg + 1)) + (1 << seg) - ULAW_BIAS
    linear = value * 4
    return np.where(codes & 0x80, linear, -linear).astype(np.int16)


def _frozen(a: npt.NDArray[np.generic]) -> None:
    a.flags.writeable = False


_ALL_LINEAR: Final = np.arange(-32768, 32768, dtype=np.int32)
_ALL_CODES: Final = np.arange(256, dtype=np.int32)
# Indexed by the int16 sample reinterpreted as uint16.
_ALAW_ENCODE: Final = np.roll(_alaw_encode_formula(_ALL_LINEAR), 32768)
_ULAW_ENCODE: Final = np.roll(_ulaw_encode_formula(_ALL_LINEAR), 32768)
_ALAW_DECODE: Final = _alaw_decode_formula(_ALL_CODES)
_ULAW_DECODE: Final = _ulaw_decode_formula(_ALL_CODES)
for _table in (_ALAW_ENCODE, _ULAW_ENCODE, _ALAW_DECODE, _ULAW_DECODE):
    _frozen(_table)


def linear_to_alaw(pcm16: Pcm16) -> Codes:
    """int16 samples -> A-law characters (G.711 Table 1)."""
    return _ALAW_ENCODE[np.asarray(pcm16, dtype=np.int16).view(np.uint16)]


def alaw_to_linear(codes: Codes) -> Pcm16:
    """A-law characters -> int16 decoder output values (G.711 Table 1)."""
    return _ALAW_DECODE[np.asarray(codes, dtype=np.uint8)]


def linear_to_ulaw(pcm16: Pcm16) -> Codes:
    """int16 samples -> mu-law characters (G.711 Table 2)."""
    return _ULAW_ENCODE[np.asarray(pcm16, dtype=np.int16).view(np.uint16)]


def ulaw_to_linear(codes: Codes) -> Pcm16:
    """mu-law characters -> int16 decoder output values (G.711 Table 2)."""
    return _ULAW_DECODE[np.asarray(codes, dtype=np.uint8)]


class G711Encoder:
    """float32 frame -> one G.711 payload (one byte per sample, RFC 3551 §4.5.14)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: EncoderOptions, *, table: Codes, name: str) -> None:
        self._samples = samples_per_frame(SAMPLE_RATE, options.frame_ms)
        self._table = table
        self._name = name
        # A silent frame's payload, made once: a headless or muted call sends it 50 times a second.
        self._silence = bytes(table[np.zeros(self._samples, dtype=np.uint16)])

    def encode(self, pcm: Pcm) -> bytes:
        check_frame(pcm, self._samples, self._name)
        if not pcm.any():
            return self._silence
        codes: Codes = self._table[to_int16(pcm).view(np.uint16)]
        return codes.tobytes()

    def set_packet_loss(self, percent: int) -> None:
        """G.711 has nothing to tune for loss."""


class G711Decoder:
    """One G.711 payload -> float32 samples (any length: one sample per byte)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: DecoderOptions, *, table: Pcm16, name: str) -> None:
        self._table = table
        self._name = name

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            raise CodecError(f"{self._name}: empty payload")
        return to_float(self._table[np.frombuffer(payload, dtype=np.uint8)])

    def conceal(self, samples: int) -> Pcm | None:
        return None

    def decode_fec(self, next_payload: bytes, samples: int) -> Pcm | None:
        return None


def _pcmu_encoder(options: EncoderOptions) -> Encoder:
    return G711Encoder(options, table=_ULAW_ENCODE, name="PCMU")


def _pcmu_decoder(options: DecoderOptions) -> Decoder:
    return G711Decoder(options, table=_ULAW_DECODE, name="PCMU")


def _pcma_encoder(options: EncoderOptions) -> Encoder:
    return G711Encoder(options, table=_ALAW_ENCODE, name="PCMA")


def _pcma_decoder(options: DecoderOptions) -> Decoder:
    return G711Decoder(options, table=_ALAW_DECODE, name="PCMA")


# RFC 3551 §4.5.14 and Table 4: PCMU is payload type 0, PCMA 8, both 8000 Hz mono.
PCMU: Final = CodecDescriptor(
    encoding="PCMU",
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    static_payload_type=0,
    fmtp=None,
    has_plc=False,
    has_fec=False,
    make_encoder=_pcmu_encoder,
    make_decoder=_pcmu_decoder,
)
PCMA: Final = CodecDescriptor(
    encoding="PCMA",
    clock_rate=SAMPLE_RATE,
    sample_rate=SAMPLE_RATE,
    channels=1,
    static_payload_type=8,
    fmtp=None,
    has_plc=False,
    has_fec=False,
    make_encoder=_pcma_encoder,
    make_decoder=_pcma_decoder,
)
