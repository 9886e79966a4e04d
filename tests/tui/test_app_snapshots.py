"""Snapshot tests of the main screen (80x24 and 160x48), the incoming modal and the light theme.

Deterministic content: a fixed wall clock (and TZ=UTC for HH:MM), FakePhone's own monotonic clock
for call timers, fixed statistics and levels, no cursor blink."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from phone_fake import FakePhone
from textual.pilot import Pilot
from tui_support import until

from softphone.config import Config
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.incoming import IncomingScreen

WALL = 1_790_000_000.0
SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def two_accounts() -> tuple[SoftphoneApp, FakePhone]:
    phone = FakePhone(
        accounts={"alice": "sip:alice@example.test", "office": "sip:me@office.test"},
        registrars=["alice", "office"],
    )
    app = make_app(Config(), phone, clock=lambda: WALL, mono_clock=lambda: phone.now)
    return app, phone


def idle(phone: FakePhone, app: SoftphoneApp) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app.main.dial_bar.cursor_blink = False
        await until(pilot, lambda: phone.started, what="start")
        phone.register("alice")
        phone.fail_registration("office", 403, retry_in_s=30)
        await until(pilot, lambda: "office: failed" in app.main.status.text, what="status")
        await until(pilot, lambda: "alice: registered" in app.main.status.text, what="status")
        app.clear_notifications()  # toasts time out: keep them out of the picture

    return run_before


def in_call(phone: FakePhone, app: SoftphoneApp) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app.main.dial_bar.cursor_blink = False
        await until(pilot, lambda: phone.started, what="start")
        await pilot.press(*"sip:bob@example.test", "enter")
        await until(pilot, lambda: phone.dialled != [], what="dial")
        phone.settle()
        phone.fail_registration("office", 403, retry_in_s=30)
        call_id = phone.calls[0].call_id
        phone.set_levels(call_id, -18.0, -26.0)
        for jitter, loss, rtt, mos in (
            (3.0, 0.0, 38.0, 4.4),
            (5.5, 1.2, 41.0, 4.1),
            (4.0, 0.4, 40.0, 4.3),
        ):
            phone.emit_stats(call_id, jitter_ms=jitter, loss_percent=loss, rtt_ms=rtt, mos=mos)
            await until(
                pilot,
                lambda j=jitter: (
                    app.main.notes.quality.get(call_id) is not None
                    and list(app.main.notes.quality[call_id].series["jitter_ms"])[-1:] == [j]
                ),
                what="stats",
            )
        phone.now += 75.0  # 01:15 of talk time
        phone.emit_stats(call_id, jitter_ms=4.0, loss_percent=0.4, rtt_ms=40.0, mos=4.3)
        await until(pilot, lambda: "01:15" in _rows(app), what="timer")
        await until(pilot, lambda: app.main.quality.levels_shown == (-18.0, -26.0), what="levels")
        app.clear_notifications()

    return run_before


def _rows(app: SoftphoneApp) -> str:
    table = app.main.calls_table
    return " | ".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


def test_idle_two_accounts_80x24(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    assert snap_compare(app, terminal_size=(80, 24), run_before=idle(phone, app))


def test_idle_two_accounts_160x48(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    assert snap_compare(app, terminal_size=(160, 48), run_before=idle(phone, app))


def test_call_with_quality_80x24(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    assert snap_compare(app, terminal_size=(80, 24), run_before=in_call(phone, app))


def test_call_with_quality_160x48(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    assert snap_compare(app, terminal_size=(160, 48), run_before=in_call(phone, app))


def test_call_with_quality_light_theme_100x30(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=(100, 30), run_before=in_call(phone, app))


def test_incoming_modal_80x24(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()

    async def run_before(pilot: Pilot[Any]) -> None:
        await idle(phone, app)(pilot)
        phone.incoming("sip:dave@example.test", "alice", display_name="Dave Smith")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="modal")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def three_calls(phone: FakePhone, app: SoftphoneApp) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app.main.dial_bar.cursor_blink = False
        await until(pilot, lambda: phone.started, what="start")
        phone.fail_registration("office", 403, retry_in_s=30)
        for n, who in enumerate(("bob", "carol", "dave"), start=1):
            app.main.dial(f"sip:{who}@example.test")
            await until(pilot, lambda n=n: len(phone.dialled) == n, what=f"dial {who}")
            phone.settle()
        await until(pilot, lambda: _rows(app).count("established") == 3, what="three calls")
        app.main.dial_bar.focus()
        app.clear_notifications()

    return run_before


def test_three_calls_80x24(snap_compare: SnapCompare) -> None:
    app, phone = two_accounts()
    assert snap_compare(app, terminal_size=(80, 24), run_before=three_calls(phone, app))


async def test_several_calls_fit_on_an_80x24_terminal() -> None:
    """The calls list shows four rows at 80x24, beside the quality panel and the messages."""
    app, phone = two_accounts()
    async with app.run_test(size=(80, 24)) as pilot:
        await three_calls(phone, app)(pilot)
        table = app.main.calls_table
        assert table.row_count == 3
        assert table.scrollable_content_region.height - 1 >= 4  # under the header
        assert app.main.quality.display and app.main.messages.display
