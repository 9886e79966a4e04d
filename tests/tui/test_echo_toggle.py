"""Echo cancellation in the TUI, against FakePhone: ``e`` on the main screen switches it on the
phone at once, says so and saves it in the config; when the phone cannot (no sound card, the
canceller missing) the reason is shown and nothing is saved; the key is in the help and the
command palette."""

from __future__ import annotations

from pathlib import Path

from phone_fake import FakePhone
from tui_support import until

from softphone.config import Config, load_config
from softphone.tui.app import make_app
from softphone.tui.screens.main_actions import MAIN_HELP


async def test_e_switches_echo_cancellation_and_saves_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    phone = FakePhone()
    app = make_app(Config(path=path), phone, config_path=path)
    async with app.run_test(size=(120, 30)) as pilot:
        texts = app.main.messages.texts
        await pilot.press("escape", "e")  # out of the dial bar, then the key
        await until(pilot, lambda: "echo cancellation off" in texts, what="off")
        await until(pilot, lambda: path.exists(), what="saved")
        assert phone.echo_cancellation is False
        assert load_config(path).echo_cancellation is False
        await pilot.press("e")
        await until(pilot, lambda: texts.count("echo cancellation on") == 1, what="on")
        await until(pilot, lambda: load_config(path).echo_cancellation, what="saved on")
        assert [c for c in phone.calls_made if c[0] == "set_echo_cancellation"] == [
            ("set_echo_cancellation", {"on": False}),
            ("set_echo_cancellation", {"on": True}),
        ]


async def test_when_the_phone_cannot_the_reason_is_shown_and_nothing_saved(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    phone = FakePhone()
    phone.set_echo_cancellation(False)
    reason = "echo cancellation cannot be turned on: the livekit package is not installed"
    phone.fail_next("set_echo_cancellation", reason)
    app = make_app(Config(path=path, echo_cancellation=False), phone, config_path=path)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("escape", "e")
        await until(pilot, lambda: reason in app.main.messages.texts, what="reason")
        assert not path.exists()
        assert phone.echo_cancellation is False


async def test_the_command_palette_has_it() -> None:
    app = make_app(Config(), FakePhone())
    async with app.run_test(size=(120, 30)):
        titles = [c.title for c in app.get_system_commands(app.main)]
        assert "Echo cancellation" in titles


def test_the_key_is_in_the_help() -> None:
    assert any(key == "e" and "echo cancellation" in text for key, text in MAIN_HELP)
