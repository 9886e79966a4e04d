"""Speex's echo canceller (media/speex_echo.py) behind EchoCanceller: the delay hint, frames
of the wrong size, and what happens where libspeexdsp is missing (the default falls back to
WebRTC's; asking for speex by name says how to install it)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from speech_quality import speech

from softphone.media import speex_echo
from softphone.media.echo import EchoCanceller, EchoError
from softphone.media.speex_echo import SPEEX_MISSING, SpeexCanceller, SpeexError

RATE = 16000


def erle_db(delay_ms: int, *, hint_ms: int | None, tail_ms: int) -> float:
    """Single talk through a pure delay: the echo's power over what is left, after 3 s."""
    far = speech(RATE)[: 6 * RATE]
    lag = delay_ms * RATE // 1000
    echo = np.zeros_like(far)
    echo[lag:] = 0.5 * far[:-lag]
    module = SpeexCanceller(RATE, tail_ms=tail_ms)
    canceller = EchoCanceller(RATE, processor=(module, speex_echo.frame), delay_ms=hint_ms)
    out = np.zeros_like(far)
    for at in range(0, len(far), 160):
        canceller.render(far[at : at + 160])
        out[at : at + 160] = canceller.capture(echo[at : at + 160])
    settled = slice(3 * RATE, len(far))
    return float(10 * np.log10(np.mean(echo[settled] ** 2) / np.mean(out[settled] ** 2)))


def test_the_delay_hint_brings_an_echo_beyond_the_filter_into_its_reach() -> None:
    # 200 ms of sound card delay and a 100 ms filter: out of reach until the speaker's frames
    # are held back by half the hint (120 ms), which leaves the echo 80 ms into the filter.
    without = erle_db(200, hint_ms=None, tail_ms=100)
    held = erle_db(200, hint_ms=240, tail_ms=100)
    assert without < 3.0, f"{without:.1f} dB: the filter reached past its tail?"
    assert held > 20.0, f"only {held:.1f} dB with the speaker's frames held back"
    # Held back too far (the cap, 250 ms, is past the echo): the echo comes before its
    # reference and nothing is cancelled, which is why only half the hint is trusted.
    assert erle_db(200, hint_ms=600, tail_ms=100) < 3.0


def test_a_frame_of_the_wrong_size_is_an_error_that_stops_the_canceller() -> None:
    module = SpeexCanceller(RATE)
    with pytest.raises(SpeexError, match="a frame of 80 samples, not 160"):
        module.process_stream((ctypes.c_int16 * 80)())
    heard: list[str] = []
    canceller = EchoCanceller(
        RATE, processor=(module, lambda buf, r, n: (ctypes.c_int16 * 80)()), on_failure=heard.append
    )
    x = np.full(320, 0.1, dtype=np.float32)
    assert np.array_equal(canceller.capture(x), x)  # passes through, untouched
    assert heard == ["echo cancellation stopped: a frame of 80 samples, not 160"]


def test_without_libspeexdsp_the_default_is_webrtc_and_speex_by_name_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("livekit.rtc")

    def missing() -> ctypes.CDLL:
        raise SpeexError(SPEEX_MISSING)

    monkeypatch.setattr(speex_echo, "_library", missing)
    assert EchoCanceller(48000).backend == "webrtc"
    with pytest.raises(EchoError) as caught:
        EchoCanceller(48000, backend="speex")
    assert str(caught.value) == "the speexdsp library is not installed: apt install libspeexdsp1"


def test_the_default_engine_is_speex_where_the_library_loads() -> None:
    assert EchoCanceller(48000).backend == "speex"
