"""HistoryScreen against a real Book on tmp_path and the FakePhone (Pilot + snapshots)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from phone_fake import FakePhone
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static
from tui_support import Host, until

from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, CallRecord, Contact
from softphone.tui.screens.history import (
    ConfirmDialog,
    HistoryScreen,
    format_duration,
    format_when,
)

TZ = timezone(timedelta(hours=1), "CET")
NOW = datetime(2026, 11, 12, 15, 30, tzinfo=TZ)  # a Thursday


def fixed_now() -> datetime:
    return NOW


def record(minutes_ago: float, uri: str | None, **kw: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "direction": "out",
        "account": "work",
        "result": "answered",
        "duration_s": 65.0,
    }
    fields.update(kw)
    return CallRecord(
        started_at=(NOW - timedelta(minutes=minutes_ago)).astimezone(UTC), remote_uri=uri, **fields
    )


def fill(book: Book, recording: Path | None = None) -> None:
    book.contacts.add(Contact(name="Alice Anderson", uris=("sip:alice@example.com",)))
    h = book.history
    h.add(record(60 * 24 * 30, "sip:old@example.com", result="failed", duration_s=0))
    h.add(
        record(
            60 * 24 * 3,
            "sip:bob@example.com",
            remote_name="Bob B",
            direction="in",
            result="missed",
            duration_s=0,
        )
    )
    h.add(
        record(
            60 * 5,
            "sip:alice@example.com",
            remote_name="A. from INVITE",
            duration_s=3725,
            recording_path=str(recording) if recording else "/nowhere/rec-1.wav",
        )
    )
    h.add(record(10, "sip:carol@example.com", direction="in", duration_s=42))


def screen_of(app: App[Any]) -> HistoryScreen:
    assert isinstance(app.screen, HistoryScreen)
    return app.screen


async def loaded(pilot: Pilot[Any], rows: int) -> HistoryScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen), what="screen pushed")
    screen = screen_of(pilot.app)
    await until(
        pilot, lambda: screen.loaded and screen.table.row_count == rows, what=f"{rows} rows"
    )
    return screen


def make(book: Book, phone: PhoneApi | None = None, **kw: Any) -> Callable[[], HistoryScreen]:
    return lambda: HistoryScreen(book, phone or FakePhone(), now=fixed_now, **kw)


def test_format_when_and_duration() -> None:
    assert format_when(NOW - timedelta(hours=2), NOW) == "Today 13:30"
    assert format_when(datetime(2026, 11, 9, 8, 12, tzinfo=UTC), NOW) == "Mon 09:12"
    assert format_when(datetime(2026, 11, 2, 8, 12, tzinfo=UTC), NOW) == "2026-11-02 09:12"
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"


async def test_rows_newest_first_with_contact_names(book: Book) -> None:
    fill(book)
    async with Host(make(book)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        table = screen.table
        remotes = [str(table.get_row_at(i)[2]) for i in range(4)]
        # contact name beats the INVITE's display name; remote_name beats the bare URI
        assert remotes == [
            "sip:carol@example.com",
            "Alice Anderson",
            "Bob B",
            "sip:old@example.com",
        ]
        first = table.get_row_at(1)
        assert first[0] == "Today 10:30" and first[3] == "1:02:05" and first[5] == "●"
        assert str(table.get_row_at(2)[4]) == "missed" and table.get_row_at(2)[3] == ""


async def test_empty_state(book: Book) -> None:
    async with Host(make(book)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 0)
        empty = screen.query_one("#history-empty", Static)
        assert not empty.has_class("-hidden") and "No calls yet" in str(empty.content)


async def test_enter_dismisses_with_the_uri(book: Book) -> None:
    fill(book)
    app = Host(make(book))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 4)
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.results == ["sip:alice@example.com"], what="dismissed")


async def test_a_row_without_an_address_is_shown_but_never_dialled(book: Book) -> None:
    """An old row whose text held no address (kept by the migration as a name only): Enter
    says there is nothing to call instead of dialling garbage."""
    book.history.add(record(5, None, remote_name="%%% not an address", direction="in"))
    book.history.add(record(1, "sip:carol@example.com", direction="in", result="interrupted"))
    app = Host(make(book))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 2)
        assert [str(screen.table.get_row_at(i)[2]) for i in range(2)] == [
            "sip:carol@example.com",
            "%%% not an address",
        ]
        assert str(screen.table.get_row_at(0)[4]) == "interrupted"
        await pilot.press("down", "enter")
        await until(
            pilot,
            lambda: any("no address" in n.message for n in app._notifications),
            what="the notification",
        )
        assert app.results == [] and app.screen is screen
        await pilot.press("up", "enter")
        await until(pilot, lambda: app.results == ["sip:carol@example.com"], what="dismissed")


async def test_escape_clears_search_then_dismisses_none(book: Book) -> None:
    fill(book)
    app = Host(make(book))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("slash", *"bob")
        assert screen.search_input.has_focus
        await until(pilot, lambda: screen.table.row_count == 1, what="search result")
        assert str(screen.table.get_row_at(0)[2]) == "Bob B"
        await pilot.press("escape")
        await until(pilot, lambda: screen.table.row_count == 4, what="search cleared")
        assert screen.search_input.value == "" and app.results == []
        await pilot.press("escape")
        await until(pilot, lambda: app.results == [None], what="dismissed with None")


async def test_search_without_match_says_so(book: Book) -> None:
    fill(book)
    async with Host(make(book)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("slash", *"zzz")
        await until(pilot, lambda: screen.records == [], what="empty search")
        assert "No calls match" in str(screen.query_one("#history-empty", Static).content)


async def test_paging_loads_more_at_the_end(book: Book) -> None:
    for i in range(7):
        book.history.add(record(i, f"sip:u{i}@example.com"))
    async with Host(make(book, page_size=3)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 3)
        await pilot.press("end")
        await until(pilot, lambda: screen.table.row_count == 6, what="second page")
        await pilot.press("end")
        await until(
            pilot, lambda: screen.table.row_count == 7 and screen.exhausted, what="last page"
        )
        uris = [r.remote_uri for r in screen.records]
        assert uris == [f"sip:u{i}@example.com" for i in range(7)]


async def test_delete_asks_then_removes(book: Book) -> None:
    fill(book)
    async with Host(make(book)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="confirm")
        await pilot.press("n")
        await until(pilot, lambda: pilot.app.screen is screen, what="back")
        assert book.history.count() == 4
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await until(pilot, lambda: screen.table.row_count == 3, what="row removed")
        assert book.history.list()[0].remote_uri == "sip:alice@example.com"


async def test_clear_all_asks_then_empties(book: Book) -> None:
    fill(book)
    async with Host(make(book)).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("C")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await until(
            pilot, lambda: book.history.count() == 0 and screen.records == [], what="cleared"
        )
        assert not screen.query_one("#history-empty").has_class("-hidden")


async def test_play_calls_phone_play_file(book: Book, tmp_path: Path) -> None:
    wav = tmp_path / "rec-1.wav"
    wav.write_bytes(b"RIFF")
    fill(book, recording=wav)
    phone = FakePhone()
    async with Host(make(book, phone)).run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 4)
        await pilot.press("down", "p")
        await until(pilot, lambda: phone.played == [wav], what="play_file called")
        await pilot.press("x")
        await until(pilot, lambda: ("stop_playback", {}) in phone.calls_made, what="stopped")
        assert phone.playing is None


class SlowPlayer:
    """play_file runs until stop_playback, like the real phone's."""

    def __init__(self) -> None:
        self.played: list[Path] = []
        self.stops = 0
        self._stop = asyncio.Event()

    async def play_file(self, path: Path) -> None:
        self.played.append(path)
        await self._stop.wait()

    def stop_playback(self) -> None:
        self.stops += 1
        self._stop.set()


async def test_p_again_stops_playback(book: Book, tmp_path: Path) -> None:
    wav = tmp_path / "rec-1.wav"
    wav.write_bytes(b"RIFF")
    fill(book, recording=wav)
    player = SlowPlayer()
    app = Host(lambda: HistoryScreen(book, player, now=fixed_now))  # type: ignore[arg-type]
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("down", "p")
        await until(pilot, lambda: screen.playing == wav, what="playing")
        await pilot.press("p")
        await until(pilot, lambda: player.stops == 1 and screen.playing is None, what="stopped")
        assert player.played == [wav]


async def test_missing_recording_notifies(book: Book) -> None:
    fill(book)  # recording_path points at /nowhere
    phone = FakePhone()
    app = Host(make(book, phone))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 4)
        await pilot.press("down", "p")
        await until(
            pilot,
            lambda: any("is gone" in n.message for n in app._notifications),
            what="error notification",
        )
        note = next(n for n in app._notifications if "is gone" in n.message)
        assert note.severity == "error" and "/nowhere/rec-1.wav" in note.message
        assert phone.played == []


def snapshot_app(tmp_path: Path) -> Host:
    book = Book.open(tmp_path / "snap.db")
    fill(book)
    return Host(make(book))


async def wait_rows(pilot: Pilot[Any]) -> None:
    await loaded(pilot, 4)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=size, run_before=wait_rows)


def test_snapshot_light_theme(snap_compare: Any, tmp_path: Path) -> None:
    app = snapshot_app(tmp_path)
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_rows)
