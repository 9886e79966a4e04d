"""G.711 against an independent per-sample reference written from the standard's tables.

The reference below knows nothing of bit tricks: it builds the decision values of ITU-T G.711
(11/88) Table 1 (A-law, normalised to 4096) and Table 2 (mu-law, normalised to 8159) from their
segment starts and quantisation steps, finds each sample's interval by search, and decodes to
the interval's mid-point. int16 maps to those scales as in ITU-T G.191 (A-law x/8, mu-law x/4,
negative samples by their one's complement).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import numpy as np
import pytest

from softphone.media.codecs import CodecError, DecoderOptions, EncoderOptions, get_codec
from softphone.media.codecs.base import Pcm16
from softphone.media.codecs.g711 import (
    Codes,
    alaw_to_linear,
    linear_to_alaw,
    linear_to_ulaw,
    ulaw_to_linear,
)

# Table 1/G.711: eight segments of 16 intervals each: (first decision value, step), of 4096.
ALAW_SEGMENTS = [(0, 2), (32, 2), (64, 4), (128, 8), (256, 16), (512, 32), (1024, 64), (2048, 128)]
ALAW_FULL_SCALE = 4096
# Table 2/G.711: interval 0 is 0..1, then 15 intervals of 2 up to 31, then seven segments of 16.
ULAW_SEGMENTS = [(1, 2, 15), (31, 4, 16), (95, 8, 16), (223, 16, 16), (479, 32, 16),
                 (991, 64, 16), (2015, 128, 16), (4063, 256, 16)]  # fmt: skip
ULAW_OVERLOAD = 8159


def alaw_decisions() -> list[int]:
    values = [start + step * k for start, step in ALAW_SEGMENTS for k in range(16)]
    return [*values, ALAW_FULL_SCALE]  # 129 edges of 128 intervals


def ulaw_decisions() -> list[int]:
    values = [0] + [start + step * k for start, step, count in ULAW_SEGMENTS for k in range(count)]
    return [*values, ULAW_OVERLOAD]


ALAW_D = alaw_decisions()
ULAW_D = ulaw_decisions()


def reference_magnitude(x: int) -> int:
    return x if x >= 0 else -x - 1


def interval_of(decisions: list[int], value: float) -> int:
    """The n with decisions[n] <= value < decisions[n + 1]; overload goes to the last one."""
    return min(bisect.bisect_right(decisions, value) - 1, len(decisions) - 2)


def reference_alaw_encode(x: int) -> int:
    n = interval_of(ALAW_D, reference_magnitude(x) / 8)
    sign = 0x80 if x >= 0 else 0x00  # A-law: 1 = positive
    return (sign | n) ^ 0b01010101  # even bits (2, 4, 6, 8 counting from the MSB) inverted


def reference_ulaw_encode(x: int) -> int:
    n = interval_of(ULAW_D, reference_magnitude(x) / 4)
    sign = 0x00 if x >= 0 else 0x80  # before inversion: 0 = positive
    return ~(sign | n) & 0xFF  # mu-law: every bit inverted


def reference_alaw_decode(code: int) -> int:
    c = code ^ 0b01010101
    n = c & 0x7F
    value = (ALAW_D[n] + ALAW_D[n + 1]) / 2 * 8
    return int(value if c & 0x80 else -value)


def reference_ulaw_decode(code: int) -> int:
    c = ~code & 0xFF
    n = c & 0x7F
    value = 0 if n == 0 else (ULAW_D[n] + ULAW_D[n + 1]) / 2 * 4
    return int(-value if c & 0x80 else value)


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def test_reference_tables_have_the_standards_shape() -> None:
    assert len(ALAW_D) == 129 and len(ULAW_D) == 129
    assert ULAW_D[:4] == [0, 1, 3, 5] and ULAW_D[-2] == 7903
    assert ALAW_D[16:18] == [32, 34] and ALAW_D[-2] == 3968


def test_alaw_encoder_is_exact_for_every_int16() -> None:
    expected = np.array([reference_alaw_encode(int(x)) for x in ALL_INT16], dtype=np.uint8)
    got = linear_to_alaw(ALL_INT16)
    assert got.dtype == np.uint8
    assert np.array_equal(got, expected)


def test_ulaw_encoder_is_exact_for_every_int16() -> None:
    expected = np.array([reference_ulaw_encode(int(x)) for x in ALL_INT16], dtype=np.uint8)
    got = linear_to_ulaw(ALL_INT16)
    assert got.dtype == np.uint8
    assert np.array_equal(got, expected)


def test_alaw_decoder_is_exact_for_every_code() -> None:
    expected = np.array([reference_alaw_decode(int(c)) for c in ALL_CODES], dtype=np.int16)
    assert np.array_equal(alaw_to_linear(ALL_CODES), expected)


def test_ulaw_decoder_is_exact_for_every_code() -> None:
    expected = np.array([reference_ulaw_decode(int(c)) for c in ALL_CODES], dtype=np.int16)
    assert np.array_equal(ulaw_to_linear(ALL_CODES), expected)


def test_well_known_code_points() -> None:
    # Silence is 0xD5 in A-law and 0xFF in mu-law; full scale decodes to 32256 / 32124.
    samples = np.array([0, 32767, -32768], dtype=np.int16)
    assert linear_to_alaw(samples).tolist() == [0xD5, 0xAA, 0x2A]
    assert linear_to_ulaw(samples).tolist() == [0xFF, 0x80, 0x00]
    assert alaw_to_linear(linear_to_alaw(samples)).tolist() == [8, 32256, -32256]
    assert ulaw_to_linear(linear_to_ulaw(samples)).tolist() == [0, 32124, -32124]


@pytest.mark.parametrize(
    ("encode", "decode", "skip"),
    [(linear_to_alaw, alaw_to_linear, set()), (linear_to_ulaw, ulaw_to_linear, {0x7F})],
)
def test_decoded_values_re_encode_to_the_same_code(
    encode: Callable[[Pcm16], Codes], decode: Callable[[Codes], Pcm16], skip: set[int]
) -> None:
    # Each decoder output lies inside its own interval (mu-law 0x7F is "-0": it decodes to 0).
    codes = np.array([c for c in range(256) if c not in skip], dtype=np.uint8)
    assert np.array_equal(encode(decode(codes)), codes)


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_encoder_and_decoder_classes_round_trip_a_tone(name: str) -> None:
    codec = get_codec(name)
    assert codec.make_encoder is not None and codec.make_decoder is not None
    encoder = codec.make_encoder(EncoderOptions())
    decoder = codec.make_decoder(DecoderOptions())
    assert encoder.sample_rate == decoder.sample_rate == 8000
    t = np.arange(160) / 8000
    tone = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    payload = encoder.encode(tone)
    assert len(payload) == 160
    out = decoder.decode(payload)
    assert out.dtype == np.float32 and out.shape == (160,)
    snr = 10 * np.log10(np.sum(tone**2) / np.sum((tone - out) ** 2))
    assert snr > 30  # G.711 gives ~38 dB on a loud tone; a wrong table gives far less


@pytest.mark.parametrize(("name", "table"), [("PCMU", linear_to_ulaw), ("PCMA", linear_to_alaw)])
def test_encoder_clips_and_rounds_floats(name: str, table: Callable[[Pcm16], Codes]) -> None:
    codec = get_codec(name)
    assert codec.make_encoder is not None
    encoder = codec.make_encoder(EncoderOptions(frame_ms=10))
    pcm = np.zeros(80, dtype=np.float32)
    pcm[:4] = [1.5, -2.0, 100.4 / 32768, -100.6 / 32768]
    expected = table(np.array([32767, -32768, 100, -101, *([0] * 76)], dtype=np.int16))
    assert encoder.encode(pcm) == expected.tobytes()


@pytest.mark.parametrize(
    ("name", "table", "code"), [("PCMU", linear_to_ulaw, 0xFF), ("PCMA", linear_to_alaw, 0xD5)]
)
def test_silent_frames_encode_as_the_table_says(
    name: str, table: Callable[[Pcm16], Codes], code: int
) -> None:
    # Silence has its own short cut (a payload made once); it must be the table's own codes,
    # negative zeros included, and a frame that is silent but for one sample must not take it.
    codec = get_codec(name)
    assert codec.make_encoder is not None
    encoder = codec.make_encoder(EncoderOptions())
    zeros = np.zeros(160, dtype=np.float32)
    expected = table(np.zeros(160, dtype=np.int16)).tobytes()
    assert encoder.encode(zeros) == encoder.encode(-zeros) == expected == bytes([code]) * 160
    one = zeros.copy()
    one[80] = 0.5
    assert encoder.encode(one) == table((one * 32768).astype(np.int16)).tobytes() != expected


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_misuse_and_junk_raise_codec_error(name: str) -> None:
    codec = get_codec(name)
    assert codec.make_encoder is not None and codec.make_decoder is not None
    encoder = codec.make_encoder(EncoderOptions(frame_ms=20))
    with pytest.raises(CodecError, match="expected 160"):
        encoder.encode(np.zeros(159, dtype=np.float32))
    decoder = codec.make_decoder(DecoderOptions())
    with pytest.raises(CodecError, match="empty"):
        decoder.decode(b"")
    assert decoder.conceal(160) is None and decoder.decode_fec(b"\xff" * 160, 160) is None
    assert codec.has_plc is False and codec.has_fec is False
