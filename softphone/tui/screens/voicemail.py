"""The answering machine's messages (phone/answering_machine.py), newest first: ``p`` plays one
on the sound device and marks it heard, ``h`` marks it heard or not, Delete removes it and its
file (after a yes/no), Enter calls the caller back. The unheard ones are in bold and counted in
the status bar's message-waiting indicator, beside the provider's voicemail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, StoreError, VoicemailRecord
from softphone.phone.voicemail_log import delete_message
from softphone.tui.screens.history import format_duration, format_when
from softphone.tui.screens.playback import Playback
from softphone.tui.screens.searchable import WRITE_GROUP, Cell, SearchableTableScreen

__all__ = ["VoicemailScreen"]

_CHROME: Final = 4


def _local_now() -> datetime:
    return datetime.now().astimezone()


class VoicemailScreen(SearchableTableScreen[VoicemailRecord]):
    """The messages; dismisses with the URI to call back, or None. ``on_change`` hears that a
    message was heard, unheard or deleted (the unheard count moved)."""

    NAME = "voicemail"
    TITLE_TEXT = "Voicemail"
    SEARCH_HINT = "/ to search by caller"
    READ_FAILED = "Cannot read the voicemail"
    DELETE_FAILED = "Cannot delete the message"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("slash", "focus_search", "Search", show=True),
        Binding("p", "play", "Play", show=True),
        Binding("x", "stop", "Stop", show=True),
        Binding("h", "toggle_heard", "Heard", show=True),
        Binding("delete", "delete", "Delete", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Enter", "call the caller back"),
        ("p", "play the message (marks it heard); p again or x stops"),
        ("h", "mark the message heard / not heard"),
        ("Delete", "delete the message and its file (asks first)"),
        ("/", "search by caller"),
        ("Escape", "back"),
    )

    def __init__(
        self,
        book: Book,
        phone: PhoneApi,
        *,
        on_change: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] = _local_now,
    ) -> None:
        super().__init__()
        self.book = book
        self.phone = phone
        self.on_change = on_change
        self._now = now
        self.playback = Playback(phone, self.notify)

    @property
    def messages(self) -> list[VoicemailRecord]:
        return self.rows

    def add_columns(self, table: DataTable[Cell], screen_width: int) -> None:
        fixed = (("When", "when", 16), ("Length", "length", 7), ("", "state", 9))
        used = sum(w for *_, w in fixed) + 2 * (len(fixed) + 2)
        for label, key, width in fixed[:1]:
            table.add_column(label, key=key, width=width)
        table.add_column("Caller", key="caller", width=max(16, screen_width - used - _CHROME))
        for label, key, width in fixed[1:]:
            table.add_column(label, key=key, width=width)

    def cells(self, row: VoicemailRecord) -> tuple[Cell, ...]:
        who = f"{row.caller_name} <{row.caller_uri}>" if row.caller_name else row.caller_uri
        state = "recording" if row.recording else ("" if row.heard else "new")
        style = Style(bold=not row.heard)
        return (
            format_when(row.received_at, self._now()),
            Text(who, style=style, no_wrap=True, overflow="ellipsis"),
            format_duration(row.duration_s),
            Text(state, style=style),
        )

    def key(self, row: VoicemailRecord) -> str:
        return str(row.id)

    async def fetch(self, query: str, offset: int) -> list[VoicemailRecord]:
        found = await self.book.voicemails.list_async()
        text = query.casefold()
        return [m for m in found if text in f"{m.caller_name or ''} {m.caller_uri}".casefold()]

    def empty_text(self, query: str) -> str:
        return f"No messages match “{query}”" if query else "No messages on the answering machine"

    def chosen(self, row: VoicemailRecord) -> str | None:
        return row.caller_uri

    def delete_question(self, row: VoicemailRecord) -> str | None:
        if row.id is None:
            return None
        who = row.caller_name or row.caller_uri
        return f"Delete the message from {who} ({format_when(row.received_at, self._now())})?"

    async def delete(self, row: VoicemailRecord) -> None:
        assert row.id is not None
        try:
            await asyncio.to_thread(delete_message, self.book.voicemails, row.id)
        except OSError as exc:
            raise StoreError(f"cannot delete {row.path}: {exc.strerror or exc}") from None
        self.on_change()

    # -- actions ------------------------------------------------------------------------------

    def action_play(self) -> None:
        if self.playing is not None:
            self.action_stop()
            return
        message = self.selected()
        if message is not None:
            self._play(message)

    @work(exclusive=True, group="voicemail-play")
    async def _play(self, message: VoicemailRecord) -> None:
        path = Path(message.path)
        if not await self.playback.present(path, f"the message's file {path} is gone"):
            return
        if not message.heard:
            await self._set_heard(message, True)
        await self.playback.play(
            path, f"Playing the message from {message.caller_name or message.caller_uri}"
        )

    @property
    def playing(self) -> Path | None:
        return self.playback.playing

    def action_stop(self) -> None:
        self.playback.stop()

    def action_toggle_heard(self) -> None:
        message = self.selected()
        if message is not None:
            self._toggle(message)

    @work(group=WRITE_GROUP)
    async def _toggle(self, message: VoicemailRecord) -> None:
        await self._set_heard(message, not message.heard)

    async def _set_heard(self, message: VoicemailRecord, heard: bool) -> None:
        assert message.id is not None
        try:
            await asyncio.to_thread(self.book.voicemails.mark_heard, message.id, heard)
        except StoreError as exc:
            self.notify(f"Cannot mark the message: {exc}", severity="error")
            return
        cursor = self.table.cursor_row
        self.rows = [replace(m, heard=heard) if m.id == message.id else m for m in self.rows]
        self.render_rows(cursor)
        self.on_change()
