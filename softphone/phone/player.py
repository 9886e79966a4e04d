"""The RTSP player: the façade the CLI (``softphone play``) and the TUI use. It runs one RTSP
session after another (phone/player_session.py) as the policy says (phone/player_policy.py:
reconnect with back-off, fall back to TCP, follow redirects, report refusals within the start-up
limit), publishes what happens as events (phone/player_events.py), and owns what outlives a
session: the counters, the audio and picture outputs (phone/player_media.py), the state the UI
shows.

The pieces: the connection is transport/rtsp.py, the RTSP client rtsp/client.py, RTP and RTCP
rtp/, the decode and draw pipeline phone/player_media.py.

Every task the player starts (the session, the wait for ``stop``) is tracked, and cancelled and
awaited before :meth:`Player.run` returns; so are the session's own (its SETUP, its decoder
threads).

Nothing on the way to PLAY imports more than it needs. PyAV and the RTP modules load once PLAY is
answered (PyAV on a thread, phone/preload.py), while the server prepares the first key frame we
have just asked for; numpy loads after the first picture. The video decoder opens on its
worker's thread, and audio that arrives before numpy and PyAV are loaded is kept and decoded
afterwards. With the garbage collector paused until the first picture (phone/preload.py), that
took the first picture of ``softphone play`` from ~290 ms to ~125 ms after ``main()``, ~155 ms
after the spawn (``softphone bench rtsp-first-frame``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, assert_never

from softphone.config import Config
from softphone.phone import player_events as pe
from softphone.phone import player_policy as policy
from softphone.phone import preload
from softphone.phone.player_media import AudioOutput, PictureOutput
from softphone.phone.player_policy import (
    Finish,
    GiveUp,
    Retry,
    SessionEnd,
    TransportChoice,
    TransportName,
)
from softphone.phone.player_session import PlayerSession
from softphone.rtsp import client as rc
from softphone.rtsp.url import RtspUrl

if TYPE_CHECKING:
    import numpy as np

    from softphone.phone.audio import AudioProvider

logger = logging.getLogger(__name__)

PlayerState = Literal["connecting", "playing", "paused", "reconnecting", "ended", "failed"]
_Wait = Literal["task", "stop", "deadline", "limit"]


@dataclass
class PlayerCounters:
    """What the player has played so far (the stats and summary events)."""

    video_frames: int = 0
    audio_samples: int = 0
    audio_rate: int = 48000
    lost_packets: int = 0
    reconnects: int = 0
    video_units_skipped: int = 0  # not decoded: nobody could see the picture
    first_frame_ms: float | None = None
    transport: TransportName | None = None
    width: int = 0
    height: int = 0
    codec: str = ""

    @property
    def audio_frames(self) -> int:
        return self.audio_samples * 50 // self.audio_rate  # 20 ms units


@dataclass
class PlayerOptions:
    """How to play: transport, credentials, snapshot and recording files, TLS."""

    transport: TransportChoice = "auto"
    credentials: tuple[str, str] | None = None
    snapshot: Path | None = None
    record: Path | None = None
    ca_file: Path | None = None
    insecure: bool = False  # rtsps without certificate checks (cameras with self-signed ones)
    bind_host: str | None = None  # UDP media sockets; default: the address the RTSP socket uses


class Player:
    """Plays one RTSP URL. ``events`` carries phone events (pe.Stream*) for the front end;
    ``on_picture`` (set by a UI) gets the newest picture as RGB scaled into ``set_video_box``."""

    def __init__(
        self,
        url: str | RtspUrl,
        *,
        config: Config | None = None,
        options: PlayerOptions | None = None,
        audio: AudioProvider | None = None,
        rng: random.Random | None = None,
        started_at: float | None = None,
        name: str | None = None,
    ) -> None:
        self.url = url if isinstance(url, RtspUrl) else RtspUrl.parse(url)
        self.name = name  # the config's camera it plays, if any
        self.config = config or Config()
        self.options = options or PlayerOptions()
        self._rng = rng or random.SystemRandom()
        self._started_at = started_at
        self.events: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self.counters = PlayerCounters()
        self.state: PlayerState = "connecting"
        self.status_text = "connecting"
        self.on_picture: Callable[[np.ndarray], None] | None = None
        self.on_state: Callable[[], None] | None = None
        self._box: tuple[int, int] | None = None
        self._video_decoding = True
        self._session: PlayerSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._described = False
        self._played = False
        self._recording: Path | None = None
        self._recordings = 0
        self._audio = AudioOutput(audio)
        self._pictures = PictureOutput(
            counters=self.counters,
            notify=self.emit,
            elapsed_ms=self.elapsed_ms,
            snapshot=self.options.snapshot,
            audio=self._audio,
            target=lambda: self.on_picture,
        )
        self.range_end: float | None = None
        self.position_s: float | None = None

    # --- the UI's side ------------------------------------------------------------------------
    def set_video_box(self, width_px: int, height_px: int) -> None:
        self._box = (width_px, height_px) if width_px > 0 and height_px > 0 else None
        if self._session is not None:
            self._session.set_box(self._box)

    @property
    def title(self) -> str:
        """What a front end shows for the stream: the camera's name, else the URL, never with
        its credentials (``str(RtspUrl)`` leaves them out)."""
        return self.name or str(self.url)

    @property
    def plain_url(self) -> str:
        """The URL without credentials."""
        return str(self.url)

    @property
    def camera_name(self) -> str:
        """The config's camera it plays, else a name to save it under: the host."""
        return self.name or self.url.host

    @property
    def video_decoding(self) -> bool:
        return self._video_decoding

    def set_video_decoding(self, enabled: bool) -> None:
        """Decode the video or not (a hidden pane: nobody sees it). The RTSP session, the audio
        and a recording go on; back on, the picture is back with the next key frame, which is
        asked for at once (RTCP PLI)."""
        self._video_decoding = enabled
        if self._session is not None:
            self._session.set_video_decoding(enabled)

    def pause(self) -> None:
        if self._session is not None and self.state == "playing":
            self._session.pause()

    def resume(self) -> None:
        if self._session is not None and self.state == "paused":
            self._session.resume(None)

    def seek(self, delta_s: float) -> None:
        """Seek on-demand media by ``delta_s`` seconds (live streams ignore it)."""
        if self._session is None or self.range_end is None or self.position_s is None:
            return
        target = min(max(self.position_s + delta_s, 0.0), max(self.range_end - 1.0, 0.0))
        self._session.resume(target)

    def overlay(self) -> str:
        c = self.counters
        parts = [self.status_text]
        if c.codec:
            parts.append(f"{c.codec} {c.width}x{c.height}")
        if self._session is not None:
            parts.append(f"{self._session.fps:.0f} fps")
        if c.transport:
            parts.append(c.transport.upper())
        parts.append(f"loss {c.lost_packets}")
        return " · ".join(parts)

    @property
    def av_offset_ms(self) -> float | None:
        """Video ahead (+) or behind (-) the audio heard, at the last picture shown."""
        return self._pictures.av_offset_ms

    @property
    def box(self) -> tuple[int, int] | None:
        return self._box

    # --- events -------------------------------------------------------------------------------
    def emit(self, event: pe.PhoneEvent) -> None:
        self.events.put_nowait(event)

    def next_event_nowait(self) -> pe.PhoneEvent | None:
        try:
            return self.events.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def _set_state(self, state: PlayerState, text: str | None = None) -> None:
        self.state = state
        self.status_text = text or state
        if self.on_state is not None:
            self.on_state()

    def elapsed_ms(self) -> float:
        start = self._started_at if self._started_at is not None else time.monotonic()
        return (time.monotonic() - start) * 1000.0

    # --- the run loop -------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int:
        """Play until ``stop`` is set, ``duration_s`` (from ``started_at``) passes, the server
        ends the presentation, or a refusal. Returns 0 when something played, else 1.

        The start-up limit counts from this call, not from ``started_at``: a player made long
        after the command started (the TUI's side pane) gets the whole limit."""
        loop = asyncio.get_running_loop()
        run_began = loop.time()
        if self._started_at is None:
            self._started_at = time.monotonic()
        offset = time.monotonic() - loop.time()
        begin = self._started_at - offset  # in loop time
        deadline = None if duration_s is None else begin + duration_s
        choice = self.options.transport
        progress = policy.first_progress(self.url, choice)
        failure: GiveUp | None = None
        self._audio.open()
        stopped = self._spawn(stop.wait(), "player-stop")
        try:
            while True:
                session = self._new_session(progress)
                self._session = session
                task = self._spawn(session.run(), "rtsp-session")
                left = policy.startup_left_s(progress, loop.time() - run_began)
                limit = None if left is None else loop.time() + left
                ended = await self._first_of(task, stopped, deadline, limit)
                if ended == "limit" and self._played:
                    # It started playing before the start-up limit: that limit is over.
                    ended = await self._first_of(task, stopped, deadline, None)
                if ended != "task":
                    await session.close(teardown=True)
                    await self._cancel(task)
                    if ended == "limit" and not self._played:
                        failure = policy.startup_expired(progress)
                    break
                end = self._end_of(task)
                await session.close(teardown=False)
                if end is None:
                    failure = GiveUp(
                        reason=f"internal error: {task.exception()!r} (details in the log)"
                    )
                    break
                step = policy.next_step(end, progress, session_played=session.played, choice=choice)
                match step:
                    case Finish():
                        break
                    case GiveUp():
                        failure = step
                        break
                    case Retry():
                        progress = step.progress
                        if not await self._retry(step, stopped, deadline):
                            break  # stopped, or the time is up
                    case _:
                        assert_never(step)
        finally:
            await self._end(self._session)
        if failure is not None:
            self._set_state("failed", f"failed: {failure.reason}")
            self.emit(pe.StreamFailed(reason=failure.reason, status=failure.status))
        else:
            self._set_state("ended")
        c = self.counters
        self.emit(
            pe.StreamSummary(
                video_frames=c.video_frames,
                audio_frames=c.audio_frames,
                first_frame_ms=c.first_frame_ms,
                lost_packets=c.lost_packets,
                reconnects=c.reconnects,
                transport=c.transport,
                recording=str(self._recording) if self._recording else None,
                snapshot=str(self.options.snapshot)
                if self._pictures.snapshot_done and self.options.snapshot
                else None,
            )
        )
        return 0 if self._played and failure is None else 1

    def _new_session(self, progress: policy.Progress) -> PlayerSession:
        return PlayerSession(
            progress.url,
            progress.transport,
            host=self,
            config=self.config,
            options=self.options,
            credentials=self._credentials(progress.url),
            rng=self._rng,
            counters=self.counters,
            audio=self._audio,
            pictures=self._pictures,
        )

    def _credentials(self, url: RtspUrl) -> tuple[str, str] | None:
        if url.username is not None:
            return url.username, url.password or ""
        if self.options.credentials is not None:
            return self.options.credentials
        # A camera of the config on the host and port connected to (a redirect may move there).
        return self.config.camera_source(str(url.without_credentials())).credentials

    def _end_of(self, task: asyncio.Task[SessionEnd]) -> SessionEnd | None:
        """How the session's task ended; None for a bug of ours (logged with its traceback)."""
        if task.cancelled():
            return SessionEnd(policy.Outcome.BROKEN, "cancelled")
        if (exc := task.exception()) is not None:
            # A bug of ours, not the server's: say so plainly, keep the traceback in the log.
            logger.error("RTSP session failed", exc_info=exc)
            return None
        return task.result()

    async def _retry(self, step: Retry, stopped: asyncio.Task[Any], deadline: float | None) -> bool:
        """Say what the next session is for and wait for it; False when stopped meanwhile or
        the time is up."""
        attempt = step.progress.attempt
        if step.notice is not None:
            self.emit(pe.Notice(level="info", text=step.notice))
        if step.reconnecting is not None:
            delay, reason = step.delay_s, step.reconnecting
            self.counters.reconnects += 1
            self._set_state("reconnecting", f"reconnecting in {delay:.0f} s: {reason}")
            self.emit(pe.StreamReconnecting(attempt=attempt, delay_s=delay, reason=reason))
        if step.delay_s > 0:
            loop = asyncio.get_running_loop()
            waited = await self._first_of(None, stopped, deadline, loop.time() + step.delay_s)
            if waited != "limit":
                return False
        if step.reconnecting is not None:
            self._set_state("reconnecting", f"reconnecting (attempt {attempt})")
        return True

    async def _end(self, session: PlayerSession | None) -> None:
        """However run() ends (cancelled too): the session closed, every task of ours done, the
        audio engine given back."""
        try:
            if session is not None:
                await session.close(teardown=False)
        finally:
            self._session = None
            await self._cancel(*self._tasks)
            self._pictures.close()
            preload.release_gc()  # start-up is over, however it ended
            self._audio.close()

    # --- tasks ---------------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _cancel(*tasks: asyncio.Task[Any]) -> None:
        """Cancel ``tasks`` and wait until they are done (their errors are theirs: logged by
        whoever reads them, or dropped here for cancelled ones)."""
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    @staticmethod
    async def _first_of(
        task: asyncio.Task[Any] | None,
        stopped: asyncio.Task[Any],
        deadline: float | None,
        limit: float | None,
    ) -> _Wait:
        """Wait for the task, ``stopped``, the deadline (--duration) or ``limit`` (the start-up
        limit, a retry's delay), whichever is first. Starts no task of its own."""
        loop = asyncio.get_running_loop()
        futures: set[asyncio.Future[Any]] = {stopped}
        if task is not None:
            futures.add(task)
        ends: list[tuple[float, Literal["deadline", "limit"]]] = []
        if deadline is not None:
            ends.append((deadline, "deadline"))
        if limit is not None:
            ends.append((limit, "limit"))
        timeout = None
        first_end: Literal["deadline", "limit"] = "deadline"
        if ends:
            at, first_end = min(ends)
            timeout = max(at - loop.time(), 0.0)
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task is not None and task in done:
            return "task"
        if stopped in done:
            return "stop"
        return first_end

    # --- called by sessions (SessionHost) -------------------------------------------------------
    @property
    def has_played(self) -> bool:
        return self._played

    def described(self, url: RtspUrl, tracks: tuple[rc.Track, ...], chosen: set[int]) -> None:
        if self._described:
            return
        self._described = True
        streams = tuple(
            pe.StreamInfo(
                media=t.media,
                codec=t.encoding,
                clock_rate=t.clock_rate,
                control=str(t.control_url),
                supported=t.index in chosen,
            )
            for t in tracks
        )
        self.emit(pe.StreamDescribed(url=str(url), streams=streams))

    def playing(self, transport: TransportName, start: float | None, end: float | None) -> None:
        self._played = True
        self.counters.transport = transport
        self.range_end = end
        self.position_s = start
        self._set_state("playing", "playing")
        self.emit(pe.StreamPlaying(transport=transport, range_start=start, range_end=end))

    def paused(self) -> None:
        self._set_state("paused", "paused")
        self.emit(pe.StreamPaused())

    def stats(self, *, elapsed_s: float, fps: float, waiting_for_keyframe: bool) -> None:
        """Once a second while playing: the position moves on, the status says whether we
        wait for a key frame, the StreamStats event goes out."""
        c = self.counters
        if self.position_s is not None and self.state == "playing":
            self.position_s += elapsed_s
        if waiting_for_keyframe and c.video_frames:
            self.status_text = "waiting for a key frame after loss"
        elif self.state == "playing":
            self.status_text = "playing"
        self.emit(
            pe.StreamStats(
                video_frames=c.video_frames,
                audio_frames=c.audio_frames,
                fps=round(fps, 1),
                lost_packets=c.lost_packets,
                waiting_for_keyframe=waiting_for_keyframe,
            )
        )
        if self.on_state is not None:
            self.on_state()

    def next_recording(self) -> Path | None:
        from softphone.phone.audio import numbered

        if self.options.record is None:
            return None
        self._recordings += 1
        self._recording = numbered(self.options.record, self._recordings)
        return self._recording


def player_for(
    text: str,
    *,
    config: Config,
    options: PlayerOptions | None = None,
    login: tuple[str, str] | None = None,
    audio: AudioProvider | None = None,
) -> Player:
    """A player for what a person typed: a ``[[camera]]`` name (its URL and credentials) or an
    RTSP URL. ``login`` (asked for after a 401) wins over the credentials of the URL, of the
    camera and of ``options``. Raises ConfigError (neither a camera nor a URL) or RtspError (not
    a usable RTSP URL); neither message shows a password."""
    source = config.camera_source(text, match_host=False)
    url = RtspUrl.parse(source.url)
    base = options or PlayerOptions()
    credentials = source.credentials or base.credentials
    if login is not None:
        url, credentials = url.without_credentials(), login
    return Player(
        url,
        config=config,
        options=replace(base, credentials=credentials),
        audio=audio,
        name=source.camera,
    )
