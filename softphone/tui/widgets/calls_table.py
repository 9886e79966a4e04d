"""The calls list: one row per live call (direction, remote, state, timer, codec, flags)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.coordinate import Coordinate
from textual.widgets import DataTable

__all__ = ["CallRow", "CallsTable", "format_timer"]

COLUMNS = ("", "Remote", "State", "Time", "Codec", "Flags")
WIDTHS: dict[str, int | None] = {
    "": 1,
    "Remote": None,
    "State": 11,
    "Time": 7,
    "Codec": 5,
    "Flags": 16,
}


def format_timer(seconds: float | None) -> str:
    """mm:ss (h:mm:ss past an hour); empty before the call is answered."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRow:
    """What one row shows; built by the screen from a CallView and its own knowledge."""

    call_id: str
    direction: str  # "outgoing" | "incoming"
    remote: str
    state: str
    talk_s: float | None
    codec: str | None
    flags: tuple[str, ...] = ()

    def cells(self) -> tuple[str, ...]:
        arrow = "→" if self.direction == "outgoing" else "←"
        return (
            arrow,
            self.remote,
            self.state,
            format_timer(self.talk_s),
            self.codec or "",
            " ".join(self.flags),
        )


class CallsTable(DataTable[str]):
    """Rows keyed by call id; :meth:`show_rows` adds, updates and removes rows in place, so the
    cursor stays on its call."""

    DEFAULT_CSS = """
    CallsTable { height: 1fr; min-height: 3; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._shown: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for label in COLUMNS:
            self.add_column(label, key=label or "dir", width=WIDTHS[label])

    def show_rows(self, rows: list[CallRow]) -> None:
        wanted = {row.call_id: row.cells() for row in rows}
        for call_id in [c for c in self._shown if c not in wanted]:
            self.remove_row(call_id)
            del self._shown[call_id]
        for call_id, cells in wanted.items():
            old = self._shown.get(call_id)
            if old is None:
                self.add_row(*cells, key=call_id)
            elif old != cells:
                for label, value, before in zip(COLUMNS, cells, old, strict=True):
                    if value != before:
                        self.update_cell(
                            call_id, label or "dir", value, update_width=label == "Remote"
                        )
            self._shown[call_id] = cells

    @property
    def call_ids(self) -> list[str]:
        return list(self._shown)

    @property
    def selected_call_id(self) -> str | None:
        if not self._shown or self.row_count == 0:
            return None
        row = min(max(self.cursor_row, 0), self.row_count - 1)
        key = self.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return key

    def select_call(self, call_id: str) -> None:
        if call_id in self._shown:
            self.move_cursor(row=self.get_row_index(call_id))
