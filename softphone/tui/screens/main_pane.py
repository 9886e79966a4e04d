"""The main screen's side pane wiring: where the pane goes (beside the calls, or in the
quality panel's place under 100 columns, hidden unless toggled on), the keys that open, stop,
show and widen it, and what the pane asks of the screen: a line in the messages area
(``SidePane.Said``), a login for a camera that answered 401 (``SidePane.LoginWanted``, the
prompt of screens/login.py), and saving a login that worked as a camera in the config
(``SidePane.LoginWorked``), the way the settings screen saves it.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal, cast

from textual import on, work
from textual.events import Resize

from softphone.config import ConfigError, save_config
from softphone.config_cameras import Camera
from softphone.tui.screens.login import LoginAnswer, LoginScreen
from softphone.tui.screens.main_base import AppDeps, AppShell, MainBase
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.widgets.side_pane import SidePane

__all__ = ["NARROW_COLUMNS", "PANE_WIDTHS", "MainWithPane", "PaneMode"]

NARROW_COLUMNS: Final = 100
PANE_WIDTHS: Final = ("40%", "55%", "70%")
PaneMode = Literal["auto", "on", "off"]


class MainWithPane(MainBase):
    """The main screen with its side pane wired in."""

    def __init__(self, deps: AppDeps) -> None:
        super().__init__(deps)
        self.pane_mode: PaneMode = "auto"
        self.pane_width = 0
        self.narrow = False

    @property
    def pane_visible(self) -> bool:
        return self.pane_mode == "on" or (self.pane_mode == "auto" and not self.narrow)

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < NARROW_COLUMNS
        self._layout_pane()

    def _layout_pane(self) -> None:
        visible = self.pane_visible
        self.side.display = visible
        self.side.set_shown(visible)
        self.side.styles.width = "50%" if self.narrow else PANE_WIDTHS[self.pane_width]
        self.quality.display = not (self.narrow and visible)

    def action_toggle_pane(self) -> None:
        self.pane_mode = "off" if self.pane_visible else "on"
        self._layout_pane()

    def action_enlarge_pane(self) -> None:
        self.pane_width = (self.pane_width + 1) % len(PANE_WIDTHS)
        if not self.pane_visible:
            self.pane_mode = "on"
        self._layout_pane()

    def action_open_stream(self) -> None:
        def chosen(url: str | None) -> None:
            if url:
                self.open_stream(url)

        self.app.push_screen(
            PromptScreen(
                "Open a stream in the side pane",
                placeholder="rtsp://camera.local/stream or a camera name",
            ),
            chosen,
        )

    def open_stream(
        self, text: str, login: tuple[str, str] | None = None, *, save: Camera | None = None
    ) -> None:
        """Play ``text`` (a URL or a camera's name) in the pane, shown if it was hidden; what
        goes wrong comes back as ``SidePane.Said``; ``save`` comes back as ``LoginWorked`` once
        the stream plays with ``login``."""
        self.side.open(text, login, save=save)
        if not self.pane_visible:
            self.pane_mode = "on"
        self._layout_pane()

    def action_stop_stream(self) -> None:
        if self.side.player is None:
            self.app.notify("No stream is playing.", severity="warning")
            return
        self.side.stop()

    @on(SidePane.Said)
    def _pane_said(self, message: SidePane.Said) -> None:
        self.tell(message.text, message.level, notify=message.level == "error")

    @on(SidePane.LoginWanted)
    def _pane_wants_login(self, message: SidePane.LoginWanted) -> None:
        self.tell(f"{message.title} asks for a login: {message.reason}", "warning", notify=False)
        text, url = message.text, message.url

        def answered(answer: LoginAnswer | None) -> None:
            if answer is None:
                self.side.login_cancelled()
                return
            save = None
            if answer.save_as is not None:
                save = Camera(answer.save_as, url, answer.username, answer.password)
            self.open_stream(text, (answer.username, answer.password), save=save)

        self.app.push_screen(
            LoginScreen(message.title, reason=message.reason, camera_name=message.camera_name),
            answered,
        )

    @on(SidePane.LoginWorked)
    def _login_worked(self, message: SidePane.LoginWorked) -> None:
        self._save_camera(message.camera)

    @work(group="config")
    async def _save_camera(self, camera: Camera) -> None:
        """Add the camera to the config (or replace the one of that name) and save it the way
        the settings screen does: atomically, mode 0600."""
        app = cast(AppShell, self.app)
        config = app.config.with_camera(camera)
        path = self.deps.config_path or config.path
        if path is None:
            from softphone.config import default_config_path

            path = default_config_path()
        try:
            await asyncio.to_thread(save_config, config, path)
        except (OSError, ConfigError) as exc:
            self.tell(f"the camera could not be saved in {path}: {exc}", "error")
            return
        app.config = config
        self.tell(f"camera {camera.name} saved in {path}")
