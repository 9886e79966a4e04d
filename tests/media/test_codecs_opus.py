"""Opus through opuslib: speech round trip, FEC vs PLC, fmtp handling and ctl read-back."""

from __future__ import annotations

import wave
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from softphone.media.codecs import CodecError, DecoderOptions, EncoderOptions, get_codec
from softphone.media.codecs.opus import (
    GET_BITRATE,
    GET_DTX,
    GET_INBAND_FEC,
    GET_MAX_BANDWIDTH,
    GET_PACKET_LOSS_PERC,
    GET_VBR,
    OpusDecoder,
    OpusEncoder,
    packet_has_fec,
    target_bitrate,
)

pytest.importorskip("opuslib", reason="libopus is not installed: sudo apt-get install libopus0")

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"
FRAME = 960  # 20 ms at 48 kHz
Pcm = npt.NDArray[np.float32]


def speech_48k(seconds: float) -> Pcm:
    """The test speech, upsampled 16 -> 48 kHz by linear interpolation."""
    with wave.open(str(SPEECH)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        raw = w.readframes(int(seconds * 16000))
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768
    return np.interp(np.arange(len(x) * 3) / 3, np.arange(len(x)), x).astype(np.float32)


def delay_of(reference: Pcm, decoded: Pcm, max_lag: int) -> int:
    n = len(reference) + len(decoded)
    corr = np.fft.irfft(np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(reference, n)), n)
    return int(np.argmax(corr[: max_lag + 1]))


def snr_db(reference: Pcm, decoded: Pcm, lag: int) -> float:
    y = decoded[lag:]
    m = min(len(reference), len(y))
    err = reference[:m] - y[:m]
    return float(10 * np.log10(np.sum(reference[:m] ** 2) / np.sum(err**2)))


def encode_all(encoder: OpusEncoder, x: Pcm, frame: int = FRAME) -> list[bytes]:
    return [encoder.encode(x[i : i + frame]) for i in range(0, len(x) - frame + 1, frame)]


def encoder_for(fmtp: Mapping[str, str] | None = None, **kw: object) -> OpusEncoder:
    options = EncoderOptions(fmtp=dict(fmtp or {}), **kw)  # type: ignore[arg-type]
    return OpusEncoder(options)


SPEECH_4S = speech_48k(4.0)


def test_descriptor_factories_build_48k_mono_codecs() -> None:
    codec = get_codec("OPUS")
    assert codec.make_encoder is not None and codec.make_decoder is not None
    encoder = codec.make_encoder(EncoderOptions())
    decoder = codec.make_decoder(DecoderOptions())
    assert encoder.sample_rate == decoder.sample_rate == 48000
    pcm = decoder.decode(encoder.encode(SPEECH_4S[:FRAME]))
    assert pcm.dtype == np.float32 and pcm.shape == (FRAME,)


def test_speech_round_trip_snr_after_delay_alignment() -> None:
    encoder, decoder = encoder_for(), OpusDecoder(DecoderOptions())
    decoded = np.concatenate([decoder.decode(p) for p in encode_all(encoder, SPEECH_4S)])
    lag = delay_of(SPEECH_4S[: len(decoded)], decoded, max_lag=2000)
    assert 250 <= lag <= 400  # libopus look-ahead: 6.5 ms = 312 samples
    assert snr_db(SPEECH_4S, decoded, lag) > 8.0  # measured ~12 dB at 32 kbit/s; garbage is < 0


def test_fec_rebuilds_a_dropped_frame_closer_to_the_original_than_plc() -> None:
    encoder = encoder_for({"useinbandfec": "1"})
    encoder.set_packet_loss(20)
    packets = encode_all(encoder, SPEECH_4S)
    lag = 312
    fec_error = plc_error = 0.0
    tried = 0
    for k in range(10, len(packets) - 1, 5):
        reference = SPEECH_4S[k * FRAME - lag : (k + 1) * FRAME - lag]
        if np.sqrt(np.mean(reference**2)) < 0.03:
            continue  # only frames with speech in them
        with_fec, with_plc = OpusDecoder(DecoderOptions()), OpusDecoder(DecoderOptions())
        for j in range(k - 8, k):
            with_fec.decode(packets[j])
            with_plc.decode(packets[j])
        rebuilt = with_fec.decode_fec(packets[k + 1], FRAME)
        concealed = with_plc.conceal(FRAME)
        assert rebuilt is not None and concealed is not None
        assert rebuilt.shape == concealed.shape == (FRAME,)
        fec_error += float(np.sum((reference - rebuilt) ** 2))
        plc_error += float(np.sum((reference - concealed) ** 2))
        tried += 1
    assert tried >= 10
    assert fec_error < 0.5 * plc_error  # measured ~0.2x


@pytest.mark.parametrize(
    ("frame_ms", "fmtp"),
    [
        (20, {"useinbandfec": "1"}),  # hybrid, fullband (TOC config 15)
        (20, {"useinbandfec": "1", "maxaveragebitrate": "24000", "maxplaybackrate": "16000"}),
        (40, {"useinbandfec": "1", "maxaveragebitrate": "24000", "maxplaybackrate": "16000"}),
        (60, {"useinbandfec": "1", "maxaveragebitrate": "24000", "maxplaybackrate": "16000"}),
        (60, {"useinbandfec": "1", "maxaveragebitrate": "40000"}),  # code 3: 3 hybrid frames
    ],
)
def test_packet_has_fec_agrees_with_libopus(frame_ms: int, fmtp: dict[str, str]) -> None:
    # libopus, asked for FEC from a packet without LBRR, falls back to exactly its PLC output.
    # So "FEC output == PLC output" is an independent oracle for our reading of the LBRR bit.
    samples = 48 * frame_ms
    encoder = encoder_for(fmtp, frame_ms=frame_ms)
    encoder.set_packet_loss(20)
    packets = encode_all(encoder, SPEECH_4S, samples)
    flags = [packet_has_fec(p) for p in packets]
    assert 0.5 < np.mean(flags) < 1.0  # speech has LBRR, silence and the first packet do not
    for k in range(3, len(packets) - 1, 3):
        a, b = OpusDecoder(DecoderOptions()), OpusDecoder(DecoderOptions())
        for j in range(k - 3, k):
            a.decode(packets[j])
            b.decode(packets[j])
        plc = a.conceal(samples)
        fec = b._lost(packets[k + 1], samples)  # raw libopus FEC, bypassing our check
        assert plc is not None
        assert np.array_equal(plc, fec) == (not flags[k + 1]), k


def test_stereo_packets_are_downmixed_and_their_fec_is_seen() -> None:
    import opuslib

    stereo = opuslib.Encoder(48000, 2, "voip")
    stereo.bitrate = 48000
    left, right = SPEECH_4S, np.roll(SPEECH_4S, 480) * 0.5
    interleaved = np.stack([left, right], axis=1).reshape(-1).astype(np.float32)
    packets = [
        stereo.encode_float(interleaved[2 * i : 2 * (i + FRAME)].tobytes(), FRAME)
        for i in range(0, len(left) - FRAME + 1, FRAME)
    ]
    assert all(p[0] & 0x04 for p in packets)  # TOC stereo flag (RFC 6716 §3.1)
    decoder = OpusDecoder(DecoderOptions())
    decoded = np.concatenate([decoder.decode(p) for p in packets])
    assert decoded.shape == (len(packets) * FRAME,)
    assert np.sqrt(np.mean(decoded**2)) > 0.5 * np.sqrt(np.mean(left**2))


def test_no_fec_unless_the_peer_asks_for_it() -> None:
    encoder = encoder_for({"stereo": "1"})
    encoder.set_packet_loss(20)
    assert encoder.get(GET_INBAND_FEC) == 0
    packets = encode_all(encoder, SPEECH_4S[: 50 * FRAME])
    decoder = OpusDecoder(DecoderOptions())
    assert not any(packet_has_fec(p) for p in packets)
    assert decoder.decode_fec(packets[20], FRAME) is None
    assert encoder_for({"useinbandfec": "1"}).get(GET_INBAND_FEC) == 1


def test_set_packet_loss_takes_effect() -> None:
    encoder = encoder_for()
    assert encoder.get(GET_PACKET_LOSS_PERC) == 0
    encoder.set_packet_loss(15)
    assert encoder.get(GET_PACKET_LOSS_PERC) == 15
    encoder.set_packet_loss(250)
    assert encoder.get(GET_PACKET_LOSS_PERC) == 100


@pytest.mark.parametrize(
    ("fmtp", "bitrate", "expected"),
    [
        ({}, None, 32000),
        ({"maxaveragebitrate": "20000"}, None, 20000),
        ({"maxaveragebitrate": "1000"}, None, 6000),
        ({"maxaveragebitrate": "900000"}, None, 510000),  # libopus caps mono at 300000
        ({"maxaveragebitrate": "junk"}, None, 32000),
        ({}, 24000, 24000),
        ({"maxaveragebitrate": "16000"}, 24000, 16000),  # never above what the peer takes
    ],
)
def test_bitrate_follows_maxaveragebitrate(
    fmtp: dict[str, str], bitrate: int | None, expected: int
) -> None:
    options = EncoderOptions(fmtp=fmtp, bitrate=bitrate)
    assert target_bitrate(options) == expected
    assert OpusEncoder(options).get(GET_BITRATE) == min(expected, 300000)


def test_bitrate_changes_the_packet_sizes() -> None:
    low = encode_all(encoder_for({"maxaveragebitrate": "12000"}), SPEECH_4S[: 100 * FRAME])
    high = encode_all(encoder_for({"maxaveragebitrate": "64000"}), SPEECH_4S[: 100 * FRAME])
    assert np.mean([len(p) for p in high]) > 3 * np.mean([len(p) for p in low])


def test_other_fmtp_parameters() -> None:
    plain = encoder_for()
    assert (plain.get(GET_DTX), plain.get(GET_VBR), plain.get(GET_MAX_BANDWIDTH)) == (0, 1, 1105)
    assert encoder_for({"usedtx": "1"}).get(GET_DTX) == 1
    assert encoder_for({"cbr": "1"}).get(GET_VBR) == 0
    assert encoder_for({"maxplaybackrate": "16000"}).get(GET_MAX_BANDWIDTH) == 1103  # wideband


def test_dtx_sends_tiny_packets_in_silence() -> None:
    silence = np.zeros(30 * FRAME, dtype=np.float32)
    with_dtx = encode_all(encoder_for(dtx=True), silence)
    without = encode_all(encoder_for(), silence)
    assert encoder_for(dtx=True).get(GET_DTX) == 1
    assert all(len(p) <= 2 for p in with_dtx[-10:])
    assert all(len(p) > 2 for p in without)


def test_conceal_gives_exactly_the_samples_asked_for() -> None:
    decoder = OpusDecoder(DecoderOptions())
    for packet in encode_all(encoder_for(), SPEECH_4S[: 20 * FRAME]):
        decoder.decode(packet)
    for samples in (FRAME, 1000, 7000):  # not a 2.5 ms multiple; longer than 120 ms
        out = decoder.conceal(samples)
        assert out is not None and out.shape == (samples,) and out.dtype == np.float32
        assert np.all(np.isfinite(out))


def test_misuse_and_junk_raise_codec_error() -> None:
    with pytest.raises(CodecError, match="frame duration"):
        encoder_for(frame_ms=30)
    with pytest.raises(CodecError, match="expected 960"):
        encoder_for().encode(np.zeros(480, dtype=np.float32))
    decoder = OpusDecoder(DecoderOptions())
    with pytest.raises(CodecError, match="empty"):
        decoder.decode(b"")
    with pytest.raises(CodecError, match="opus decode failed"):
        decoder.decode(bytes([0x03, 0x00]))  # code 3 with a frame count of 0 (RFC 6716 §3.2.5)
    assert packet_has_fec(b"") is False and packet_has_fec(bytes([0xFC, 0xFF])) is False


@pytest.mark.parametrize(
    ("fmtp", "loss", "expected"),
    [
        ({}, 0, 32000),  # nothing lost: the target
        ({}, 5, 35200),  # +2 % per % lost, for the FEC's share of the budget
        ({}, 50, 48000),  # half again the target at most without a peer's limit
        ({"maxaveragebitrate": "34000"}, 10, 34000),  # never above the peer's maximum
    ],
)
def test_the_bitrate_follows_the_loss_the_far_end_reports(
    fmtp: dict[str, str], loss: int, expected: int
) -> None:
    encoder = encoder_for({"useinbandfec": "1", **fmtp})
    encoder.set_packet_loss(loss)
    assert encoder.get(GET_BITRATE) == expected
    encoder.set_packet_loss(0)  # the loss is over: back to the target
    assert encoder.get(GET_BITRATE) == int(fmtp.get("maxaveragebitrate", 32000))
