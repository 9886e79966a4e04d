"""The account editor of the settings screen (screens/settings.py): :class:`AccountForm`, a
modal that adds or edits one account, its forwarding and do-not-disturb included, and checks it
with :func:`~softphone.config.parse_config` (a ConfigError is shown inline and the form keeps
what was typed). Its password field is always empty: left empty while editing an account that
has one, the stored password is kept.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select

from softphone.config import (
    DEFAULT_MEDIA_ENCRYPTION,
    MEDIA_ENCRYPTIONS,
    TRANSPORTS,
    ConfigError,
    parse_config,
)
from softphone.config_forwarding import DND_RESPONSE_NAMES, DND_RESPONSES

__all__ = ["PASSWORD_HINT", "AccountForm", "number_or_text"]

PASSWORD_HINT: Final = "leave empty to keep the current password"

# Form field id -> config key, in form order (the transport is a Select, handled apart).
_TEXT_FIELDS: Final = (
    ("f-name", "name", "Name", "work"),
    ("f-uri", "uri", "SIP URI", "sip:alice@example.com"),
    ("f-display-name", "display_name", "Display name", "Alice"),
    ("f-username", "username", "Username", "default: the URI's user"),
    ("f-password", "password", "Password", ""),
    ("f-registrar", "registrar", "Registrar", "sip:example.com (empty: no registration)"),
    ("f-proxy", "proxy", "Outbound proxy", "sip:proxy.example.com (optional)"),
    ("f-expires", "expires", "Expires (s)", "3600"),
    ("f-tls-ca-file", "tls_ca_file", "TLS CA file", "/path/ca.pem (optional)"),
)


# Forwarding (config_forwarding.py): field id -> config key, after the media encryption.
_FORWARD_FIELDS: Final = (
    (
        "f-forward-always",
        "forward_always",
        "Forward always",
        "sip:bob@example.com, 1002 (empty: no)",
    ),
    ("f-forward-busy", "forward_busy", "Forward if busy", "while on a call, or refused as busy"),
    ("f-forward-no-answer", "forward_no_answer", "Forward no answer", "after the seconds below"),
    ("f-forward-after", "forward_no_answer_after", "No answer after (s)", "20"),
)


# The answering machine (answering_machine.py), after the do-not-disturb fields.
_VOICEMAIL_FIELDS: Final = (
    ("f-voicemail-after", "voicemail_after", "Voicemail after (s)", "20"),
    ("f-voicemail-greeting", "voicemail_greeting", "Greeting WAV", "empty: a chime"),
    ("f-voicemail-max", "voicemail_max", "Message max (min)", "3"),
)
_NUMBERS: Final = frozenset({"forward_no_answer_after", "voicemail_after", "voicemail_max"})
# Every key the form has a field for; an emptied field removes its key, the others are kept.
_FORM_KEYS: Final = frozenset(
    {key for _, key, _, _ in (*_TEXT_FIELDS, *_FORWARD_FIELDS, *_VOICEMAIL_FIELDS)}
    | {"transport", "only_from_proxy", "media_encryption", "voicemail", "do_not_disturb"}
    | {"do_not_disturb_response"}
)


# The media_encryption values as the form shows them (the config file's words in brackets).
_ENCRYPTION_LABELS: Final = {
    "none": "Off (none)",
    "srtp-optional": "SRTP when the peer can (srtp-optional)",
    "srtp": "SRTP required (srtp)",
    "dtls-srtp": "DTLS-SRTP required (dtls-srtp)",
}


def number_or_text(text: str) -> int | str:
    """A whole number as int; anything else as typed, for parse_config to name the mistake."""
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


class AccountForm(ModalScreen[dict[str, Any] | None]):
    """Add or edit one account; dismisses with its config dict (validated) or None.

    ``others`` are the other accounts' dicts: the new one is validated together with them
    (unique names). ``account`` is the dict being edited (None: a new account); its password is
    never put in the form, and an empty password field keeps it.
    """

    DEFAULT_CSS = """
    AccountForm { align: center middle; }
    AccountForm #form-box {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    AccountForm #form-title { text-style: bold; }
    AccountForm #form-fields { grid-size: 2; grid-columns: 16 1fr; grid-rows: 1; height: auto; }
    AccountForm #form-fields Label { color: $text-muted; }
    AccountForm #form-error { color: $text-error; height: auto; }
    AccountForm #form-hint { color: $text-muted; }
    AccountForm #form-buttons { height: auto; align-horizontal: right; }
    AccountForm Button { margin: 0 1; min-width: 10; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "OK", show=True, priority=True),
        Binding("escape", "cancel", "Cancel", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Tab / Shift+Tab", "next / previous field"),
        ("Enter / ctrl+s", "check the account and close the form"),
        ("Escape", "cancel"),
    )

    def __init__(self, account: dict[str, Any] | None, others: list[dict[str, Any]]) -> None:
        super().__init__()
        self.account = account
        self.others = others
        self.has_password = bool(account and account.get("password"))

    def compose(self) -> ComposeResult:
        acct = self.account or {}
        title = f"Edit account {acct['name']!r}" if acct else "New account"
        with VerticalScroll(id="form-box"):  # taller than a small terminal: it scrolls
            yield Label(Text(title), id="form-title")
            with Grid(id="form-fields"):
                for field_id, key, label, placeholder in _TEXT_FIELDS:
                    yield Label(label)
                    if key == "password":
                        yield Input(
                            "",
                            placeholder=PASSWORD_HINT if self.has_password else "",
                            password=True,
                            id=field_id,
                            compact=True,
                        )
                        continue
                    value = acct.get(key)
                    yield Input(
                        "" if value is None else str(value),
                        placeholder=placeholder,
                        id=field_id,
                        compact=True,
                    )
                yield Label("Transport")
                yield Select(
                    [(t.upper(), t) for t in TRANSPORTS],
                    value=str(acct.get("transport", "udp")),
                    allow_blank=False,
                    id="f-transport",
                    compact=True,
                )
                yield Label("Calls")
                yield Checkbox(
                    "only through the registrar/proxy",
                    value=bool(acct.get("only_from_proxy", False)),
                    id="f-only-from-proxy",
                    compact=True,
                    tooltip="Refuse (403) calls and other requests that do not come from this "
                    "account's registrar or outbound proxy: a direct call bypassing it rings "
                    "nothing.",
                )
                yield Label("Media encryption")
                yield Select(
                    [(_ENCRYPTION_LABELS[e], e) for e in MEDIA_ENCRYPTIONS],
                    value=str(acct.get("media_encryption", DEFAULT_MEDIA_ENCRYPTION)),
                    allow_blank=False,
                    id="f-media-encryption",
                    compact=True,
                )
                for field_id, key, label, placeholder in _FORWARD_FIELDS:
                    yield Label(label)
                    value = acct.get(key)
                    yield Input(
                        "" if value is None else str(value),
                        placeholder=placeholder,
                        id=field_id,
                        compact=True,
                    )
                yield Label("Do not disturb")
                yield Checkbox(
                    "refuse calls",
                    value=bool(acct.get("do_not_disturb", False)),
                    id="f-dnd",
                    compact=True,
                    tooltip="Calls are refused (Forward always still forwards them). D on the "
                    "main screen turns it on and off for every account.",
                )
                yield Label("Refuse with")
                yield Select(
                    [(f"{s} {DND_RESPONSE_NAMES[s]}", s) for s in DND_RESPONSES],
                    value=int(acct.get("do_not_disturb_response", 486)),
                    allow_blank=False,
                    id="f-dnd-response",
                    compact=True,
                )
                yield Label("Voicemail")
                yield Checkbox(
                    "answering machine",
                    value=bool(acct.get("voicemail", False)),
                    id="f-voicemail",
                    compact=True,
                    tooltip="Unanswered calls (and, with do not disturb, every call) hear the "
                    "greeting and leave a message: w on the main screen lists them.",
                )
                for field_id, key, label, placeholder in _VOICEMAIL_FIELDS:
                    yield Label(label)
                    value = acct.get(key)
                    yield Input(
                        "" if value is None else str(value),
                        placeholder=placeholder,
                        id=field_id,
                        compact=True,
                    )
            if self.has_password:
                yield Label(f"Password: {PASSWORD_HINT}.", id="form-hint")
            yield Label("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("OK", id="form-ok", variant="primary")
                yield Button("Cancel", id="form-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()

    def entered(self) -> dict[str, Any]:
        """The account as typed (empty fields left out; an empty password keeps the old one)."""
        out: dict[str, Any] = {}
        for field_id, key, _, _ in _TEXT_FIELDS:
            text = self.query_one(f"#{field_id}", Input).value.strip()
            if key == "password":
                text = self.query_one(f"#{field_id}", Input).value  # a password may have spaces
                if not text and self.account and self.account.get("password"):
                    text = self.account["password"]
            if text:
                out[key] = number_or_text(text) if key == "expires" else text
        out["transport"] = self.query_one("#f-transport", Select).value
        if self.query_one("#f-only-from-proxy", Checkbox).value:
            out["only_from_proxy"] = True
        encryption = self.query_one("#f-media-encryption", Select).value
        if encryption != DEFAULT_MEDIA_ENCRYPTION:
            out["media_encryption"] = encryption
        for field_id, key, _, _ in (*_FORWARD_FIELDS, *_VOICEMAIL_FIELDS):
            text = self.query_one(f"#{field_id}", Input).value.strip()
            if text:
                out[key] = number_or_text(text) if key in _NUMBERS else text
        if self.query_one("#f-voicemail", Checkbox).value:
            out["voicemail"] = True
        if self.query_one("#f-dnd", Checkbox).value:
            out["do_not_disturb"] = True
        if (response := self.query_one("#f-dnd-response", Select).value) != 486:
            out["do_not_disturb_response"] = response
        # What the form has no field for (set in the file: presence, prack, stun_server,
        # binding_check, the TLS certificate, ...) is kept as it was: an edit never drops it.
        kept = {k: v for k, v in (self.account or {}).items() if k not in _FORM_KEYS}
        return {**out, **kept}

    def action_submit(self) -> None:
        account = self.entered()
        try:
            parse_config({"account": [*self.others, account]})
        except ConfigError as exc:
            self.query_one("#form-error", Label).update(Text(str(exc).removeprefix("config: ")))
            return
        self.dismiss(account)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#form-ok")
    def _ok(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_submit()

    @on(Button.Pressed, "#form-cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()
