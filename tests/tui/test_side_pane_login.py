"""The login a camera asks for, in the app against FakePhone and a scripted player: the prompt
(password masked), the retry with the login, the camera saved in the config only once the
stream plays (a wrong login is never saved), and the password nowhere on screen."""

from __future__ import annotations

import asyncio
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from phone_fake import FakePhone
from textual.widgets import Checkbox, Input
from tui_support import until

from softphone.config import Config
from softphone.phone import events as pe
from softphone.tui.app import make_app
from softphone.tui.screens.login import LoginScreen
from softphone.tui.widgets.pane_state import PaneState

GOOD = ("viewer", "s3cret#pw")


class Camera:
    """A player for a camera that wants the login GOOD: 401 without it, plays with it."""

    def __init__(self, url: str, login: tuple[str, str] | None) -> None:
        self.url, self.login = url, login
        self.on_picture: Callable[[np.ndarray], None] | None = None
        self.on_state: Callable[[], None] | None = None
        self.events: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()

    title = property(lambda self: self.url)
    plain_url = property(lambda self: self.url)
    camera_name = property(lambda self: "gate")

    def set_video_box(self, width_px: int, height_px: int) -> None:
        pass

    def set_video_decoding(self, enabled: bool) -> None:
        pass

    def overlay(self) -> str:
        return "fake"

    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int:
        if self.login != GOOD:
            self.events.put_nowait(
                pe.StreamFailed(reason="DESCRIBE: 401 Unauthorized: wrong login", status=401)
            )
            return 1
        self.events.put_nowait(pe.StreamPlaying(transport="tcp", range_start=None, range_end=None))
        await stop.wait()
        return 0


async def test_a_wrong_login_is_asked_again_and_only_the_right_one_is_saved(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    made: list[Camera] = []

    def factory(text: str, config: Config, login: tuple[str, str] | None) -> Camera:
        made.append(Camera(text, login))
        return made[-1]

    phone = FakePhone()
    app = make_app(Config(path=path), phone, config_path=path, player_factory=factory)
    async with app.run_test(size=(120, 36)) as pilot:
        side = app.main.side
        app.main.open_stream("rtsp://gate.test/live")

        async def log_in(password: str) -> None:
            await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the prompt")
            screen = app.screen
            assert screen.query_one("#login-password", Input).password
            screen.query_one("#login-user", Input).value = GOOD[0]
            screen.query_one("#login-password", Input).value = password
            screen.query_one("#login-save", Checkbox).value = True
            screen.query_one("#login-password", Input).focus()
            await pilot.press("enter")

        await log_in("wrong")
        await until(pilot, lambda: len(made) == 2 and side.state is PaneState.LOGIN, what="again")
        assert made[1].login == (GOOD[0], "wrong") and not path.exists()
        await log_in(GOOD[1])
        await until(pilot, lambda: side.state is PaneState.PLAYING, what="playing")
        await until(pilot, lambda: path.is_file(), what="the camera saved")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert tomllib.loads(path.read_text())["camera"] == [
            {
                "name": "gate",
                "url": "rtsp://gate.test/live",
                "username": GOOD[0],
                "password": GOOD[1],
            }
        ]
        assert [c.name for c in app.config.cameras] == ["gate"]
        shown = [app.export_screenshot(), *app.main.messages.texts, str(side.border_title)]
        assert not any(GOOD[1] in text for text in shown)


async def test_a_cancelled_login_is_a_failure_said_in_the_messages(tmp_path: Path) -> None:
    def factory(text: str, config: Config, login: tuple[str, str] | None) -> Camera:
        return Camera(text, login)

    phone = FakePhone()
    app = make_app(Config(), phone, player_factory=factory)
    async with app.run_test(size=(120, 36)) as pilot:
        app.main.open_stream("rtsp://gate.test/live")
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="the prompt")
        await pilot.press("escape")
        await until(pilot, lambda: app.main.side.state is PaneState.FAILED, what="failed")
        assert any("asks for a login" in t and "401" in t for t in app.main.messages.texts)
