"""The bitrate a video sender aims at, from what the receiver reports (sans-IO: reports and
``now`` in, a bitrate out).

Three inputs, the lowest wins, always within ``min_bps``..``max_bps`` (the configured bounds):

- loss, from the receiver reports (RFC 3550 §6.4.1 fraction lost), as the loss-based controller
  of draft-ietf-rmcat-gcc-02 §6: over 10 % lost, down to ``rate x (1 - 0.5 x loss)``; under 2 %,
  up by 5 %; in between, hold. At most one change per ``interval_s`` (reports come every few
  seconds; a burst of them must not compound);
- REMB (draft-alvestrand-rmcat-remb §2.2), the receiver's own estimate of what the path takes,
  when the peer offered ``goog-remb``;
- TMMBR (RFC 5104 §4.2.1), a maximum the receiver asks for, when ``ccm tmmbr`` was negotiated.

The caller turns the target into the encoder's setting (media/video_encode.py applies only
changes worth a key frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LOSS_HIGH: Final = 0.10
LOSS_LOW: Final = 0.02
INCREASE: Final = 1.05
INTERVAL_S: Final = 1.0


@dataclass(slots=True)
class SendRateController:
    """One video stream's target bitrate (see the module docstring)."""

    min_bps: int
    max_bps: int
    start_bps: int
    interval_s: float = INTERVAL_S
    remb_bps: int | None = None
    tmmbr_bps: int | None = None
    _loss_bps: float = 0.0
    _changed_at: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.max_bps:
            raise ValueError(f"bitrate bounds {self.min_bps}..{self.max_bps} are not a range")
        self._loss_bps = float(self._clamp(self.start_bps))

    def _clamp(self, bps: float) -> int:
        return int(max(self.min_bps, min(self.max_bps, bps)))

    @property
    def target_bps(self) -> int:
        caps = [self._loss_bps, *(c for c in (self.remb_bps, self.tmmbr_bps) if c is not None)]
        return self._clamp(min(caps))

    def on_loss(self, fraction_lost: int, now: float) -> int:
        """A report block about our stream: ``fraction_lost`` in 1/256 (RFC 3550 §6.4.1)."""
        if self._changed_at is not None and now - self._changed_at < self.interval_s:
            return self.target_bps
        loss = max(0, min(255, fraction_lost)) / 256
        if loss > LOSS_HIGH:
            self._loss_bps = self._clamp(self._loss_bps * (1 - 0.5 * loss))
            self._changed_at = now
        elif loss < LOSS_LOW:
            # Grow from what is actually sent when a cap holds it lower, so that lifting the
            # cap does not release a rate that was never tried.
            base = min(self._loss_bps, self.target_bps)
            self._loss_bps = self._clamp(base * INCREASE)
            self._changed_at = now
        return self.target_bps

    def on_remb(self, bps: int) -> int:
        self.remb_bps = max(0, bps)
        return self.target_bps

    def on_tmmbr(self, bps: int) -> int:
        self.tmmbr_bps = max(0, bps)
        return self.target_bps
