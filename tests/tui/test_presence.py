"""Pilot tests of presence in the TUI against FakePhone: every contact with an address is
watched, its lamp (presence, or the busy lamp of a call) shows in the contacts list and beside
the dial bar's suggestion and follows the phone's events; our own presence shows in the status
bar and P (or the command palette) chooses it; the voicemail waiting is counted in the status
line; what the phone refuses is said, not raised."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from phone_fake import FakePhone
from rich.text import Text
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, OptionList
from tui_support import fake_app, until

from softphone.phone.book import Book, Contact
from softphone.tui.app import SoftphoneApp
from softphone.tui.screens.contacts import ContactsScreen
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.presence import PresenceScreen

BOB = "sip:bob@example.test"
CAROL = "sip:carol@example.test"
DAVE = "sip:dave@example.test"


def registered_phone() -> FakePhone:
    """A phone whose account has a registrar: presence runs for it once it registered."""
    return FakePhone(registrars=("local",))


async def started(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    if phone.registrars:
        await until(pilot, lambda: phone.started, what="the phone to start")
        phone.settle()  # Registered
        await until(pilot, lambda: "registered" in app.main.status.text, what="registered")
    else:
        await until(pilot, lambda: "local" in app.main.status.text, what="the phone to start")


async def contacts_open(pilot: Pilot[Any], app: SoftphoneApp) -> ContactsScreen:
    await pilot.press("escape", "c")
    await until(pilot, lambda: isinstance(app.screen, ContactsScreen), what="contacts")
    screen = app.screen
    assert isinstance(screen, ContactsScreen)
    await until(pilot, lambda: screen.loaded and screen.rows != [], what="rows")
    return screen


def status_of(screen: ContactsScreen, name: str) -> str:
    (row,) = [r for r in screen.rows if r.name == name]
    return screen.lamp_cell(row).plain


def shown_status(screen: ContactsScreen, name: str) -> str:
    """What the table itself shows in the Status column (not what it would compute)."""
    (row,) = [r for r in screen.rows if r.name == name]
    cell = screen.table.get_cell(screen.key(row), "lamp")
    return str(getattr(cell, "plain", cell))


async def test_every_contact_is_watched_and_its_lamp_follows_in_the_contacts_list(
    book: Book,
) -> None:
    book.contacts.add(Contact(name="Bob", uris=(BOB, "sip:1002@example.test")))
    book.contacts.add(Contact(name="Carol", uris=(CAROL,)))
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        # The first address of each contact, once each.
        await until(pilot, lambda: set(phone.watched) == {BOB, CAROL}, what="watched")
        assert [a["uri"] for n, a in phone.calls_made if n == "watch"] == [BOB, CAROL]
        phone.remote_presence(BOB, "available", lamp="idle")
        contacts = await contacts_open(pilot, app)
        assert [c.label.plain for c in contacts.table.ordered_columns][:3] == [
            "★",
            "Name",
            "Status",
        ]
        assert shown_status(contacts, "Bob") == "● available"
        assert shown_status(contacts, "Carol") == ""  # nothing known yet: no lamp
        # While the list is open it follows the phone: a call there, one ringing, offline.
        phone.remote_presence(BOB, "available", lamp="busy")
        await until(pilot, lambda: shown_status(contacts, "Bob") == "● in a call", what="busy")
        phone.remote_presence(CAROL, "available", lamp="ringing")
        await until(pilot, lambda: shown_status(contacts, "Carol") == "● ringing", what="ring")
        phone.remote_presence(CAROL, "dnd", note="in a meeting", lamp="idle")
        await until(pilot, lambda: shown_status(contacts, "Carol") == "● dnd", what="dnd")
        phone.remote_presence(BOB, "offline", lamp="unknown")
        await until(pilot, lambda: shown_status(contacts, "Bob") == "● offline", what="offline")
        # Contacts added or deleted meanwhile are watched, or no longer, once the list closes.
        (carol,) = [c for c in contacts.rows if c.name == "Carol"]
        assert carol.id is not None
        book.contacts.add(Contact(name="Dave", uris=(DAVE,)))
        book.contacts.delete(carol.id)
        await pilot.press("escape")
        await until(pilot, lambda: set(phone.watched) == {BOB, DAVE}, what="watched again")
        assert ("unwatch", {"uri": CAROL}) in phone.calls_made


async def test_the_dial_bar_shows_the_suggested_contacts_lamp(book: Book) -> None:
    book.contacts.add(Contact(name="Bob Builder", uris=(BOB,)))
    phone = FakePhone()
    app = fake_app(phone, book)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app, phone)
        await until(pilot, lambda: BOB in phone.watched, what="watched")
        phone.remote_presence(BOB, "available", lamp="busy")
        bar = app.main.dial_bar
        await pilot.press(*"Bob")
        await until(pilot, lambda: bar.lamp.plain == "● in a call Bob Builder", what="lamp")
        under = Text.from_markup(str(bar.border_subtitle)).plain
        assert under == "● in a call Bob Builder"  # on the bar's lower border
        phone.remote_presence(BOB, "available", lamp="idle")
        await until(pilot, lambda: bar.lamp.plain == "● available Bob Builder", what="idle")
        # Typed on past the contact: no suggestion, no lamp.
        await pilot.press(*"zz")
        await until(pilot, lambda: bar.lamp.plain == "", what="no lamp")
        assert bar.match is None


async def test_p_chooses_our_presence_which_the_status_bar_shows() -> None:
    phone = registered_phone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        status = app.main.status
        await until(pilot, lambda: "● available (P)" in status.text, what="our presence")
        await pilot.press("escape", "P")
        await until(pilot, lambda: isinstance(app.screen, PresenceScreen), what="the picker")
        states = app.screen.query_one("#presence-states", OptionList)
        assert states.highlighted == 0  # the state chosen now
        await pilot.press("down", "down", "down", "tab", *"back at 3", "enter")
        await until(pilot, lambda: app.screen is app.main, what="back")
        assert phone.presence.state == "dnd" and phone.presence.note == "back at 3"
        await until(pilot, lambda: "● do not disturb: back at 3 (P)" in status.text, what="dnd")
        # Escape changes nothing.
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, PresenceScreen), what="again")
        assert app.screen.query_one("#presence-note", Input).value == "back at 3"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="cancelled")
        assert [a for n, a in phone.calls_made if n == "set_presence"] == [
            {"state": "dnd", "note": "back at 3"}
        ]


async def test_a_call_shows_busy_on_the_phone_and_then_the_choice_again() -> None:
    phone = registered_phone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        status = app.main.status
        await until(pilot, lambda: "● available (P)" in status.text, what="available")
        await pilot.press(*BOB, "enter")
        phone.settle()
        await until(pilot, lambda: "● on the phone (P)" in status.text, what="busy")
        await pilot.press("h")
        phone.settle()
        await until(pilot, lambda: "● available (P)" in status.text, what="available again")


async def test_without_presence_running_the_status_bar_says_nothing_of_it() -> None:
    phone = FakePhone()  # no registrar: presence does not run
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        assert "●" not in app.main.status.text and "(P)" not in app.main.status.text


async def test_voicemail_waiting_is_counted_in_the_status_line() -> None:
    phone = registered_phone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        status = app.main.status
        phone.message_waiting("local", 2, 5, urgent_new=1)
        await until(pilot, lambda: "voicemail: 2 new (1 urgent), 5 old" in status.text, what="mwi")
        assert "voicemail: 2 new messages for local" in app.main.messages.texts
        phone.message_waiting("local", 0, 7)  # listened to: nothing waits
        await until(pilot, lambda: "voicemail" not in status.text, what="no voicemail")


async def test_a_refused_choice_is_an_error_line_not_a_crash() -> None:
    phone = registered_phone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot, app, phone)
        phone.fail_next("set_presence", "the phone is stopping")
        await pilot.press("escape", "P")
        await until(pilot, lambda: isinstance(app.screen, PresenceScreen), what="the picker")
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.screen is app.main, what="back")
        line = "presence: the phone is stopping"
        await until(pilot, lambda: line in app.main.messages.texts, what="the error")
        assert phone.presence.state == "available"


async def test_presence_is_in_the_command_palette_and_the_help() -> None:
    phone = registered_phone()
    app = fake_app(phone)
    async with app.run_test(size=(120, 36)) as pilot:
        await started(pilot, app, phone)
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert "Presence" in titles
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"Presence")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PresenceScreen), what="the picker")
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        titles = [title for title, _ in app.screen.sections]  # type: ignore[attr-defined]
        sections = dict(app.screen.sections)  # type: ignore[attr-defined]
        assert titles[0] == "Your presence"
        assert ("P", "your presence: available, away, busy or do not disturb, with a note") in (
            sections["Main screen"]
        )


# --- how it looks at 80x24 -------------------------------------------------------------------------
SnapCompare = Callable[..., bool]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def lamps_book(path: Path) -> Book:
    opened = Book.open(path)
    for name, uri in (
        ("Bob Builder", BOB),
        ("Carol", CAROL),
        ("Dave", DAVE),
        ("Erin", "sip:erin@example.test"),
        ("Frank", "sip:frank@example.test"),
    ):
        opened.contacts.add(Contact(name=name, uris=(uri,)))
    return opened


def light_the_lamps(phone: FakePhone) -> None:
    phone.remote_presence(BOB, "available", lamp="busy")
    phone.remote_presence(CAROL, "available", lamp="ringing")
    phone.remote_presence(DAVE, "away", note="lunch", lamp="idle")
    phone.remote_presence("sip:erin@example.test", "offline", lamp="unknown")
    # Frank: nothing known yet, no lamp.


def test_main_screen_with_a_lamp_and_voicemail_80x24(
    snap_compare: SnapCompare, tmp_path: Path, utc: None
) -> None:
    book = lamps_book(tmp_path / "t.db")
    phone = registered_phone()
    app = fake_app(phone, book)

    async def run_before(pilot: Pilot[Any]) -> None:
        app.main.dial_bar.cursor_blink = False
        await started(pilot, app, phone)
        await until(pilot, lambda: len(phone.watched) == 5, what="watched")
        light_the_lamps(phone)
        phone.set_presence("away", "back at 3")
        phone.message_waiting("local", 2, 5, urgent_new=1)
        await until(pilot, lambda: "voicemail" in app.main.status.text, what="voicemail")
        await pilot.press(*"Bo")
        await until(pilot, lambda: app.main.dial_bar.lamp.plain != "", what="the lamp")
        app.clear_notifications()

    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        book.close()


def test_contacts_with_lamps_80x24(snap_compare: SnapCompare, tmp_path: Path, utc: None) -> None:
    book = lamps_book(tmp_path / "t.db")
    phone = registered_phone()
    app = fake_app(phone, book)

    async def run_before(pilot: Pilot[Any]) -> None:
        await started(pilot, app, phone)
        await until(pilot, lambda: len(phone.watched) == 5, what="watched")
        light_the_lamps(phone)
        contacts = await contacts_open(pilot, app)
        await until(pilot, lambda: len(contacts.rows) == 5, what="every contact")
        await until(pilot, lambda: shown_status(contacts, "Carol") == "● ringing", what="lamps")
        app.clear_notifications()

    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        book.close()


def test_presence_picker_80x24(snap_compare: SnapCompare, utc: None) -> None:
    phone = registered_phone()
    app = fake_app(phone)

    async def run_before(pilot: Pilot[Any]) -> None:
        await started(pilot, app, phone)
        phone.set_presence("busy", "writing the report")
        await pilot.press("escape", "P")
        await until(pilot, lambda: isinstance(app.screen, PresenceScreen), what="the picker")
        app.screen.query_one("#presence-note", Input).cursor_blink = False
        app.clear_notifications()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
