"""The RTSP player: the asyncio driver that pumps the sans-IO RTSP client (rtsp/client.py), RTP
sessions, reorder buffers and depacketisers (rtp/), and hands access units to the decoders
(media/video.py). It is the façade the CLI (``softphone play``) and the TUI use.

One *session* is one RTSP connection: OPTIONS, DESCRIBE, SETUP per track, PLAY, then media until
the server, the network or the user ends it. Around sessions sits the policy (issue 4):

- ``--transport auto`` starts with UDP and switches to TCP interleaved when a SETUP is answered
  461 or when no media arrives within ``UDP_NO_MEDIA_S`` after PLAY (NAT, firewalls).
- Refusals before anything played (unreachable, 401 after the credentials were tried, 404, no
  supported codec, 461 with a forced transport) end the player with a clear reason, within
  ``STARTUP_LIMIT_S``.
- A session that played and then broke (server restart, network loss, media stopped for
  ``MEDIA_TIMEOUT_S``) is reconnected with exponential backoff (1, 2, 4 … 30 s), saying so.
- 3xx redirects are followed (at most ``MAX_REDIRECTS``).

Video is decoded in one worker thread per stream so the event loop (and the TUI on it) never
waits for a decoder; only the newest picture is converted to RGB and shown. Audio is decoded on
the loop (cheap) and played through the audio engine when one is given.

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
import collections
import contextlib
import dataclasses
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from softphone.config import Config
from softphone.media.errors import MediaError
from softphone.phone import player_events as pe
from softphone.phone import preload
from softphone.rtp.depacketize import AccessUnit, Depacketizer, UnsupportedCodec, make_depacketizer
from softphone.rtsp import client as rc
from softphone.rtsp.errors import RtspError
from softphone.rtsp.url import RtspUrl
from softphone.transport.rtp import RtpEndpoint, RtpPortError, open_rtp_endpoint

if TYPE_CHECKING:
    # Imported once PLAY is answered, not with this module: the PLAY request should not wait
    # for them (phone/preload.py loads PyAV and numpy; _Session._open_rtp the RTP modules).
    import numpy as np

    from softphone.media.video import AudioDecoder, DecodedPicture, StreamRecorder, VideoDecoder
    from softphone.phone.audio import AudioEngine, AudioProvider
    from softphone.phone.stream_audio import StreamAudio
    from softphone.rtp.reorder import ReorderBuffer
    from softphone.rtp.session import RtpSession

logger = logging.getLogger(__name__)

TransportChoice = Literal["auto", "udp", "tcp"]
TransportName = Literal["udp", "tcp"]
PlayerState = Literal["connecting", "playing", "paused", "reconnecting", "ended", "failed"]

CONNECT_TIMEOUT_S = 5.0
STARTUP_LIMIT_S = 14.0  # refusals are reported within 15 s of the command starting (issue 4 §4)
UDP_NO_MEDIA_S = 3.0  # auto transport: UDP silent this long after PLAY -> TCP (as gortsplib)
MEDIA_TIMEOUT_S = 10.0  # a playing session with no media this long is broken
TEARDOWN_WAIT_S = 1.0
MAX_REDIRECTS = 5
MAX_BUSY_RETRIES = 4  # 503 before anything played: retry after 0.25, 0.5, 0.75, 1 s
BUSY_RETRY_S = 0.25
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STATS_INTERVAL_S = 1.0
REORDER_UDP = 64  # packets (gortsplib's window)
REORDER_DELAY_S = 0.1  # FFmpeg's reorder delay
MAX_DECODE_BACKLOG = 90  # access units queued for a video decoder before we drop to a key frame
MAX_SYNC_HOLD_S = 1.0  # hold a picture at most this long to meet its audio
PENDING_AUDIO_UNITS = 250  # audio units kept while PyAV loads (about 5 s of AAC; it takes ~0.1 s)
PLI_INTERVAL_S = 0.5  # while waiting for a key frame, ask again this often


# --- outcomes of one session ---------------------------------------------------------------------
class _Outcome(Exception):
    """How a session ended (internal control flow of :meth:`Player.run`)."""

    def __init__(self, reason: str = "", status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Ended(_Outcome):
    """The server ended the presentation (RTCP BYE on every stream, or TEARDOWN)."""


class _Refused(_Outcome):
    """A refusal: no point in retrying the same request."""


class _Broken(_Outcome):
    """The connection or the media broke; worth reconnecting if the session had played."""


class _Busy(_Outcome):
    """503 Service Unavailable: the server is starting up or still tearing down; try again soon."""


class _UseTcp(_Outcome):
    """UDP is not usable (461, or no UDP media): retry over TCP interleaved."""


class _Redirect(_Outcome):
    def __init__(self, location: RtspUrl) -> None:
        super().__init__(f"redirected to {location}")
        self.location = location


def media_time(
    sender_report: tuple[int, int] | None, timestamp: int, clock_rate: int
) -> float | None:
    """When (NTP seconds) the sample with RTP ``timestamp`` was taken, from the stream's last
    sender report (RFC 3550 §6.4.1: the SR pairs an NTP time with an RTP timestamp). This is how
    audio and video, each on its own RTP clock, are put on one time line for lip sync."""
    if sender_report is None or clock_rate <= 0:
        return None
    ntp, rtp = sender_report
    ticks = (timestamp - rtp + 2**31) % 2**32 - 2**31
    return ntp / 2**32 + ticks / clock_rate


# --- video decoding off the loop -----------------------------------------------------------------
PictureSink = Callable[["DecodedPicture", "np.ndarray | None"], None]


class _VideoWorker:
    """Decodes one video stream in its own thread. Only the newest picture of a burst is
    converted to RGB (and only when someone shows it); results go back to the loop with
    ``call_soon_threadsafe``. A backlog beyond MAX_DECODE_BACKLOG is dropped up to the next key
    frame, so a slow machine shows fewer frames instead of growing latency.

    The decoder is opened on the worker's thread, so the loop never waits for PyAV's import
    (phone/preload.py); units that arrive meanwhile wait in the queue. When it cannot be opened,
    ``on_failure`` is called on the loop and later units are dropped."""

    def __init__(
        self,
        open_decoder: Callable[[], VideoDecoder],
        loop: asyncio.AbstractEventLoop,
        sink: PictureSink,
        on_failure: Callable[[MediaError], None],
    ) -> None:
        self._open_decoder = open_decoder
        self._decoder: VideoDecoder | None = None
        self._on_failure = on_failure
        self._loop = loop
        self._sink = sink
        self._queue: collections.deque[AccessUnit | None] = collections.deque()
        self._ready = threading.Condition()
        self.box: tuple[int, int] | None = None  # pixels available for the picture, set by the UI
        self.dropped_units = 0
        self._thread = threading.Thread(target=self._run, name="video-decoder", daemon=True)
        self._thread.start()

    def submit(self, unit: AccessUnit) -> bool:
        """Queue ``unit``; False when the backlog is full (the caller waits for a key frame)."""
        with self._ready:
            if len(self._queue) >= MAX_DECODE_BACKLOG:
                self.dropped_units += 1
                return False
            self._queue.append(unit)
            self._ready.notify()
        return True

    def close(self) -> None:
        with self._ready:
            self._queue.clear()
            self._queue.append(None)
            self._ready.notify()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def errors(self) -> int:
        return self._decoder.errors if self._decoder is not None else 0

    def _run(self) -> None:
        try:
            decoder = self._open_decoder()
        except MediaError as exc:
            failed: MediaError | None = exc
        else:
            failed, self._decoder = None, decoder
        if failed is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: we are shutting down
                self._loop.call_soon_threadsafe(self._on_failure, failed)
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                unit = self._queue.popleft()
                behind = len(self._queue)
            if unit is None:
                return
            if self._decoder is None:
                continue  # it could not be opened (said once, by on_failure)
            try:
                pictures = self._decoder.decode(unit)
            except Exception:  # a decoder bug must not kill the thread silently
                logger.exception("video decoder failed")
                continue
            for i, picture in enumerate(pictures):
                rgb = None
                box = self.box
                newest = behind == 0 and i == len(pictures) - 1
                if box is not None and newest:
                    try:
                        rgb = picture.to_rgb(*picture.fit(*box))
                    except MediaError:
                        logger.warning(
                            "cannot scale a %dx%d picture", picture.width, picture.height
                        )
                try:
                    self._loop.call_soon_threadsafe(self._sink, picture, rgb)
                except RuntimeError:
                    return  # the loop is closed: we are shutting down


# --- one track of a session --------------------------------------------------------------------------
@dataclass(eq=False)
class _Track:
    """One played stream of a session: its depacketiser, RTP session, decoder and state."""

    info: rc.Track
    kind: Literal["video", "audio"]
    depack: Depacketizer
    our_ssrc: int  # for the PLI sent before the RTP session exists (RFC 3550 §8.1: random)
    session: RtpSession | None = None  # made when PLAY is answered (or with the first datagram)
    reorder: ReorderBuffer | None = None
    server_rtp: tuple[str, int] | None = None
    endpoint: RtpEndpoint | None = None
    channel: int | None = None  # interleaved RTP channel (RTCP on channel + 1)
    server_rtcp: tuple[str, int] | None = None
    worker: _VideoWorker | None = None
    audio: AudioDecoder | None = None
    audio_failed: bool = False
    pending_audio: collections.deque[AccessUnit] = field(
        default_factory=lambda: collections.deque(maxlen=PENDING_AUDIO_UNITS)
    )
    recorder_index: int | None = None
    bye: bool = False
    skip_to_keyframe: bool = False
    last_pli: float | None = None
    ssrc: int | None = None  # the server's, from SETUP's Transport or PLAY's RTP-Info
    sender_report: tuple[int, int] | None = None  # (NTP 64-bit, RTP timestamp) of the last SR


class _Connection(asyncio.Protocol):
    def __init__(self, session: _Session) -> None:
        self._session = session

    def data_received(self, data: bytes) -> None:
        self._session.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._session.connection_lost(exc)


# --- the player ----------------------------------------------------------------------------------------
@dataclass
class PlayerCounters:
    """What the player has played so far (the stats and summary events)."""

    video_frames: int = 0
    audio_samples: int = 0
    audio_rate: int = 48000
    lost_packets: int = 0
    reconnects: int = 0
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
    ) -> None:
        self.url = url if isinstance(url, RtspUrl) else RtspUrl.parse(url)
        self.config = config or Config()
        self.options = options or PlayerOptions()
        self._audio_provider = audio
        self._rng = rng or random.SystemRandom()
        self._started_at = started_at
        self.events: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self.counters = PlayerCounters()
        self.state: PlayerState = "connecting"
        self.status_text = "connecting"
        self.on_picture: Callable[[np.ndarray], None] | None = None
        self.on_state: Callable[[], None] | None = None
        self._box: tuple[int, int] | None = None
        self._session: _Session | None = None
        self._described = False
        self._played = False
        self._snapshot_done = False
        self._recording: Path | None = None
        self._recordings = 0
        self._engine: AudioEngine | None = None
        self._audio_port: StreamAudio | None = None
        self.range_end: float | None = None
        self.position_s: float | None = None
        self.av_offset_ms: float | None = None  # video ahead (+) or behind (-) the audio heard
        self._shown_seq = 0
        self._last_shown = 0

    # --- the UI's side ------------------------------------------------------------------------
    def set_video_box(self, width_px: int, height_px: int) -> None:
        self._box = (width_px, height_px) if width_px > 0 and height_px > 0 else None
        if self._session is not None:
            self._session.set_box(self._box)

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
        ends the presentation, or a refusal. Returns 0 when something played, else 1."""
        loop = asyncio.get_running_loop()
        if self._started_at is None:
            self._started_at = time.monotonic()
        offset = time.monotonic() - loop.time()
        begin = self._started_at - offset  # in loop time
        deadline = None if duration_s is None else begin + duration_s
        url = self.url
        transport: TransportName = "tcp" if self.options.transport == "tcp" else "udp"
        redirects = 0
        attempt = 0
        busy_retries = 0
        failure: _Outcome | None = None
        try:
            while True:
                session = _Session(self, url, transport)
                self._session = session
                task = asyncio.ensure_future(session.run())
                ended = await _first_of(
                    task, stop, deadline, None if self._played else begin + STARTUP_LIMIT_S
                )
                if ended == "startup" and self._played:
                    # It started playing before the start-up limit: that limit is over.
                    ended = await _first_of(task, stop, deadline, None)
                if ended != "task":
                    await session.close(teardown=True)
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    if ended == "startup" and not self._played:
                        failure = _Refused(
                            f"no answer from {url.host}:{url.port} within {STARTUP_LIMIT_S:.0f} s"
                        )
                    break
                outcome = task.exception() if not task.cancelled() else _Broken("cancelled")
                await session.close(teardown=False)
                if session.played:
                    attempt = 0
                match outcome:
                    case _Ended():
                        break
                    case _Redirect(location=location):
                        redirects += 1
                        if redirects > MAX_REDIRECTS:
                            failure = _Refused(f"too many redirects (last to {location})")
                            break
                        self.emit(pe.Notice(level="info", text=f"redirected to {location}"))
                        if location.username is None and location.host == url.host:
                            location = dataclasses.replace(
                                location, username=url.username, password=url.password
                            )
                        url = location
                        continue
                    case _Busy(reason=reason) if (
                        not self._played and busy_retries < MAX_BUSY_RETRIES
                    ):
                        # quirk: GStreamer answers 503 to a DESCRIBE that follows a TEARDOWN of
                        # the same shared media at once; cameras do it while booting.
                        busy_retries += 1
                        wait = await _first_of(
                            None, stop, deadline, loop.time() + BUSY_RETRY_S * busy_retries
                        )
                        if wait != "startup":
                            break
                        continue
                    case _UseTcp(reason=reason):
                        if self.options.transport != "auto" or transport == "tcp":
                            failure = _Refused(reason, outcome.status)
                            break
                        transport = "tcp"
                        self.emit(pe.Notice(level="info", text=f"{reason}: switching to TCP"))
                        continue
                    case _Refused() if not self._played:
                        failure = outcome
                        break
                    case _Outcome() if not self._played:
                        failure = outcome
                        break
                    case _Outcome(reason=reason):
                        delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                        attempt += 1
                        self.counters.reconnects += 1
                        self._set_state("reconnecting", f"reconnecting in {delay:.0f} s: {reason}")
                        self.emit(
                            pe.StreamReconnecting(attempt=attempt, delay_s=delay, reason=reason)
                        )
                        wait = await _first_of(None, stop, deadline, loop.time() + delay)
                        if wait != "startup":  # stopped, or the time is up
                            break
                        self._set_state("reconnecting", f"reconnecting (attempt {attempt})")
                        continue
                    case _:
                        # A bug of ours, not the server's: say so plainly, keep the traceback in the log.
                        logger.error("RTSP session failed", exc_info=outcome)
                        failure = _Refused(f"internal error: {outcome!r} (details in the log)")
                        break
        finally:
            self._session = None
            preload.release_gc()  # start-up is over, however it ended
            if self._engine is not None and self._audio_provider is not None:
                if self._audio_port is not None:
                    self._engine.detach(self._audio_port)
                self._audio_provider.release(self._engine)
            self._engine, self._audio_port = None, None
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
                if self._snapshot_done and self.options.snapshot
                else None,
            )
        )
        return 0 if self._played and failure is None else 1

    # --- called by sessions ---------------------------------------------------------------------
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

    def picture(
        self,
        picture: DecodedPicture,
        rgb: np.ndarray | None,
        codec: str,
        picture_time: float | None = None,
    ) -> None:
        c = self.counters
        c.video_frames += 1
        c.width, c.height, c.codec = picture.width, picture.height, codec
        if c.first_frame_ms is None:
            c.first_frame_ms = round(self.elapsed_ms(), 1)
            self.emit(
                pe.FirstFrame(
                    ms=c.first_frame_ms, width=picture.width, height=picture.height, codec=codec
                )
            )
            # Start-up is over (the collector was held by `softphone play`, __main__.py); after
            # the event has gone out, which the front end's task does on the next loop pass.
            asyncio.get_running_loop().call_soon(preload.release_gc)
            preload.picture_shown()
        if self.options.snapshot is not None and not self._snapshot_done:
            from softphone.media.video import save_png  # loaded: the picture came from it

            try:
                save_png(picture, self.options.snapshot)
                self._snapshot_done = True
                self.emit(
                    pe.Notice(level="info", text=f"snapshot saved to {self.options.snapshot}")
                )
            except MediaError as exc:
                self._snapshot_done = True  # tried once; say why and go on playing
                self.emit(pe.Notice(level="error", text=f"cannot save the snapshot: {exc}"))
        if rgb is not None and self.on_picture is not None:
            self._present(rgb, picture_time)

    def _present(self, rgb: np.ndarray, picture_time: float | None) -> None:
        """Show ``rgb`` now, or later when it is ahead of the audio being heard (lip sync).
        Pictures behind the audio are shown at once; a gap over MAX_SYNC_HOLD_S means the
        clocks disagree and is not waited for (no frozen video)."""
        self._shown_seq += 1
        seq = self._shown_seq
        loop = asyncio.get_running_loop()
        audio_now = self._audio_port.clock(loop.time()) if self._audio_port is not None else None
        hold = 0.0 if audio_now is None or picture_time is None else picture_time - audio_now
        self.av_offset_ms = (
            None if audio_now is None or picture_time is None else round(hold * 1000, 1)
        )
        if 0.0 < hold <= MAX_SYNC_HOLD_S:
            loop.call_later(hold, self._show_if_newest, rgb, seq)
        else:
            self._show_if_newest(rgb, seq)

    def _show_if_newest(self, rgb: np.ndarray, seq: int) -> None:
        if seq < self._last_shown or self.on_picture is None:
            return  # a newer picture is already on screen
        self._last_shown = seq
        self.on_picture(rgb)

    def audio_port(self) -> StreamAudio | None:
        """Where decoded stream audio goes; the audio engine is asked for (a sound device
        opened) when the first audio is decoded, not before."""
        engine = self._audio_engine()
        if engine is None:
            return None
        if self._audio_port is None:
            from softphone.phone.stream_audio import StreamAudio

            self._audio_port = StreamAudio(engine.sample_rate)
            engine.attach(self._audio_port)
        return self._audio_port

    def _audio_engine(self) -> AudioEngine | None:
        if self._engine is None and self._audio_provider is not None and self._session is not None:
            self._engine = self._audio_provider.engine_for_call(1)
        return self._engine

    @property
    def audio_rate(self) -> int:
        engine = self._audio_engine()
        return engine.sample_rate if engine is not None else 48000

    def next_recording(self) -> Path | None:
        from softphone.phone.audio import numbered

        if self.options.record is None:
            return None
        self._recordings += 1
        self._recording = numbered(self.options.record, self._recordings)
        return self._recording

    @property
    def box(self) -> tuple[int, int] | None:
        return self._box


async def _first_of(
    task: asyncio.Future[Any] | None,
    stop: asyncio.Event,
    deadline: float | None,
    limit: float | None,
) -> Literal["task", "stop", "deadline", "startup"]:
    """Wait for the task, ``stop``, the deadline (--duration) or ``limit``, whichever is first."""
    loop = asyncio.get_running_loop()
    waiter = asyncio.ensure_future(stop.wait())
    futures: set[asyncio.Future[Any]] = {waiter}
    if task is not None:
        futures.add(task)
    ends = [(t, name) for t, name in ((deadline, "deadline"), (limit, "startup")) if t is not None]
    timeout = None
    first_end: Literal["deadline", "startup"] = "deadline"
    if ends:
        at, first_end = min(ends)  # type: ignore[assignment]
        timeout = max(at - loop.time(), 0.0)
    try:
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task is not None and task in done:
        return "task"
    if waiter in done:
        return "stop"
    return first_end


# --- one RTSP session -----------------------------------------------------------------------------
class _Session:
    def __init__(self, player: Player, url: RtspUrl, transport: TransportName) -> None:
        self.player = player
        self.url = url
        self.transport: TransportName = transport
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.client: rc.RtspClient | None = None
        self.tcp: asyncio.Transport | None = None
        self.tracks: list[_Track] = []
        self.by_channel: dict[int, tuple[_Track, bool]] = {}
        self.played = False
        self.play_at: float | None = None
        self.last_media: float | None = None
        self.media_packets = 0
        self.pli_sent = 0
        self.fps = 0.0
        self._frames_at_tick = 0
        self._timer: asyncio.TimerHandle | None = None
        self._next_stats: float | None = None
        self._setup_task: asyncio.Task[None] | None = None
        self._recorder: StreamRecorder | None = None
        self._recorder_failed = False
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        url = self.url
        ssl_ctx = self._ssl_context() if url.scheme == "rtsps" else None
        try:
            transport, _ = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self),
                    url.host,
                    url.port,
                    ssl=ssl_ctx,
                    server_hostname=url.host if ssl_ctx is not None else None,
                ),
                CONNECT_TIMEOUT_S,
            )
        except TimeoutError:
            raise _Broken(
                f"cannot reach {url.host}:{url.port}: no answer within {CONNECT_TIMEOUT_S:.0f} s"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise _Refused(
                f"TLS certificate of {url.host} rejected: {exc.verify_message} (--insecure skips the check)"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise _Broken(f"cannot reach {url.host}:{url.port}: {reason}") from None
        assert isinstance(transport, asyncio.Transport)
        self.tcp = transport
        user, password = self._credentials()
        self.client = rc.RtspClient(
            url,
            rng=self.player._rng,
            credentials=(user, password) if user is not None and password is not None else None,
            user_agent=f"{self.player.config.user_agent} (RTSP)",
            now=self.loop.time(),
        )
        self.client.start(self.loop.time())
        self._flush([])
        await self.done

    def _credentials(self) -> tuple[str | None, str | None]:
        if self.url.username is not None:
            return self.url.username, self.url.password or ""
        if self.player.options.credentials is not None:
            return self.player.options.credentials
        for camera in self.player.config.cameras:
            try:
                cam = RtspUrl.parse(camera.url)
            except RtspError:
                continue
            if (cam.host, cam.port) == (
                self.url.host,
                self.url.port,
            ) and camera.username is not None:
                return camera.username, camera.password or ""
        return None, None

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(
            cafile=str(self.player.options.ca_file) if self.player.options.ca_file else None
        )
        if self.player.options.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def finish(self, outcome: _Outcome) -> None:
        if not self.done.done():
            self.done.set_exception(outcome)

    async def close(self, *, teardown: bool) -> None:
        """Stop media, TEARDOWN when asked (waiting briefly for the answer), free everything."""
        if self._closing:
            return
        self._closing = True
        if (
            teardown
            and self.client is not None
            and self.tcp is not None
            and not self.tcp.is_closing()
        ):
            with contextlib.suppress(RtspError):
                events = self.client.teardown(self.loop.time())
                self._flush(events)
                if not self.done.done():  # wait briefly for the answer (TornDown ends the session)
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(asyncio.shield(self.done), TEARDOWN_WAIT_S)
        if self._timer is not None:
            self._timer.cancel()
        if self._setup_task is not None:
            self._setup_task.cancel()
        for track in self.tracks:
            if track.session is not None:
                with contextlib.suppress(Exception):
                    track.session.bye(self.loop.time())
                    self._send_rtcp(track)
            if track.endpoint is not None:
                track.endpoint.close()
            if track.worker is not None:
                track.worker.close()
        for track in self.tracks:
            if track.worker is not None:
                await asyncio.to_thread(track.worker.join, 2.0)
        if self._recorder is not None:
            try:
                self._recorder.close()
            except MediaError as exc:
                self.player.emit(pe.Notice(level="error", text=f"recording: {exc}"))
            self._recorder = None
        if self.tcp is not None:
            self.tcp.close()
        if not self.done.done():
            self.done.set_exception(_Ended("closed"))
        with contextlib.suppress(BaseException):
            self.done.exception()

    def set_box(self, box: tuple[int, int] | None) -> None:
        for track in self.tracks:
            if track.worker is not None:
                track.worker.box = box

    def pause(self) -> None:
        if self.client is not None:
            self.client.pause(self.loop.time())
            self._flush([])

    def resume(self, start_npt: float | None) -> None:
        if self.client is None:
            return
        if start_npt is not None:
            for track in self.tracks:
                track.reorder = self._new_reorder()
                if self.player._audio_port is not None:
                    self.player._audio_port.clear()
        self.client.play(self.loop.time(), start_npt=start_npt)
        self._flush([])

    def _new_reorder(self) -> ReorderBuffer:
        from softphone.rtp.reorder import ReorderBuffer

        if self.transport == "tcp":
            return ReorderBuffer(capacity=1, max_delay_s=0.0)
        return ReorderBuffer(capacity=REORDER_UDP, max_delay_s=REORDER_DELAY_S)

    # --- RTSP connection ------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        if self.client is None or (self._closing and self.done.done()):
            return
        try:
            events = self.client.receive_data(data, self.loop.time())
        except RtspError as exc:
            self._fail(_Broken(f"the server sent something that is not RTSP: {exc}"))
            return
        self._flush(events)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the server closed the connection"
        self._fail(_Broken(reason))

    def _fail(self, outcome: _Outcome) -> None:
        if isinstance(outcome, _Broken) and not self.played and not self.player._played:
            # Before anything played, a broken connection is a refusal of this URL.
            outcome = _Refused(outcome.reason, outcome.status)
        self.finish(outcome)

    def _write(self) -> None:
        if self.client is None or self.tcp is None or self.tcp.is_closing():
            return
        data = self.client.data_to_send()
        if data:
            self.tcp.write(data)

    def _flush(self, events: list[rc.Event]) -> None:
        for event in events:
            self._handle(event)
        self._write()
        self._arm()

    def _handle(self, event: rc.Event) -> None:
        now = self.loop.time()
        match event:
            case rc.Described(tracks=tracks):
                self._described(tracks)
            case rc.TrackSetUp():
                self._track_set_up(event)
            case rc.PlayStarted(range_start=start, range_end=end):
                self.played = True
                self.play_at = now
                self.last_media = None
                self._started(event.rtp_info)
                self.player.playing(self.transport, start, end)
                self._next_stats = now + STATS_INTERVAL_S
            case rc.Paused():
                self.player.paused()
            case rc.TornDown():
                self.finish(_Ended("torn down"))
            case rc.Redirected(location=location):
                self.finish(_Redirect(location))
            case rc.AuthenticationFailed(method=method, reason=reason):
                self._fail(_Refused(f"{method}: 401 Unauthorized: {reason}", 401))
            case rc.RequestFailed(method=method, status=status, reason=reason):
                self._request_failed(method, status, reason)
            case rc.RequestTimedOut(method=method):
                self._fail(_Broken(f"no answer to {method} within 10 s"))
            case rc.InterleavedFrameReceived(channel=channel, data=data):
                found = self.by_channel.get(channel)
                if found is not None:
                    track, rtcp = found
                    self._media(track, data, ("interleaved", channel), rtcp, now)
            case _:
                pass  # ServerRequestReceived and the like: the core already answered

    def _request_failed(self, method: str, status: int, reason: str) -> None:
        text = f"{method} refused: {rc.explain(status)}"
        if method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER") and self.played:
            return  # keep-alives that a camera does not like: not a reason to stop
        if status == 461 or (method == "SETUP" and status == 400 and self.transport == "udp"):
            self.finish(_UseTcp(f"the server refuses RTP over UDP ({status} {reason})", status))
            return
        if method == "PAUSE":
            self.player.emit(pe.Notice(level="warning", text=text))
            return
        if status == 503:
            self.finish(_Busy(text, status))
            return
        if status == 454 and self.played:
            self.finish(_Broken("the server forgot the session (454)", status))
            return
        self._fail(_Refused(text, status))

    # --- SETUP ------------------------------------------------------------------------------------
    def _described(self, tracks: tuple[rc.Track, ...]) -> None:
        chosen: list[_Track] = []
        for kind in ("video", "audio"):
            for info in tracks:
                if info.media != kind:
                    continue
                track = self._make_track(info, kind)
                if track is not None:
                    chosen.append(track)
                    break
        self.player.described(self.url, tracks, {t.info.index for t in chosen})
        if not chosen:
            listed = ", ".join(f"{t.media} {t.encoding}" for t in tracks) or "none"
            self._fail(_Refused(f"no supported codec (the server offers: {listed})"))
            return
        self.tracks = chosen
        self._setup_task = self.loop.create_task(self._setup())

    def _make_track(self, info: rc.Track, kind: Literal["video", "audio"]) -> _Track | None:
        try:
            depack = make_depacketizer(
                info.encoding, info.clock_rate, info.fmtp, info.channels or 1
            )
        except UnsupportedCodec:
            return None
        return _Track(
            info=info, kind=kind, depack=depack, our_ssrc=self.player._rng.getrandbits(32)
        )

    def _open_rtp(self, track: _Track) -> RtpSession:
        """The track's RTP session and reorder buffer, made when PLAY is answered (or with a
        datagram before that): the RTP modules load after PLAY has gone out, while the server
        prepares its first key frame, not before it."""
        if track.session is None:
            from softphone.rtp.session import RtpSession

            info = track.info
            track.session = RtpSession(
                rng=self.player._rng,
                cname=f"softphone-{self.player._rng.getrandbits(32):08x}",
                remote_rtp=track.server_rtp,
                remote_rtcp=track.server_rtcp,
                rtcp_mux=False,
                clock_rates={info.payload_type: info.clock_rate}
                if info.payload_type is not None
                else {},
                ssrc=track.our_ssrc,
            )
        if track.reorder is None:
            track.reorder = self._new_reorder()
        return track.session

    async def _setup(self) -> None:
        assert self.client is not None
        requests: list[rc.TrackRequest] = []
        for track in self.tracks:
            if self.transport == "udp":
                host = self.player.options.bind_host or self._local_host()
                try:
                    endpoint = await asyncio.wait_for(
                        open_rtp_endpoint(
                            host,
                            self.player.config.rtp_port_min,
                            self.player.config.rtp_port_max,
                            self.player._rng,
                        ),
                        CONNECT_TIMEOUT_S,
                    )
                except (RtpPortError, OSError, TimeoutError) as exc:
                    self.finish(_UseTcp(f"no UDP port for media ({exc})"))
                    return
                track.endpoint = endpoint
                endpoint.sink = lambda data, addr, via_rtcp, t=track: self._media(
                    t, data, addr, via_rtcp, self.loop.time()
                )
                requests.append(
                    rc.TrackRequest(
                        index=track.info.index,
                        transport="udp",
                        client_ports=(endpoint.port, endpoint.rtcp_port),
                    )
                )
            else:
                requests.append(
                    rc.TrackRequest(index=track.info.index, transport="tcp", client_ports=None)
                )
        if self._closing:
            return
        self.client.setup(requests, self.loop.time())
        self._flush([])

    def _local_host(self) -> str:
        if self.tcp is not None:
            sockname = self.tcp.get_extra_info("sockname")
            if sockname:
                return str(sockname[0])
        return "0.0.0.0"

    def _track_set_up(self, event: rc.TrackSetUp) -> None:
        track = next((t for t in self.tracks if t.info.index == event.index), None)
        if track is None:
            return
        if event.transport == "tcp" and self.transport == "udp":
            # quirk: a server that answers a UDP SETUP with TCP interleaved; go along with it
            self.transport = "tcp"
            track.reorder = self._new_reorder()
        if event.interleaved is not None:
            track.channel = event.interleaved[0]
            self.by_channel[event.interleaved[0]] = (track, False)
            self.by_channel[event.interleaved[1]] = (track, True)
        if event.server_ports is not None and self.tcp is not None:
            host = event.source or self.url.host
            peer = self.tcp.get_extra_info("peername")
            if event.source is None and peer:
                host = str(peer[0])
            track.server_rtp = (host, event.server_ports[0])
            track.server_rtcp = (host, event.server_ports[1])
            if track.session is not None:
                track.session.set_remote(
                    remote_rtp=track.server_rtp, remote_rtcp=track.server_rtcp, rtcp_mux=False
                )
        if event.ssrc is not None:
            track.ssrc = event.ssrc
        # The decoders start when PLAY is answered (_started), not here: importing PyAV now
        # would hold up the PLAY request.

    def _start_video(self, track: _Track) -> None:
        codec = _decoder_name(track.info.encoding)
        extradata = track.depack.extradata

        def open_decoder() -> VideoDecoder:  # on the worker's thread
            from softphone.media.video import VideoDecoder

            return VideoDecoder(codec, extradata)

        def failed(exc: MediaError) -> None:
            self.player.emit(
                pe.Notice(level="error", text=f"cannot decode {track.info.encoding}: {exc}")
            )

        def sink(picture: DecodedPicture, rgb: np.ndarray | None) -> None:
            if not self._closing:
                when = media_time(track.sender_report, picture.timestamp, track.info.clock_rate)
                self.player.picture(picture, rgb, codec, when)

        track.worker = _VideoWorker(open_decoder, self.loop, sink, failed)
        track.worker.box = self.player.box

    def _make_audio_decoder(self, track: _Track) -> AudioDecoder | None:
        from softphone.media.video import AudioDecoder

        codec = _decoder_name(track.info.encoding)
        try:
            return AudioDecoder(
                codec,
                track.depack.extradata,
                sample_rate=track.info.clock_rate or 8000,
                channels=track.info.channels or 1,
                output_rate=self.player.audio_rate,
            )
        except MediaError as exc:
            self.player.emit(
                pe.Notice(level="error", text=f"cannot decode {track.info.encoding} audio: {exc}")
            )
            return None

    def _started(self, rtp_info: tuple[rc.RtpInfo, ...]) -> None:
        """PLAY is answered. In the order that gets the first picture soonest: ask for a key
        frame (its round trip to the encoder is the longest wait), then start loading PyAV
        (phone/preload.py; numpy and the audio modules follow the first picture) and the video
        decoders, then make the RTP sessions; the key frame takes 50-80 ms to come from a live
        encoder on loopback, and all that fits in it."""
        self._ask_for_keyframes_on_join(rtp_info)
        self._write()
        preload.start(video=any(track.kind == "video" for track in self.tracks))
        self.loop.call_later(preload.GC_HOLD_AFTER_PLAY_S, preload.release_gc)  # audio-only streams
        for track in self.tracks:
            if track.kind == "video" and track.worker is None:
                self._start_video(track)
        for track in self.tracks:
            self._open_rtp(track)

    # --- media ------------------------------------------------------------------------------------
    def _media(
        self,
        track: _Track,
        data: bytes,
        addr: tuple[str, int] | tuple[str, Any],
        rtcp: bool,
        now: float,
    ) -> None:
        if self._closing:
            return
        from softphone.rtp.session import ByeReceived, RtcpReportReceived, RtpPacketReceived

        session = self._open_rtp(track)
        assert track.reorder is not None
        for event in session.receive_datagram(data, addr, now, on_rtcp_port=rtcp):
            match event:
                case RtpPacketReceived(packet=packet, now=arrived):
                    self.last_media = now
                    self.media_packets += 1
                    for in_order, lost in track.reorder.push(packet, arrived):
                        self._depacketize(track, in_order, lost)
                case RtcpReportReceived(sender_report=True, report=report):
                    ntp = getattr(report, "ntp_timestamp", None)
                    rtp_ts = getattr(report, "rtp_timestamp", None)
                    if ntp is not None and rtp_ts is not None:
                        track.sender_report = (ntp, rtp_ts)
                case ByeReceived():
                    track.bye = True
                    if all(t.bye for t in self.tracks) and self.played:
                        self.finish(_Ended("the server ended the stream (RTCP BYE)"))
                case _:
                    pass
        self._send_rtcp(track)
        self._arm()

    def _send_rtcp(self, track: _Track) -> None:
        if track.session is None:
            return
        for data, addr, _via_rtcp in track.session.datagrams_to_send():
            self._send_raw_rtcp(track, data, fallback=addr)

    def _depacketize(self, track: _Track, packet: Any, lost: int) -> None:
        self.player.counters.lost_packets += lost
        try:
            units = track.depack.push(packet, lost_before=lost)
        except Exception:  # a depacketiser bug must not end the session
            logger.exception("depacketiser failed on %s", track.info.encoding)
            return
        if track.kind == "video" and track.depack.waiting_for_keyframe:
            self._ask_for_keyframe(track, packet.ssrc)
        for unit in units:
            self._record(track, unit)
            if track.kind == "video":
                if track.worker is None:
                    continue
                if track.skip_to_keyframe and not unit.keyframe:
                    continue
                # A decoder that cannot keep up drops to the next key frame rather than showing
                # smeared pictures or letting latency grow.
                track.skip_to_keyframe = not track.worker.submit(unit)
            else:
                self._play_audio(track, unit)

    def _ask_for_keyframes_on_join(self, rtp_info: tuple[rc.RtpInfo, ...]) -> None:
        """Ask for a key frame as soon as PLAY is answered, when the server has told us its SSRC
        (SETUP's Transport or PLAY's RTP-Info): a live encoder then starts the key frame one
        picture earlier than when we wait to see a non-key packet first (about 40 ms at 25 fps
        against GStreamer). Servers that play a file, or do not know PLI, ignore it."""
        for info in rtp_info:
            track = next((t for t in self.tracks if t.info.index == info.index), None)
            if track is not None and info.ssrc is not None:
                track.ssrc = info.ssrc
        for track in self.tracks:
            if (
                track.kind == "video"
                and track.ssrc is not None
                and track.depack.waiting_for_keyframe
            ):
                self._ask_for_keyframe(track, track.ssrc)

    def _ask_for_keyframe(self, track: _Track, media_ssrc: int) -> None:
        """Joining a live stream or after loss, ask for a key frame now instead of waiting up to
        a whole GOP: a Picture Loss Indication (RFC 4585 §6.3.1), at most every PLI_INTERVAL_S.
        Servers that do not know PLI ignore it and the next natural key frame comes as usual."""
        now = self.loop.time()
        if track.last_pli is not None and now - track.last_pli < PLI_INTERVAL_S:
            return
        track.last_pli = now
        ours = track.our_ssrc  # the RTP session's too: it is given this one and keeps it
        # Compound RTCP (RFC 3550 §6.1, RFC 4585 §3.1): an empty RR first, then the PLI
        # (PSFB, PT 206, FMT 1, length 2: sender SSRC, media source SSRC).
        data = (
            bytes([0x80, 201, 0, 1])
            + ours.to_bytes(4, "big")
            + bytes([0x81, 206, 0, 2])
            + ours.to_bytes(4, "big")
            + media_ssrc.to_bytes(4, "big")
        )
        self._send_raw_rtcp(track, data)
        self.pli_sent += 1

    def _send_raw_rtcp(
        self, track: _Track, data: bytes, fallback: tuple[str, int] | None = None
    ) -> None:
        if track.channel is not None and self.client is not None:
            # RFC 2326 §10.12: RTCP rides the odd interleaved channel.
            self.client.send_interleaved(track.channel + 1, data)
            self._write()
        elif (
            track.endpoint is not None
            and (destination := track.server_rtcp or fallback) is not None
        ):
            track.endpoint.send(data, destination, via_rtcp=True)

    def _play_audio(self, track: _Track, unit: AccessUnit) -> None:
        if track.audio is None:
            if track.audio_failed:
                return
            if not preload.ready():
                # PyAV and numpy are still being imported (the first picture goes first): keep
                # the units, a bounded number, and decode them once they are loaded.
                track.pending_audio.append(unit)
                return
            track.audio = self._make_audio_decoder(track)
            if track.audio is None:
                track.audio_failed = True
                track.pending_audio.clear()
                return
        units = [*track.pending_audio, unit]
        track.pending_audio.clear()
        for each in units:
            self._decode_audio(track, track.audio, each)

    def _decode_audio(self, track: _Track, decoder: AudioDecoder, unit: AccessUnit) -> None:
        try:
            pcm = decoder.decode(unit)
        except MediaError:
            return
        if not len(pcm):
            return
        counters = self.player.counters
        counters.audio_rate = self.player.audio_rate
        counters.audio_samples += len(pcm)
        port = self.player.audio_port()
        if port is not None:
            port.push(pcm, media_time(track.sender_report, unit.timestamp, track.info.clock_rate))

    def _record(self, track: _Track, unit: AccessUnit) -> None:
        if self.player.options.record is None or self._recorder_failed:
            return
        if self._recorder is None:
            video = next((t for t in self.tracks if t.kind == "video"), None)
            if video is not None and (track is not video or not unit.keyframe):
                return  # start the file at a key frame, so that it plays from its first byte
            from softphone.media.video import RecordedStream, StreamRecorder

            streams: list[RecordedStream] = []
            for t in self.tracks:
                t.recorder_index = len(streams)
                streams.append(
                    RecordedStream(
                        codec=_decoder_name(t.info.encoding),
                        clock_rate=t.info.clock_rate,
                        extradata=t.depack.extradata,
                        sample_rate=t.info.clock_rate if t.kind == "audio" else None,
                        channels=(t.info.channels or 1) if t.kind == "audio" else None,
                    )
                )
            path = self.player.next_recording()
            assert path is not None
            try:
                self._recorder = StreamRecorder(path, streams)
            except MediaError as exc:
                self._recorder_failed = True
                self.player.emit(pe.Notice(level="error", text=f"cannot record to {path}: {exc}"))
                return
            self.player.emit(pe.Notice(level="info", text=f"recording to {path}"))
        if track.recorder_index is None:
            return
        try:
            self._recorder.write(track.recorder_index, unit)
        except MediaError as exc:
            self._recorder_failed = True
            self.player.emit(pe.Notice(level="error", text=f"recording stopped: {exc}"))

    # --- timers -----------------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._closing and self.done.done():
            return
        deadlines: list[float] = []
        if self.client is not None and (at := self.client.get_timer()) is not None:
            deadlines.append(at)
        for track in self.tracks:
            if track.session is not None and (at := track.session.get_timer()) is not None:
                deadlines.append(at)
            if track.reorder is not None and (at := track.reorder.next_deadline()) is not None:
                deadlines.append(at)
        if self._next_stats is not None:
            deadlines.append(self._next_stats)
        if self.play_at is not None:
            deadlines.append(
                (self.last_media or self.play_at)
                + (UDP_NO_MEDIA_S if self.last_media is None else MEDIA_TIMEOUT_S)
            )
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            self._timer = self.loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        events: list[rc.Event] = []
        if self.client is not None and (at := self.client.get_timer()) is not None and at <= now:
            events = self.client.handle_timer(now)
        for track in self.tracks:
            if (
                track.session is not None
                and (at := track.session.get_timer()) is not None
                and at <= now
            ):
                track.session.handle_timer(now)
                self._send_rtcp(track)
            if (
                track.reorder is not None
                and (at := track.reorder.next_deadline()) is not None
                and at <= now
            ):
                for packet, lost in track.reorder.poll(now):
                    self._depacketize(track, packet, lost)
        if self._next_stats is not None and now >= self._next_stats:
            self._stats(now)
        self._watchdog(now)
        self._flush(events)

    def _stats(self, now: float) -> None:
        assert self._next_stats is not None
        c = self.player.counters
        elapsed = now - self._next_stats + STATS_INTERVAL_S
        self.fps = (c.video_frames - self._frames_at_tick) / max(elapsed, 1e-3)
        self._frames_at_tick = c.video_frames
        self._next_stats = now + STATS_INTERVAL_S
        if self.player.position_s is not None and self.player.state == "playing":
            self.player.position_s += elapsed
        waiting = any(t.kind == "video" and t.depack.waiting_for_keyframe for t in self.tracks)
        if waiting and c.video_frames:
            self.player.status_text = "waiting for a key frame after loss"
        elif self.player.state == "playing":
            self.player.status_text = "playing"
        self.player.emit(
            pe.StreamStats(
                video_frames=c.video_frames,
                audio_frames=c.audio_frames,
                fps=round(self.fps, 1),
                lost_packets=c.lost_packets,
                waiting_for_keyframe=waiting,
            )
        )
        if self.player.on_state is not None:
            self.player.on_state()

    def _watchdog(self, now: float) -> None:
        if self.play_at is None or self.player.state == "paused" or self.done.done():
            return
        if self.last_media is None:
            if now - self.play_at < UDP_NO_MEDIA_S:
                return
            if self.transport == "udp" and self.player.options.transport == "auto":
                self.finish(_UseTcp(f"no media over UDP within {UDP_NO_MEDIA_S:.0f} s"))
                return
            if now - self.play_at >= MEDIA_TIMEOUT_S:
                self.finish(_Broken(f"no media within {MEDIA_TIMEOUT_S:.0f} s of PLAY"))
            return
        if now - self.last_media >= MEDIA_TIMEOUT_S:
            self.finish(_Broken(f"no media for {MEDIA_TIMEOUT_S:.0f} s"))


# Encoding names (SDP rtpmap) -> FFmpeg decoder names. quirk: cameras spell them differently.
_DECODERS = {
    "h264": "h264",
    "h265": "hevc",
    "hevc": "hevc",
    "jpeg": "mjpeg",
    "mpeg4-generic": "aac",
    "mp4a-latm": "aac",  # the depacketiser unwraps LATM into raw AAC frames
    "pcmu": "pcm_mulaw",
    "pcma": "pcm_alaw",
    "l16": "pcm_s16be",
    "opus": "opus",
}


def _decoder_name(encoding: str) -> str:
    return _DECODERS.get(encoding.lower(), encoding.lower())
