"""The main screen's groundwork: what it is built from (:class:`AppDeps`), what it needs of the
app (:class:`AppShell`), and :class:`MainBase`: its widgets, and how it reports (a line in the
messages area, warnings and errors as notifications too; a ``PhoneError`` from an action becomes
such a line, never a traceback).

It is the first of the layers the main screen is built from (main.py lists them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from softphone.config import Config
from softphone.phone.api import PhoneApi
from softphone.phone.book import Book
from softphone.phone.call_log import CallLog
from softphone.phone.errors import PhoneError
from softphone.tui.screens.main_messages import Inbox
from softphone.tui.screens.main_presence import PresenceWatch
from softphone.tui.screens.main_voicemail import LocalVoicemail
from softphone.tui.widgets.calls_table import CallsTable
from softphone.tui.widgets.dial_bar import DialBar
from softphone.tui.widgets.messages_log import Level, MessagesLog
from softphone.tui.widgets.quality import QualityPanel
from softphone.tui.widgets.side_pane import PlayerFactory, SidePane
from softphone.tui.widgets.status_bar import StatusBar

__all__ = ["AppDeps", "AppShell", "MainBase"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppDeps:
    """What the app is built from (``make_app``'s arguments)."""

    config: Config
    phone: PhoneApi
    book: Book | None
    book_problem: str | None
    config_path: Path | None
    player_factory: PlayerFactory
    clock: Callable[[], float]
    mono_clock: Callable[[], float] | None
    dial_on_start: str | None
    play_on_start: str | None
    first_run: bool


class AppShell(Protocol):
    """What the main screen needs of the app around it (tui/app.py's ``SoftphoneApp``)."""

    config: Config

    async def action_quit(self) -> None: ...


class MainBase(Screen[None]):
    """The main screen's widgets, state and reporting (the layers above add the rest)."""

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps
        self.phone = deps.phone
        self.book = deps.book
        self.call_log: CallLog | None = None  # the history as calls happen (with a book)
        self.inbox = Inbox(self, clock=deps.clock, config=self._config)  # instant messages
        self.presence = PresenceWatch(self)  # lamps, our presence, voicemail
        self.voicemail = LocalVoicemail(self)  # the answering machine's messages

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        yield StatusBar(clock=self.deps.clock, id="status")
        yield DialBar(self.book, lamp_of=self.presence.lamp_of, id="dial")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield CallsTable(id="calls")
                yield QualityPanel(id="quality")
                yield MessagesLog(clock=self.deps.clock, id="messages")
            yield SidePane(self.deps.player_factory, config=self._config, id="side")
        yield Footer()

    @property
    def dial_bar(self) -> DialBar:
        return self.query_one(DialBar)

    @property
    def calls_table(self) -> CallsTable:
        return self.query_one(CallsTable)

    @property
    def quality(self) -> QualityPanel:
        return self.query_one(QualityPanel)

    @property
    def messages(self) -> MessagesLog:
        return self.query_one(MessagesLog)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def side(self) -> SidePane:
        return self.query_one(SidePane)

    def _config(self) -> Config:
        """The config as it is now (the settings screen and a saved camera change it)."""
        return cast(AppShell, self.app).config

    def mono(self) -> float:
        """The clock CallView.started_at/established_at are on (the event loop's by default)."""
        if self.deps.mono_clock is not None:
            return self.deps.mono_clock()
        return asyncio.get_running_loop().time()

    def _refresh_status(self) -> None:
        self.status.forwarding = {
            a.name: summary
            for a in self._config().accounts
            if (summary := a.forwarding.summary()) is not None
        }
        self.status.show(self.phone.registrations)

    # ------------------------------------------------------------------ reporting
    def tell(self, text: str, level: Level = "info", *, notify: bool = True) -> None:
        """A line in the messages area; warnings and errors are notifications too."""
        self.messages.say(text, level)
        if notify and level != "info":
            self.app.notify(text, severity="error" if level == "error" else "warning")

    async def _guard(self, action: Awaitable[object], what: str) -> None:
        try:
            await action
        except PhoneError as exc:
            self.tell(f"{what}: {exc}", "error")

    def _act(self, action: Awaitable[object], what: str) -> None:
        self.run_worker(self._guard(action, what), group="actions")
