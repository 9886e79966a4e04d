"""The main screen: status bar, dial bar, the calls, the quality panel, the messages area and
the video side pane.

Layout (``styles/global.tcss``): status bar (one entry per account; our presence and the
voicemail waiting: screens/main_presence.py), dial bar (focused at start), then the calls list,
the quality panel and the messages area on the left, the video side pane on the right. Under 100 columns the pane is hidden unless toggled on (``V``); then it takes the
quality panel's place. The pane plays one stream at a time (widgets/side_pane.py): ``x`` stops
it, a hidden pane decodes no video, and a camera's 401 brings up the login prompt
(screens/login.py); a login that works may be saved as a camera in the config, the way the
settings screen saves it.

The main screen's keys (screens/main_actions.py) live on :class:`MainScreen`, so they are
inactive (and not in the footer) while another screen is on top. Every action is also a command
in the palette (ctrl+p). Phone actions run in workers; a ``PhoneError`` becomes a line in the
messages area and a notification, never a traceback.

The screen is built in layers, one module each, every one adding to the one below it:

- main_base.py: what the screen is built from and knows, its widgets, and how it reports;
- main_pane.py: the side pane's place, keys and requests (a line, a login, a camera to save);
- main_calls.py: incoming calls, the dial bar, the calls list and quality, the keys on a call;
- main_screens.py: the screens it opens (history, contacts, settings, ...) and quitting;
- this module: :class:`MainScreen` itself, its keys, start-up and the phone's events.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.binding import Binding, BindingType

from softphone.phone import events as pe
from softphone.phone.call_log import CallLog
from softphone.phone.errors import PhoneError
from softphone.phone.text import describe
from softphone.tui.bridge import start_bridge
from softphone.tui.messages import PhoneEventReceived
from softphone.tui.screens.main_actions import ACTIONS, MAIN_HELP
from softphone.tui.screens.main_base import AppDeps, AppShell
from softphone.tui.screens.main_calls import CALL_VIDEO_FPS, CallNotes
from softphone.tui.screens.main_screens import MainWithScreens
from softphone.tui.widgets.quality import QualityHistory

__all__ = ["AppDeps", "AppShell", "CallNotes", "MainScreen"]


class MainScreen(MainWithScreens):
    """Status bar, dial bar, calls, quality, messages and the side pane."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(a.keys, a.name, a.label, show=a.show) for a in ACTIONS
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = MAIN_HELP

    def on_mount(self) -> None:
        self.dial_bar.focus()
        if self.book is not None:
            self.call_log = CallLog(
                self.book.history,
                mono=self.mono,
                on_error=lambda text: self.tell(text, "warning"),
            )
        self.inbox.start()
        self.voicemail.start()
        start_bridge(self, self.phone)
        self.set_interval(1.0, self._tick, name="call-timers")
        self._levels_timer = self.set_interval(0.1, self._poll_levels, name="levels", pause=True)
        self.set_interval(1 / CALL_VIDEO_FPS, self._draw_call_video, name="call-video")
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

    # ------------------------------------------------------------------ start
    @work(exclusive=True, group="start")
    async def _start_phone(self) -> None:
        try:
            await self.phone.start()
        except (PhoneError, OSError) as exc:
            self.tell(f"the phone could not start: {exc}", "error")
            return
        self._refresh_status()
        self.presence.start()
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
        self.presence.observe(event)
        self.voicemail.observe(event)
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
                self.notes.forget(call_id)
                self.notes.recording.discard(call_id)
                self.notes.waiting.discard(call_id)
                # What we did (hung up, cancelled, rejected) or a missed call is a line; a call
                # of ours that failed is a warning too.
                ok = event.outcome in (
                    "answered",
                    "cancelled",
                    "missed",
                    "rejected",
                    "forwarded",
                    "voicemail",
                )
                self.tell(describe(event), "info" if ok else "warning", notify=not ok)
                self._refresh_calls()
            case pe.CallStats(call_id=call_id, stats=stats):
                self.notes.quality.setdefault(call_id, QualityHistory()).add(stats)
                self._refresh_quality()
            case pe.MuteChanged() | pe.ConferenceChanged():
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
            case pe.VideoSourceLost(call_id=call_id):
                self.notes.source_lost[call_id] = "our video stopped"
                self.tell(describe(event), "warning")
            case pe.VideoPictureChanged(call_id=call_id, broken=broken, reason=reason):
                if broken:  # the pane's status line says it while it lasts; no pop-up
                    self.notes.picture_broken[call_id] = f"picture broken: {reason}"
                else:
                    self.notes.picture_broken.pop(call_id, None)
                self.tell(describe(event), notify=False)
            case pe.TransferProgressed() | pe.DtmfReceived() | pe.EchoCancellationChanged():
                self.tell(describe(event))
            case _:
                # PhoneEvent is an open family (the player adds its own events): Listening and
                # the stream events need no line here.
                pass

    def _tick(self) -> None:
        self._refresh_calls()
        self._refresh_status()
