"""Every SIP flow the phone has seen, newest first, like sngrep's call list: calls with how they
went, and the flows outside calls (each account's registration with its refreshes, OPTIONS,
MESSAGE, NOTIFY, ...). Enter opens a flow's ladder (:class:`~softphone.tui.screens.trace.TraceScreen`,
with the RTP streams under it for a call).

:class:`FlowsScreen` reads ``phone.sip_flows()`` when it opens and every :data:`REFRESH_S`
seconds after, keeping the cursor on the flow it was on. The search matches every word typed
against the row's text (method, From, To, state, status, remote address, Call-ID); ``f`` narrows
the list to one kind of method (:data:`METHOD_FILTERS`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import ClassVar, Final

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, Static

from softphone.phone.api import CallFlowState, FlowSummary, PhoneApi
from softphone.phone.errors import PhoneError

__all__ = [
    "METHOD_FILTERS",
    "FlowsScreen",
    "FlowsTable",
    "flow_cells",
    "matches",
]

REFRESH_S: Final = 1.0
# What ``f`` cycles through: every flow, then one method each, then every other method.
METHOD_FILTERS: Final = ("all", "INVITE", "REGISTER", "OPTIONS", "other")
_NAMED: Final = frozenset(METHOD_FILTERS[1:-1])
TIME_WIDTH: Final = 8  # HH:MM:SS
METHOD_WIDTH: Final = 9  # SUBSCRIBE
COUNT_WIDTH: Final = 4
STATE_WIDTH: Final = 13  # "CALL SETUP", "487 Request T…"
WIDE_STATE_WIDTH: Final = 24  # "405 Method Not Allowed", when there is room
MIN_URI_WIDTH: Final = 10

_STATE_STYLE: Final = {
    CallFlowState.SETUP: "yellow",
    CallFlowState.IN_CALL: "bold green",
    CallFlowState.COMPLETED: "",
    CallFlowState.CANCELLED: "red",
    CallFlowState.REJECTED: "red",
    CallFlowState.BUSY: "red",
    CallFlowState.DIVERTED: "magenta",
}


def state_text(flow: FlowSummary) -> str:
    """A call's state (``IN CALL``), else the latest status (``200 OK``), else ``-``."""
    if flow.call_state is not None:
        return flow.call_state.value
    return flow.last_status or "-"


def _state_style(flow: FlowSummary) -> str:
    if flow.call_state is not None:
        return _STATE_STYLE[flow.call_state]
    status = (flow.last_status or " ").split(" ", 1)[0]
    if not status.isdigit():
        return "dim"
    return "green" if status.startswith("2") else "yellow" if status.startswith("1") else "red"


def _short_uri(uri: str) -> str:
    """``sip:alice@example.com`` -> ``alice@example.com`` (sips: and tel: keep their scheme)."""
    return uri.removeprefix("sip:") or "-"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_time(at: float, tz: tzinfo | None = None) -> str:
    return datetime.fromtimestamp(at, tz).strftime("%H:%M:%S")


def column_widths(screen_width: int) -> tuple[int, int]:
    """The widths of the From and To columns (each) and of the state column: the state gets
    room for a whole reason phrase on a wide screen, From and To share what is left."""
    state = WIDE_STATE_WIDTH if screen_width >= 120 else STATE_WIDTH
    fixed = TIME_WIDTH + METHOD_WIDTH + COUNT_WIDTH + state
    padding = 2 * 6 + 4  # each column's cell padding, the table's margin and scroll bar
    return max(MIN_URI_WIDTH, (screen_width - fixed - padding) // 2), state


def flow_cells(
    flow: FlowSummary, widths: tuple[int, int], tz: tzinfo | None = None
) -> tuple[Text, ...]:
    """One row: time, method, From, To, messages, state (cut to ``column_widths``)."""
    width, state_width = widths
    return (
        Text(format_time(flow.started_at, tz), style="dim"),
        Text(_fit(flow.method, METHOD_WIDTH), style="bold"),
        Text(_fit(_short_uri(flow.from_uri), width)),
        Text(_fit(_short_uri(flow.to_uri), width)),
        Text(str(flow.message_count), justify="right"),
        Text(_fit(state_text(flow), state_width), style=_state_style(flow)),
    )


def matches(flow: FlowSummary, method: str, query: str) -> bool:
    """Whether ``flow`` passes the method filter and has every word of ``query`` in its text."""
    if method == "other" and flow.method in _NAMED:
        return False
    if method not in ("all", "other") and flow.method != method:
        return False
    haystack = " ".join(
        (
            flow.method,
            flow.from_uri,
            flow.to_uri,
            state_text(flow),
            flow.last_status or "",
            flow.remote,
            flow.flow_id,
        )
    ).lower()
    return all(word in haystack for word in query.lower().split())


class FlowsTable(DataTable[Text]):
    """The flows; Enter opens the ladder."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Ladder", show=True),
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]


class FlowsScreen(Screen[None]):
    """Every SIP flow the phone keeps; ``tz`` fixes the clock's time zone (tests)."""

    DEFAULT_CSS = """
    FlowsScreen #flows-title { height: 1; padding: 0 1; text-style: bold; color: $accent; }
    FlowsScreen #flows-search { margin: 0 1; }
    FlowsScreen FlowsTable { height: 1fr; margin: 0 1; }
    FlowsScreen FlowsTable.-empty { height: auto; }
    FlowsScreen #flows-empty { height: 1fr; content-align: center middle; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("slash", "focus_search", "Search", show=True, key_display="/"),
        Binding("f", "next_method", "Method", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("↑/↓", "select a flow (newest first)"),
        ("Enter", "open the flow's SIP ladder (and a call's RTP streams)"),
        ("/", "search: every word must match method, From, To, state, address or Call-ID"),
        ("f", "show one method only: all, INVITE, REGISTER, OPTIONS, other"),
        ("Escape", "clear the search, then back"),
    )

    def __init__(self, phone: PhoneApi, *, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.phone = phone
        self.tz = tz
        self.method = METHOD_FILTERS[0]
        self.query_text = ""
        self.flows: list[FlowSummary] = []  # what the phone gave, newest first
        self.shown: list[FlowSummary] = []  # what passes the filters, in the table's order
        self._widths = column_widths(80)
        self._timer: Timer | None = None
        self._failed = False
        self._loaded = False

    def compose(self) -> ComposeResult:
        yield Label("", id="flows-title")
        yield Input(
            placeholder="Search (method, address, state, Call-ID); Enter goes to the list",
            id="flows-search",
        )
        yield FlowsTable(id="flows-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="flows-empty")
        yield Footer()

    @property
    def table(self) -> FlowsTable:
        return self.query_one("#flows-table", FlowsTable)

    @property
    def search(self) -> Input:
        return self.query_one("#flows-search", Input)

    def on_mount(self) -> None:
        self._columns(self.app.size.width)
        self.refresh_flows()
        self.table.focus()
        self._timer = self.set_interval(REFRESH_S, self.refresh_flows)

    def on_resize(self, event: events.Resize) -> None:
        """Give From and To the width there is (a DataTable has no flexible columns)."""
        if column_widths(event.size.width) != self._widths:
            self._columns(event.size.width)
            self._render_rows(force=True)

    def _columns(self, screen_width: int) -> None:
        self._widths = uri, state = column_widths(screen_width)
        table = self.table
        table.clear(columns=True)
        table.add_column("Time", width=TIME_WIDTH)
        table.add_column("Method", width=METHOD_WIDTH)
        table.add_column("From", width=uri)
        table.add_column("To", width=uri)
        table.add_column("Msgs", width=COUNT_WIDTH)
        table.add_column("State", width=state)

    # -- rows -------------------------------------------------------------------------------

    def refresh_flows(self) -> None:
        """Re-read the phone's flows and show them if anything changed."""
        try:
            flows = self.phone.sip_flows()
        except PhoneError as exc:
            if not self._failed:  # once, not every second
                self._failed = True
                self.notify(str(exc), severity="error")
            flows = []
        if flows != self.flows or not self._loaded:
            self._loaded = True
            self.flows = flows
            self._render_rows()

    def _render_rows(self, *, force: bool = False) -> None:
        shown = [f for f in self.flows if matches(f, self.method, self.query_text)]
        if shown != self.shown or force:
            table = self.table
            current = self.selected()
            keep = current.flow_id if current is not None else None
            row = table.cursor_row
            self.shown = shown
            table.clear()
            for flow in shown:
                table.add_row(*flow_cells(flow, self._widths, self.tz), key=flow.flow_id)
            if shown:
                ids = [f.flow_id for f in shown]
                row = ids.index(keep) if keep in ids else min(row, len(shown) - 1)
                table.move_cursor(row=row, animate=False)
        self._show_counts()

    def _show_counts(self) -> None:
        every, shown = len(self.flows), len(self.shown)
        title = f"SIP flows · {every}" if shown == every else f"SIP flows · {shown} of {every}"
        if self.method != "all":
            title += f" · method: {self.method}"
        self.query_one("#flows-title", Label).update(Text(title))
        empty = self.query_one("#flows-empty", Static)
        if not every:
            empty.update("No SIP messages yet: calls, registrations and requests show here")
        else:
            empty.update("No flow matches: Escape clears the search, f changes the method")
        empty.display = not shown
        self.table.set_class(not shown, "-empty")

    def selected(self) -> FlowSummary | None:
        if not self.shown or self.table.row_count == 0:
            return None
        return self.shown[min(self.table.cursor_row, len(self.shown) - 1)]

    # -- actions ----------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#flows-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        flow = self.selected()
        if flow is not None:
            from softphone.tui.screens.trace import TraceScreen

            self.app.push_screen(TraceScreen(self.phone, flow.flow_id, flow=flow, tz=self.tz))

    @on(Input.Changed, "#flows-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value.strip()
        self._render_rows()

    @on(Input.Submitted, "#flows-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        """Down from the search goes to the list."""
        if event.key == "down" and self.focused is self.search:
            event.stop()
            self.table.focus()

    def action_focus_search(self) -> None:
        self.search.focus()

    def action_next_method(self) -> None:
        self.method = METHOD_FILTERS[(METHOD_FILTERS.index(self.method) + 1) % len(METHOD_FILTERS)]
        self._render_rows()

    def action_back(self) -> None:
        if self.search.value:
            self.search.value = ""
            self.query_text = ""
            self._render_rows()
            self.table.focus()
            return
        if self._timer is not None:
            self._timer.stop()
        self.dismiss(None)
