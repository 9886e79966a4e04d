"""The messages area: notices, errors with their reasons, calls ended, transfer progress."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from rich.text import Text
from textual.widgets import RichLog

__all__ = ["MessagesLog"]

Level = Literal["info", "warning", "error"]
_STYLES: dict[str, str] = {"info": "", "warning": "bold", "error": "bold reverse"}


class MessagesLog(RichLog):
    """A log of lines prefixed with the wall-clock time; :attr:`texts` keeps the plain lines."""

    DEFAULT_CSS = """
    MessagesLog {
        height: 6;
        border: round $primary-muted;
        border-title-color: $text-accent;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, clock: Callable[[], float], id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=500)
        self._clock = clock
        self.texts: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "Messages"

    def say(self, text: str, level: Level = "info") -> None:
        stamp = datetime.fromtimestamp(self._clock()).strftime("%H:%M:%S")
        self.texts.append(text)
        line = Text(f"{stamp} ")
        line.append(text, style=_STYLES[level])
        self.write(line)
