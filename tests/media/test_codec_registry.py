"""The codec registry: descriptors, look-up, and what happens when a library is missing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from softphone.media import codecs
from softphone.media.codecs import (
    CODECS,
    DEFAULT_OFFER_ORDER,
    CodecDescriptor,
    CodecError,
    DecoderOptions,
    EncoderOptions,
    available_codecs,
    get_codec,
    unavailable_reasons,
)

# encoding: (clock_rate, sample_rate, channels, static PT, fmtp, has_plc, has_fec)
EXPECTED = {
    "opus": (48000, 48000, 2, None, "useinbandfec=1", True, True),
    "G722": (8000, 16000, 1, 9, None, False, False),
    "PCMU": (8000, 8000, 1, 0, None, False, False),
    "PCMA": (8000, 8000, 1, 8, None, False, False),
    "telephone-event": (8000, 8000, 1, None, "0-16", False, False),
}


def fields(codec: CodecDescriptor) -> tuple[object, ...]:
    return (
        codec.clock_rate,
        codec.sample_rate,
        codec.channels,
        codec.static_payload_type,
        codec.fmtp,
        codec.has_plc,
        codec.has_fec,
    )


def test_registry_is_keyed_by_lower_case_encoding() -> None:
    assert set(CODECS) == {e.lower() for e in EXPECTED}
    for key, codec in CODECS.items():
        assert key == codec.encoding.lower()
        assert fields(codec) == EXPECTED[codec.encoding]
    with pytest.raises(TypeError):
        CODECS["x"] = CODECS["pcmu"]  # type: ignore[index]


def test_get_codec_is_case_insensitive_and_rejects_unknown_names() -> None:
    assert get_codec("pcmu") is get_codec("PCMU") is CODECS["pcmu"]
    assert get_codec("Opus").encoding == "opus"
    assert get_codec("TELEPHONE-EVENT").make_encoder is None
    with pytest.raises(CodecError, match="unknown codec"):
        get_codec("G729")


def test_default_offer_order_names_real_codecs() -> None:
    assert DEFAULT_OFFER_ORDER == ("opus", "G722", "PCMU", "PCMA")
    assert [get_codec(name).encoding for name in DEFAULT_OFFER_ORDER] == list(DEFAULT_OFFER_ORDER)


def test_available_and_unavailable_partition_the_registry() -> None:
    available, missing = available_codecs(), unavailable_reasons()
    assert set(available) | set(missing) == set(CODECS)
    assert not set(available) & set(missing)
    assert {"pcmu", "pcma", "telephone-event"} <= set(available)  # pure numpy / no code


@pytest.mark.parametrize("key", ["opus", "g722", "pcmu", "pcma"])
def test_every_available_codec_round_trips_one_frame(key: str) -> None:
    if key not in available_codecs():
        pytest.skip(unavailable_reasons()[key])
    codec = CODECS[key]
    assert codec.make_encoder is not None and codec.make_decoder is not None
    encoder = codec.make_encoder(EncoderOptions(frame_ms=20))
    decoder = codec.make_decoder(DecoderOptions())
    samples = codec.sample_rate // 50
    t = np.arange(samples * 5) / codec.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    out = [decoder.decode(encoder.encode(tone[i : i + samples])) for i in range(0, len(t), samples)]
    assert all(o.shape == (samples,) and o.dtype == np.float32 for o in out)
    assert np.sqrt(np.mean(out[-1] ** 2)) > 0.1  # the tone (RMS 0.21) came through


def test_missing_pyav_disables_only_g722(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    assert unavailable_reasons()["g722"] == "PyAV is not installed: pip install av"
    assert "g722" not in available_codecs() and "pcmu" in available_codecs()
    g722 = CODECS["g722"]
    assert g722.make_encoder is not None
    with pytest.raises(CodecError, match="PyAV is not installed"):
        g722.make_encoder(EncoderOptions())


def test_missing_libopus_disables_only_opus() -> None:
    # opuslib raises a bare Exception at import when ctypes cannot find libopus. Simulate that in
    # a fresh interpreter (opuslib is already loaded in this one).
    script = textwrap.dedent(
        """
        import ctypes.util, json
        real = ctypes.util.find_library
        ctypes.util.find_library = lambda name: None if name == "opus" else real(name)
        import numpy as np
        from softphone.media import codecs
        pcmu = codecs.get_codec("PCMU").make_encoder(codecs.EncoderOptions())
        try:
            codecs.get_codec("opus").make_encoder(codecs.EncoderOptions())
            error = None
        except codecs.CodecError as exc:
            error = str(exc)
        print(json.dumps({
            "available": sorted(codecs.available_codecs()),
            "reasons": codecs.unavailable_reasons(),
            "pcmu_bytes": len(pcmu.encode(np.zeros(160, dtype=np.float32))),
            "error": error,
        }))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(run.stdout)
    assert "opus" not in result["available"]
    assert {"pcmu", "pcma", "telephone-event"} <= set(result["available"])
    assert "libopus0" in result["reasons"]["opus"]
    assert result["error"] == codecs.opus.MISSING_LIBRARY
    assert result["pcmu_bytes"] == 160
