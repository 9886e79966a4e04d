"""Helpers for Pilot tests of the TUI: ``from tui_support import until``.

Wait on one named condition with a deadline, never on stacked pauses or sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from softphone.config import Config
from softphone.tui.app import SoftphoneApp, make_app

if TYPE_CHECKING:
    from phone_fake import FakePhone

    from softphone.phone.book import Book

WALL = 1_790_000_000.0  # the wall clock of apps made by fake_app


async def until(
    pilot: Pilot[Any], cond: Callable[[], object], timeout_s: float = 5.0, what: str = ""
) -> None:
    """Let the app run until ``cond()`` is true; fail with ``what`` after ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            while not cond():
                await pilot.pause()
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what or cond}") from None


class Host(App[None]):
    """A bare app for screen tests: pushes ``make()`` on mount and keeps what the screen
    dismissed with in ``results``."""

    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make
        self.results: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.make(), self.results.append)


def fake_app(phone: FakePhone, book: Book | None = None) -> SoftphoneApp:
    """The real app around a FakePhone, its wall clock stopped at WALL and its monotonic clock
    the phone's own; no RTSP player."""
    return make_app(
        Config(),
        phone,
        book=book,
        clock=lambda: WALL,
        mono_clock=lambda: phone.now,
        player_factory=lambda *a: None,  # type: ignore[arg-type,return-value]
    )
