"""The call history screen: past calls newest first, searchable, call back, play a recording.

:class:`HistoryScreen` is a searchable table (screens/searchable.py) that pages through the
history: it dismisses with the remote URI of the row the user pressed Enter on (the app calls it
back) or with None (Escape); ``m`` opens the conversation with the selected party. Every sqlite
access goes through the ``*_async`` methods of
:class:`~softphone.phone.book.History` and :class:`~softphone.phone.book.Contacts` inside
exclusive workers, so a slow query never blocks the event loop and never overwrites the result
of a newer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, CallRecord, StoreError
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.playback import Playback
from softphone.tui.screens.searchable import WRITE_GROUP, Cell, SearchableTableScreen

__all__ = [
    "ConfirmDialog",
    "HistoryScreen",
    "format_duration",
    "format_when",
    "result_text",
]

PAGE_SIZE: Final = 200
SEARCH_LIMIT: Final = 500

# Result -> the theme variable its text is drawn in (looked up in the running theme).
_RESULT_COLOUR: Final[dict[str, str]] = {
    "answered": "text-success",
    "missed": "text-error",
    "rejected": "text-warning",
    "busy": "text-warning",
    "failed": "text-warning",
    "cancelled": "foreground-darken-1",
    "forwarded": "foreground-darken-1",
    "voicemail": "text-error",  # a call nobody here took, as a missed one
    "in_progress": "text-accent",
    "interrupted": "text-warning",
}
_ARROW: Final[dict[str, str]] = {"in": "← in", "out": "→ out"}
_CHROME: Final = 4  # the table's side margins and its vertical scrollbar


def result_text(row: CallRecord) -> str:
    """The result as the list shows it; a forwarded call says where to, a call refused by
    do-not-disturb says DND (the reason column of the store holds the words)."""
    if row.result == "forwarded" and row.reason.startswith("forwarded to "):
        return "→ " + row.reason.removeprefix("forwarded to ")
    if row.result == "rejected" and row.reason.startswith("do not disturb"):
        return "DND"
    return row.result.replace("_", " ")


def format_when(started_at: datetime, now: datetime) -> str:
    """``Today 14:05`` / ``Mon 09:12`` (the last six days) / ``2026-11-02 09:12``, in the time
    zone of ``now`` (local time when ``now`` is the local clock)."""
    local = started_at.astimezone(now.tzinfo) if now.tzinfo is not None else started_at
    days = (now.date() - local.date()).days
    if days == 0:
        return f"Today {local:%H:%M}"
    if 0 < days < 7:
        return f"{local:%a %H:%M}"
    return f"{local:%Y-%m-%d %H:%M}"


def format_duration(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on)."""
    total = round(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _add_columns(table: DataTable[Cell], screen_width: int) -> None:
    """The columns, the remote party's taking what the fixed ones leave of the width."""
    fixed = (("When", "when", 16), ("Dir", "dir", 5))
    tail = (("Length", "length", 7), ("Result", "result", 11), ("Rec", "rec", 3))
    used = sum(w for *_, w in fixed + tail) + 2 * (len(fixed) + len(tail) + 1)
    for label, key, width in fixed:
        table.add_column(label, key=key, width=width)
    table.add_column("Remote", key="remote", width=max(16, screen_width - used - _CHROME))
    for label, key, width in tail:
        table.add_column(label, key=key, width=width)


class HistoryScreen(SearchableTableScreen[CallRecord]):
    """Past calls, newest first. Dismisses with the URI to call back, or None."""

    NAME = "history"
    TITLE_TEXT = "Call history"
    SEARCH_HINT = "/ to search by name, address or result"
    READ_FAILED = "Cannot read the call history"
    DELETE_FAILED = "Cannot delete the call"
    RELOAD_KEEPS_CURSOR = False  # a new search or a reload starts with the newest call
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("slash", "focus_search", "Search", show=True),
        Binding("p", "play", "Play", show=True),
        Binding("m", "message", "Message", show=True),
        Binding("x", "stop", "Stop", show=True),
        Binding("delete", "delete", "Delete", show=True),
        Binding("C", "clear_all", "Clear", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("enter", "call the selected party back"),
        ("/", "search calls (name, address or result)"),
        ("m", "messages with the selected party"),
        ("p", "play the call's recording; again to stop"),
        ("x", "stop playing"),
        ("delete", "delete the selected call"),
        ("C", "clear the whole history"),
        ("escape", "clear the search, else go back"),
    )

    def __init__(
        self,
        book: Book,
        phone: PhoneApi,
        *,
        now: Callable[[], datetime] = _local_now,
        page_size: int = PAGE_SIZE,
        open_chat: Callable[[str, str | None], None] | None = None,
    ) -> None:
        super().__init__(page_size=page_size)
        self._page_size = page_size
        self.book = book
        self.phone = phone
        self._now = now
        self.open_chat = open_chat  # (the party's URI, its name)
        self.playback = Playback(phone, self.notify)
        self._names: dict[str, str | None] = {}  # remote URI -> contact name (None: no contact)

    @property
    def records(self) -> list[CallRecord]:
        return self.rows

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.render_rows(self.table.cursor_row)

    # -- the rows -----------------------------------------------------------------------------

    def add_columns(self, table: DataTable[Cell], screen_width: int) -> None:
        _add_columns(table, screen_width)

    def cells(self, row: CallRecord) -> tuple[Cell, ...]:
        colours = self.app.get_css_variables()
        colour = colours.get(_RESULT_COLOUR.get(row.result, "foreground"), "")
        style = Style.parse(colour) if colour.startswith("#") else Style()
        if row.result == "missed":
            style += Style(bold=True)
        answered = row.result == "answered"
        return (
            format_when(row.started_at, self._now()),
            _ARROW[row.direction],
            Text(self._who(row), no_wrap=True, overflow="ellipsis"),
            format_duration(row.duration_s) if answered else "",
            Text(result_text(row), style=style, no_wrap=True, overflow="ellipsis"),
            "●" if row.recording_path else "",
        )

    def key(self, row: CallRecord) -> str:
        return str(row.id)

    async def fetch(self, query: str, offset: int) -> list[CallRecord]:
        if query:
            found = await self.book.history.search_async(query, SEARCH_LIMIT)
        else:
            found = await self.book.history.list_async(self._page_size, offset)
        await self._resolve_names(r.remote_uri for r in found if r.remote_uri is not None)
        return found

    async def _resolve_names(self, uris: Iterable[str]) -> None:
        """Contact names for the URIs not looked up yet (one indexed query each, in threads)."""
        wanted = sorted({u for u in uris if u not in self._names})
        if not wanted:
            return
        found = await asyncio.gather(*(self.book.contacts.find_by_uri_async(u) for u in wanted))
        for uri, contact in zip(wanted, found, strict=True):
            self._names[uri] = None if contact is None else contact.name

    def _who(self, record: CallRecord) -> str:
        """The contact's name, else the name the call brought, else the address."""
        uri = record.remote_uri
        contact = self._names.get(uri) if uri is not None else None
        return contact or record.remote_name or uri or "unknown"

    def empty_text(self, query: str) -> str:
        return f"No calls match “{query}”" if query else "No calls yet"

    def chosen(self, row: CallRecord) -> str | None:
        if row.remote_uri is None:
            # A row kept from an older version whose text held no address: nothing to dial.
            self.notify("This call has no address to call back.", severity="warning")
        return row.remote_uri

    def delete_question(self, row: CallRecord) -> str | None:
        if row.id is None:
            return None
        return (
            f"Delete the call with {self._who(row)} ({format_when(row.started_at, self._now())})?"
        )

    async def delete(self, row: CallRecord) -> None:
        assert row.id is not None
        await self.book.history.delete_async(row.id)

    # -- actions ------------------------------------------------------------------------------

    def action_message(self) -> None:
        record = self.selected()
        if record is None or self.open_chat is None:
            return
        if record.remote_uri is None:
            self.notify("This call has no address to write to.", severity="warning")
            return
        self.open_chat(record.remote_uri, record.remote_name)

    def action_play(self) -> None:
        if self.playing is not None:
            self.action_stop()
            return
        record = self.selected()
        if record is None:
            return
        if not record.recording_path:
            self.notify("This call has no recording.", severity="warning")
            return
        self._play(Path(record.recording_path))

    @work(exclusive=True, group="history-play")
    async def _play(self, path: Path) -> None:
        if await self.playback.present(path, f"recording {path} is gone"):
            await self.playback.play(path, f"Playing {path.name} (p or x stops)")

    @property
    def playing(self) -> Path | None:
        return self.playback.playing

    def action_stop(self) -> None:
        self.playback.stop()

    def action_clear_all(self) -> None:
        if not self.records:
            return
        question = "Delete the whole call history? This cannot be undone."
        self.confirm(question, self._clear, label="Clear all")

    @work(exclusive=True, group=WRITE_GROUP)
    async def _clear(self) -> None:
        try:
            removed = await self.book.history.clear_async()
        except StoreError as exc:
            self.notify(f"Cannot clear the call history: {exc}", severity="error")
            return
        self.notify(f"Deleted {removed} calls.")
        self.rows = []
        self.exhausted = True
        self.render_rows(0)
