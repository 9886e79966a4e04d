"""Choosing our presence: :class:`PresenceScreen` lists the states we can publish (available,
away, busy, do not disturb) with a note to go with them, and dismisses with the choice (or None
on Escape). ``P`` on the main screen and "Presence" in the command palette open it."""

from __future__ import annotations

from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from softphone.phone.api import ContactPresence, OwnPresence
from softphone.phone.events import PresenceChoice
from softphone.tui.widgets.lamps import lamp_text

__all__ = ["CHOICES", "PresenceChoiceMade", "PresenceScreen"]

# What each state tells the others, as the list shows it.
CHOICES: Final[tuple[tuple[PresenceChoice, str], ...]] = (
    ("available", "others see you can take calls"),
    ("away", "you are not at the phone"),
    ("busy", "you are occupied (shown by itself during a call)"),
    ("dnd", "do not disturb: calls are refused with 480"),
)
PresenceChoiceMade = tuple[PresenceChoice, str | None]


class PresenceScreen(ModalScreen[PresenceChoiceMade | None]):
    """Up/Down choose a state, Tab goes to the note, Enter sets both; Escape cancels."""

    DEFAULT_CSS = """
    PresenceScreen { align: center middle; }
    PresenceScreen #presence-box {
        width: 72;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    PresenceScreen #presence-title { text-style: bold; margin-bottom: 1; }
    PresenceScreen OptionList { height: auto; max-height: 6; margin-bottom: 1; }
    PresenceScreen #presence-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=True)]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("↑ / ↓", "choose a state"),
        ("Tab", "write a note others see beside it"),
        ("Enter", "set it"),
        ("Escape", "cancel"),
    )

    def __init__(self, own: OwnPresence) -> None:
        super().__init__()
        self.own = own

    def compose(self) -> ComposeResult:
        with Vertical(id="presence-box"):
            yield Label("Your presence", id="presence-title")
            options = [
                Option(
                    lamp_text(ContactPresence(uri="", state=state)).append(f" — {meaning}"),
                    id=state,
                )
                for state, meaning in CHOICES
            ]
            yield OptionList(*options, id="presence-states")
            yield Input(
                value=self.own.note or "", placeholder="a note (optional)", id="presence-note"
            )
            yield Label("Enter: set   Tab: note   Escape: cancel", id="presence-hint")
        yield Footer()

    def on_mount(self) -> None:
        states = self.query_one("#presence-states", OptionList)
        states.highlighted = next(i for i, (s, _) in enumerate(CHOICES) if s == self.own.state)
        states.focus()

    def _choose(self) -> None:
        states = self.query_one("#presence-states", OptionList)
        index = states.highlighted if states.highlighted is not None else 0
        note = self.query_one("#presence-note", Input).value.strip() or None
        self.dismiss((CHOICES[index][0], note))

    @on(OptionList.OptionSelected, "#presence-states")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose()

    @on(Input.Submitted, "#presence-note")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose()

    def action_cancel(self) -> None:
        self.dismiss(None)
