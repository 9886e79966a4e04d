"""The quality panel's sparklines: fixed, meaningful scales (not stretched over the data) and
colours by grade; the panel in the app against FakePhone."""

from __future__ import annotations

import pytest
from phone_fake import FakePhone
from textual.widgets import Sparkline
from tui_support import until

from softphone.config import Config
from softphone.tui.app import make_app
from softphone.tui.widgets.quality import (
    BARS,
    SCALES,
    MetricSpark,
    Scale,
    bar_levels,
    grade,
    ice_text,
    video_text,
)

SCALE = {s.key: s for s in SCALES}
TOP = len(BARS) - 1


def test_a_steady_short_round_trip_is_the_lowest_bar_not_a_full_one() -> None:
    assert bar_levels([0.5] * 12, SCALE["rtt_ms"]) == [0] * 12
    assert bar_levels([0.5] * 12, SCALE["jitter_ms"]) == [0] * 12
    assert bar_levels([0.0] * 12, SCALE["loss_percent"]) == [0] * 12


def test_a_perfect_mos_is_near_the_top_and_the_scale_is_one_to_five() -> None:
    mos = SCALE["mos"]
    assert (mos.empty, mos.full) == (1.0, 5.0)
    assert bar_levels([1.0, 3.0, 4.5, 5.0], mos) == [0, round(TOP / 2), round(TOP * 3.5 / 4), TOP]


@pytest.mark.parametrize(
    ("key", "limit"), [("jitter_ms", 30.0), ("rtt_ms", 300.0), ("loss_percent", 5.0)]
)
def test_the_full_bar_is_the_limit_and_beyond_it_is_clamped(key: str, limit: float) -> None:
    scale = SCALE[key]
    assert scale.full == limit
    assert bar_levels([limit / 2, limit, 10 * limit, -1.0], scale) == [round(TOP / 2), TOP, TOP, 0]


@pytest.mark.parametrize(
    ("key", "good", "fair", "bad"),
    [
        ("mos", 4.3, 3.8, 3.0),
        ("jitter_ms", 5.0, 25.0, 40.0),
        ("rtt_ms", 80.0, 250.0, 400.0),
        ("loss_percent", 0.2, 2.0, 4.0),
    ],
)
def test_grades(key: str, good: float, fair: float, bad: float) -> None:
    scale = SCALE[key]
    assert [grade(v, scale) for v in (good, fair, bad)] == ["good", "fair", "bad"]


def test_a_cell_for_several_points_shows_the_worst_of_them() -> None:
    spark = MetricSpark(SCALE["jitter_ms"])
    spark.set_data([1.0, 1.0, 1.0, 45.0])  # a spike among calm points
    assert spark.cells(2) == [(0, "good"), (TOP, "bad")]
    mos = MetricSpark(SCALE["mos"])
    mos.set_data([4.4, 2.0])  # for MOS the worst is the lowest
    assert mos.cells(1) == [(bar_levels([2.0], SCALE["mos"])[0], "bad")]


def test_a_degenerate_scale_draws_the_lowest_bar() -> None:
    flat = Scale("x", "x", "", empty=1.0, full=1.0, fair=2.0, bad=3.0)
    assert bar_levels([5.0], flat) == [0]


async def test_the_panel_draws_on_fixed_scales_in_grade_colours() -> None:
    phone = FakePhone()
    app = make_app(Config(), phone, clock=lambda: 0.0, mono_clock=lambda: phone.now)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"sip:bob@example.test", "enter")
        await until(pilot, lambda: phone.dialled != [], what="dial")
        phone.settle()
        call_id = phone.calls[0].call_id
        quality = app.main.quality
        rtt = quality.query_one("#spark-rtt_ms", MetricSpark)
        for _ in range(3):  # one at a time: statistics waiting in the queue coalesce
            drawn = len(rtt.data)
            phone.emit_stats(call_id, jitter_ms=0.5, loss_percent=4.0, rtt_ms=0.5, mos=4.4)
            await until(pilot, lambda d=drawn: len(rtt.data) > d, what="one more point")
        assert not quality.query(Sparkline)  # no auto-scaling sparkline left
        assert {level for level, _ in rtt.cells(40)} == {0}
        mos = quality.query_one("#spark-mos", MetricSpark)
        assert {g for _, g in mos.cells(40)} == {"good"}
        assert min(level for level, _ in mos.cells(40)) >= TOP - 1
        loss = quality.query_one("#spark-loss_percent", MetricSpark)
        strip = loss.render_line(0)
        bad = loss.get_component_rich_style("metric-spark--bad")
        drawn = [seg for seg in strip if seg.text.strip()]
        assert drawn and all(seg.style == bad for seg in drawn)
        assert bad.color is not None and bad != loss.get_component_rich_style("metric-spark--good")


def test_video_text_names_codec_size_and_rate_of_a_call_with_video() -> None:
    stats = {"video_codec": "VP8", "video_frames_sent": 30, "video_frames_received": 29}
    stats |= {"video_width": 320, "video_height": 240, "video_fps": 15.0}
    assert video_text(stats) == "VP8 320x240 15 fps"
    assert video_text({"codec": "PCMU"}) == ""  # an audio call
    assert video_text({"video_codec": "VP9", "video_frames_sent": 0}) == ""  # nothing flowed
    # Video with ICE of its own (phone/video_ice.py): its pair, or its failure.
    with_ice = stats | {"video_ice": "connected", "video_ice_pair": "host/srflx"}
    assert video_text(with_ice) == "VP8 320x240 15 fps ICE host/srflx"
    assert video_text(stats | {"video_ice": "off", "video_ice_pair": None}) == "VP8 320x240 15 fps"
    assert video_text({"video_codec": "VP8", "video_ice": "failed"}) == "video ICE failed"


def test_ice_text_names_the_selected_pair_or_the_state() -> None:
    assert ice_text({"ice": "connected", "ice_pair": "relay/host"}) == "ICE relay/host"
    assert ice_text({"ice": "checking", "ice_pair": None}) == "ICE checking"
    assert ice_text({"ice": "failed", "ice_pair": None}) == "ICE failed"
    assert ice_text({"ice": "off"}) == ice_text({}) == ""  # plain calls say nothing
