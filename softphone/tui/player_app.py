"""The stand-alone viewer (``softphone play URL --viewer``, implied by ``--duration``,
``--snapshot`` and ``--record``): a small Textual app around the video pane.

Without ``--viewer`` the stream plays in the phone's side pane beside the calls; this viewer is
the picture alone: the newest one in half blocks, an overlay line (codec, resolution, fps,
transport, loss, state) and keys to pause, seek and quit. It talks only to the Player façade
(phone/).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from softphone.tui.video import VideoMode, VideoView

if TYPE_CHECKING:
    import numpy as np

    from softphone.phone.events import PhoneEvent
    from softphone.phone.player import Player


class PlayerApp(App[int]):
    """Plays one stream; the exit code of ``player.run`` is the app's return value."""

    TITLE = "softphone play"
    CSS = """
    #video { height: 1fr; }
    #messages { height: auto; max-height: 3; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_player", "Quit"),
        Binding("space", "toggle_pause", "Pause/resume"),
        Binding("left", "seek(-10)", "-10 s", show=False),
        Binding("right", "seek(10)", "+10 s", show=False),
    ]

    def __init__(
        self,
        player: Player,
        *,
        duration_s: float | None = None,
        stats_out: Path | None = None,
        video_mode: VideoMode = "halfblock",
    ) -> None:
        super().__init__()
        self.video_mode: VideoMode = video_mode
        self.player = player
        self.duration_s = duration_s
        self.stats_out = stats_out
        self._stop = asyncio.Event()
        self._result = 1

    def compose(self) -> ComposeResult:
        yield VideoView(id="video", mode=self.video_mode)
        yield Static("", id="messages")
        yield Footer()

    async def on_mount(self) -> None:
        view = self.query_one(VideoView)
        self.player.on_picture = self._show
        self.player.on_state = self._refresh_overlay
        view.set_overlay(self.player.overlay())
        self.run_worker(self._play(), exclusive=True, name="player")
        self.run_worker(self._events(), name="player-events")

    def _show(self, rgb: np.ndarray) -> None:
        self.query_one(VideoView).show(rgb)

    def _refresh_overlay(self) -> None:
        self.query_one(VideoView).set_overlay(self.player.overlay())

    def on_video_view_size_changed(self, message: VideoView.SizeChanged) -> None:
        self.player.set_video_box(message.width_px, message.height_px)

    async def _play(self) -> None:
        self._result = await self.player.run(self._stop, duration_s=self.duration_s)
        self._write_stats()
        if self.player.state == "failed":
            return  # keep the reason on screen until the user quits
        self.exit(self._result)

    async def _events(self) -> None:
        from softphone.phone.text import describe

        while True:
            event: PhoneEvent = await self.player.events.get()
            text = describe(event)
            if text:
                self.query_one("#messages", Static).update(text)
            self._refresh_overlay()

    def _write_stats(self) -> None:
        """``--stats-out``: what the benchmarks read (pictures decoded vs drawn, and so on)."""
        if self.stats_out is None:
            return
        view = self.query_one(VideoView)
        c = self.player.counters
        stats = {
            "video_frames": c.video_frames,
            "audio_frames": c.audio_frames,
            "frames_shown": view.frames_shown,
            "frames_dropped": view.frames_dropped,
            "rows_built": view.rows_built,
            "video_mode": view.mode_in_use,
            "images_written": view.images_written,
            "first_frame_ms": c.first_frame_ms,
            "lost_packets": c.lost_packets,
            "transport": c.transport,
        }
        try:
            self.stats_out.write_text(json.dumps(stats) + "\n", encoding="utf-8")
        except OSError:
            pass

    def action_quit_player(self) -> None:
        if self.player.state == "failed":
            self.exit(self._result)
            return
        self._stop.set()

    def action_toggle_pause(self) -> None:
        if self.player.state == "paused":
            self.player.resume()
        else:
            self.player.pause()

    def action_seek(self, delta_s: float) -> None:
        self.player.seek(float(delta_s))


def run_player_app(
    player: Player,
    *,
    duration_s: float | None = None,
    stats_out: Path | None = None,
    video_mode: VideoMode = "halfblock",
) -> int:
    result = PlayerApp(
        player, duration_s=duration_s, stats_out=stats_out, video_mode=video_mode
    ).run()
    return 1 if result is None else result
