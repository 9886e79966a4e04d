"""The help screen: every key of every screen, from each screen's ``KEYS_HELP`` attribute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

__all__ = ["HelpScreen", "HelpSection"]

HelpSection = tuple[str, Sequence[tuple[str, str]]]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-box {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", show=True),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (("Escape", "close the help"),)

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self.sections = list(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            for title, keys in self.sections:
                table = Table(box=None, show_header=False, padding=(0, 2), expand=True)
                table.add_column("key", no_wrap=True, style="bold", min_width=14)
                table.add_column("what")
                for key, what in keys:
                    table.add_row(key, what)
                yield Static(Text(title, style="bold underline"), classes="help-title")
                yield Static(table, classes="help-keys")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "Keys"

    def action_close(self) -> None:
        self.dismiss(None)
