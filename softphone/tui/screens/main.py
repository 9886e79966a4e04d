"""The main screen: status bar, dial bar, the calls, the quality panel, the messages area and
the video side pane.

Layout (``styles/global.tcss``): status bar (one entry per account), dial bar (focused at start),
then the calls list, the quality panel and the messages area on the left, the video side pane on
the right. Under 100 columns the pane is hidden unless toggled on (``V``); then it takes the
quality panel's place. The pane plays one stream at a time (widgets/side_pane.py): ``x`` stops
it, a hidden pane decodes no video, and a camera's 401 brings up the login prompt
(screens/login.py); a login that works may be saved as a camera in the config, the way the
settings screen saves it.

The main screen's keys (screens/main_actions.py) live on :class:`MainScreen`, so they are
inactive (and not in the footer) while another screen is on top. Every action is also a command
in the palette (ctrl+p). Phone actions run in workers; a ``PhoneError`` becomes a line in the
messages area and a notification, never a traceback. Call waiting: a second incoming call while
a call is up gets a notification and the row's ``waiting`` flag, not the modal (it would steal
the keys of the call in progress).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Protocol, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Key, Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input

from softphone.config import Camera, Config, ConfigError, save_config
from softphone.phone import events as pe
from softphone.phone.api import CallView, PhoneApi
from softphone.phone.book import Book, StoreError
from softphone.phone.call_log import CallLog
from softphone.phone.errors import PhoneError
from softphone.phone.text import describe
from softphone.tui.bridge import start_bridge
from softphone.tui.messages import PhoneEventReceived
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.incoming import IncomingChoice, IncomingScreen
from softphone.tui.screens.login import LoginAnswer, LoginScreen
from softphone.tui.screens.main_actions import ACTIONS, MAIN_HELP, help_sections
from softphone.tui.screens.main_messages import Inbox
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.widgets.calls_table import CallRow, CallsTable
from softphone.tui.widgets.dial_bar import DialBar
from softphone.tui.widgets.messages_log import Level, MessagesLog
from softphone.tui.widgets.quality import QualityHistory, QualityPanel
from softphone.tui.widgets.side_pane import PlayerFactory, SidePane
from softphone.tui.widgets.status_bar import StatusBar

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from softphone.phone.devices import DeviceService

__all__ = ["AppDeps", "AppShell", "CallNotes", "MainScreen"]

NARROW_COLUMNS: Final = 100
PANE_WIDTHS: Final = ("40%", "55%", "70%")
DTMF_KEYS: Final = frozenset("0123456789*#")
AUDIO_STATES: Final = frozenset({"established", "held"})
PaneMode = Literal["auto", "on", "off"]


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


@dataclass(slots=True)
class CallNotes:
    """What the screen knows about calls beyond the CallView."""

    names: dict[str, str] = field(default_factory=dict)  # remote URI -> contact name
    looked_up: set[str] = field(default_factory=set)
    recording: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    quality: dict[str, QualityHistory] = field(default_factory=dict)


class AppShell(Protocol):
    """What the main screen needs of the app around it (tui/app.py's ``SoftphoneApp``)."""

    config: Config

    async def action_quit(self) -> None: ...


class MainScreen(Screen[None]):
    """Status bar, dial bar, calls, quality, messages and the side pane."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(a.keys, a.name, a.label, show=a.show) for a in ACTIONS
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = MAIN_HELP

    def __init__(self, deps: AppDeps) -> None:
        super().__init__()
        self.deps = deps
        self.phone = deps.phone
        self.book = deps.book
        self.notes = CallNotes()
        self.pane_mode: PaneMode = "auto"
        self.pane_width = 0
        self.narrow = False
        self._levels_timer: Timer | None = None
        self._incoming: IncomingScreen | None = None
        self.call_log: CallLog | None = None
        self.inbox = Inbox(self, clock=deps.clock, config=self._config)  # instant messages

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        yield StatusBar(clock=self.deps.clock, id="status")
        yield DialBar(self.book, id="dial")
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

    def on_mount(self) -> None:
        self.dial_bar.focus()
        if self.book is not None:
            self.call_log = CallLog(
                self.book.history,
                mono=self.mono,
                on_error=lambda text: self.tell(text, "warning"),
            )
        self.inbox.start()
        start_bridge(self, self.phone)
        self.set_interval(1.0, self._tick, name="call-timers")
        self._levels_timer = self.set_interval(0.1, self._poll_levels, name="levels", pause=True)
        if self.deps.book_problem is not None:
            self.tell(
                f"history and contacts are not available: {self.deps.book_problem}", "warning"
            )
        elif self.book is not None and self.book.recovered is not None:
            self.tell(
                f"the history database was damaged and moved aside: {self.book.recovered}",
                "warning",
            )
        self._start_phone()

    def _config(self) -> Config:
        """The config as it is now (the settings screen and a saved camera change it)."""
        return cast(AppShell, self.app).config

    def mono(self) -> float:
        """The clock CallView.started_at/established_at are on (the event loop's by default)."""
        if self.deps.mono_clock is not None:
            return self.deps.mono_clock()
        return asyncio.get_running_loop().time()

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

    # ------------------------------------------------------------------ start
    @work(exclusive=True, group="start")
    async def _start_phone(self) -> None:
        try:
            await self.phone.start()
        except (PhoneError, OSError) as exc:
            self.tell(f"the phone could not start: {exc}", "error")
            return
        self._refresh_status()
        if self.deps.play_on_start:
            self.open_stream(self.deps.play_on_start)
        if self.deps.dial_on_start:
            self.dial(self.deps.dial_on_start)
        if self.deps.first_run:
            self.action_settings(first_run=True)

    # ------------------------------------------------------------------ phone events
    @on(PhoneEventReceived)
    def _on_phone_event(self, message: PhoneEventReceived) -> None:
        event = message.event
        if self.call_log is not None:
            self.call_log.observe(event, self.phone.call)
        self.inbox.observe(event)
        match event:
            case pe.Registering() | pe.Registered() | pe.Unregistered():
                self._refresh_status()
            case pe.NoAnswerYet():  # why "registering" or "calling" takes this long
                self._refresh_status()
                self.tell(describe(event), "warning", notify=False)
            case pe.RegistrationFailed(account=account):
                self.status.failure_seen(account)
                self._refresh_status()
                self.tell(describe(event), "warning")
            case pe.IncomingCall():
                self._incoming_call(event)
            case pe.CallStateChanged(call_id=call_id, state=state):
                self._call_state(call_id, state)
            case pe.CallEnded(call_id=call_id):
                self.notes.recording.discard(call_id)
                self.notes.waiting.discard(call_id)
                # What we did (hung up, cancelled, rejected) or a missed call is a line; a call
                # of ours that failed is a warning too.
                ok = event.outcome in ("answered", "cancelled", "missed", "rejected")
                self.tell(describe(event), "info" if ok else "warning", notify=not ok)
                self._refresh_calls()
            case pe.CallStats(call_id=call_id, stats=stats):
                self.notes.quality.setdefault(call_id, QualityHistory()).add(stats)
                self._refresh_quality()
            case pe.MuteChanged():
                self._refresh_calls()
            case pe.RecordingChanged(call_id=call_id, path=path):
                if path is None:
                    self.notes.recording.discard(call_id)
                    self.tell("recording stopped")
                else:
                    self.notes.recording.add(call_id)
                    self.tell(f"recording to {path}")
                self._refresh_calls()
            case pe.Notice(level=level, text=text):
                self.tell(text, level)
            case pe.TransferProgressed() | pe.DtmfReceived():
                self.tell(describe(event))
            case _:
                # PhoneEvent is an open family (the player adds its own events): Listening and
                # the stream events need no line here.
                pass

    def _refresh_status(self) -> None:
        self.status.show(self.phone.registrations)

    def _call_state(self, call_id: str, state: str) -> None:
        incoming = self._incoming
        if incoming is not None and incoming.call_id == call_id and state != "ringing":
            incoming.call_gone()
            self._incoming = None
        if state != "ringing":
            self.notes.waiting.discard(call_id)
        known = call_id in self.calls_table.call_ids
        self._refresh_calls()
        if not known and state == "calling":
            self.calls_table.select_call(call_id)  # a call we just made becomes the selection

    @work(group="incoming")
    async def _incoming_call(self, event: pe.IncomingCall) -> None:
        contact = None
        if self.book is not None:
            try:
                contact = await self.book.contacts.find_by_uri_async(event.remote)
            except StoreError as exc:
                self.tell(f"contacts: {exc}", "warning", notify=False)
        caller = contact.name if contact else (event.display_name or event.remote)
        if contact is not None:
            self.notes.names[event.remote] = contact.name
            self.notes.looked_up.add(event.remote)
        if contact is not None and contact.rtsp_url:
            self.tell(f"opening {contact.name}'s stream")
            if self.narrow and not self.pane_visible:
                self.pane_mode = "on"
            self.open_stream(contact.rtsp_url)
        try:
            still_ringing = self.phone.call(event.call_id).state == "ringing"
        except PhoneError:
            still_ringing = False
        self._refresh_calls()
        if not still_ringing:
            return
        if event.waiting or self._incoming is not None:
            self.notes.waiting.add(event.call_id)
            self._refresh_calls()
            self.tell(f"call waiting: {caller} — select it and press a", "warning")
            return
        who = caller if caller == event.remote else f"{caller} <{event.remote}>"
        self.tell(f"incoming call from {who}", notify=False)
        modal = IncomingScreen(
            self.phone, event.call_id, caller=caller, uri=event.remote, account=event.account
        )
        self._incoming = modal
        self.app.push_screen(modal, partial(self._incoming_chosen, event.call_id))

    def _incoming_chosen(self, call_id: str, choice: IncomingChoice | None) -> None:
        self._incoming = None
        self.calls_table.select_call(call_id)
        if choice == "answer":
            self._act(self.phone.answer(call_id), "answer")
        elif choice == "reject":
            self._act(self.phone.reject(call_id), "reject")

    # ------------------------------------------------------------------ calls list and quality
    def live_calls(self) -> list[CallView]:
        return [c for c in self.phone.calls if c.state != "ended"]

    def _refresh_calls(self) -> None:
        rows: list[CallRow] = []
        now = self.mono()
        for call in self.live_calls():
            if call.remote not in self.notes.looked_up:
                self.notes.looked_up.add(call.remote)
                self._look_up_name(call.remote)
            flags = []
            if call.local_hold:
                flags.append("held")
            if call.remote_hold:
                flags.append("held-by-peer")
            if call.muted:
                flags.append("muted")
            if call.call_id in self.notes.recording:
                flags.append("rec")
            if call.call_id in self.notes.waiting:
                flags.append("waiting")
            name = self.notes.names.get(call.remote) or call.display_name or call.remote
            talk = None if call.established_at is None else now - call.established_at
            rows.append(
                CallRow(
                    call_id=call.call_id,
                    direction=call.direction,
                    remote=name,
                    state=call.state,
                    talk_s=talk,
                    codec=call.codec,
                    flags=tuple(flags),
                )
            )
        self.calls_table.show_rows(rows)
        self._refresh_quality()
        if self._levels_timer is not None:
            if any(c.state in AUDIO_STATES for c in self.live_calls()):
                self._levels_timer.resume()
            else:
                self._levels_timer.pause()
                self.quality.show_levels(None)

    @work(group="names")
    async def _look_up_name(self, uri: str) -> None:
        if self.book is None:
            return
        try:
            contact = await self.book.contacts.find_by_uri_async(uri)
        except StoreError:
            return
        if contact is not None:
            self.notes.names[uri] = contact.name
            self._refresh_calls()

    def _refresh_quality(self) -> None:
        call_id = self.calls_table.selected_call_id
        if call_id is None:
            self.quality.show(None)
            return
        history = self.notes.quality.get(call_id)
        if history is None:
            try:
                stats = self.phone.call_stats(call_id)
            except Exception:  # statistics are a nicety: a bug there must not end the app
                logger.exception("call_stats(%s) failed", call_id)
                stats = None
            if stats is not None:
                history = self.notes.quality[call_id] = QualityHistory()
                history.add(stats)
        try:
            title = self.notes.names.get(self.phone.call(call_id).remote) or ""
        except PhoneError:
            title = ""
        self.quality.show(history or QualityHistory(), title=title)  # selected: no stats yet

    @on(DataTable.RowHighlighted, "#calls")
    def _row_highlighted(self) -> None:
        self._refresh_quality()
        self._poll_levels()

    def _tick(self) -> None:
        self._refresh_calls()
        self._refresh_status()

    def _poll_levels(self) -> None:
        call_id = self.calls_table.selected_call_id
        levels = None
        if call_id is not None:
            try:
                levels = self.phone.levels(call_id)
            except Exception:  # meters are a nicety: a bug there must not end the app
                logger.exception("levels(%s) failed", call_id)
                levels = None
        self.quality.show_levels(levels)

    def selected_call(self) -> CallView | None:
        call_id = self.calls_table.selected_call_id
        if call_id is None:
            return None
        try:
            return self.phone.call(call_id)
        except PhoneError:
            return None

    def _need_call(self) -> CallView | None:
        call = self.selected_call()
        if call is None:
            self.app.notify("No call selected.", severity="warning")
        return call

    # ------------------------------------------------------------------ dialling
    @on(Input.Submitted, "#dial")
    def _dial_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dial(text)

    @on(DialBar.Left)
    def _dial_left(self) -> None:
        self.calls_table.focus()

    @work(group="dial")
    async def dial(self, text: str) -> None:
        target = text
        if self.book is not None and "@" not in text and ":" not in text:
            try:
                found = await self.book.contacts.search_async(text, limit=5)
            except StoreError as exc:
                self.tell(f"contacts: {exc}", "warning", notify=False)
                found = []
            for contact in found:
                if contact.name.casefold() == text.casefold():
                    target = contact.primary_uri
                    self.notes.names[target] = contact.name
                    break
        try:
            await self.phone.dial(target)
        except PhoneError as exc:
            self.tell(f"cannot call {text}: {exc}", "error")
            return
        self.dial_bar.value = ""
        if self.dial_bar.has_focus:
            self.calls_table.focus()

    # ------------------------------------------------------------------ actions on calls
    def action_focus_dial(self) -> None:
        self.dial_bar.focus()

    def action_answer(self) -> None:
        call = self.selected_call()
        if call is None or call.direction != "incoming" or call.state != "ringing":
            ringing = [
                c for c in self.live_calls() if c.direction == "incoming" and c.state == "ringing"
            ]
            if not ringing:
                self.app.notify("No call is ringing.", severity="warning")
                return
            call = ringing[-1]
        self._act(self.phone.answer(call.call_id), "answer")

    def action_hangup(self) -> None:
        call = self._need_call()
        if call is None:
            return
        if call.direction == "incoming" and call.state == "ringing":
            self._act(self.phone.reject(call.call_id), "reject")
        else:
            self._act(self.phone.hangup(call.call_id), "hang up")

    def action_toggle_hold(self) -> None:
        call = self._need_call()
        if call is None:
            return
        if call.local_hold:
            self._act(self.phone.resume(call.call_id), "resume")
        else:
            self._act(self.phone.hold(call.call_id), "hold")

    def action_toggle_mute(self) -> None:
        call = self._need_call()
        if call is None:
            return
        try:
            self.phone.mute(call.call_id, not call.muted)
        except PhoneError as exc:
            self.tell(f"mute: {exc}", "error")

    def action_toggle_record(self) -> None:
        call = self._need_call()
        if call is None:
            return
        try:
            self.phone.record(call.call_id, call.call_id not in self.notes.recording)
        except PhoneError as exc:
            self.tell(f"record: {exc}", "error")

    def action_transfer(self) -> None:
        call = self._need_call()
        if call is None:
            return
        call_id = call.call_id

        def chosen(target: str | None) -> None:
            if target:
                self.tell(f"transferring to {target}")
                self._act(self.phone.transfer(call_id, target), "transfer")

        self.app.push_screen(
            PromptScreen("Transfer the call to", placeholder="sip:carol@example.com or a number"),
            chosen,
        )

    def on_key(self, event: Key) -> None:
        """Digits, * and # send DTMF in the selected call while the dial bar is not focused."""
        if event.character is None or event.character not in DTMF_KEYS:
            return
        if isinstance(self.focused, Input):
            return
        call = self.selected_call()
        if call is None or call.state not in AUDIO_STATES:
            return
        event.stop()
        self._act(self._send_dtmf(call.call_id, event.character), "DTMF")

    async def _send_dtmf(self, call_id: str, digit: str) -> None:
        method = await self.phone.send_dtmf(call_id, digit)
        self.tell(f"DTMF {digit} sent ({method})")

    # ------------------------------------------------------------------ other screens
    def action_trace(self) -> None:
        call = self._need_call()
        if call is None:
            return
        from softphone.tui.screens.trace import TraceScreen

        self.app.push_screen(TraceScreen(self.phone, call.call_id))

    def action_flows(self) -> None:
        from softphone.tui.screens.flows import FlowsScreen

        self.app.push_screen(FlowsScreen(self.phone))

    def action_history(self) -> None:
        if self.book is None:
            self.app.notify("The history is not available.", severity="warning")
            return
        from softphone.tui.screens.history import HistoryScreen

        screen = HistoryScreen(self.book, self.phone, open_chat=self.inbox.open_text)
        self.app.push_screen(screen, self._call_back)

    def action_contacts(self) -> None:
        if self.book is None:
            self.app.notify("The contacts are not available.", severity="warning")
            return
        from softphone.tui.screens.contacts import ContactsScreen

        domain = None
        accounts = cast(AppShell, self.app).config.accounts  # as last saved in the settings
        if accounts:
            domain = accounts[0].domain
        screen = ContactsScreen(self.book, phone_domain=domain, open_chat=self.inbox.open_contact)
        self.app.push_screen(screen, self._call_back)

    def action_message(self) -> None:
        self.inbox.pick()

    def action_reply(self) -> None:
        self.inbox.reply()

    def _call_back(self, uri: str | None) -> None:
        if uri:
            self.dial(uri)

    def action_settings(self, first_run: bool = False) -> None:
        from softphone.tui.screens.settings import SettingsScreen

        app = cast(AppShell, self.app)
        path = self.deps.config_path or app.config.path
        if path is None:
            from softphone.config import default_config_path

            path = default_config_path()
        devices: DeviceService | None = None
        screen = SettingsScreen(
            app.config, path=path, first_run=first_run, devices=devices, on_saved=self.use_config
        )
        self.app.push_screen(screen, self._settings_closed)

    def _settings_closed(self, config: Config | None) -> None:
        if config is not None and config != cast(AppShell, self.app).config:
            self.use_config(config)

    def use_config(self, config: Config) -> None:
        """A saved config: its accounts apply now; say what waits for a restart."""
        from softphone.tui.screens.settings import needs_restart

        app = cast(AppShell, self.app)
        later = needs_restart(app.config, config)
        app.config = config
        self._act(self._apply_accounts(config), "the accounts could not be applied")
        if later:
            self.tell(f"settings saved; {', '.join(later)} apply after a restart", "warning")

    async def _apply_accounts(self, config: Config) -> None:
        await self.phone.apply_accounts(config.accounts)
        self._refresh_status()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_sections()))

    def action_quit(self) -> None:
        # A worker, not an await: while the app hangs up, this screen goes on taking the phone's
        # events, so the calls that end reach the history before the app leaves.
        self.run_worker(cast(AppShell, self.app).action_quit(), group="quit", exclusive=True)

    async def settle_history(self, timeout_s: float = 2.0) -> None:
        """Let the calls the phone just hung up reach the history (the app is quitting)."""
        if self.call_log is not None and not await self.call_log.settle(timeout_s):
            logger.warning("quitting before every call was written to the history")
        await self.inbox.settle(timeout_s)

    # ------------------------------------------------------------------ side pane
    @property
    def pane_visible(self) -> bool:
        return self.pane_mode == "on" or (self.pane_mode == "auto" and not self.narrow)

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < NARROW_COLUMNS
        self._layout_pane()

    def _layout_pane(self) -> None:
        visible = self.pane_visible
        self.side.display = visible
        self.side.set_shown(visible)
        self.side.styles.width = "50%" if self.narrow else PANE_WIDTHS[self.pane_width]
        self.quality.display = not (self.narrow and visible)

    def action_toggle_pane(self) -> None:
        self.pane_mode = "off" if self.pane_visible else "on"
        self._layout_pane()

    def action_enlarge_pane(self) -> None:
        self.pane_width = (self.pane_width + 1) % len(PANE_WIDTHS)
        if not self.pane_visible:
            self.pane_mode = "on"
        self._layout_pane()

    def action_open_stream(self) -> None:
        def chosen(url: str | None) -> None:
            if url:
                self.open_stream(url)

        self.app.push_screen(
            PromptScreen(
                "Open a stream in the side pane",
                placeholder="rtsp://camera.local/stream or a camera name",
            ),
            chosen,
        )

    def open_stream(
        self, text: str, login: tuple[str, str] | None = None, *, save: Camera | None = None
    ) -> None:
        """Play ``text`` (a URL or a camera's name) in the pane, shown if it was hidden; what
        goes wrong comes back as ``SidePane.Said``; ``save`` comes back as ``LoginWorked`` once
        the stream plays with ``login``."""
        self.side.open(text, login, save=save)
        if not self.pane_visible:
            self.pane_mode = "on"
        self._layout_pane()

    def action_stop_stream(self) -> None:
        if self.side.player is None:
            self.app.notify("No stream is playing.", severity="warning")
            return
        self.side.stop()

    @on(SidePane.Said)
    def _pane_said(self, message: SidePane.Said) -> None:
        self.tell(message.text, message.level, notify=message.level == "error")

    @on(SidePane.LoginWanted)
    def _pane_wants_login(self, message: SidePane.LoginWanted) -> None:
        self.tell(f"{message.title} asks for a login: {message.reason}", "warning", notify=False)
        text, url = message.text, message.url

        def answered(answer: LoginAnswer | None) -> None:
            if answer is None:
                self.side.login_cancelled()
                return
            save = None
            if answer.save_as is not None:
                save = Camera(answer.save_as, url, answer.username, answer.password)
            self.open_stream(text, (answer.username, answer.password), save=save)

        self.app.push_screen(
            LoginScreen(message.title, reason=message.reason, camera_name=message.camera_name),
            answered,
        )

    @on(SidePane.LoginWorked)
    def _login_worked(self, message: SidePane.LoginWorked) -> None:
        self._save_camera(message.camera)

    @work(group="config")
    async def _save_camera(self, camera: Camera) -> None:
        """Add the camera to the config (or replace the one of that name) and save it the way
        the settings screen does: atomically, mode 0600."""
        app = cast(AppShell, self.app)
        config = app.config.with_camera(camera)
        path = self.deps.config_path or config.path
        if path is None:
            from softphone.config import default_config_path

            path = default_config_path()
        try:
            await asyncio.to_thread(save_config, config, path)
        except (OSError, ConfigError) as exc:
            self.tell(f"the camera could not be saved in {path}: {exc}", "error")
            return
        app.config = config
        self.tell(f"camera {camera.name} saved in {path}")
