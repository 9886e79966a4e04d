"""The Textual application: the app shell around the main screen (tui/screens/main.py).

``make_app(config, phone, ...)`` builds a :class:`SoftphoneApp` around any
:class:`~softphone.phone.api.PhoneApi` (the real Phone, or ``FakePhone`` in tests);
``run_tui(config, ...)`` builds the real Phone, on a thread of its own (ThreadedPhone), and the
Book, and runs the app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.actions import SkipAction
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from softphone.config import Config
from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, StoreError
from softphone.phone.errors import PhoneError
from softphone.phone.gc_policy import IDLE_COLLECT_S, QuietCollector
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.main import AppDeps, MainScreen
from softphone.tui.screens.main_actions import ACTIONS, help_sections
from softphone.tui.widgets.side_pane import Login, PlayerFactory, PlayerLike

logger = logging.getLogger(__name__)

__all__ = ["SoftphoneApp", "default_player", "make_app", "run_tui"]


class SoftphoneApp(App[None]):
    """The softphone. ``main`` is the main screen (the default screen)."""

    TITLE = "softphone"
    CSS_PATH = "styles/global.tcss"
    ENABLE_COMMAND_PALETTE = True
    # F1 and ? open the help on every screen, modal ones too: those see only priority bindings
    # of the app. A text field keeps the ? typed into it (SkipAction passes the key on).
    # Tab and Shift+Tab move the focus before the next key is routed. Textual's own (screen)
    # binding acts only once the key has bubbled up from the focused widget, and keys already
    # waiting (typed ahead, or arriving in one read) go to the field being left meanwhile. A
    # widget that takes Tab itself (a TextArea that indents) keeps it.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", show=True, priority=True),
        Binding("question_mark", "help_unless_typing", "Help", show=False, priority=True),
        Binding("tab", "move_focus(True)", show=False, priority=True),
        Binding("shift+tab", "move_focus(False)", show=False, priority=True),
        Binding("f6", "protect_config", "Make the config private", show=False),
    ]

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps
        self.config = deps.config
        self.phone = deps.phone
        self.main = MainScreen(deps)
        self._stopping = False
        self.collector = QuietCollector()

    def get_default_screen(self) -> Screen[None]:
        return self.main

    def on_mount(self) -> None:
        # Full GC pauses would delay the audio pump (see phone/gc_policy.py): only when idle.
        self.collector.start(time.monotonic())
        self.set_interval(IDLE_COLLECT_S, self._collect_when_idle)
        self._warn_if_config_exposed()

    def _warn_if_config_exposed(self) -> None:
        """A config that others can read and that holds a password is read, never silently:
        say so, and offer the fix (F6, or the command palette), which the phone carries out."""
        try:
            warning = self.phone.config_warning()
        except PhoneError:
            return
        if warning is not None:
            self.notify(
                f"{warning}. Press F6 to make it private (0600).",
                title="Config readable by others",
                severity="warning",
                timeout=60,
            )

    def action_protect_config(self) -> None:
        try:
            if self.phone.config_warning() is None:
                self.notify("The config file is private already.")
                return
            self.phone.protect_config()
        except PhoneError as exc:
            self.notify(str(exc), title="Config mode", severity="error")
            return
        self.notify("The config file is now readable by you only (0600).")

    async def on_unmount(self) -> None:
        # Left without action_quit (the app ended by another way): the calls are hung up and
        # the accounts unregistered all the same, or the phone's thread would live on.
        if not self._stopping:
            self._stopping = True
            try:
                await self.phone.stop()
            except (PhoneError, OSError):
                pass  # leaving anyway
        self.collector.stop()

    def _collect_when_idle(self) -> None:
        try:
            self.collector.collect_if(
                lambda: all(c.state == "ended" for c in self.phone.calls), time.monotonic()
            )
        except PhoneError:
            pass

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Keys":  # our help screen (F1) lists every key of every screen
                yield command
        if self.phone.config_warning() is not None:
            yield SystemCommand(
                "Make the config private",
                "the config file holds a password and others can read it: chmod 600",
                self.action_protect_config,
            )
        if screen is self.main:
            for action in ACTIONS:
                if action.name == "quit":
                    continue  # the system commands have Quit (it runs our action_quit)
                yield SystemCommand(
                    action.label if action.label != "Rec" else "Record",
                    action.help,
                    partial(self.main.run_action, action.name),
                )

    def action_help_unless_typing(self) -> None:
        focused = self.screen.focused
        if focused is not None and focused.check_consume_key("question_mark", "?"):
            raise SkipAction()
        self.action_help()

    def action_move_focus(self, forward: bool) -> None:
        focused = self.screen.focused
        key = "tab" if forward else "shift+tab"
        if focused is not None and focused.check_consume_key(key, "\t" if forward else None):
            raise SkipAction()
        if forward:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()

    def action_help(self) -> None:
        """Every key of every screen, those of the screen on top first."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(help_sections(first=type(self.screen))))

    async def action_quit(self) -> None:
        """Stop the stream (TEARDOWN) and hang up every call (phone.stop), then leave."""
        if not self._stopping:
            self._stopping = True
            await self.main.side.stop_and_wait()
            try:
                await self.phone.stop()
            except (PhoneError, OSError):
                pass  # leaving anyway
            await self.main.settle_history()  # the calls just hung up, into the history
        self.exit()


def default_player(text: str, config: Config, login: Login | None) -> PlayerLike:
    """A player for the side pane: a URL or a ``[[camera]]`` name (with its credentials)."""
    from softphone.phone.player import player_for

    return player_for(text, config=config, login=login)


def make_app(
    config: Config,
    phone: PhoneApi,
    *,
    book: Book | None = None,
    config_path: Path | None = None,
    player_factory: PlayerFactory | None = None,
    clock: Callable[[], float] | None = None,
    mono_clock: Callable[[], float] | None = None,
    dial_on_start: str | None = None,
    play_on_start: str | None = None,
    first_run: bool = False,
    book_problem: str | None = None,
) -> SoftphoneApp:
    """The app around ``phone``. ``clock`` is the wall clock (time.time) for HH:MM; ``mono_clock``
    the one CallView times are on (default: the event loop's); tests pass fixed ones."""
    import time

    deps = AppDeps(
        config=config,
        phone=phone,
        book=book,
        book_problem=book_problem,
        config_path=config_path,
        player_factory=player_factory or default_player,
        clock=clock or time.time,
        mono_clock=mono_clock,
        dial_on_start=dial_on_start,
        play_on_start=play_on_start,
        first_run=first_run,
    )
    return SoftphoneApp(deps)


def run_tui(
    config: Config,
    *,
    dial: str | None = None,
    play: str | None = None,
    config_path: Path | None = None,
    first_run: bool = False,
    player_factory: PlayerFactory | None = None,
) -> int:
    """Build the real Phone and Book, run the app; returns 0."""
    from softphone.phone.phone import Phone
    from softphone.phone.threaded import ThreadedPhone

    # The phone (SIP, RTP and the audio pump) on its own thread: UI work never delays audio.
    phone = ThreadedPhone(Phone(config))
    book: Book | None = None
    problem: str | None = None
    try:
        book = Book.open()
    except StoreError as exc:
        problem = str(exc)
    try:
        make_app(
            config,
            phone,
            book=book,
            config_path=config_path,
            dial_on_start=dial,
            play_on_start=play,
            first_run=first_run,
            book_problem=problem,
            player_factory=player_factory,
        ).run()
    finally:
        if book is not None:
            book.close()
    return 0
