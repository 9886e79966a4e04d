"""ITU-T G.107 E-model: R, Idd, Ie,eff and MOS against values worked out from the formulas."""

from __future__ import annotations

import itertools
import math

import pytest

from softphone.rtp.emodel import (
    CODEC_IMPAIRMENTS,
    DEFAULT_R,
    MosEstimate,
    burst_ratio,
    delay_impairment,
    effective_equipment_impairment,
    estimate_mos,
    mos_from_r,
)


def idd_reference(ta_ms: float) -> float:
    """G.107 Idd written out independently (natural logs, explicit roots)."""
    if ta_ms <= 100:
        return 0.0
    x = math.log(ta_ms / 100) / math.log(2)
    term1 = math.exp(math.log(1 + x**6) / 6)
    term2 = 3 * math.exp(math.log(1 + (x / 3) ** 6) / 6)
    return 25 * (term1 - term2 + 2)


def test_default_r_is_93_2_and_mos_4_41() -> None:
    estimate = estimate_mos(codec="PCMU", one_way_delay_ms=0.0, loss_percent=0.0)
    assert isinstance(estimate, MosEstimate)
    assert estimate.r == pytest.approx(93.2)
    assert estimate.mos == pytest.approx(4.409, abs=5e-4)
    assert round(estimate.mos, 2) == 4.41
    assert DEFAULT_R == 93.2


@pytest.mark.parametrize(
    ("ta_ms", "expected"),
    [(0.0, 0.0), (100.0, 0.0), (200.0, 3.0444), (300.0, 14.761), (400.0, 24.070), (800.0, 40.832)],
)
def test_delay_impairment_matches_g107_formula(ta_ms: float, expected: float) -> None:
    assert delay_impairment(ta_ms) == pytest.approx(idd_reference(ta_ms), abs=1e-9)
    assert delay_impairment(ta_ms) == pytest.approx(expected, abs=0.01)


def test_delay_impairment_saturates_below_50() -> None:
    assert 49.0 < delay_impairment(100_000.0) < 50.0


def test_r_at_200_and_400_ms_with_no_loss() -> None:
    for ta in (200.0, 400.0):
        r = estimate_mos(codec="pcma", one_way_delay_ms=ta, loss_percent=0.0).r
        assert r == pytest.approx(93.2 - idd_reference(ta))


@pytest.mark.parametrize(
    ("ie", "bpl", "ppl", "burst", "expected"),
    [
        (0.0, 25.1, 0.0, 1.0, 0.0),
        (0.0, 25.1, 1.0, 1.0, 95 * 1 / (1 + 25.1)),  # 3.640
        (0.0, 25.1, 2.0, 2.0, 95 * 2 / (1 + 25.1)),  # 7.280
        (0.0, 4.3, 1.0, 1.0, 95 * 1 / (1 + 4.3)),  # G.711 without PLC: 17.92
        (11.0, 19.0, 2.0, 1.0, 11 + 84 * 2 / (2 + 19.0)),  # G.729A-like values: 19.0
    ],
)
def test_effective_equipment_impairment_examples(
    ie: float, bpl: float, ppl: float, burst: float, expected: float
) -> None:
    got = effective_equipment_impairment(ie=ie, bpl=bpl, loss_percent=ppl, burst_ratio=burst)
    assert got == pytest.approx(expected)


def test_g711_at_1_percent_random_loss() -> None:
    estimate = estimate_mos(codec="PCMU", one_way_delay_ms=80.0, loss_percent=1.0)
    assert estimate.r == pytest.approx(93.2 - 95 / 26.1)  # 89.56
    assert estimate.mos == pytest.approx(4.328, abs=0.001)


def test_mos_from_r_mapping_and_clamps() -> None:
    assert mos_from_r(-5.0) == 1.0
    assert mos_from_r(0.0) == 1.0
    assert mos_from_r(50.0) == pytest.approx(1 + 1.75 - 0.175)
    assert mos_from_r(80.0) == pytest.approx(1 + 2.8 + 80 * 20 * 20 * 7e-6)  # 4.024
    assert mos_from_r(100.0) == pytest.approx(4.5)
    assert mos_from_r(120.0) == 4.5
    grid = [mos_from_r(r / 10) for r in range(-100, 1101)]
    assert all(a <= b for a, b in itertools.pairwise(grid))
    assert min(grid) == 1.0 and max(grid) == 4.5


def test_mos_is_monotonic_in_loss_and_delay() -> None:
    by_loss = [
        estimate_mos(codec="opus", one_way_delay_ms=120.0, loss_percent=p / 2).mos
        for p in range(41)
    ]
    assert all(a > b for a, b in itertools.pairwise(by_loss))
    by_delay = [
        estimate_mos(codec="g722", one_way_delay_ms=float(d), loss_percent=1.0).mos
        for d in range(0, 1001, 25)
    ]
    assert all(a >= b for a, b in itertools.pairwise(by_delay))
    assert by_delay[0] > by_delay[-1] + 1.0


def test_burstiness_lowers_mos() -> None:
    mos = [
        estimate_mos(codec="PCMU", one_way_delay_ms=50.0, loss_percent=3.0, burst_ratio=b).mos
        for b in (1.0, 1.5, 2.0, 4.0)
    ]
    assert all(a > b for a, b in itertools.pairwise(mos))
    # with no loss, burstiness changes nothing
    assert estimate_mos(codec="PCMU", one_way_delay_ms=50.0, loss_percent=0.0, burst_ratio=3.0) == (
        estimate_mos(codec="PCMU", one_way_delay_ms=50.0, loss_percent=0.0)
    )


def test_burst_ratio_from_measured_bursts() -> None:
    p = 0.05
    assert burst_ratio(loss_fraction=p, mean_burst_packets=1 / (1 - p)) == pytest.approx(1.0)
    assert burst_ratio(loss_fraction=p, mean_burst_packets=4.0) == pytest.approx(3.8)
    assert burst_ratio(loss_fraction=0.0, mean_burst_packets=0.0) == 1.0


def test_codec_table_covers_the_offered_audio_codecs_case_insensitively() -> None:
    assert set(CODEC_IMPAIRMENTS) == {"opus", "g722", "pcmu", "pcma"}
    assert CODEC_IMPAIRMENTS["pcmu"].ie == 0.0 and CODEC_IMPAIRMENTS["pcmu"].bpl == 25.1
    assert estimate_mos(codec="G722", one_way_delay_ms=0.0, loss_percent=0.0).r == pytest.approx(
        93.2
    )


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="no E-model values for codec 'GSM'"):
        estimate_mos(codec="GSM", one_way_delay_ms=0.0, loss_percent=0.0)
    with pytest.raises(ValueError, match="loss_percent"):
        estimate_mos(codec="pcmu", one_way_delay_ms=0.0, loss_percent=101.0)
    with pytest.raises(ValueError, match="one_way_delay_ms"):
        estimate_mos(codec="pcmu", one_way_delay_ms=math.nan, loss_percent=0.0)
    with pytest.raises(ValueError, match="burst_ratio"):
        estimate_mos(codec="pcmu", one_way_delay_ms=0.0, loss_percent=1.0, burst_ratio=0.0)
