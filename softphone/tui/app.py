"""The Textual application. Until the TUI issue lands this is a small status screen: it shows
what the headless commands can do, so ``softphone`` with no command never fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from softphone.config import Config


def run_tui(config: Config) -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, Static

    accounts = ", ".join(f"{a.name} <{a.uri}>" for a in config.accounts) or "none configured"

    class SoftphoneApp(App[None]):
        TITLE = "softphone"
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield Header()
            yield Static(
                f"Accounts: {accounts}\n\n"
                "The full interface is on its way. Meanwhile:\n"
                "  softphone dial sip:bob@example.com --duration 30\n"
                "  softphone listen --auto-answer\n",
                id="placeholder",
            )
            yield Footer()

    SoftphoneApp().run()
    return 0
