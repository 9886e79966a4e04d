"""The shared silent blocks (media/silence.py): recognised by identity only, never written, and
every shortcut taken on them gives the same samples as reading the zeros would."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.media.resample import Resampler
from softphone.media.silence import is_known_silence, silent_block


def test_the_same_read_only_zeros_for_the_same_length() -> None:
    block = silent_block(960)
    assert block is silent_block(960) and block is not silent_block(480)
    assert block.dtype == np.float32 and block.shape == (960,) and not block.any()
    with pytest.raises(ValueError, match="read-only"):
        block[0] = 1.0


def test_only_the_shared_blocks_are_known_silence() -> None:
    assert is_known_silence(silent_block(160))
    # Zeros that are not the shared block are unknown: the caller reads them as before.
    assert not is_known_silence(np.zeros(160, dtype=np.float32))
    assert not is_known_silence(silent_block(160)[:80])  # a view is another object
    assert not is_known_silence(np.zeros((1, 160), dtype=np.float32))


def test_a_block_of_speech_the_length_of_a_silent_one_is_not_taken_for_silence() -> None:
    silent_block(960)
    speech = np.full(960, 0.25, dtype=np.float32)
    assert not is_known_silence(speech)


def speech(samples: int, start: int) -> np.ndarray:
    t = np.arange(start, start + samples) / 48000
    return (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 8000), (48000, 16000), (48000, 44100)])
def test_resampling_the_shared_silence_gives_what_reading_zeros_gives(
    in_rate: int, out_rate: int
) -> None:
    # Silence long enough to take the resampler's silence path, then speech, then silence
    # again: the shared blocks and fresh zeros must give the same samples throughout, and the
    # speech after the silence must come out whole (not skipped as silence).
    plan = ["silence"] * 30 + ["speech"] * 10 + ["silence"] * 30 + ["speech"] * 5
    shared, fresh = Resampler(in_rate, out_rate), Resampler(in_rate, out_rate)
    out_shared, out_fresh = [], []
    for i, what in enumerate(plan):
        if what == "speech":
            block = speech(960, 960 * i)
            out_shared.append(shared.process(block))
            out_fresh.append(fresh.process(block.copy()))
        else:
            out_shared.append(shared.process(silent_block(960)))
            out_fresh.append(fresh.process(np.zeros(960, dtype=np.float32)))
    a, b = np.concatenate(out_shared), np.concatenate(out_fresh)
    assert np.array_equal(a, b)
    # The speech came through: its energy is there, at the output rate.
    assert float(np.sqrt(np.mean(np.square(a)))) > 0.1
