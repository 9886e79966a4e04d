"""The login a camera asks for (it answered 401): user, password (masked) and, if wanted, the
name to save it under as a ``[[camera]]`` of the config. Dismisses with a :class:`LoginAnswer`
or None (Escape, Cancel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label

__all__ = ["LoginAnswer", "LoginScreen"]


@dataclass(frozen=True, slots=True)
class LoginAnswer:
    """What was typed. ``save_as``: the camera name to save the login under, or None."""

    username: str
    password: str = field(repr=False)  # never in a log line or a traceback
    save_as: str | None = None


class LoginScreen(ModalScreen[LoginAnswer | None]):
    """Enter in the last field (or OK) logs in; Escape (or Cancel) gives up."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen #login-box {
        width: 70;
        max-width: 95%;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    LoginScreen #login-title { text-style: bold; }
    LoginScreen #login-reason { color: $text-muted; margin-bottom: 1; }
    LoginScreen #login-problem { color: $error; height: auto; }
    LoginScreen Horizontal { height: auto; margin-top: 1; }
    LoginScreen Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=True)]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Tab", "next field"),
        ("Enter", "log in (in the password or camera name field)"),
        ("Escape", "cancel"),
    )

    def __init__(self, title: str, *, reason: str, camera_name: str, username: str = "") -> None:
        super().__init__()
        self.stream_title = title
        self.reason = reason
        self.camera_name = camera_name
        self.username = username

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box"):
            yield Label(f"{self.stream_title} asks for a login", id="login-title")
            yield Label(self.reason, id="login-reason")
            yield Input(value=self.username, placeholder="user name", id="login-user")
            yield Input(placeholder="password", password=True, id="login-password")
            yield Checkbox("Save as a camera in the config, named:", id="login-save")
            yield Input(value=self.camera_name, placeholder="camera name", id="login-camera")
            yield Label("", id="login-problem")
            with Horizontal():
                yield Button("Log in", variant="primary", id="login-ok")
                yield Button("Cancel", id="login-cancel")

    def on_mount(self) -> None:
        self.query_one("#login-user" if not self.username else "#login-password", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "login-user":
            self.query_one("#login-password", Input).focus()
        else:
            self._log_in()

    @on(Button.Pressed, "#login-ok")
    def _ok(self) -> None:
        self._log_in()

    @on(Button.Pressed, "#login-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def _log_in(self) -> None:
        username = self.query_one("#login-user", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        save = self.query_one("#login-save", Checkbox).value
        name = self.query_one("#login-camera", Input).value.strip()
        problem = ""
        if not username:
            problem = "The user name is empty."
        elif save and not name:
            problem = "The camera needs a name to be saved under."
        if problem:
            self.query_one("#login-problem", Label).update(problem)
            return
        self.dismiss(LoginAnswer(username, password, name if save else None))

    def action_cancel(self) -> None:
        self.dismiss(None)
