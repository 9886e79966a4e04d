"""SettingsScreen: accounts editor, audio pickers and General tab writing the TOML config."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Button, Input, Label, Select, Static, TabbedContent
from tui_support import until

from softphone.config import Config, load_config, parse_config, save_config
from softphone.phone.devices import DeviceChoice, DeviceService
from softphone.phone.errors import PhoneError
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.settings import (
    PASSWORD_HINT,
    WELCOME,
    AccountForm,
    AccountsTable,
    SettingsScreen,
)

TWO_ACCOUNTS = {
    "account": [
        {
            "name": "work",
            "uri": "sip:alice@example.com",
            "password": "s3cret-w0rk",
            "registrar": "sip:example.com",
            "transport": "tls",
        },
        {"name": "lab", "uri": "sip:alice@lab.test", "transport": "udp"},
    ],
}


class FakeDevices(DeviceService):
    """Lists fixed devices and records what the screen asks of it (no PortAudio)."""

    def __init__(self, choices: list[DeviceChoice] | None = None, error: str | None = None) -> None:
        super().__init__()
        self.choices = choices or []
        self.error = error
        self.tones: list[str | int | None] = []
        self.meters: list[str | int | None] = []

    def list(self) -> list[DeviceChoice]:
        if self.error is not None:
            raise PhoneError(self.error)
        return list(self.choices)

    async def test_tone(self, output: str | int | None, seconds: float = 1.0) -> None:
        self.tones.append(output)

    def start_meter(self, input: str | int | None) -> None:
        self.meters.append(input)

    def mic_level(self) -> float | None:
        return -20.0 if self.meters else None

    def stop_meter(self) -> None:
        pass


DEVICES = [
    DeviceChoice(
        name="Built-in Mic",
        index=0,
        inputs=2,
        outputs=0,
        is_default_input=True,
        is_default_output=False,
    ),
    DeviceChoice(
        name="USB Headset",
        index=3,
        inputs=1,
        outputs=2,
        is_default_input=False,
        is_default_output=False,
    ),
    DeviceChoice(
        name="Speakers",
        index=4,
        inputs=0,
        outputs=2,
        is_default_input=False,
        is_default_output=True,
    ),
]


class Host(App[None]):
    def __init__(self, make: Callable[[], SettingsScreen]) -> None:
        super().__init__()
        self.make = make
        self.results: list[Config | None] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.make(), self.results.append)


def config_file(tmp_path: Path, data: dict[str, Any] | None = None) -> tuple[Config, Path]:
    path = tmp_path / "config.toml"
    config = parse_config(data if data is not None else TWO_ACCOUNTS, path=path)
    save_config(config, path)
    return config, path


def fill(form: AccountForm, **values: str) -> None:
    for key, value in values.items():
        form.query_one(f"#f-{key.replace('_', '-')}", Input).value = value


def form_of(app: App[Any]) -> AccountForm:
    assert isinstance(app.screen, AccountForm)
    return app.screen


def settings_of(app: App[Any]) -> SettingsScreen:
    screen = app.screen_stack[1]
    assert isinstance(screen, SettingsScreen)
    return screen


def notices(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


async def test_add_an_account_and_save_writes_toml_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    app = Host(lambda: SettingsScreen(Config(), path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        form = form_of(app)
        fill(
            form,
            name="home",
            uri="sip:bob@voip.example.org",
            password="pa ss",
            registrar="sip:voip.example.org",
            expires="600",
        )
        form.query_one("#f-transport", Select).value = "tcp"
        form.query_one("#f-media-encryption", Select).value = "srtp"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back on settings")
        assert app.screen.query_one(AccountsTable).row_count == 1
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="the screen dismissed")
    loaded = load_config(path)
    account = loaded.account("home")
    assert str(account.uri) == "sip:bob@voip.example.org" and account.password == "pa ss"
    assert str(account.registrar) == "sip:voip.example.org" and account.transport == "tcp"
    assert account.expires == 600
    assert account.media_encryption == "srtp"
    assert app.results[0] is not None and app.results[0].accounts[0].name == "home"
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"saved to {path}" in notices(app)


async def test_editing_never_shows_the_password_and_empty_keeps_it(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("enter")  # edit the first account (work)
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        form = form_of(app)
        password = form.query_one("#f-password", Input)
        assert password.value == "" and password.password and password.placeholder == PASSWORD_HINT
        assert "s3cret" not in str(form.query_one("#form-hint", Label).render())
        fill(form, display_name="Alice W")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved")
    work = load_config(path).account("work")
    assert work.password == "s3cret-w0rk" and work.display_name == "Alice W"


async def test_an_invalid_uri_is_shown_in_the_form_and_nothing_is_written(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    before = path.read_bytes()
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        form = form_of(app)
        fill(form, name="bad", uri="sip:")
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error", Label)
        await until(pilot, lambda: "uri" in str(error.render()), what="the inline error")
        assert isinstance(app.screen, AccountForm)  # still open, with what was typed
        assert form.query_one("#f-name", Input).value == "bad"
        # a second account with an existing name is refused too
        fill(form, name="work", uri="sip:carol@example.com")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "unique" in str(error.render()), what="the duplicate error")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="form closed")
        assert app.screen.query_one(AccountsTable).row_count == 2
    assert path.read_bytes() == before


async def test_invalid_general_settings_are_reported_and_not_saved(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    before = path.read_bytes()
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = app.screen
        screen.query_one(TabbedContent).active = "general"
        screen.query_one("#codecs", Input).value = "opus, speex"
        await pilot.press("ctrl+s")
        error = screen.query_one("#settings-error", Label)
        await until(pilot, lambda: "unknown codec 'speex'" in str(error.render()), what="error")
        assert app.results == [] and path.read_bytes() == before
        screen.query_one("#codecs", Input).value = "pcmu, opus"
        screen.query_one("#rtp-min", Input).value = "20000"
        screen.query_one("#rtp-max", Input).value = "20100"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved")
    saved = load_config(path)
    assert saved.codecs == ("PCMU", "opus") and (saved.rtp_port_min, saved.rtp_port_max) == (
        20000,
        20100,
    )
    assert saved.account("work").password == "s3cret-w0rk"


async def test_a_write_error_is_a_notification_and_the_screen_stays(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    app = Host(
        lambda: SettingsScreen(Config(), path=blocker / "config.toml", devices=FakeDevices())
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: any(m.startswith("Cannot write") for m in notices(app)), what="a notice"
        )
        assert isinstance(app.screen, SettingsScreen) and app.results == []


async def test_escape_with_changes_asks_to_discard(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    before = path.read_bytes()
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = settings_of(app)
        screen.query_one(TabbedContent).active = "general"
        screen.query_one("#codecs", Input).value = "pcmu"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="discard question")
        assert "Discard changes?" in str(app.screen.query_one("#confirm-question", Label).render())
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="kept editing")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="asked again")
        await pilot.press("y")
        await until(pilot, lambda: app.results == [None], what="dismissed with None")
    assert path.read_bytes() == before  # nothing was written


def saved_with(screen_args: dict[str, Any]) -> tuple[Host, list[Config]]:
    """A Host around a SettingsScreen whose on_saved calls are kept."""
    saved: list[Config] = []
    app = Host(lambda: SettingsScreen(**screen_args, on_saved=saved.append))
    return app, saved


async def test_enter_on_ok_saves_the_new_account_at_once(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    app, saved = saved_with({"config": config, "path": path, "devices": FakeDevices()})
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = settings_of(app)
        screen.query_one(TabbedContent).active = "general"
        screen.query_one("#codecs", Input).value = "pcmu"  # not saved by the account's OK
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        fill(
            form_of(app),
            name="home",
            uri="sip:bob@home.test",
            password="pw",
            registrar="sip:home.test",
        )
        ok = form_of(app).query_one("#form-ok", Button)
        ok.focus()
        await until(pilot, lambda: ok.has_focus, what="OK focused")  # Enter must reach it
        await pilot.press("enter")
        await until(pilot, lambda: len(saved) == 1, what="the accounts saved")
        assert isinstance(app.screen, SettingsScreen) and app.results == []  # it stays open
        assert f"saved to {path}" in notices(app)
    on_disk = load_config(path)
    assert [a.name for a in on_disk.accounts] == ["work", "lab", "home"]
    assert (
        on_disk.account("home").password == "pw"
        and str(on_disk.account("home").registrar) == "sip:home.test"
    )
    assert on_disk.account("work").password == "s3cret-w0rk"
    assert on_disk.codecs == config.codecs  # the General tab waits for ctrl+s
    assert path.stat().st_mode & 0o777 == 0o600
    assert saved[0].accounts == on_disk.accounts


async def test_a_confirmed_delete_and_an_edit_are_saved_at_once(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    app, saved = saved_with({"config": config, "path": path, "devices": FakeDevices()})
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirmation")
        await pilot.press("y")
        await until(pilot, lambda: len(saved) == 1, what="saved after the delete")
        assert [a.name for a in load_config(path).accounts] == ["lab"]
        await pilot.press("enter")  # edit "lab"
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        fill(form_of(app), display_name="Lab Alice")
        await pilot.press("enter")  # Enter in a field: OK
        await until(pilot, lambda: len(saved) == 2, what="saved after the edit")
        await pilot.press("escape")  # nothing unsaved: no question
        await until(pilot, lambda: app.results == [None], what="closed")
    assert load_config(path).account("lab").display_name == "Lab Alice"
    assert saved[1].account("lab").display_name == "Lab Alice"


async def test_an_account_that_cannot_be_written_stays_on_screen_unsaved(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    args = {"config": Config(), "path": blocker / "config.toml", "devices": FakeDevices()}
    app, saved = saved_with(args)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        fill(form_of(app), name="home", uri="sip:bob@home.test")
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: any(m.startswith("Cannot write") for m in notices(app)), what="a notice"
        )
        assert saved == [] and settings_of(app).table.row_count == 1  # kept, unsaved
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="discard question")


async def test_a_new_account_row_is_drawn_whole_at_once(tmp_path: Path) -> None:
    """The row is drawn in full on the first frame after it is added and on every one after."""
    app = Host(lambda: SettingsScreen(Config(), path=tmp_path / "c.toml", devices=FakeDevices()))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = settings_of(app)
        uri, registrar = "sip:bob@voip.example.org", "sip:voip.example.org:5070;transport=udp"
        screen.accounts.append({"name": "home", "uri": uri, "registrar": registrar})
        screen.show_accounts()

        def row() -> str:
            return "".join(segment.text for segment in screen.table.render_line(1))

        assert uri in row() and registrar in row()
        await pilot.pause()
        await pilot.pause()
        assert uri in row() and registrar in row()


async def test_escape_without_changes_closes_at_once(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices(DEVICES)))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await until(
            pilot, lambda: settings_of(app).device_choices == DEVICES, what="devices listed"
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.results == [None], what="closed")


async def test_first_run_opens_the_new_account_form_under_a_welcome(tmp_path: Path) -> None:
    app = Host(
        lambda: SettingsScreen(
            Config(), path=tmp_path / "c.toml", first_run=True, devices=FakeDevices()
        )
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        assert form_of(app).account is None
        settings = app.screen_stack[-2]
        assert str(settings.query_one("#settings-welcome", Label).render()) == WELCOME
        assert settings.query_one(TabbedContent).active == "accounts"
        await pilot.press("escape", "escape")
        await until(pilot, lambda: app.results == [None], what="peer-to-peer only")
    assert not (tmp_path / "c.toml").exists()


async def test_first_run_ok_saves_the_account_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    args = {"config": Config(), "path": path, "first_run": True, "devices": FakeDevices()}
    app, saved = saved_with(args)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        fill(
            form_of(app),
            name="lab",
            uri="sip:alice@lab.test",
            password="alicepw",
            registrar="sip:127.0.0.1:5070",
        )
        form_of(app).query_one("#form-ok", Button).focus()
        await pilot.press("enter")
        await until(pilot, lambda: len(app.results) == 1, what="the settings closed")
    assert app.results[0] is not None and app.results[0].account("lab").password == "alicepw"
    assert saved == app.results
    assert load_config(path).account("lab").password == "alicepw"
    assert path.stat().st_mode & 0o777 == 0o600


async def test_audio_tab_lists_devices_plays_a_tone_and_meters(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    devices = FakeDevices(DEVICES)
    app = Host(lambda: SettingsScreen(config, path=path, devices=devices))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = settings_of(app)
        await until(pilot, lambda: screen.device_choices == DEVICES, what="devices listed")
        screen.query_one(TabbedContent).active = "audio"
        output = screen.query_one("#output-device", Select)
        inputs = screen.query_one("#input-device", Select)
        assert [v for _, v in output._options] == ["@default", "3", "4"]
        assert [v for _, v in inputs._options] == ["@default", "0", "3"]
        await until(pilot, lambda: devices.meters == [None], what="the meter started")
        await until(
            pilot,
            lambda: "-20 dBFS" in str(screen.query_one("#mic-level", Label).render()),
            what="a level",
        )
        output.value = "3"
        await pilot.click("#test-tone")
        await until(pilot, lambda: devices.tones == [3], what="the test tone")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved")
    assert load_config(path).output_device == 3


async def test_no_audio_devices_says_why_and_the_rest_works(tmp_path: Path) -> None:
    config, path = config_file(tmp_path)
    devices = FakeDevices(error="PortAudio is not installed: sudo apt-get install libportaudio2")
    app = Host(lambda: SettingsScreen(config, path=path, devices=devices))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        screen = app.screen
        status = screen.query_one("#audio-status", Label)
        await until(pilot, lambda: "No audio devices" in str(status.render()), what="the reason")
        assert str(status.render()) == (
            "No audio devices found (PortAudio: PortAudio is not installed: "
            "sudo apt-get install libportaudio2)"
        )
        assert screen.query_one("#test-tone", Button).disabled
        screen.query_one(TabbedContent).active = "audio"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved anyway")
    assert devices.meters == []
    assert tomllib.loads(path.read_text())["account"][0]["name"] == "work"


def test_snapshot_accounts_80x24(snap_compare: Any, tmp_path: Path) -> None:
    config, _ = config_file(tmp_path)
    app = Host(
        lambda: SettingsScreen(
            config, path=Path("/nonexistent/config.toml"), devices=FakeDevices(DEVICES)
        )
    )
    assert snap_compare(app, terminal_size=(80, 24))


def test_snapshot_accounts_160x48(snap_compare: Any, tmp_path: Path) -> None:
    config, _ = config_file(tmp_path)
    app = Host(
        lambda: SettingsScreen(
            config, path=Path("/nonexistent/config.toml"), devices=FakeDevices(DEVICES)
        )
    )
    assert snap_compare(app, terminal_size=(160, 48))


async def test_only_from_proxy_is_a_checkbox_that_is_saved_and_shown_again(tmp_path: Path) -> None:
    from textual.widgets import Checkbox

    config, path = config_file(tmp_path)
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("enter")  # edit the first account (work)
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        box = form_of(app).query_one("#f-only-from-proxy", Checkbox)
        assert box.value is False
        box.value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back")
        await pilot.press("enter")  # the form shows it again before anything is saved
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form again")
        assert form_of(app).query_one("#f-only-from-proxy", Checkbox).value is True
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back again")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved")
    assert load_config(path).account("work").only_from_proxy is True
    assert "only_from_proxy = true" in path.read_text()


async def test_editing_an_account_keeps_what_the_form_has_no_field_for(tmp_path: Path) -> None:
    """prack, the session timer, the STUN server, the binding check, presence: set in the file,
    not in the form, so an edit must keep them."""
    file_only = {
        "prack": "required",
        "session_expires": 600,
        "stun_server": "stun.example.com:3478",
        "binding_check": 45,
        "presence": False,
    }
    data = {"account": [{**TWO_ACCOUNTS["account"][1], **file_only}]}
    config, path = config_file(tmp_path, data)
    app = Host(lambda: SettingsScreen(config, path=path, devices=FakeDevices()))
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("enter")  # edit "lab"
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        fill(form_of(app), display_name="Lab Alice")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.results) == 1, what="saved")
    lab = load_config(path).account("lab")
    assert (lab.display_name, lab.prack, lab.session_expires) == ("Lab Alice", "required", 600)
    assert (lab.stun_server, lab.binding_check) == ("stun.example.com:3478", 45)
    assert lab.presence is False
