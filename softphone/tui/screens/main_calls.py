"""The main screen's calls: an incoming call (the modal, a contact's name and a door station's
camera, call waiting), the dial bar, the calls list with the quality panel beside it, and the
keys that act on the selected call (answer, hang up, hold, mute, record, video, transfer,
conference, DTMF), and the selected call's video drawn in the side pane.

Call waiting: a second incoming call while a call is up gets a notification and the row's
``waiting`` flag, not the modal (it would steal the keys of the call in progress).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from textual import on, work
from textual.events import Key
from textual.timer import Timer
from textual.widgets import DataTable, Input

from softphone.phone import events as pe
from softphone.phone.api import CallView
from softphone.phone.book import StoreError
from softphone.phone.errors import PhoneError
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.incoming import IncomingChoice, IncomingScreen
from softphone.tui.screens.main_base import AppDeps
from softphone.tui.screens.main_pane import MainWithPane
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.widgets.calls_table import CallRow
from softphone.tui.widgets.dial_bar import DialBar
from softphone.tui.widgets.quality import LOCK, QualityHistory, lock_text

logger = logging.getLogger(__name__)

__all__ = ["AUDIO_STATES", "CALL_VIDEO_FPS", "CallNotes", "MainWithCalls"]

DTMF_KEYS: Final = frozenset("0123456789*#")
AUDIO_STATES: Final = frozenset({"established", "held"})
CALL_VIDEO_FPS: Final = 15  # how often the side pane takes a call's newest picture


@dataclass(slots=True)
class CallNotes:
    """What the screen knows about calls beyond the CallView."""

    names: dict[str, str] = field(default_factory=dict)  # remote URI -> contact name
    looked_up: set[str] = field(default_factory=set)
    recording: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    quality: dict[str, QualityHistory] = field(default_factory=dict)
    # The video's status line per call: our source gone, the far end's picture broken.
    source_lost: dict[str, str] = field(default_factory=dict)
    picture_broken: dict[str, str] = field(default_factory=dict)

    def video_note(self, call_id: str) -> str:
        notes = (self.picture_broken.get(call_id), self.source_lost.get(call_id))
        return " · ".join(note for note in notes if note)

    def forget(self, call_id: str) -> None:
        self.source_lost.pop(call_id, None)
        self.picture_broken.pop(call_id, None)


class MainWithCalls(MainWithPane):
    """The main screen with its calls: incoming, dialled, listed and acted on."""

    def __init__(self, deps: AppDeps) -> None:
        super().__init__(deps)
        self.notes = CallNotes()
        self._levels_timer: Timer | None = None
        self._incoming: IncomingScreen | None = None
        self._conference_key = False  # two calls are up: the conference key is in the footer

    # ------------------------------------------------------------------ incoming calls
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
            if call.conference:
                flags.append("conf")
            if call.muted:
                flags.append("muted")
            if call.call_id in self.notes.recording:
                flags.append("rec")
            if call.call_id in self.notes.waiting:
                flags.append("waiting")
            if call.encryption != "none":  # SRTP: the lock, as browsers show one
                flags.insert(0, LOCK)
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
        conference_key = sum(c.state in AUDIO_STATES for c in self.live_calls()) >= 2
        if conference_key != self._conference_key:
            self._conference_key = conference_key
            self.refresh_bindings()  # the footer shows "Conf" only when it can act
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
            call = self.phone.call(call_id)
            title = self.notes.names.get(call.remote) or ""
            lock = lock_text(call.encryption, call.srtp_suite)
        except PhoneError:
            title = lock = ""
        self.quality.show(history or QualityHistory(), title=title, lock=lock)

    @on(DataTable.RowHighlighted, "#calls")
    def _row_highlighted(self) -> None:
        self._refresh_quality()
        self._poll_levels()

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

    def action_toggle_video(self) -> None:
        call = self._need_call()
        if call is None:
            return
        on = not call.has_video
        self.tell("asking for video" if on else "taking video away")
        self._act(self.phone.set_video(call.call_id, on), "video")

    def _draw_call_video(self) -> None:
        """The selected call's video in the side pane (the far end, our self-view in a corner)."""
        call = self.selected_call()
        rgb = None
        if call is not None and call.has_video and call.state in AUDIO_STATES:
            width, height = self.side.call_video_box
            try:
                rgb = self.phone.video_picture(call.call_id, width, height)
            except PhoneError:
                rgb = None
        title = (self.notes.names.get(call.remote) or call.remote) if call is not None else ""
        note = self.notes.video_note(call.call_id) if call is not None else ""
        self.side.show_call_video(rgb, title, note)

    def action_toggle_record(self) -> None:
        call = self._need_call()
        if call is None:
            return
        try:
            self.phone.record(call.call_id, call.call_id not in self.notes.recording)
        except PhoneError as exc:
            self.tell(f"record: {exc}", "error")

    def action_transfer(self) -> None:
        """With one other call up, offer the attended transfer to it first (RFC 5589 §7: the
        selected call's peer is connected with the other call's peer, and we leave both);
        otherwise, or on "no", ask for a target for a blind transfer."""
        call = self._need_call()
        if call is None:
            return
        call_id = call.call_id

        def chosen(target: str | None) -> None:
            if target:
                self.tell(f"transferring to {target}")
                self._act(self.phone.transfer(call_id, target), "transfer")

        def ask_target() -> None:
            self.app.push_screen(
                PromptScreen(
                    "Transfer the call to", placeholder="sip:carol@example.com or a number"
                ),
                chosen,
            )

        others = [
            c
            for c in self.phone.calls
            if c.call_id != call_id and c.state in ("established", "held")
        ]
        if call.state not in ("established", "held") or len(others) != 1:
            ask_target()
            return
        other = others[0]

        def attended(yes: bool | None) -> None:
            if not yes:
                ask_target()
                return
            self.tell(f"transferring {call.remote} to {other.remote}")
            self._act(self.phone.attended_transfer(call_id, other.call_id), "transfer")

        self.app.push_screen(
            ConfirmDialog(
                f"Transfer {call.remote} to the other call, {other.remote}?"
                " (no: type a target instead)",
                confirm_label="Transfer",
            ),
            attended,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The conference key, like a desk phone's soft key, is there only with two calls up."""
        if action == "conference":
            return self._conference_key
        return super().check_action(action, parameters)

    def action_conference(self) -> None:
        """Like a desk phone's conference key: join the selected call with the other call that
        is up (held or not); in a conference, split it, keeping the selected call active."""
        call = self._need_call()
        if call is None:
            return
        if call.conference:
            self.tell("conference split")
            self._act(self.phone.split(call.call_id), "split")
            return
        others = [
            c
            for c in self.phone.calls
            if c.call_id != call.call_id and c.state in AUDIO_STATES and not c.conference
        ]
        others += [c for c in self.phone.calls if c.call_id != call.call_id and c.conference]
        if call.state not in AUDIO_STATES or not others:
            self.app.notify("A conference needs two calls that are up.", severity="warning")
            return
        self.tell(f"conference: {call.remote} with {others[0].remote}")
        self._act(self.phone.join(call.call_id, others[0].call_id), "conference")

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
