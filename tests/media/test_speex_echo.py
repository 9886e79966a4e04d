"""Speex's echo canceller (media/speex_echo.py) behind EchoCanceller: the speaker's buffer
and the filter's reach, frames of the wrong size, and what happens where libspeexdsp is
missing (the default falls back to WebRTC's; asking for speex by name says how to install
it)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from speech_quality import speech

from softphone.media import speex_echo
from softphone.media.echo import EchoCanceller, EchoError
from softphone.media.speex_echo import SPEEX_MISSING, SpeexCanceller, SpeexError

RATE = 16000


def erle_db(delay_ms: int, *, tail_ms: int, buffered_ms: int = 0) -> float:
    """Single talk, the echo a pure delay (``delay_ms`` after the speaker plays it): the
    echo's power over what is left, after 3 s. ``buffered_ms``: the speaker's buffer, handed
    in before the first microphone frame (the speaker plays it from then on), then each tick
    the microphone's frame and the next speaker frame, as the engine does."""
    far = speech(RATE)[: 7 * RATE]
    lag = delay_ms * RATE // 1000
    echo = np.zeros_like(far)
    echo[lag:] = 0.5 * far[:-lag]
    module = SpeexCanceller(RATE, tail_ms=tail_ms)
    canceller = EchoCanceller(RATE, processor=(module, speex_echo.frame), delay_ms=500)
    ahead = buffered_ms * RATE // 1000
    canceller.render(far[:ahead])
    out = np.zeros(6 * RATE, dtype=np.float32)
    for at in range(0, len(out), 160):
        out[at : at + 160] = canceller.capture(echo[at : at + 160])
        canceller.render(far[ahead + at : ahead + at + 160])
    settled = slice(3 * RATE, len(out))
    return float(10 * np.log10(np.mean(echo[settled] ** 2) / np.mean(out[settled] ** 2)))


def test_the_speakers_buffer_waits_for_the_microphone_and_the_filter_finds_the_room() -> None:
    # 300 ms of speaker buffer, then 40 ms through the room: the queued frames stay in step
    # with what plays, so the filter (100 ms) has only the room's 40 ms to find. The device
    # delay hint (500 ms here) is not used: holding frames back would miss the echo.
    assert erle_db(40, tail_ms=100, buffered_ms=300) > 20.0
    # An echo beyond the filter's reach is not cancelled: the figure above is the filter's.
    assert erle_db(200, tail_ms=100) < 3.0


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
