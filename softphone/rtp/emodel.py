"""A MOS estimate from the ITU-T G.107 (06/2015) E-model, simplified for a VoIP call.

Every parameter not measured on the call is at its G.107 default value (§7.7), which makes
the basic signal-to-noise ratio Ro, the simultaneous impairment Is, the talker/listener echo
terms Idte/Idle and the advantage factor A sum to the default rating R = 93.2 (G.107 §7.7,
default values). What a call changes is:

    R = 93.2 - Idd - Ie,eff                                        (G.107 §7.1)

- Idd, the impairment from the one-way absolute delay Ta in ms (G.107 §7.4):
      Idd = 0                                                      for Ta <= 100 ms
      Idd = 25 * ((1 + X^6)^(1/6) - 3 * (1 + (X/3)^6)^(1/6) + 2)   with X = log2(Ta / 100)
  It rises from 0 at 100 ms towards 50 for very long delays.
- Ie,eff, the effective equipment impairment of codec and packet loss (G.107 §7.5):
      Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)
  Ppl is the packet-loss probability in percent, BurstR the burst ratio (1 for random loss,
  > 1 for bursty loss: the mean observed burst length over the mean burst length expected for
  random loss at the same Ppl), Ie and Bpl come from the codec (`CODEC_IMPAIRMENTS`).
- MOS (conversational quality, CQE) from R (G.107 Annex B):
      MOS = 1                                                      for R < 0
      MOS = 1 + 0.035 R + R (R - 60) (100 - R) * 7e-6              for 0 <= R <= 100
      MOS = 4.5                                                    for R > 100
  The cubic dips a little below 1 for 0 < R < 6.5; it is clamped to 1 there so the estimate
  never gets better as conditions get worse.

Pure functions of their arguments; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "CODEC_IMPAIRMENTS",
    "DEFAULT_R",
    "CodecImpairment",
    "MosEstimate",
    "burst_ratio",
    "delay_impairment",
    "effective_equipment_impairment",
    "estimate_mos",
    "mos_from_r",
    "r_factor",
]

# G.107 §7.1 / §7.7: R with every parameter at its default value.
DEFAULT_R: Final = 93.2


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecImpairment:
    """G.107/G.113 codec values: equipment impairment Ie, packet-loss robustness Bpl."""

    ie: float
    bpl: float
    source: str


# Keyed by the lower-cased SDP encoding name (as media.codecs.CODECS).
#
# G.711 (PCMU, PCMA): ITU-T G.113 (11/2007) Appendix I: Ie = 0; Bpl = 25.1
# with packet-loss concealment per G.711 Appendix I (4.3 without). Our receiver conceals G.711
# with that algorithm (media/conceal.py), so the PLC value applies.
#
# G.722 and Opus: G.113 lists no value for them on the narrowband scale this model uses (their
# published Ie,wb values belong to the wideband E-model, G.107.1, whose scale reaches R = 129 and
# are not comparable). Our reasoning instead:
# - Ie = 0: on a narrowband scale, a wideband codec at its usual rate (G.722 64 kbit/s, Opus at
#   ≥ 24 kbit/s) carries at least everything G.711 does, and G.711 is the scale's zero point.
# - Bpl = 25.1, the G.711-with-PLC value: G.722 is concealed here by the same pitch-repetition
#   algorithm as G.711; Opus conceals with its own PLC and, with in-band FEC, recovers single
#   losses, so it is at least as robust. The G.711 value is thus a conservative lower bound; it
#   under- rather than over-states Opus quality under loss.
CODEC_IMPAIRMENTS: Final[Mapping[str, CodecImpairment]] = MappingProxyType(
    {
        "pcmu": CodecImpairment(ie=0.0, bpl=25.1, source="G.113 App. I, G.711 with PLC"),
        "pcma": CodecImpairment(ie=0.0, bpl=25.1, source="G.113 App. I, G.711 with PLC"),
        "g722": CodecImpairment(ie=0.0, bpl=25.1, source="no NB value; G.711+PLC as a floor"),
        "opus": CodecImpairment(ie=0.0, bpl=25.1, source="no NB value; G.711+PLC as a floor"),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MosEstimate:
    """The E-model rating R and the MOS (CQE) it maps to."""

    r: float
    mos: float


def _require(name: str, value: float, *, low: float, high: float = math.inf) -> None:
    if not low <= value <= high:  # also rejects NaN
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


def delay_impairment(one_way_delay_ms: float) -> float:
    """Idd for the one-way absolute delay Ta in ms (G.107 §7.4)."""
    _require("one_way_delay_ms", one_way_delay_ms, low=0.0)
    if one_way_delay_ms <= 100.0:
        return 0.0
    x = math.log2(one_way_delay_ms / 100.0)
    sixth = 1.0 / 6.0
    return 25.0 * (math.pow(1.0 + x**6, sixth) - 3.0 * math.pow(1.0 + (x / 3.0) ** 6, sixth) + 2.0)


def effective_equipment_impairment(
    *, ie: float, bpl: float, loss_percent: float, burst_ratio: float = 1.0
) -> float:
    """Ie,eff (G.107 §7.5) for Ppl = ``loss_percent`` and BurstR = ``burst_ratio``."""
    _require("loss_percent", loss_percent, low=0.0, high=100.0)
    if not burst_ratio > 0.0:
        raise ValueError(f"burst_ratio must be positive, got {burst_ratio}")
    if not bpl > 0.0:
        raise ValueError(f"bpl must be positive, got {bpl}")
    return ie + (95.0 - ie) * loss_percent / (loss_percent / burst_ratio + bpl)


def r_factor(
    *, ie: float, bpl: float, one_way_delay_ms: float, loss_percent: float, burst_ratio: float = 1.0
) -> float:
    """R = 93.2 - Idd - Ie,eff (G.107 §7.1 with the other parameters at their defaults)."""
    return (
        DEFAULT_R
        - delay_impairment(one_way_delay_ms)
        - effective_equipment_impairment(
            ie=ie, bpl=bpl, loss_percent=loss_percent, burst_ratio=burst_ratio
        )
    )


def mos_from_r(r: float) -> float:
    """MOS (CQE) from R (G.107 Annex B), clamped to [1, 4.5]."""
    if math.isnan(r):
        raise ValueError("R is NaN")
    if r < 0.0:
        return 1.0
    if r > 100.0:
        return 4.5
    return max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6)


def burst_ratio(*, loss_fraction: float, mean_burst_packets: float) -> float:
    """BurstR from measured loss (G.107 §7.5 definition).

    BurstR = (mean length of observed loss bursts) / (mean burst length under random loss), and
    under random loss with probability p a burst lasts 1 / (1 - p) packets on average. Returns 1
    when nothing was lost.
    """
    _require("loss_fraction", loss_fraction, low=0.0, high=1.0)
    if loss_fraction == 0.0:
        return 1.0
    if loss_fraction == 1.0:
        raise ValueError("burst_ratio is undefined when every packet is lost")
    _require("mean_burst_packets", mean_burst_packets, low=1.0)
    return mean_burst_packets * (1.0 - loss_fraction)


def estimate_mos(
    *, codec: str, one_way_delay_ms: float, loss_percent: float, burst_ratio: float = 1.0
) -> MosEstimate:
    """The G.107 estimate for a call using ``codec`` (SDP encoding name, any case).

    ``one_way_delay_ms`` is the mouth-to-ear delay Ta (e.g. RTT/2 + jitter buffer + codec);
    ``loss_percent`` counts packets lost in the network and discarded late by the jitter buffer.
    Raises ValueError for a codec without E-model values or out-of-range numbers.
    """
    impairment = CODEC_IMPAIRMENTS.get(codec.lower())
    if impairment is None:
        known = ", ".join(sorted(CODEC_IMPAIRMENTS))
        raise ValueError(f"no E-model values for codec {codec!r} (known: {known})")
    r = r_factor(
        ie=impairment.ie,
        bpl=impairment.bpl,
        one_way_delay_ms=one_way_delay_ms,
        loss_percent=loss_percent,
        burst_ratio=burst_ratio,
    )
    return MosEstimate(r=r, mos=mos_from_r(r))
