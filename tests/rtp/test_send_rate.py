"""The video sender's target bitrate: loss (draft-ietf-rmcat-gcc-02 §6), REMB and TMMBR caps,
the configured bounds; clocks walked by argument."""

from __future__ import annotations

import pytest

from softphone.rtp.send_rate import SendRateController


def controller(**kw: int) -> SendRateController:
    args = {"min_bps": 100_000, "max_bps": 2_000_000, "start_bps": 1_000_000}
    args.update(kw)
    return SendRateController(**args)


def test_heavy_loss_lowers_and_no_loss_raises_the_rate() -> None:
    rate = controller()
    assert rate.on_loss(64, now=0.0) == 875_000  # 25 % lost: x (1 - 0.125)
    assert rate.on_loss(64, now=0.5) == 875_000  # within the interval: no compounding
    assert rate.on_loss(0, now=1.0) == 918_750  # clean: +5 %
    assert rate.on_loss(13, now=2.0) == 918_750  # 5 %: hold


def test_the_bounds_hold() -> None:
    rate = controller(start_bps=5_000_000)
    assert rate.target_bps == 2_000_000
    for i in range(40):
        rate.on_loss(255, now=float(i))
    assert rate.target_bps == 100_000
    assert rate.on_remb(10) == 100_000  # a REMB below the floor: the floor


def test_remb_and_tmmbr_cap_the_rate_and_growth_starts_from_the_cap() -> None:
    rate = controller()
    assert rate.on_remb(600_000) == 600_000
    assert rate.on_tmmbr(400_000) == 400_000  # the lowest wins
    rate.on_loss(0, now=0.0)
    assert rate.target_bps == 400_000
    rate.on_tmmbr(3_000_000)
    rate.on_remb(5_000_000)
    assert rate.target_bps == 420_000  # grown 5 % from what was sent, not released to 1 M
    assert rate.on_loss(0, now=1.0) == 441_000


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="not a range"):
        controller(min_bps=3_000_000)
