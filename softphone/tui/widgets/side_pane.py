"""The side pane: an RTSP stream (a camera, a door station) beside the calls.

One player at a time, with the life cycle of widgets/pane_state.py: :meth:`SidePane.open` stops
the player it has, waits until that player's run has ended (TEARDOWN sent, its tasks and decoder
threads done), then starts the new one; :meth:`SidePane.stop` stops it. Requests are served in
order by one lock, and a request overtaken by a newer one is dropped, so typing three URLs
quickly plays the last one and leaves no session behind.

The player's ``on_picture`` hands the newest RGB picture to ``VideoView.show`` (on the app's
thread; from any other thread through ``App.call_from_thread``), only while that player is the
pane's and has not been stopped. The view's ``SizeChanged`` goes back as ``set_video_box``.

What a person must read goes up as messages, in full: :class:`SidePane.Said` (failures,
warnings) for the messages area, :class:`SidePane.LoginWanted` when the camera answered 401 (the
screen asks for credentials and calls :meth:`SidePane.open` again with them, or
:meth:`SidePane.login_cancelled`). Titles and lines use the player's ``title``, which never
carries a password, never the text typed.

A call's video (the far end with our self-view, from the phone) is drawn here too, while no
stream plays: :meth:`SidePane.show_call_video`, called by the main screen at the video's rate;
a stream opened meanwhile takes the pane over.

While the pane is hidden (:meth:`SidePane.set_shown`) the player stops decoding video: the RTSP
session stays up (and audio and a recording go on), so showing the pane again brings the
picture back with the next key frame, which the player asks for at once. PAUSE is not used:
many cameras refuse it on live streams or let the session time out, and a resumed PLAY costs a
round trip plus a key frame anyway.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Final, Protocol, TypeAlias

import numpy as np
from textual import work
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Label

from softphone.config import Config
from softphone.config_cameras import Camera
from softphone.phone import events as pe
from softphone.phone.text import describe
from softphone.tui.textual_internals import runs_in_context_of
from softphone.tui.video import VideoView
from softphone.tui.widgets.messages_log import Level
from softphone.tui.widgets.pane_state import RUNNING, PaneInput, PaneState, next_state

__all__ = ["PlayerFactory", "PlayerLike", "SidePane"]

logger = logging.getLogger(__name__)

STOP_WAIT_S: Final = 10.0  # a player's run ends within ~3 s of stop (TEARDOWN, decoder joins)
HINT: Final = "No stream. Press v to open an RTSP URL or a camera's name, C for video in a call."
CALL_VIDEO_BOX: Final = (160, 96)


class PlayerLike(Protocol):
    """What the pane needs of ``softphone.phone.player.Player`` (tests pass a fake)."""

    on_picture: Callable[[np.ndarray], None] | None
    on_state: Callable[[], None] | None
    events: asyncio.Queue[pe.PhoneEvent]

    @property
    def title(self) -> str:
        """The camera's name or the URL, without credentials."""
        ...

    @property
    def plain_url(self) -> str:
        """The URL without credentials (what a saved camera plays)."""
        ...

    @property
    def camera_name(self) -> str:
        """A name to save the stream under as a camera."""
        ...

    def set_video_box(self, width_px: int, height_px: int) -> None: ...
    def set_video_decoding(self, enabled: bool) -> None: ...
    def overlay(self) -> str: ...
    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int: ...


Login: TypeAlias = tuple[str, str]
PlayerFactory: TypeAlias = Callable[[str, Config, Login | None], PlayerLike]
"""``factory(text, config, login)``: a player for what was typed (a URL or a camera's name) with
``config``'s cameras, and ``login`` (user, password) when the camera asked for one; raises with a
message that can be shown when ``text`` cannot be played."""


class SidePane(Vertical):
    """``open(text)`` plays a stream, ``stop()`` stops it; ``state`` says where it stands."""

    DEFAULT_CSS = """
    SidePane {
        border: round $primary-muted;
        border-title-color: $text-accent;
    }
    SidePane #pane-hint { color: $text-muted; padding: 1 1; width: 1fr; height: auto; }
    SidePane #pane-status { width: 1fr; height: auto; max-height: 3; color: $text-muted; }
    """

    class Said(Message):
        """A line for the messages area: what went wrong with the stream, in full."""

        def __init__(self, text: str, level: Level) -> None:
            super().__init__()
            self.text = text
            self.level: Level = level

    class StateChanged(Message):
        """The pane moved to ``state`` (widgets/pane_state.py)."""

        def __init__(self, state: PaneState, title: str | None) -> None:
            super().__init__()
            self.state = state
            self.title = title

    class LoginWorked(Message):
        """The stream plays with the login given: ``camera`` (with it) may be saved now."""

        def __init__(self, camera: Camera) -> None:
            super().__init__()
            self.camera = camera

    class LoginWanted(Message):
        """The camera answered 401: ask for credentials, then ``open(text, login)`` again."""

        def __init__(self, text: str, *, title: str, url: str, camera_name: str, reason: str):
            super().__init__()
            self.text = text  # what was typed (may hold credentials: never shown)
            self.title = title
            self.url = url  # without credentials
            self.camera_name = camera_name
            self.reason = reason

    def __init__(
        self,
        player_factory: PlayerFactory,
        *,
        config: Callable[[], Config],
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._factory = player_factory
        self._config = config
        self.state = PaneState.IDLE
        self.transitions: deque[tuple[PaneState, PaneInput, PaneState]] = deque(maxlen=64)
        self.player: PlayerLike | None = None  # the player whose run() is going on
        self.title: str | None = None  # what the pane shows (or showed last)
        self.shown = True
        self._text: str | None = None  # what was typed for the current stream
        self._save: Camera | None = None  # to save once the current stream plays
        self._stop = asyncio.Event()
        self._run_over = asyncio.Event()
        self._lock = asyncio.Lock()
        self._generation = 0  # of the newest open/stop request
        self._box: tuple[int, int] | None = None
        self._app: App[object] | None = None
        self._app_thread = threading.get_ident()
        self._picture_context = contextvars.copy_context()
        self._call_video = False  # a call's picture is in the view

    def compose(self) -> ComposeResult:
        yield Label(HINT, id="pane-hint")
        yield VideoView(id="pane-video")
        yield Label("", id="pane-status")

    def on_mount(self) -> None:
        self.border_title = "Video"
        self.video.display = False

    @property
    def video(self) -> VideoView:
        return self.query_one(VideoView)

    # --- requests --------------------------------------------------------------------------------
    def open(self, text: str, login: Login | None = None, *, save: Camera | None = None) -> None:
        """Stop what plays, then play ``text`` (a URL or a camera's name), with ``login``;
        ``save``: a camera to hand back in ``LoginWorked`` once it plays (a wrong login is never
        handed back)."""
        self._generation += 1
        self._serve(self._generation, text, login, save)

    def stop(self) -> None:
        """Stop what plays (TEARDOWN); the pane says so."""
        self._generation += 1
        self._serve(self._generation, None, None, None)

    async def stop_and_wait(self) -> None:
        """Stop what plays and return once its run has ended (the app quitting)."""
        self._generation += 1
        await self._request(self._generation, None, None, None)

    def login_cancelled(self) -> None:
        if self.state is PaneState.LOGIN:
            self._apply(PaneInput.LOGIN_CANCELLED)
            self._show_hint(f"{self.title}: no login given. Press v to open a stream.")

    def set_shown(self, shown: bool) -> None:
        """The pane is on screen or not: video is decoded only while it is."""
        if shown == self.shown:
            return
        self.shown = shown
        if self.player is not None:
            self.player.set_video_decoding(shown)
            self._set_status(self.player.overlay() if shown else "hidden: video not decoded")

    @work(group="pane-requests")
    async def _serve(
        self, generation: int, text: str | None, login: Login | None, save: Camera | None
    ) -> None:
        await self._request(generation, text, login, save)

    async def _request(
        self, generation: int, text: str | None, login: Login | None, save: Camera | None
    ) -> None:
        async with self._lock:  # one request at a time, in order
            if generation != self._generation:
                return  # a newer request came meanwhile: it is the one to serve
            await self._close_current()
            self._save = save
            if text is not None:
                self._start(text, login)
            elif self.state is PaneState.CLOSED and self.title is not None:
                self._show_hint(f"{self.title}: stopped. Press v to open a stream.")

    async def _close_current(self) -> None:
        player = self.player
        self._apply(PaneInput.STOP)
        if player is None:
            return
        self._stop.set()
        self._set_status("stopping")
        try:
            async with asyncio.timeout(STOP_WAIT_S):
                await self._run_over.wait()
        except TimeoutError:  # the runner cancels the player when its own wait runs out
            logger.error("the player of %s did not stop within %.0f s", self.title, STOP_WAIT_S)

    def _start(self, text: str, login: Login | None) -> None:
        self._apply(PaneInput.OPEN)
        self._call_video = False
        self.video.clear()
        try:
            player = self._factory(text, self._config(), login)
        except Exception as exc:  # the factory's errors say what is wrong with the text
            self._apply(PaneInput.FAILED)
            self.title = None
            self.border_title = "Video"
            self._show_hint(f"Cannot open that stream: {exc}")
            self.post_message(self.Said(f"cannot open the stream: {exc}", "error"))
            return
        self.player, self._text, self.title = player, text, player.title
        self._stop, self._run_over = asyncio.Event(), asyncio.Event()
        # Pictures arrive in callbacks the player's decoder thread queued on the loop: those run
        # outside the app's context, so keep the app, its thread and its context from here.
        self._app, self._picture_context = self.app, contextvars.copy_context()
        self._app_thread = threading.get_ident()
        player.on_picture = partial(self._on_picture, player)
        player.on_state = partial(self._on_state, player)
        player.set_video_decoding(self.shown)
        if self._box is not None:
            player.set_video_box(*self._box)
        self.border_title = f"Video · {player.title}"
        self.query_one("#pane-hint", Label).display = False
        self.video.display = True
        self.video.set_overlay(player.overlay())
        self._set_status("")
        self._run(player, self._stop, self._run_over)

    # --- the player's run --------------------------------------------------------------------------
    @work(group="pane-player")
    async def _run(self, player: PlayerLike, stop: asyncio.Event, over: asyncio.Event) -> None:
        """Run the player and follow its events until its run() has returned."""
        run = asyncio.ensure_future(player.run(stop))
        getter: asyncio.Future[pe.PhoneEvent] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(player.events.get())
                done, _ = await asyncio.wait({run, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    break
                self._event(player, getter.result())
            getter.cancel()
            if getter.done() and not getter.cancelled():
                self._event(player, getter.result())
            while not player.events.empty():
                self._event(player, player.events.get_nowait())
            if not run.cancelled() and (exc := run.exception()) is not None:
                logger.error("the stream player failed", exc_info=exc)
                self._failed(player, f"internal error: {exc!r} (details in the log)")
        finally:
            if getter is not None:
                getter.cancel()
            if not run.done():  # cancelled from outside (the app is ending): stop it properly
                stop.set()
                await asyncio.wait({run}, timeout=STOP_WAIT_S)
                run.cancel()
            over.set()
            self._run_ended(player)

    def _event(self, player: PlayerLike, event: pe.PhoneEvent) -> None:
        if player is not self.player:
            return
        match event:
            case pe.StreamPlaying():
                self._apply(PaneInput.PLAYED)
            case pe.StreamFailed(status=401, reason=reason) if self.state is not PaneState.CLOSING:
                self._apply(PaneInput.UNAUTHORIZED)
                self._show_hint(f"{player.title} asks for a login ({reason}).")
                self.post_message(
                    self.LoginWanted(
                        self._text or player.plain_url,
                        title=player.title,
                        url=player.plain_url,
                        camera_name=player.camera_name,
                        reason=reason,
                    )
                )
            case pe.StreamFailed(reason=reason):
                self._failed(player, reason)
            case pe.Notice(level="warning" | "error" as level, text=text):
                self.post_message(self.Said(f"{player.title}: {text}", level))
            case pe.StreamReconnecting():
                self.post_message(self.Said(f"{player.title}: {describe(event)}", "warning"))
            case _:
                pass
        text = describe(event)
        if text and self.state in (PaneState.OPENING, PaneState.PLAYING):
            self._set_status(text)
        self._on_state(player)

    def _failed(self, player: PlayerLike, reason: str) -> None:
        if self.state is PaneState.CLOSING:
            return
        self._apply(PaneInput.FAILED)
        self._show_hint(f"Cannot play {player.title}: {reason}")
        self.post_message(self.Said(f"cannot play {player.title}: {reason}", "error"))

    def _run_ended(self, player: PlayerLike) -> None:
        if player is not self.player:
            return
        self.player = None
        ended_by_server = self.state in (PaneState.OPENING, PaneState.PLAYING)
        self._apply(PaneInput.RUN_ENDED)
        if ended_by_server:
            self._show_hint(f"{player.title}: the stream ended. Press v to open a stream.")
            self.post_message(self.Said(f"{player.title}: the stream ended", "info"))

    def _apply(self, event: PaneInput) -> None:
        before = self.state
        self.state = next_state(before, event)
        self.transitions.append((before, event, self.state))
        if self.state is not before:
            self.post_message(self.StateChanged(self.state, self.title))
        if self._save is not None and self.state is PaneState.PLAYING:
            self.post_message(self.LoginWorked(self._save))
        if self.state is not PaneState.OPENING:
            self._save = None  # played (handed back), refused or stopped: not to be saved

    # --- what is shown -----------------------------------------------------------------------------
    def _show_hint(self, text: str) -> None:
        try:
            hint = self.query_one("#pane-hint", Label)
            self.video.display = False
            self.video.clear()
        except NoMatches:  # the widgets are being torn down
            return
        hint.update(text)
        hint.display = True
        self._set_status("")
        if self.state is not PaneState.LOGIN:
            self.border_title = "Video"

    def _set_status(self, text: str) -> None:
        try:
            self.query_one("#pane-status", Label).update(text)
        except NoMatches:
            pass

    def _on_picture(self, player: PlayerLike, rgb: np.ndarray) -> None:
        app = self._app
        if app is None:
            return
        if threading.get_ident() != self._app_thread:
            app.call_from_thread(self._show, player, rgb)
        elif runs_in_context_of(app):
            self._show(player, rgb)
        else:
            self._picture_context.run(self._show, player, rgb)

    def _show(self, player: PlayerLike, rgb: np.ndarray) -> None:
        if player is not self.player or self.state not in RUNNING or self._stop.is_set():
            return  # a stopped player may still hand over a picture: never show it
        try:
            video = self.video
        except NoMatches:  # the widgets are being torn down
            return
        video.show(rgb)

    def _on_state(self, player: PlayerLike) -> None:
        if player is not self.player or self._app is None or not self.shown:
            return
        try:
            self.video.set_overlay(player.overlay())
        except NoMatches:  # the widgets are being torn down
            pass

    # --- a call's video ------------------------------------------------------------------------
    @property
    def call_video_box(self) -> tuple[int, int]:
        """The pixel size a call's picture should have (before the view reported one: small)."""
        return self._box or CALL_VIDEO_BOX

    def show_call_video(self, rgb: np.ndarray | None, title: str = "", note: str = "") -> bool:
        """Show a call's picture (None: the call has no video now, the pane goes back to its
        hint) with ``note`` in its status line (the picture broken, our camera gone); ignored
        while a stream plays or the pane is hidden. True when it is shown."""
        if self.player is not None or not self.shown:
            return False
        try:
            video, hint = self.video, self.query_one("#pane-hint", Label)
        except NoMatches:  # the widgets are being torn down
            return False
        if rgb is None:
            if self._call_video:
                self._call_video = False
                self._show_hint(HINT)
            return False
        if not self._call_video:
            self._call_video = True
            hint.display = False
            video.display = True
        video.set_overlay(note)
        self.border_title = f"Video · {title}" if title else "Video · call"
        video.show(rgb)
        return True

    def on_unmount(self) -> None:
        self._app = None
        self._stop.set()

    def on_video_view_size_changed(self, message: VideoView.SizeChanged) -> None:
        self._box = (message.width_px, message.height_px)
        if self.player is not None:
            self.player.set_video_box(message.width_px, message.height_px)
