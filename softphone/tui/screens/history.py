"""The call history screen: past calls newest first, searchable, call back, play a recording.

:class:`HistoryScreen` is a ``Screen[str | None]``: it dismisses with the remote URI of the row
the user pressed Enter on (the app calls it back) or with None (Escape). Every sqlite access goes
through the ``*_async`` methods of :class:`~softphone.phone.book.History` and
:class:`~softphone.phone.book.Contacts` inside exclusive workers, so a slow query never blocks
the event loop and never overwrites the result of a newer one.

:class:`ConfirmDialog` (a yes/no modal) lives here too; the contacts screen uses it as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, CallRecord, StoreError
from softphone.phone.errors import PhoneError
from softphone.tui.screens.confirm import ConfirmDialog

__all__ = [
    "ConfirmDialog",
    "HistoryScreen",
    "format_duration",
    "format_when",
]

PAGE_SIZE: Final = 200
SEARCH_DEBOUNCE_S: Final = 0.15
SEARCH_LIMIT: Final = 500

# Result -> the theme variable its text is drawn in (looked up in the running theme).
_RESULT_COLOUR: Final[dict[str, str]] = {
    "answered": "text-success",
    "missed": "text-error",
    "rejected": "text-warning",
    "busy": "text-warning",
    "failed": "text-warning",
    "cancelled": "foreground-darken-1",
}
_ARROW: Final[dict[str, str]] = {"in": "← in", "out": "→ out"}
_CHROME: Final = 4  # the table's side margins and its vertical scrollbar


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


class HistoryTable(DataTable[str | Text]):
    """The calls table; Enter (call back) shows in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Call", show=True),
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]


def _add_columns(table: DataTable[str | Text], screen_width: int) -> None:
    """The columns, the remote party's taking what the fixed ones leave of the width."""
    fixed = (("When", "when", 16), ("Dir", "dir", 5))
    tail = (("Length", "length", 7), ("Result", "result", 9), ("Rec", "rec", 3))
    used = sum(w for *_, w in fixed + tail) + 2 * (len(fixed) + len(tail) + 1)
    for label, key, width in fixed:
        table.add_column(label, key=key, width=width)
    table.add_column("Remote", key="remote", width=max(16, screen_width - used - _CHROME))
    for label, key, width in tail:
        table.add_column(label, key=key, width=width)


class HistoryScreen(Screen[str | None]):
    """Past calls, newest first. Dismisses with the URI to call back, or None."""

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    HistoryScreen #history-title { height: 1; padding: 0 1; text-style: bold; color: $accent; }
    HistoryScreen #history-search { margin: 0 1; }
    HistoryScreen HistoryTable { height: 1fr; margin: 0 1; }
    HistoryScreen #history-empty { height: 1fr; content-align: center middle; color: $text-muted; }
    HistoryScreen .-hidden { display: none; }
    HistoryScreen HistoryTable.-empty { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("slash", "focus_search", "Search", show=True),
        Binding("p", "play", "Play", show=True),
        Binding("x", "stop", "Stop", show=True),
        Binding("delete", "delete", "Delete", show=True),
        Binding("C", "clear_all", "Clear", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("enter", "call the selected party back"),
        ("/", "search calls (name, address or result)"),
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
    ) -> None:
        super().__init__()
        self.book = book
        self.phone = phone
        self._now = now
        self.page_size = page_size
        self.records: list[CallRecord] = []
        self.exhausted = False  # no more pages beyond self.records
        self.loaded = False  # the first load (or search) finished
        self.playing: Path | None = None
        self._query = ""
        self._names: dict[str, str | None] = {}  # remote URI -> contact name (None: no contact)
        self._debounce: Timer | None = None

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("Call history", id="history-title")
        yield Input(placeholder="/ to search by name, address or result", id="history-search")
        table = HistoryTable(id="history-table", cursor_type="row", zebra_stripes=True)
        _add_columns(table, 80)
        yield table
        yield Static("No calls yet", id="history-empty", classes="-hidden")
        yield Footer()

    @property
    def table(self) -> HistoryTable:
        return self.query_one("#history-table", HistoryTable)

    @property
    def search_input(self) -> Input:
        return self.query_one("#history-search", Input)

    def on_mount(self) -> None:
        self.table.focus()
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self._load()

    def on_resize(self, event: events.Resize) -> None:
        """Give the remote column the width there is (DataTable has no flexible columns)."""
        table = self.table
        row = table.cursor_row
        table.clear(columns=True)
        _add_columns(table, event.size.width)
        self._append_rows(self.records)
        if self.records:
            table.move_cursor(row=min(row, len(self.records) - 1), animate=False)

    def _theme_changed(self, _theme: object) -> None:
        self._render_rows(self.records, keep_cursor=True)

    # -- loading ------------------------------------------------------------------------------

    @work(exclusive=True, group="history-load")
    async def _load(self, *, more: bool = False) -> None:
        """Replace the rows with the first page (or the search result), or append the next page.
        Exclusive: a newer load or search cancels an older one before it can overwrite."""
        query = self._query
        try:
            if query:
                found = await self.book.history.search_async(query, SEARCH_LIMIT)
            else:
                offset = len(self.records) if more else 0
                found = await self.book.history.list_async(self.page_size, offset)
            await self._resolve_names(r.remote_uri for r in found)
        except StoreError as exc:
            self.notify(f"Cannot read the call history: {exc}", severity="error")
            return
        exhausted = bool(query) or len(found) < self.page_size
        if more:
            known = {r.id for r in self.records}
            fresh = [r for r in found if r.id not in known]
            self.records.extend(fresh)
            self.exhausted = exhausted or not fresh
            self._append_rows(fresh)
        else:
            self.records = list(found)
            self.exhausted = exhausted
            self._render_rows(self.records, keep_cursor=False)
        self.loaded = True

    async def _resolve_names(self, uris: Iterable[str]) -> None:
        """Contact names for the URIs not looked up yet (one indexed query each, in threads)."""
        wanted = sorted({u for u in uris if u not in self._names})
        if not wanted:
            return
        found = await asyncio.gather(*(self.book.contacts.find_by_uri_async(u) for u in wanted))
        for uri, contact in zip(wanted, found, strict=True):
            self._names[uri] = None if contact is None else contact.name

    def _cells(self, record: CallRecord) -> tuple[str | Text, ...]:
        colours = self.app.get_css_variables()
        colour = colours.get(_RESULT_COLOUR.get(record.result, "foreground"), "")
        style = Style.parse(colour) if colour.startswith("#") else Style()
        if record.result == "missed":
            style += Style(bold=True)
        remote = self._names.get(record.remote_uri) or record.remote_name or record.remote_uri
        answered = record.result == "answered"
        return (
            format_when(record.started_at, self._now()),
            _ARROW[record.direction],
            Text(remote, no_wrap=True, overflow="ellipsis"),
            format_duration(record.duration_s) if answered else "",
            Text(record.result, style=style),
            "●" if record.recording_path else "",
        )

    def _render_rows(self, records: list[CallRecord], *, keep_cursor: bool) -> None:
        table = self.table
        row = table.cursor_row if keep_cursor else 0
        table.clear()
        self._append_rows(records)
        if records:
            table.move_cursor(row=min(row, len(records) - 1), animate=False)
        self._show_empty(not records)

    def _append_rows(self, records: list[CallRecord]) -> None:
        for record in records:
            self.table.add_row(*self._cells(record), key=str(record.id))

    def _show_empty(self, empty: bool) -> None:
        label = self.query_one("#history-empty", Static)
        label.update(f"No calls match “{self._query}”" if self._query else "No calls yet")
        label.set_class(not empty, "-hidden")
        self.table.set_class(empty, "-empty")

    @on(DataTable.RowHighlighted, "#history-table")
    def _maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        """Offset paging: reaching the last row loads the next page."""
        if (
            self.loaded
            and not self.exhausted
            and not self._query
            and event.cursor_row == len(self.records) - 1
        ):
            self.loaded = False
            self._load(more=True)

    # -- search -------------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.search_input.focus()

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(SEARCH_DEBOUNCE_S, self._run_search)

    def _run_search(self) -> None:
        self._debounce = None
        query = self.search_input.value.strip()
        if query != self._query:
            self._query = query
            self._load()

    @on(Input.Submitted, "#history-search")
    def _search_submitted(self) -> None:
        self._run_search()
        self.table.focus()

    # -- actions ------------------------------------------------------------------------------

    def selected(self) -> CallRecord | None:
        """The record under the cursor, if any."""
        table = self.table
        if not self.records or table.row_count == 0:
            return None
        return self.records[min(table.cursor_row, len(self.records) - 1)]

    @on(DataTable.RowSelected, "#history-table")
    def _call_back(self, event: DataTable.RowSelected) -> None:
        record = self.selected()
        if record is not None:
            self.dismiss(record.remote_uri)

    def action_back(self) -> None:
        if self.search_input.value:
            self.search_input.value = ""
            self._run_search()
            self.table.focus()
        else:
            self.dismiss(None)

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
        if not await asyncio.to_thread(path.is_file):
            self.notify(f"recording {path} is gone", severity="error")
            return
        self.playing = path
        self.notify(f"Playing {path.name} (p or x stops)")
        try:
            await self.phone.play_file(path)
        except PhoneError as exc:
            self.notify(str(exc), severity="error")
        finally:
            if self.playing == path:
                self.playing = None

    def action_stop(self) -> None:
        self.playing = None
        try:
            self.phone.stop_playback()
        except PhoneError as exc:
            self.notify(str(exc), severity="error")

    def action_delete(self) -> None:
        record = self.selected()
        if record is None or record.id is None:
            return
        who = self._names.get(record.remote_uri) or record.remote_name or record.remote_uri
        when = format_when(record.started_at, self._now())
        record_id = record.id

        def done(yes: bool | None) -> None:
            if yes:
                self._delete(record_id)

        self.app.push_screen(ConfirmDialog(f"Delete the call with {who} ({when})?"), done)

    @work(exclusive=True, group="history-write")
    async def _delete(self, record_id: int) -> None:
        try:
            await self.book.history.delete_async(record_id)
        except StoreError as exc:
            self.notify(f"Cannot delete the call: {exc}", severity="error")
            return
        self.records = [r for r in self.records if r.id != record_id]
        self._render_rows(self.records, keep_cursor=True)

    def action_clear_all(self) -> None:
        if not self.records:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._clear()

        question = "Delete the whole call history? This cannot be undone."
        self.app.push_screen(ConfirmDialog(question, confirm_label="Clear all"), done)

    @work(exclusive=True, group="history-write")
    async def _clear(self) -> None:
        try:
            removed = await self.book.history.clear_async()
        except StoreError as exc:
            self.notify(f"Cannot clear the call history: {exc}", severity="error")
            return
        self.notify(f"Deleted {removed} calls.")
        self.records = []
        self.exhausted = True
        self._render_rows([], keep_cursor=False)
