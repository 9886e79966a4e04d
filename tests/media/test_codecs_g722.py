"""G.722 through PyAV: deterministic framing and a speech round trip."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from softphone.media.codecs import CodecError, DecoderOptions, EncoderOptions, get_codec
from softphone.media.codecs.base import Decoder, Encoder
from softphone.media.codecs.g722 import G722Decoder, G722Encoder

SPEECH = Path(__file__).resolve().parents[1] / "data" / "audio" / "speech16k.wav"
Pcm = npt.NDArray[np.float32]


def speech_16k(seconds: float) -> Pcm:
    with wave.open(str(SPEECH)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        raw = w.readframes(int(seconds * 16000))
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / np.float32(32768)


def delay_of(reference: Pcm, decoded: Pcm, max_lag: int) -> int:
    """Lag (0..max_lag) at which ``decoded`` best matches ``reference``, by FFT correlation."""
    n = len(reference) + len(decoded)
    corr = np.fft.irfft(np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(reference, n)), n)
    return int(np.argmax(corr[: max_lag + 1]))


def snr_db(reference: Pcm, decoded: Pcm, lag: int) -> float:
    y = decoded[lag:]
    m = min(len(reference), len(y))
    err = reference[:m] - y[:m]
    return float(10 * np.log10(np.sum(reference[:m] ** 2) / np.sum(err**2)))


def make_pair(frame_ms: int = 20) -> tuple[Encoder, Decoder]:
    codec = get_codec("G722")
    assert codec.make_encoder is not None and codec.make_decoder is not None
    return codec.make_encoder(EncoderOptions(frame_ms=frame_ms)), codec.make_decoder(
        DecoderOptions()
    )


def test_descriptor_keeps_the_rfc_3551_clock_quirk() -> None:
    codec = get_codec("g722")
    assert (codec.encoding, codec.clock_rate, codec.sample_rate) == ("G722", 8000, 16000)
    assert codec.static_payload_type == 9 and codec.channels == 1


def test_every_20_ms_frame_gives_exactly_160_bytes_and_back_320_samples() -> None:
    encoder, decoder = make_pair()
    assert isinstance(encoder, G722Encoder) and isinstance(decoder, G722Decoder)
    speech = speech_16k(3.0)
    for start in range(0, len(speech) - 319, 320):
        payload = encoder.encode(speech[start : start + 320])
        assert len(payload) == 160  # no frame held back in PyAV's FIFO, none doubled
        pcm = decoder.decode(payload)
        assert pcm.dtype == np.float32 and pcm.shape == (320,)


def test_speech_round_trip_snr_after_delay_alignment() -> None:
    encoder, decoder = make_pair()
    speech = speech_16k(6.0)
    frames = [speech[i : i + 320] for i in range(0, len(speech) - 319, 320)]
    decoded = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames])
    lag = delay_of(speech[: len(decoded)], decoded, max_lag=200)
    assert 0 < lag < 100  # the QMF filter pair delays by ~22 samples
    assert snr_db(speech, decoded, lag) > 20.0  # measured ~28.7 dB at 64 kbit/s


def test_encoding_is_deterministic_and_longer_frames_concatenate() -> None:
    speech = speech_16k(1.0)[:640]
    a, _ = make_pair(20)
    b, _ = make_pair(20)
    c, _ = make_pair(40)
    twenty = a.encode(speech[:320]) + a.encode(speech[320:])
    assert twenty == b.encode(speech[:320]) + b.encode(speech[320:])
    assert c.encode(speech) == twenty  # G.722 is a byte stream: 40 ms = two 20 ms frames


def test_misuse_and_junk_raise_codec_error() -> None:
    with pytest.raises(CodecError, match="multiple of 20 ms"):
        make_pair(10)
    encoder, decoder = make_pair()
    with pytest.raises(CodecError, match="expected 320"):
        encoder.encode(np.zeros(160, dtype=np.float32))
    with pytest.raises(CodecError, match="empty"):
        decoder.decode(b"")
    assert decoder.decode(b"\x00" * 7).shape == (14,)  # any byte is a valid G.722 code word
    assert decoder.conceal(320) is None and decoder.decode_fec(b"\x00" * 160, 320) is None
