"""Packet loss concealment by pitch repetition, after ITU-T G.711 Appendix I, at any sample rate.

For codecs without their own PLC (G.711, G.722). The playout feeds every frame it plays into
:meth:`PitchConcealer.remember`; when a frame is missing it plays :meth:`PitchConcealer.conceal`
instead; the first real frame after a loss goes through :meth:`PitchConcealer.merge`::

    if payload is None:
        pcm = concealer.conceal(frame_samples)
    elif concealer.concealing:
        pcm = concealer.merge(decoder.decode(payload))
    else:
        pcm = decoder.decode(payload)
    concealer.remember(pcm)          # every frame actually played: real, concealed or merged

What it does (G.711 App. I §I.2, adapted):

- History: the last 48.75 ms played (App. I ``HISTORYLEN`` = 390 samples at 8 kHz): enough for
  three of the longest pitch periods (15 ms) plus a quarter period.
- At the start of a loss the pitch period ``P`` of the last ~20 ms is found
  (:func:`softphone.media.stretch.pitch_period` on the last 30 ms, reversed so that the last
  15 ms are the reference, compared with themselves shifted by 2.5-15 ms) and the last period
  is repeated. Its last quarter period is cross-faded into the quarter period that precedes it
  in the history, so each repetition flows into the next (App. I's overlap-add of 1.25 periods).
- App. I delays output by 3.75 ms so it can cross-fade the last real quarter period into the
  synthetic signal; a playout cannot take played samples back, so instead the first quarter
  period of the synthetic signal carries a fading offset that makes its first sample follow the
  last played one with the slope the repeated period has there.
- After 10 ms and again after 20 ms of loss the repeated stretch grows to two and then three
  periods (the older ones first), joined with a quarter-period cross-fade, so a long loss does
  not buzz (App. I §I.2.3).
- From 10 ms on the output is attenuated linearly by 20 % per 10 ms, reaching silence at 60 ms.
  **After 60 ms the concealment is exact zeros** (no comfort noise: nothing here knows the far
  end's noise floor, and zeros are deterministic).
- :meth:`PitchConcealer.merge` cross-fades the continued concealment into the real frame over
  4 ms after a loss of up to 10 ms, 4 ms more per further 10 ms of loss, at most 10 ms
  (App. I §I.2.4); after a loss beyond 60 ms that is a fade-in from silence.

Nothing here raises for any frame length (``samples >= 0``); each call costs a few small numpy
operations (a 20 ms loss start + conceal + merge: ~0.2 ms).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from softphone.media.stretch import MAX_PERIOD_S, Pcm, pitch_period

HISTORY_S: Final = 0.04875
"""G.711 App. I HISTORYLEN (390 samples at 8 kHz): 3 x 15 ms periods + a quarter period."""
PITCH_WINDOW_S: Final = 0.015
"""The last 15 ms are correlated with the history shifted by 2.5-15 ms (so the last 30 ms are
searched). App. I uses 20 ms (CORRLEN); on the test speech 15 ms gave ~0.5 dB better SNR over
20 ms gaps at 8, 16 and 48 kHz (the period of the most recent audio matters most)."""
STEP_S: Final = 0.010
"""App. I works in 10 ms frames: more periods and attenuation are counted in these."""
ATTENUATION_PER_STEP: Final = 0.2
MAX_PERIODS: Final = 3
MERGE_BASE_S: Final = 0.004
MERGE_STEP_S: Final = 0.004
MERGE_MAX_S: Final = 0.010

_F64 = npt.NDArray[np.float64]


def _fade_in(length: int) -> _F64:
    """Raised-cosine weights from exactly 0 to exactly 1 (``w + (1 - w) == 1``)."""
    if length < 2:
        return np.ones(length)
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(length) / (length - 1))


class PitchConcealer:
    """Pitch-repetition concealment for one stream (G.711 Appendix I style)."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate <= 0:
            raise ValueError(f"bad sample rate {sample_rate}")
        self.sample_rate = sample_rate
        longest = math.floor(MAX_PERIOD_S * sample_rate)
        size = max(round(HISTORY_S * sample_rate), MAX_PERIODS * longest + longest // 4)
        self._history = np.zeros(size, dtype=np.float64)
        self._step = round(STEP_S * sample_rate)
        self.concealing = False
        """True from the first :meth:`conceal` of a loss until :meth:`merge`."""
        self.concealed_samples = 0
        """Samples concealed in the current (or last) loss."""
        self._unremembered = 0
        # Loss state, set up by _start():
        self._period = 1
        self._overlap = 1
        self._periods = 1
        self._loop = np.zeros(1, dtype=np.float64)
        self._position = 0
        self._prefix = np.zeros(0, dtype=np.float64)

    # -- input ----------------------------------------------------------------------------------

    def remember(self, pcm: Pcm) -> None:
        """Append a frame that was played (real, concealed or merged) to the history.

        During a loss, remembering more samples than :meth:`conceal` produced means real audio
        came back without :meth:`merge`: the loss is then over (the next conceal starts afresh).
        """
        samples = np.asarray(pcm, dtype=np.float64).reshape(-1)
        if self.concealing:
            if len(samples) <= self._unremembered:
                self._unremembered -= len(samples)
            else:
                self.concealing = False
                self._unremembered = 0
        size = len(self._history)
        if len(samples) >= size:
            self._history[:] = samples[-size:]
        elif len(samples) > 0:
            self._history[: -len(samples)] = self._history[len(samples) :]
            self._history[-len(samples) :] = samples

    # -- output ---------------------------------------------------------------------------------

    def conceal(self, samples: int) -> Pcm:
        """The next ``samples`` samples of concealment (starts a loss if none is under way)."""
        if not self.concealing:
            self._start()
        self._unremembered += samples
        return self._synthesize(samples).astype(np.float32)

    def merge(self, pcm: Pcm) -> Pcm:
        """The first real frame after a loss, cross-faded from the continued concealment.

        Same length as ``pcm``. Ends the loss. Outside a loss ``pcm`` comes back unchanged.
        """
        frame = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if not self.concealing:
            return frame
        steps = max(1, math.ceil(self.concealed_samples / self._step))
        fade_s = min(MERGE_BASE_S + MERGE_STEP_S * (steps - 1), MERGE_MAX_S)
        fade = min(len(frame), round(fade_s * self.sample_rate))
        out = frame.astype(np.float64)
        if fade > 0:
            continued = self._synthesize(fade)
            out[:fade] = continued + _fade_in(fade) * (out[:fade] - continued)
        self.concealing = False
        self._unremembered = 0
        return out.astype(np.float32)

    # -- internals ------------------------------------------------------------------------------

    def _start(self) -> None:
        """Begin a loss: pitch of the last 20 ms, loop of one period (G.711 App. I §I.2.2)."""
        rate = self.sample_rate
        analysed = self._history[-round((PITCH_WINDOW_S + MAX_PERIOD_S) * rate) :]
        period, _ = pitch_period(analysed[::-1].astype(np.float32), rate)
        self._period = period
        self._overlap = max(1, period // 4)
        self.concealing = True
        self.concealed_samples = 0
        self._unremembered = 0
        self._periods = 1
        self._loop = self._make_loop(1)
        self._position = 0
        # The loop starts at history[-P], which follows history[-P-1]; shift the first quarter
        # period by the difference to what was really played last, fading the shift out.
        history = self._history
        offset = history[-1] - history[-period - 1]
        head = self._loop[: self._overlap]
        self._prefix = head + offset * (1.0 - _fade_in(len(head)))

    def _make_loop(self, periods: int) -> _F64:
        """The last ``periods`` periods of history; its end cross-fades into what precedes it."""
        length = periods * self._period
        history = self._history
        loop = history[-length:].copy()
        q = self._overlap
        # loop[-1] is followed by loop[0] = history[-length]; make the end fade into
        # history[-length-q:-length], the samples that really precede loop[0].
        tail = history[-q:]
        before = history[-length - q : -length]
        loop[-q:] = tail + _fade_in(q) * (before - tail)
        return loop

    def _grow(self) -> None:
        """Repeat one more period (older ones first), cross-fading over a quarter period."""
        q = self._overlap
        steps = np.arange(q)
        old = self._loop[(self._position + steps) % len(self._loop)]
        self._periods += 1
        self._loop = self._make_loop(self._periods)
        new = self._loop[(self._position + steps) % len(self._loop)]
        self._prefix = old + _fade_in(q) * (new - old)

    def _gain(self, start: int, count: int) -> _F64:
        """App. I attenuation: 1 for the first 10 ms, then -20 % per 10 ms down to 0 at 60 ms."""
        elapsed = np.arange(start, start + count, dtype=np.float64)
        return np.clip(1.0 - ATTENUATION_PER_STEP * (elapsed - self._step) / self._step, 0.0, 1.0)

    def _synthesize(self, count: int) -> _F64:
        out = np.zeros(count, dtype=np.float64)
        silent_from = round(self._step * (1.0 + 1.0 / ATTENUATION_PER_STEP))
        done = 0
        while done < count:
            elapsed = self.concealed_samples
            if elapsed >= silent_from:
                self.concealed_samples += count - done
                break
            if (
                elapsed > 0
                and elapsed % self._step == 0
                and self._periods < min(MAX_PERIODS, elapsed // self._step + 1)
            ):
                self._grow()
            next_step = (elapsed // self._step + 1) * self._step
            chunk = min(count - done, next_step - elapsed)
            raw = self._loop[(self._position + np.arange(chunk)) % len(self._loop)]
            if len(self._prefix) > 0:
                k = min(chunk, len(self._prefix))
                raw[:k] = self._prefix[:k]
                self._prefix = self._prefix[k:]
            out[done : done + chunk] = raw * self._gain(elapsed, chunk)
            self._position = (self._position + chunk) % len(self._loop)
            self.concealed_samples += chunk
            done += chunk
        return out
