"""A full screen of rows to search and act on, shared by the contacts and the history screens.

:class:`SearchableTableScreen` lays out a title, a search input, a table and a line for the
empty state, and does what both screens do with them: the search is debounced (Enter goes to the
table, Escape clears it, a second Escape goes back), the table's last row loads the next page
(when the screen pages), Enter dismisses the screen with what the row says to call, and a row is
deleted only after a yes/no (:class:`~softphone.tui.screens.confirm.ConfirmDialog`).

A screen built on it says what its rows are: the columns (:meth:`add_columns`), a row's cells
and key, how to fetch a page or a search result (:meth:`fetch`), what Enter returns
(:meth:`chosen`) and how to delete a row (:meth:`delete_question`, :meth:`delete`). Reads and
writes run in exclusive workers (the Book's ``*_async`` methods): a slow query never blocks the
event loop, and a newer load cancels an older one before it can overwrite the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, Generic, TypeVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from softphone.phone.book import StoreError
from softphone.tui.screens.confirm import ConfirmDialog

__all__ = [
    "LOAD_GROUP",
    "WRITE_GROUP",
    "Cell",
    "RowsTable",
    "SearchableTableScreen",
]

Row = TypeVar("Row")
Cell = str | Text

SEARCH_DEBOUNCE_S: Final = 0.15
LOAD_GROUP: Final = "table-load"  # one load at a time: a newer one cancels an older one
WRITE_GROUP: Final = "table-write"  # one write at a time (delete, star, import, clear)


class RowsTable(DataTable[Cell]):
    """The table; Enter (call) shows in the footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Call", show=True),
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]


class SearchableTableScreen(Screen[str | None], Generic[Row]):
    """Rows of ``Row`` with a search. Widget ids are ``NAME-title``, ``NAME-search``,
    ``NAME-table`` and ``NAME-empty``. ``page_size`` None: every row in one load."""

    DEFAULT_CSS = """
    SearchableTableScreen { layout: vertical; }
    SearchableTableScreen .table-title { height: 1; padding: 0 1; text-style: bold; color: $accent; }
    SearchableTableScreen .table-search { margin: 0 1; }
    SearchableTableScreen RowsTable { height: 1fr; margin: 0 1; }
    SearchableTableScreen .table-empty { height: 1fr; content-align: center middle; color: $text-muted; }
    SearchableTableScreen .-hidden { display: none; }
    SearchableTableScreen RowsTable.-empty { height: auto; }
    """

    NAME: ClassVar[str]
    TITLE_TEXT: ClassVar[str]
    SEARCH_HINT: ClassVar[str]
    READ_FAILED: ClassVar[str]  # "Cannot read the ...", followed by the store's reason
    DELETE_FAILED: ClassVar[str]  # "Cannot delete the ...", followed by the store's reason
    RELOAD_KEEPS_CURSOR: ClassVar[bool] = True  # else a reload starts at the top

    def __init__(self, *, page_size: int | None = None) -> None:
        super().__init__()
        self.page_size = page_size
        self.rows: list[Row] = []
        self.loaded = False  # the first load (or search) finished
        self.exhausted = False  # no more pages beyond self.rows
        self._query = ""
        self._debounce: Timer | None = None

    # -- what a screen says about its rows ---------------------------------------------------

    def add_columns(self, table: DataTable[Cell], screen_width: int) -> None:
        raise NotImplementedError

    def cells(self, row: Row) -> tuple[Cell, ...]:
        raise NotImplementedError

    def key(self, row: Row) -> str:
        raise NotImplementedError

    async def fetch(self, query: str, offset: int) -> list[Row]:
        """The rows matching ``query``, or (no query) the page at ``offset``; raises StoreError."""
        raise NotImplementedError

    def empty_text(self, query: str) -> str:
        raise NotImplementedError

    def chosen(self, row: Row) -> str | None:
        """What Enter on ``row`` dismisses the screen with; None: Enter does nothing."""
        raise NotImplementedError

    def delete_question(self, row: Row) -> str | None:
        """The yes/no question before deleting ``row``; None: it cannot be deleted."""
        raise NotImplementedError

    async def delete(self, row: Row) -> None:
        """Delete ``row`` from the store; raises StoreError."""
        raise NotImplementedError

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self.TITLE_TEXT, id=f"{self.NAME}-title", classes="table-title")
        yield Input(placeholder=self.SEARCH_HINT, id=f"{self.NAME}-search", classes="table-search")
        table = RowsTable(id=f"{self.NAME}-table", cursor_type="row", zebra_stripes=True)
        self.add_columns(table, 80)
        yield table
        yield Static(self.empty_text(""), id=f"{self.NAME}-empty", classes="table-empty -hidden")
        yield Footer()

    @property
    def table(self) -> RowsTable:
        return self.query_one(f"#{self.NAME}-table", RowsTable)

    @property
    def search_input(self) -> Input:
        return self.query_one(f"#{self.NAME}-search", Input)

    def on_mount(self) -> None:
        self.table.focus()
        self._load()

    def on_resize(self, event: events.Resize) -> None:
        """Give the flexible columns the width there is (DataTable has no flexible columns)."""
        table = self.table
        row = table.cursor_row
        table.clear(columns=True)
        self.add_columns(table, event.size.width)
        self.render_rows(row)

    # -- rows ---------------------------------------------------------------------------------

    def render_rows(self, row: int) -> None:
        """Show ``self.rows``, the cursor on ``row`` (kept within the rows)."""
        table = self.table
        table.clear()
        self._append_rows(self.rows)
        if self.rows:
            table.move_cursor(row=max(0, min(row, len(self.rows) - 1)), animate=False)
        if self.loaded:  # before the first load nothing is known to be empty
            self._show_empty(not self.rows)

    def _append_rows(self, rows: list[Row]) -> None:
        for row in rows:
            self.table.add_row(*self.cells(row), key=self.key(row))

    def _show_empty(self, empty: bool) -> None:
        label = self.query_one(f"#{self.NAME}-empty", Static)
        label.update(self.empty_text(self._query))
        label.set_class(not empty, "-hidden")
        self.table.set_class(empty, "-empty")

    @work(exclusive=True, group=LOAD_GROUP)
    async def _load(self, *, more: bool = False, focus: str | None = None) -> None:
        """Replace the rows with the first page (or the search result), or append the next
        page. The cursor goes to the row keyed ``focus`` when given."""
        query = self._query
        try:
            found = await self.fetch(query, len(self.rows) if more else 0)
        except StoreError as exc:
            self.notify(f"{self.READ_FAILED}: {exc}", severity="error")
            return
        paged = self.page_size is not None and not query
        exhausted = not paged or len(found) < (self.page_size or 0)
        self.loaded = True
        if more:
            known = {self.key(r) for r in self.rows}
            fresh = [r for r in found if self.key(r) not in known]
            self.rows.extend(fresh)
            self.exhausted = exhausted or not fresh
            self._append_rows(fresh)
            return
        row = self.table.cursor_row if self.RELOAD_KEEPS_CURSOR else 0
        if focus is not None:
            row = next((i for i, r in enumerate(found) if self.key(r) == focus), row)
        self.rows = list(found)
        self.exhausted = exhausted
        self.render_rows(row)

    @on(DataTable.RowHighlighted, "RowsTable")
    def _maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        """Offset paging: reaching the last row loads the next page."""
        if (
            self.loaded
            and not self.exhausted
            and not self._query
            and event.cursor_row == len(self.rows) - 1
        ):
            self.loaded = False
            self._load(more=True)

    # -- search -------------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        self.search_input.focus()

    @on(Input.Changed, ".table-search")
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

    @on(Input.Submitted, ".table-search")
    def _search_submitted(self) -> None:
        self._run_search()
        self.table.focus()

    # -- actions ------------------------------------------------------------------------------

    def selected(self) -> Row | None:
        """The row under the cursor, if any."""
        if not self.rows or self.table.row_count == 0:
            return None
        return self.rows[min(self.table.cursor_row, len(self.rows) - 1)]

    @on(DataTable.RowSelected, "RowsTable")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        row = self.selected()
        if row is not None and (result := self.chosen(row)) is not None:
            self.dismiss(result)

    def action_back(self) -> None:
        if self.search_input.value:
            self.search_input.value = ""
            self._run_search()
            self.table.focus()
        else:
            self.dismiss(None)

    def confirm(self, question: str, then: Callable[[], object], *, label: str = "Delete") -> None:
        """Ask ``question``; ``then`` runs on yes."""

        def done(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmDialog(question, confirm_label=label), done)

    def action_delete(self) -> None:
        row = self.selected()
        if row is None:
            return
        question = self.delete_question(row)
        if question is not None:
            self.confirm(question, lambda: self._delete(row))

    @work(exclusive=True, group=WRITE_GROUP)
    async def _delete(self, row: Row) -> None:
        try:
            await self.delete(row)
        except StoreError as exc:
            self.notify(f"{self.DELETE_FAILED}: {exc}", severity="error")
            return
        key = self.key(row)
        self.rows = [r for r in self.rows if self.key(r) != key]
        self.render_rows(self.table.cursor_row)
