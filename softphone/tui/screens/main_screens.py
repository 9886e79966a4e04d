"""The screens the main screen opens: a call's SIP ladder, the SIP flows, the history and the
contacts (Enter on a row calls it), the settings (accounts saved there apply to the phone at
once; what waits for a restart is said), the help; do-not-disturb's quick key (``D``, saved in
the config like the settings) and echo cancellation's (``e``, the same); and quitting, which lets the calls just hung up reach the
history first.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from textual import work

from softphone.config import Config, ConfigError, default_config_path, save_config
from softphone.config_forwarding import DND_RESPONSE_NAMES, DndResponse, with_forwarding
from softphone.phone.errors import PhoneError
from softphone.tui.screens.help import HelpScreen
from softphone.tui.screens.main_actions import help_sections
from softphone.tui.screens.main_base import AppShell
from softphone.tui.screens.main_calls import MainWithCalls

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from softphone.phone.devices import DeviceService

__all__ = ["MainWithScreens"]


def responses(config: Config) -> set[DndResponse]:
    """The statuses do-not-disturb refuses calls with, over the accounts."""
    return {a.forwarding.dnd_response for a in config.accounts}


class MainWithScreens(MainWithCalls):
    """The main screen with the screens it opens, and quitting."""

    def action_trace(self) -> None:
        call = self._need_call()
        if call is None:
            return
        from softphone.tui.screens.trace import TraceScreen

        self.app.push_screen(TraceScreen(self.phone, call.call_id))

    def action_flows(self) -> None:
        from softphone.tui.screens.flows import FlowsScreen

        self.app.push_screen(FlowsScreen(self.phone))

    def action_history(self) -> None:
        if self.book is None:
            self.app.notify("The history is not available.", severity="warning")
            return
        from softphone.tui.screens.history import HistoryScreen

        screen = HistoryScreen(self.book, self.phone, open_chat=self.inbox.open_text)
        self.app.push_screen(screen, self._call_back)

    def action_contacts(self) -> None:
        if self.book is None:
            self.app.notify("The contacts are not available.", severity="warning")
            return
        from softphone.tui.screens.contacts import ContactsScreen

        domain = None
        accounts = cast(AppShell, self.app).config.accounts  # as last saved in the settings
        if accounts:
            domain = accounts[0].domain
        screen = ContactsScreen(
            self.book,
            phone_domain=domain,
            open_chat=self.inbox.open_contact,
            lamp_of=self.presence.lamp_of,
        )
        self.presence.contacts_screen = screen

        def closed(uri: str | None) -> None:
            self.presence.contacts_screen = None
            self.presence.resync()  # contacts may have been added, edited or deleted
            self._call_back(uri)

        self.app.push_screen(screen, closed)

    def action_voicemail(self) -> None:
        self.voicemail.open(self._call_back)

    def action_presence(self) -> None:
        self.presence.choose()

    def action_message(self) -> None:
        self.inbox.pick()

    def action_reply(self) -> None:
        self.inbox.reply()

    def _call_back(self, uri: str | None) -> None:
        if uri:
            self.dial(uri)

    def action_settings(self, first_run: bool = False) -> None:
        from softphone.tui.screens.settings import SettingsScreen

        app = cast(AppShell, self.app)
        path = self.deps.config_path or app.config.path
        if path is None:
            from softphone.config import default_config_path

            path = default_config_path()
        devices: DeviceService | None = None
        screen = SettingsScreen(
            app.config, path=path, first_run=first_run, devices=devices, on_saved=self.use_config
        )
        self.app.push_screen(screen, self._settings_closed)

    def _settings_closed(self, config: Config | None) -> None:
        if config is not None and config != cast(AppShell, self.app).config:
            self.use_config(config)

    def use_config(self, config: Config) -> None:
        """A saved config: its accounts apply now; say what waits for a restart."""
        from softphone.tui.screens.settings import needs_restart

        app = cast(AppShell, self.app)
        later = needs_restart(app.config, config)
        app.config = config
        self._act(self._apply_accounts(config), "the accounts could not be applied")
        if later:
            self.tell(f"settings saved; {', '.join(later)} apply after a restart", "warning")

    async def _apply_accounts(self, config: Config) -> None:
        await self.phone.apply_accounts(config.accounts)
        self._refresh_status()

    def action_toggle_dnd(self) -> None:
        """Do not disturb on for every account (off when every one has it), saved in the config
        as the settings screen saves it, and applied to the phone at once."""
        accounts = cast(AppShell, self.app).config.accounts
        if not accounts:
            self.tell("no account: add one in the settings (s) first", "warning")
            return
        self._save_dnd(not all(a.forwarding.do_not_disturb for a in accounts))

    @work(group="config", exclusive=True)
    async def _save_dnd(self, on: bool) -> None:
        app = cast(AppShell, self.app)
        config = with_forwarding(app.config, do_not_disturb=on)
        path = self.deps.config_path or config.path or default_config_path()
        try:
            await asyncio.to_thread(save_config, config, path)
        except (OSError, ConfigError) as exc:  # on for now all the same, said so
            self.tell(f"do not disturb is not saved in {path}: {exc}", "warning")
        self.use_config(config)
        if on:
            how = sorted({f"{s} {DND_RESPONSE_NAMES[s]}" for s in responses(config)})
            self.tell(f"do not disturb: calls are refused ({', '.join(how)}); D turns it off")
        else:
            self.tell("do not disturb is off: calls ring again")
        self._refresh_status()

    def action_toggle_echo(self) -> None:
        """Echo cancellation on or off now (for the calls up too), then saved in the config as
        the settings screen saves it. When it cannot run here, the reason and nothing saved."""
        on = not self.phone.echo_cancellation
        try:
            self.phone.set_echo_cancellation(on)
        except PhoneError as exc:
            self.tell(str(exc), "warning")
            return
        self._save_echo(on)

    @work(group="config", exclusive=True)
    async def _save_echo(self, on: bool) -> None:
        app = cast(AppShell, self.app)
        config = replace(app.config, echo_cancellation=on)
        path = self.deps.config_path or config.path or default_config_path()
        try:
            await asyncio.to_thread(save_config, config, path)
        except (OSError, ConfigError) as exc:  # switched all the same, said so
            self.tell(f"echo cancellation is not saved in {path}: {exc}", "warning")
        app.config = config

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_sections()))

    def action_quit(self) -> None:
        # A worker, not an await: while the app hangs up, this screen goes on taking the phone's
        # events, so the calls that end reach the history before the app leaves.
        self.run_worker(cast(AppShell, self.app).action_quit(), group="quit", exclusive=True)

    async def settle_history(self, timeout_s: float = 2.0) -> None:
        """Let the calls the phone just hung up reach the history (the app is quitting)."""
        if self.call_log is not None and not await self.call_log.settle(timeout_s):
            logger.warning("quitting before every call was written to the history")
        await self.inbox.settle(timeout_s)
        await self.voicemail.settle(timeout_s)
