"""The incoming call modal: caller and account; answer, reject or silence the ringing.

Dismisses with ``"answer"`` or ``"reject"`` (the main screen acts, so errors are reported in one
place), or ``None`` when the call stops ringing by itself (answered elsewhere, cancelled): the
main screen calls :meth:`IncomingScreen.call_gone`. Silence (``s``) stops the ring here and keeps
the modal, so the call can still be answered. A second call while one is up is not shown here:
the main screen says "call waiting" (notification + the row's ``waiting`` flag).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label

from softphone.phone.api import PhoneApi
from softphone.phone.errors import PhoneError

__all__ = ["IncomingChoice", "IncomingScreen"]

IncomingChoice = Literal["answer", "reject"]


class IncomingScreen(ModalScreen[IncomingChoice | None]):
    DEFAULT_CSS = """
    IncomingScreen { align: center middle; }
    IncomingScreen #incoming-box {
        width: 60;
        max-width: 90%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    IncomingScreen #incoming-title { text-style: bold; color: $text-accent; }
    IncomingScreen #incoming-caller { text-style: bold; margin-top: 1; }
    IncomingScreen #incoming-uri, IncomingScreen #incoming-account { color: $text-muted; }
    IncomingScreen #incoming-keys { margin-top: 1; }
    IncomingScreen #incoming-silenced { color: $text-warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "answer", "Answer", show=True),
        Binding("enter", "answer", "Answer", show=False),
        Binding("h", "reject", "Reject", show=True),
        Binding("r", "reject", "Reject", show=False),
        Binding("s", "silence", "Silence", show=True),
        Binding("escape", "hide", "Hide", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("a / Enter", "answer the call"),
        ("h / r", "reject the call"),
        ("s", "silence the ringing (the call keeps ringing for the caller)"),
        ("Escape", "hide this window (the call stays in the calls list)"),
    )

    def __init__(
        self, phone: PhoneApi, call_id: str, *, caller: str, uri: str, account: str
    ) -> None:
        super().__init__()
        self.phone = phone
        self.call_id = call_id
        self.caller = caller
        self.uri = uri
        self.account = account
        self.silenced = False

    def compose(self) -> ComposeResult:
        with Vertical(id="incoming-box"):
            yield Label("☎  Incoming call", id="incoming-title")
            yield Label(self.caller, id="incoming-caller")
            if self.uri != self.caller:
                yield Label(self.uri, id="incoming-uri")
            yield Label(f"to account {self.account}", id="incoming-account")
            yield Label("", id="incoming-silenced")
            yield Label("[a] answer   [h] reject   [s] silence", id="incoming-keys", markup=False)
        yield Footer()

    def action_answer(self) -> None:
        self.dismiss("answer")

    def action_reject(self) -> None:
        self.dismiss("reject")

    def action_hide(self) -> None:
        self.dismiss(None)

    def action_silence(self) -> None:
        try:
            self.phone.silence(self.call_id)
        except PhoneError as exc:
            self.notify(str(exc), severity="error")
            return
        self.silenced = True
        self.query_one("#incoming-silenced", Label).update("silenced")

    def call_gone(self) -> None:
        """The call stopped ringing (answered elsewhere, cancelled): go away."""
        if self.is_current:
            self.dismiss(None)
