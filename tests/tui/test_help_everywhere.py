"""F1 and ? open the help on every screen, with that screen's keys first; ? typed in a text field
stays a ?."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from phone_fake import FakePhone
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input
from tui_support import until

from softphone.config import Config
from softphone.phone.book import Book
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.contacts import ContactsScreen
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.history import HistoryScreen
from softphone.tui.screens.login import LoginScreen
from softphone.tui.screens.main import MainScreen
from softphone.tui.screens.presence import PresenceScreen
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.screens.settings import SettingsScreen
from softphone.tui.screens.trace import TraceScreen

Opener = Callable[[Pilot[Any], SoftphoneApp, FakePhone], Awaitable[None]]


async def by_key(pilot: Pilot[Any], keys: tuple[str, ...]) -> None:
    await pilot.press("escape", *keys)


async def open_history(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await by_key(pilot, ("y",))


async def open_contacts(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await by_key(pilot, ("c",))


async def open_settings(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await by_key(pilot, ("s",))


async def open_trace(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await pilot.press(*"sip:bob@example.test", "enter")
    await until(pilot, lambda: phone.dialled != [], what="dial")
    phone.settle()
    await until(pilot, lambda: app.main.calls_table.row_count == 1, what="the call")
    await pilot.press("T")


async def open_prompt(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await by_key(pilot, ("v",))


async def open_presence(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    await by_key(pilot, ("P",))


async def open_login(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> None:
    app.push_screen(LoginScreen("rtsp://cam.test/", reason="401", camera_name="cam"))


SCREENS: list[tuple[type[Screen[Any]], Opener, str]] = [
    (HistoryScreen, open_history, "History"),
    (ContactsScreen, open_contacts, "Contacts"),
    (SettingsScreen, open_settings, "Settings"),
    (TraceScreen, open_trace, "SIP trace"),
    (LoginScreen, open_login, "Camera login"),
    (PromptScreen, open_prompt, "Main screen"),
    (PresenceScreen, open_presence, "Your presence"),
]


@pytest.mark.parametrize(
    ("screen_type", "opener", "first"), SCREENS, ids=lambda v: getattr(v, "__name__", v)
)
async def test_f1_opens_the_help_on_every_screen(
    tmp_path: Path, screen_type: type[Screen[Any]], opener: Opener, first: str
) -> None:
    phone = FakePhone()
    book = Book.open(tmp_path / "t.db")
    app = make_app(Config(), phone, book=book, config_path=tmp_path / "config.toml")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: phone.started, what="start")
            await opener(pilot, app, phone)
            await until(
                pilot, lambda: isinstance(app.screen, screen_type), what=screen_type.__name__
            )
            await pilot.press("f1")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            sections = [title for title, _ in app.screen.sections]  # type: ignore[attr-defined]
            assert sections[0] == first and "Main screen" in sections
            await pilot.press("f1")  # F1 again closes it
            await until(pilot, lambda: isinstance(app.screen, screen_type), what="back")
    finally:
        book.close()


async def test_question_mark_opens_the_help_on_the_contacts_list_but_is_typed_in_a_field(
    tmp_path: Path,
) -> None:
    phone = FakePhone()
    book = Book.open(tmp_path / "t.db")
    app = make_app(Config(), phone, book=book)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("escape", "c")
            await until(pilot, lambda: isinstance(app.screen, ContactsScreen), what="contacts")
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            assert app.screen.sections[0][0] == "Contacts"  # type: ignore[attr-defined]
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ContactsScreen), what="back")
            await pilot.press("slash", "question_mark")  # in the search field: a ?
            field = app.screen.focused
            assert isinstance(field, Input) and field.value == "?"
            assert not isinstance(app.screen, HelpScreen)
    finally:
        book.close()


async def test_the_main_screen_keeps_its_help_first() -> None:
    phone = FakePhone()
    app = make_app(Config(), phone)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("escape", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert app.screen.sections[0][0] == "Main screen"  # type: ignore[attr-defined]
        assert isinstance(app.screen_stack[-2], MainScreen)
