"""The accounts and settings editor: it writes the TOML config and never shows a password back.

:class:`SettingsScreen` is a ``Screen[Config | None]`` with three tabs:

- **Accounts**: the configured accounts; ``a`` adds, ``e``/Enter edits, ``d`` deletes (after a
  confirmation). The editor (:class:`AccountForm`, a modal) validates by building the config
  dict and calling :func:`~softphone.config.parse_config`; a ``ConfigError`` is shown inline and
  the form keeps what was typed. Its password field is always empty: left empty while editing an
  account that has one, the stored password is kept. An account change is saved at once (OK in
  the form, or a confirmed delete: the accounts go to the file, the other tabs' edits wait for
  ctrl+s) and handed to ``on_saved``, which the main screen uses to apply it to the phone
  without a restart. In the first-run editor, OK saves and closes the settings.
- **Audio**: input, output and ring device pickers filled from
  :meth:`DeviceService.list <softphone.phone.devices.DeviceService.list>`, a test tone, and a
  microphone meter polled at 10 Hz while the tab is open.
- **General**: codec order, RTP port range, SIP port, do-not-disturb, recordings directory.

``ctrl+s`` validates everything with ``parse_config`` and writes the file with
:func:`~softphone.config.save_config` (atomic, mode 0600) in a worker, then dismisses with the
new Config. Escape with unsaved changes asks first. ``first_run=True`` opens the new-account
form at once, under a welcome line. A write that fails is a notification; what was edited stays
on the screen, unsaved, to be saved again.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    Select,
    Switch,
    TabbedContent,
    TabPane,
)

from softphone.config import (
    Config,
    ConfigError,
    config_to_dict,
    parse_config,
    save_config,
)
from softphone.phone.devices import DeviceChoice, DeviceService
from softphone.phone.errors import PhoneError
from softphone.tui.screens.account_form import PASSWORD_HINT, AccountForm, number_or_text
from softphone.tui.screens.confirm import ConfirmDialog

__all__ = [
    "PASSWORD_HINT",
    "AccountForm",
    "AccountsTable",
    "ConfirmScreen",
    "SettingsScreen",
    "needs_restart",
]

WELCOME: Final = "No config yet: add your SIP account, or press Escape for peer-to-peer calls only"
DEFAULT_DEVICE: Final = "@default"  # the Select value for "the system's default device"
METER_HZ: Final = 10.0
METER_FLOOR_DBFS: Final = -60.0

# What the phone reads only when it starts (accounts apply at once), as the person calls them.
_RESTART_FIELDS: Final = (
    ("sip_port", "the SIP port"),
    ("rtp_port_min", "the RTP ports"),
    ("rtp_port_max", "the RTP ports"),
    ("codecs", "the codecs"),
    ("do_not_disturb", "do not disturb"),
    ("recordings_dir", "the recordings folder"),
    ("input_device", "the audio devices"),
    ("output_device", "the audio devices"),
    ("ring_device", "the audio devices"),
)


def needs_restart(old: Config, new: Config) -> list[str]:
    """The settings that changed from ``old`` to ``new`` and take effect at the next start."""
    out: list[str] = []
    for key, label in _RESTART_FIELDS:
        if getattr(old, key) != getattr(new, key) and label not in out:
            out.append(label)
    return out


def _device_value(spec: str | int | None) -> str:
    return DEFAULT_DEVICE if spec is None else str(spec)


def _device_spec(value: object) -> str | int | None:
    if not isinstance(value, str) or value == DEFAULT_DEVICE:
        return None
    return int(value) if value.isdigit() else value


def ConfirmScreen(question: str) -> ConfirmDialog:
    """The shared yes/no modal, worded for settings (Yes rather than Delete)."""
    return ConfirmDialog(question, confirm_label="Yes")


class AccountsTable(DataTable[str]):
    """The accounts list; its keys act on the selected account."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "screen.add_account", "Add", show=True),
        Binding("e", "screen.edit_account", "Edit", show=True),
        Binding("d", "screen.delete_account", "Delete", show=True),
    ]


class SettingsScreen(Screen[Config | None]):
    """Edit ``config`` and save it to ``path``; dismisses with the saved Config or None."""

    DEFAULT_CSS = """
    SettingsScreen #settings-title { text-style: bold; padding: 0 1; width: 1fr; }
    SettingsScreen #settings-welcome {
        color: $text-accent; text-style: bold; padding: 0 1; width: 1fr; height: auto;
    }
    SettingsScreen #settings-error { color: $text-error; padding: 0 1; height: auto; }
    SettingsScreen TabbedContent { height: 1fr; }
    SettingsScreen AccountsTable { height: 1fr; }
    SettingsScreen .settings-grid { grid-size: 2; grid-columns: 22 1fr; grid-rows: 3; height: auto; }
    SettingsScreen .settings-grid Label { padding: 1 0 0 1; color: $text-muted; }
    SettingsScreen #audio-status { padding: 0 1; color: $text-warning; height: auto; }
    SettingsScreen #audio-actions { height: auto; padding: 0 1; }
    SettingsScreen #mic-level { padding: 1 1 0 1; }
    SettingsScreen #mic-meter { padding: 1 0 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", show=True, priority=True),
        Binding("escape", "cancel", "Back", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ctrl+s", "save the config file and close"),
        ("Escape", "close (asks when there are unsaved changes)"),
        ("a", "add an account (Accounts tab)"),
        ("e / Enter", "edit the selected account"),
        ("d", "delete the selected account"),
        ("Tab / Shift+Tab", "move between fields"),
    )

    def __init__(
        self,
        config: Config,
        *,
        path: Path,
        first_run: bool = False,
        devices: DeviceService | None = None,
        on_saved: Callable[[Config], None] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.path = path
        self.first_run = first_run
        self.devices = devices if devices is not None else DeviceService()
        self.on_saved = on_saved
        base = config_to_dict(config)
        self.accounts: list[dict[str, Any]] = copy.deepcopy(list(base.get("account", [])))
        self._initial: dict[str, Any] | None = None
        self._meter_timer: Timer | None = None
        self.device_choices: list[DeviceChoice] = []
        self.saved: Config | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        cfg = self.config
        yield Label(Text(f"Settings: {self.path}"), id="settings-title")
        if self.first_run:
            yield Label(WELCOME, id="settings-welcome")
        with TabbedContent(initial="accounts", id="settings-tabs"):
            with TabPane("Accounts", id="accounts"):
                table: AccountsTable = AccountsTable(id="accounts-table", cursor_type="row")
                yield table
            with TabPane("Audio", id="audio"):
                with VerticalScroll():
                    yield Label("Looking for audio devices…", id="audio-status")
                    with Grid(classes="settings-grid"):
                        for key, label in (
                            ("input", "Microphone"),
                            ("output", "Speaker"),
                            ("ring", "Ring on"),
                        ):
                            yield Label(label)
                            spec = getattr(cfg, f"{key}_device")
                            yield Select(
                                self._device_options(key, spec),
                                value=_device_value(spec),
                                allow_blank=False,
                                id=f"{key}-device",
                            )
                    with Horizontal(id="audio-actions"):
                        yield Button("Test tone", id="test-tone")
                        yield ProgressBar(
                            total=-METER_FLOOR_DBFS,
                            show_percentage=False,
                            show_eta=False,
                            id="mic-meter",
                        )
                        yield Label("microphone: off", id="mic-level")
            with TabPane("General", id="general"):
                with VerticalScroll(), Grid(classes="settings-grid"):
                    yield Label("Codecs (in order)")
                    yield Input(
                        ", ".join(c.lower() for c in cfg.codecs),
                        id="codecs",
                        placeholder="opus, g722, pcmu, pcma",
                    )
                    yield Label("RTP ports from")
                    yield Input(str(cfg.rtp_port_min), id="rtp-min")
                    yield Label("RTP ports to")
                    yield Input(str(cfg.rtp_port_max), id="rtp-max")
                    yield Label("SIP port")
                    yield Input(
                        "" if cfg.sip_port is None else str(cfg.sip_port),
                        id="sip-port",
                        placeholder="5060 (a free one when taken)",
                    )
                    yield Label("Do not disturb")
                    yield Switch(cfg.do_not_disturb, id="dnd")
                    yield Label("Recordings folder")
                    yield Input(
                        "" if cfg.recordings_dir is None else str(cfg.recordings_dir),
                        id="recordings-dir",
                        placeholder="default: the data folder",
                    )
        yield Label("", id="settings-error")
        yield Footer()

    def _device_options(self, key: str, spec: str | int | None) -> list[tuple[str, str]]:
        options = [("System default", DEFAULT_DEVICE)]
        for d in self.device_choices:
            if (d.inputs if key == "input" else d.outputs) > 0:
                options.append((d.label, str(d.index)))
        if spec is not None and all(value != str(spec) for _, value in options):
            options.append((f"{spec} (from the config)", str(spec)))
        return options

    def on_mount(self) -> None:
        self.show_accounts()
        self.table.focus()
        self._initial = self.collect()
        self._list_devices()
        if self.first_run:
            self.action_add_account()

    def on_unmount(self) -> None:
        self._stop_meter()

    @property
    def table(self) -> AccountsTable:
        return self.query_one("#accounts-table", AccountsTable)

    def show_accounts(self) -> None:
        """Fill the table from :attr:`accounts`, keeping the cursor's row."""
        table = self.table
        keep = table.cursor_row
        labels = ("Name", "URI", "Registrar", "Transport")
        rows = [
            (
                str(acct["name"]),
                str(acct["uri"]),
                str(acct.get("registrar", "—")),
                str(acct.get("transport", "udp")),
            )
            for acct in self.accounts
        ]
        table.clear(columns=True)
        # Widths are given rather than measured by DataTable: it measures new rows on its next
        # idle, and a line drawn before that stays cached at the header's width, so a row added
        # while the screen is shown would stay cut off until the table is built again.
        for i, label in enumerate(labels):
            table.add_column(label, width=max(cell_len(r[i]) for r in [labels, *rows]))
        for acct, row in zip(self.accounts, rows, strict=True):
            table.add_row(*row, key=acct["name"])
        if self.accounts:
            table.move_cursor(row=min(keep, len(self.accounts) - 1))

    # ------------------------------------------------------------------ accounts
    def action_add_account(self) -> None:
        self.app.push_screen(AccountForm(None, list(self.accounts)), self._added)

    def _added(self, account: dict[str, Any] | None) -> None:
        if account is not None:
            self.accounts.append(account)
            self.show_accounts()
            self.table.move_cursor(row=len(self.accounts) - 1)
            self.save_accounts()

    def _selected_index(self) -> int | None:
        row = self.table.cursor_row
        return row if 0 <= row < len(self.accounts) else None

    def action_edit_account(self) -> None:
        index = self._selected_index()
        if index is None:
            self.notify("No account selected: press a to add one", severity="warning")
            return
        others = [a for i, a in enumerate(self.accounts) if i != index]

        def edited(account: dict[str, Any] | None) -> None:
            if account is not None and account != self.accounts[index]:
                self.accounts[index] = account
                self.show_accounts()
                self.save_accounts()

        self.app.push_screen(AccountForm(self.accounts[index], others), edited)

    @on(DataTable.RowSelected, "#accounts-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit_account()

    def action_delete_account(self) -> None:
        index = self._selected_index()
        if index is None:
            return
        name = self.accounts[index]["name"]

        def answered(yes: bool | None) -> None:
            if yes and index < len(self.accounts) and self.accounts[index]["name"] == name:
                del self.accounts[index]
                self.show_accounts()
                self.save_accounts()

        self.app.push_screen(ConfirmScreen(f"Delete the account {name!r}?"), answered)

    # ------------------------------------------------------------------ collecting and saving
    def collect(self) -> dict[str, Any]:
        """The config dict the screen shows now (not validated)."""
        data = config_to_dict(self.config)  # keeps cameras, user_agent and unknown keys
        for key in (
            "account",
            "codecs",
            "rtp_port_min",
            "rtp_port_max",
            "sip_port",
            "do_not_disturb",
            "recordings_dir",
            "input_device",
            "output_device",
            "ring_device",
        ):
            data.pop(key, None)
        if self.accounts:
            data["account"] = copy.deepcopy(self.accounts)
        codecs = [c.strip() for c in self.query_one("#codecs", Input).value.split(",")]
        data["codecs"] = [c for c in codecs if c]
        data["rtp_port_min"] = number_or_text(self.query_one("#rtp-min", Input).value)
        data["rtp_port_max"] = number_or_text(self.query_one("#rtp-max", Input).value)
        sip_port = self.query_one("#sip-port", Input).value.strip()
        if sip_port:
            data["sip_port"] = number_or_text(sip_port)
        if self.query_one("#dnd", Switch).value:
            data["do_not_disturb"] = True
        recordings = self.query_one("#recordings-dir", Input).value.strip()
        if recordings:
            data["recordings_dir"] = recordings
        for key in ("input", "output", "ring"):
            spec = _device_spec(self.query_one(f"#{key}-device", Select).value)
            if spec is not None:
                data[f"{key}_device"] = spec
        return data

    @property
    def dirty(self) -> bool:
        return self._initial is not None and self.collect() != self._initial

    def action_save(self) -> None:
        try:
            config = parse_config(self.collect(), path=self.path)
        except ConfigError as exc:
            message = str(exc).removeprefix(f"{self.path}: ")
            self.query_one("#settings-error", Label).update(Text(message))
            self.notify(message, title="Not saved", severity="error")
            return
        self.query_one("#settings-error", Label).update("")
        self._save(config)

    def save_accounts(self) -> None:
        """Save the accounts as the table shows them, with the rest of the config as it was
        last saved (other tabs' edits wait for ctrl+s), then hand the config to ``on_saved``."""
        data = config_to_dict(self.config)
        data.pop("account", None)
        if self.accounts:
            data["account"] = copy.deepcopy(self.accounts)
        try:
            config = parse_config(data, path=self.path)
        except ConfigError as exc:  # the form validated each account: not expected
            message = str(exc).removeprefix(f"{self.path}: ")
            self.query_one("#settings-error", Label).update(Text(message))
            self.notify(message, title="Not saved", severity="error")
            return
        self._save(config, close=self.first_run)

    @work(exclusive=True, group="settings-save")
    async def _save(self, config: Config, *, close: bool = True) -> None:
        try:
            path = await asyncio.to_thread(save_config, config, self.path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.notify(f"Cannot write {self.path}: {reason}", title="Not saved", severity="error")
            return
        self.saved = self.config = config
        if self._initial is not None:  # what is saved is no longer a change
            self._initial.pop("account", None)
            if self.accounts:
                self._initial["account"] = copy.deepcopy(self.accounts)
        self.notify(f"saved to {path}")
        if self.on_saved is not None:
            self.on_saved(config)
        if close:
            self.dismiss(config)

    def action_cancel(self) -> None:
        if not self.dirty:
            self.dismiss(None)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmScreen("Discard changes?"), answered)

    # ------------------------------------------------------------------ audio
    @work(exclusive=True, group="settings-devices")
    async def _list_devices(self) -> None:
        status = self.query_one("#audio-status", Label)
        try:
            choices = await asyncio.to_thread(self.devices.list)
        except PhoneError as exc:
            choices, reason = [], str(exc)
        else:
            reason = "it lists no devices"
        self.device_choices = choices
        initial = self._initial
        for key in ("input", "output", "ring"):
            select = self.query_one(f"#{key}-device", Select)
            value = select.value
            select.set_options(self._device_options(key, _device_spec(value)))
            select.value = value
        if initial is not None and self._initial is initial:
            self._initial = self.collect()  # new options are not a change
        has_output = any(d.outputs > 0 for d in choices)
        self.query_one("#test-tone", Button).disabled = not has_output
        if choices:
            status.update("")
            status.display = False
        else:
            status.update(Text(f"No audio devices found (PortAudio: {reason})"))
        if self.query_one(TabbedContent).active == "audio":
            self._start_meter()

    @on(Button.Pressed, "#test-tone")
    def _test_tone_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._play_tone(_device_spec(self.query_one("#output-device", Select).value))

    @work(exclusive=True, group="settings-tone")
    async def _play_tone(self, output: str | int | None) -> None:
        button = self.query_one("#test-tone", Button)
        button.disabled = True
        try:
            await self.devices.test_tone(output)
        except PhoneError as exc:
            self.notify(str(exc), severity="error")
        finally:
            button.disabled = False

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "audio":
            self._start_meter()
        else:
            self._stop_meter()

    @on(Select.Changed, "#input-device")
    def _input_changed(self, event: Select.Changed) -> None:
        if self._meter_timer is not None:
            self._start_meter()

    def _start_meter(self) -> None:
        if not any(d.inputs > 0 for d in self.device_choices):
            return
        self._stop_meter()
        self._open_meter(_device_spec(self.query_one("#input-device", Select).value))

    @work(exclusive=True, group="settings-meter")
    async def _open_meter(self, spec: str | int | None) -> None:
        try:
            await asyncio.to_thread(self.devices.start_meter, spec)
        except PhoneError as exc:
            self.query_one("#mic-level", Label).update(Text(f"microphone: {exc}"))
            return
        self._meter_timer = self.set_interval(1.0 / METER_HZ, self._poll_meter)

    def _poll_meter(self) -> None:
        level = self.devices.mic_level()
        label = self.query_one("#mic-level", Label)
        bar = self.query_one("#mic-meter", ProgressBar)
        if level is None:
            label.update("microphone: off")
            bar.update(progress=0)
            return
        label.update(f"microphone: {level:.0f} dBFS")
        bar.update(progress=max(0.0, level - METER_FLOOR_DBFS))

    def _stop_meter(self) -> None:
        if self._meter_timer is not None:
            self._meter_timer.stop()
            self._meter_timer = None
        self.devices.stop_meter()
