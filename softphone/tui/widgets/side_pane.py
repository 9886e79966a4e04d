"""The side pane: an RTSP stream (a camera, a door station) beside the calls.

It hosts a :class:`~softphone.tui.video.VideoView` driven by a player the way ``player_app.py``
does: the player's ``on_picture`` hands the newest RGB picture to ``VideoView.show`` (on the
app's thread; from any other thread through ``App.call_from_thread``), the view's
``SizeChanged`` goes back as ``set_video_box``, and ``player.run(stop)`` runs in a worker
(group ``"player"``, exclusive: opening a URL stops the previous stream).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
from textual import work
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.widgets import Label

from softphone.phone import events as pe
from softphone.phone.text import describe
from softphone.tui.textual_internals import runs_in_context_of
from softphone.tui.video import VideoView

__all__ = ["PlayerLike", "SidePane"]


class PlayerLike(Protocol):
    """What the pane needs of ``softphone.phone.player.Player`` (tests pass a fake)."""

    on_picture: Callable[[np.ndarray], None] | None
    on_state: Callable[[], None] | None
    events: asyncio.Queue[pe.PhoneEvent]

    def set_video_box(self, width_px: int, height_px: int) -> None: ...
    def overlay(self) -> str: ...
    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int: ...


class SidePane(Vertical):
    """``open(url)`` plays a stream; ``close()`` stops it. ``url`` is what plays (or None)."""

    DEFAULT_CSS = """
    SidePane {
        border: round $primary-muted;
        border-title-color: $text-accent;
    }
    SidePane #pane-hint { color: $text-muted; padding: 1 1; height: auto; }
    SidePane #pane-status { height: 1; color: $text-muted; }
    """

    def __init__(
        self, player_factory: Callable[[str], PlayerLike], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._factory = player_factory
        self.player: PlayerLike | None = None
        self.url: str | None = None
        self._stop = asyncio.Event()
        self._box: tuple[int, int] | None = None
        self._app: App[object] | None = None
        self._app_thread = threading.get_ident()
        self._picture_context = contextvars.copy_context()

    def compose(self) -> ComposeResult:
        yield Label("No stream. Press v to open an RTSP URL.", id="pane-hint")
        yield VideoView(id="pane-video")
        yield Label("", id="pane-status")

    def on_mount(self) -> None:
        self.border_title = "Video"
        self.query_one(VideoView).display = False

    @property
    def video(self) -> VideoView:
        return self.query_one(VideoView)

    def open(self, url: str) -> None:
        """Stop what plays and play ``url`` (errors from the factory propagate to the caller)."""
        player = self._factory(url)
        self.close()
        self.player, self.url = player, url
        self._stop = asyncio.Event()
        # Pictures arrive in callbacks the player's decoder thread queued on the loop: those run
        # outside the app's context, so keep the app, its thread and its context from here.
        self._app, self._picture_context = self.app, contextvars.copy_context()
        self._app_thread = threading.get_ident()
        player.on_picture = self._on_picture
        player.on_state = self._on_state
        if self._box is not None:
            player.set_video_box(*self._box)
        self.border_title = f"Video · {url}"
        self.query_one("#pane-hint", Label).display = False
        self.video.display = True
        self.video.set_overlay(player.overlay())
        self._play(player, self._stop)
        self._follow(player)

    def close(self) -> None:
        self._stop.set()
        self.player, self.url = None, None
        self.workers.cancel_group(self, "player-events")

    @work(exclusive=True, group="player")
    async def _play(self, player: PlayerLike, stop: asyncio.Event) -> None:
        await player.run(stop)
        if player is self.player:
            self._set_status(f"stream ended: {player.overlay()}")

    @work(exclusive=True, group="player-events")
    async def _follow(self, player: PlayerLike) -> None:
        while True:
            event = await player.events.get()
            text = describe(event)
            if text:
                self._set_status(text)
            self._on_state()

    def _set_status(self, text: str) -> None:
        self.query_one("#pane-status", Label).update(text)

    def _on_picture(self, rgb: np.ndarray) -> None:
        app = self._app
        if app is None:
            return
        if threading.get_ident() != self._app_thread:
            app.call_from_thread(self._show, rgb)
        elif runs_in_context_of(app):
            self._show(rgb)
        else:
            self._picture_context.run(self._show, rgb)

    def _show(self, rgb: np.ndarray) -> None:
        if self.player is None or self._app is None:
            return  # closed, or the app is ending: the player may still hand over a picture
        try:
            video = self.video
        except NoMatches:  # the widgets are being torn down
            return
        video.show(rgb)

    def on_unmount(self) -> None:
        self._app = None
        self.close()

    def _on_state(self) -> None:
        if self.player is None or self._app is None:
            return
        try:
            self.video.set_overlay(self.player.overlay())
        except NoMatches:  # the widgets are being torn down
            pass

    def on_video_view_size_changed(self, message: VideoView.SizeChanged) -> None:
        self._box = (message.width_px, message.height_px)
        if self.player is not None:
            self.player.set_video_box(message.width_px, message.height_px)
