"""One RTSP session of the player: one connection (transport/rtsp.py) carrying OPTIONS, DESCRIBE,
SETUP per track and PLAY (the sans-IO client, rtsp/client.py), then the media until the server,
the network or the user ends it; :meth:`PlayerSession.run` returns how it ended
(phone/player_policy.py decides what follows).

The played tracks and their media path (RTP sessions, reorder buffers, depacketisers, key-frame
requests, receiver reports) are phone/player_tracks.py; the session hands them what arrives. One
loop timer serves every deadline: the client's, the tracks', the stats and the media watchdog.

What the session needs from the player comes in explicitly: the RNG, the audio and picture
outputs, the counters, and the :class:`SessionHost` callbacks (events, state, whether anything
played before).

Nothing on the way to PLAY imports more than it needs: the RTP modules load once PLAY is
answered (or with the first datagram), and PyAV and numpy on a thread then (phone/preload.py),
while the server prepares the first key frame we have just asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from softphone.config import Config
from softphone.phone import player_events as pe
from softphone.phone import player_policy as policy
from softphone.phone import preload
from softphone.phone.player_media import AudioOutput, PictureOutput
from softphone.phone.player_policy import Outcome, SessionEnd, Tally, TransportName
from softphone.phone.player_tracks import MediaHost, SessionMedia, SessionTrack
from softphone.rtsp import client as rc
from softphone.rtsp.errors import RtspError
from softphone.rtsp.url import RtspUrl
from softphone.transport.rtp import RtpPortError, open_rtp_endpoint
from softphone.transport.rtsp import (
    CertificateRejected,
    ConnectTimedOut,
    RtspStream,
    Unreachable,
    open_rtsp_stream,
    tls_context,
)

if TYPE_CHECKING:
    import numpy as np

    from softphone.media.video import DecodedPicture
    from softphone.phone.player import PlayerCounters, PlayerOptions, PlayerState

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
TEARDOWN_WAIT_S = 1.0
STATS_INTERVAL_S = 1.0
WORKER_JOIN_S = 2.0


class SessionHost(MediaHost, Protocol):
    """What a session tells the player, and the little it asks of it."""

    @property
    def has_played(self) -> bool:
        """Whether any session of this player has played (PLAY answered)."""
        ...

    @property
    def state(self) -> PlayerState: ...

    @property
    def box(self) -> tuple[int, int] | None:
        """Pixels the UI has for the picture."""
        ...

    def described(self, url: RtspUrl, tracks: tuple[rc.Track, ...], chosen: set[int]) -> None: ...

    def playing(self, transport: TransportName, start: float | None, end: float | None) -> None: ...

    def paused(self) -> None: ...

    def stats(self, *, elapsed_s: float, fps: float, waiting_for_keyframe: bool) -> None: ...


class PlayerSession:
    """One RTSP connection of the player (see the module docstring)."""

    def __init__(
        self,
        url: RtspUrl,
        transport: TransportName,
        *,
        host: SessionHost,
        config: Config,
        options: PlayerOptions,
        credentials: tuple[str, str] | None,
        rng: random.Random,
        counters: PlayerCounters,
        audio: AudioOutput,
        pictures: PictureOutput,
    ) -> None:
        self.url = url
        self._host = host
        self._config = config
        self._options = options
        self._credentials = credentials
        self._rng = rng
        self._counters = counters
        self._audio = audio
        self._pictures = pictures
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[SessionEnd] = self.loop.create_future()
        self.client: rc.RtspClient | None = None
        self.stream: RtspStream | None = None
        self.media = SessionMedia(
            transport,
            host=host,
            rng=rng,
            counters=counters,
            audio=audio,
            send_interleaved=self._send_interleaved,
            clock=self.loop.time,
        )
        self.played = False
        self.play_at: float | None = None
        self.last_media: float | None = None
        self.fps = 0.0
        self._counted_from = Tally(at=0.0, frames=0)  # where the next fps counts from
        self._timer: asyncio.TimerHandle | None = None
        self._next_stats: float | None = None
        self._setup_task: asyncio.Task[None] | None = None
        self._closing = False
        self._released = False
        self._closed = False

    @property
    def transport(self) -> TransportName:
        return self.media.transport

    @property
    def tracks(self) -> list[SessionTrack]:
        return self.media.tracks

    # --- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> SessionEnd:
        """Connect, play, and return how the session ended."""
        url = self.url
        options = self._options
        tls = (
            tls_context(ca_file=options.ca_file, insecure=options.insecure)
            if url.scheme == "rtsps"
            else None
        )
        try:
            self.stream = await open_rtsp_stream(
                url.host, url.port, self, tls=tls, timeout_s=CONNECT_TIMEOUT_S
            )
        except ConnectTimedOut:
            return SessionEnd(
                Outcome.BROKEN,
                f"cannot reach {url.host}:{url.port}: no answer within {CONNECT_TIMEOUT_S:.0f} s",
            )
        except CertificateRejected as exc:
            return SessionEnd(
                Outcome.REFUSED,
                f"TLS certificate of {url.host} rejected: {exc.verify_message} (--insecure skips the check)",
            )
        except Unreachable as exc:
            # Refused: the host answered and nothing listens, as while a server restarts.
            outcome = Outcome.CLOSED if exc.refused else Outcome.BROKEN
            return SessionEnd(outcome, f"cannot reach {url.host}:{url.port}: {exc.reason}")
        self.client = rc.RtspClient(
            url,
            rng=self._rng,
            credentials=self._credentials,
            user_agent=f"{self._config.user_agent} (RTSP)",
            now=self.loop.time(),
        )
        self.client.start(self.loop.time())
        self._flush([])
        return await self.done

    def finish(self, end: SessionEnd) -> None:
        if not self.done.done():
            self.done.set_result(end)

    async def close(self, *, teardown: bool) -> None:
        """Stop media, TEARDOWN when asked (waiting briefly for the answer), free everything,
        and wait for what the session started (its SETUP task, the decoder threads). Calling it
        again (after a cancelled close, too) finishes what is left."""
        if self._closed:
            return
        if not self._closing:
            self._closing = True
            if (
                teardown
                and self.client is not None
                and self.stream is not None
                and not self.stream.closing
            ):
                with contextlib.suppress(RtspError):
                    events = self.client.teardown(self.loop.time())
                    self._flush(events)
                    if not self.done.done():  # wait briefly for the answer (TornDown ends it)
                        await asyncio.wait({self.done}, timeout=TEARDOWN_WAIT_S)
        self._release()
        if self._setup_task is not None:
            await asyncio.wait({self._setup_task})
            if not self._setup_task.cancelled() and (exc := self._setup_task.exception()):
                logger.error("RTSP SETUP failed", exc_info=exc)
            self._setup_task = None
        for track in self.tracks:
            if track.media.worker is not None:
                await asyncio.to_thread(track.media.worker.join, WORKER_JOIN_S)
        self._closed = True

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._setup_task is not None:
            self._setup_task.cancel()
        self.media.release(self.loop.time())
        if self.stream is not None:
            self.stream.close()
        self.finish(SessionEnd(Outcome.ENDED, "closed"))

    def set_box(self, box: tuple[int, int] | None) -> None:
        for track in self.tracks:
            if track.media.worker is not None:
                track.media.worker.box = box

    def pause(self) -> None:
        if self.client is not None:
            self.client.pause(self.loop.time())
            self._flush([])

    def resume(self, start_npt: float | None) -> None:
        if self.client is None:
            return
        if start_npt is not None:
            self.media.reset_reorder()
            self._audio.clear()
        self.client.play(self.loop.time(), start_npt=start_npt)
        self._flush([])

    def set_video_decoding(self, enabled: bool) -> None:
        self.media.set_video_decoding(enabled)

    # --- RTSP connection (transport/rtsp.py calls these) ----------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.client is None or (self._closing and self.done.done()):
            return
        try:
            events = self.client.receive_data(data, self.loop.time())
        except RtspError as exc:
            self._fail(
                SessionEnd(Outcome.BROKEN, f"the server sent something that is not RTSP: {exc}")
            )
            return
        self._flush(events)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None or isinstance(exc, ConnectionResetError):
            # The server's host closed it: the server stopped, and is likely restarting.
            reason = f"connection lost: {exc}" if exc else "the server closed the connection"
            self._fail(SessionEnd(Outcome.CLOSED, reason))
        else:
            self._fail(SessionEnd(Outcome.BROKEN, f"connection lost: {exc}"))

    def _fail(self, end: SessionEnd) -> None:
        self.finish(policy.refused_before_play(end, played=self.played or self._host.has_played))

    def _send_interleaved(self, channel: int, data: bytes) -> None:
        if self.client is not None:
            self.client.send_interleaved(channel, data)
            self._write()

    def _write(self) -> None:
        if self.client is None or self.stream is None or self.stream.closing:
            return
        self.stream.write(self.client.data_to_send())

    def _flush(self, events: list[rc.ClientEvent]) -> None:
        for event in events:
            self._handle(event)
        self._write()
        self._arm()

    def _handle(self, event: rc.ClientEvent) -> None:
        now = self.loop.time()
        match event:
            case rc.Described(tracks=tracks):
                self._described(tracks)
            case rc.TrackSetUp():
                self._track_set_up(event)
            case rc.PlayStarted(range_start=start, range_end=end):
                if self.played:  # PLAY after PAUSE (or a seek)
                    self.media.restart_sequences(event.rtp_info, now)
                self.played = True
                self.play_at = now
                self.last_media = None
                self._started(event.rtp_info)
                self._host.playing(self.transport, start, end)
                self._counted_from = Tally(at=now, frames=self._counters.video_frames)
                self._next_stats = now + STATS_INTERVAL_S
            case rc.Paused():
                self._host.paused()
            case rc.TornDown():
                self.finish(SessionEnd(Outcome.ENDED, "torn down"))
            case rc.Redirected(location=location):
                self.finish(
                    SessionEnd(Outcome.REDIRECT, f"redirected to {location}", location=location)
                )
            case rc.AuthenticationFailed(method=method, reason=reason):
                self._fail(
                    SessionEnd(Outcome.REFUSED, f"{method}: 401 Unauthorized: {reason}", 401)
                )
            case rc.RequestFailed(method=method, status=status, reason=reason):
                self._request_failed(method, status, reason)
            case rc.RequestTimedOut(method=method):
                self._fail(SessionEnd(Outcome.BROKEN, f"no answer to {method} within 10 s"))
            case rc.InterleavedFrameReceived(channel=channel, data=data):
                found = self.media.by_channel.get(channel)
                if found is not None:
                    track, rtcp = found
                    self._media(track, data, ("interleaved", channel), rtcp, now)
            case rc.ServerRequestReceived():
                pass  # the client core answered it already
            case _:
                assert_never(event)

    def _request_failed(self, method: str, status: int, reason: str) -> None:
        verdict = policy.after_refusal(
            method, status, reason, transport=self.transport, played=self.played
        )
        match verdict:
            case "ignore":
                pass
            case "warn":
                text = policy.refusal_text(method, status)
                self._host.emit(pe.Notice(level="warning", text=text))
            case SessionEnd():
                self.finish(verdict)
            case _:
                assert_never(verdict)

    # --- SETUP ------------------------------------------------------------------------------------
    def _described(self, tracks: tuple[rc.Track, ...]) -> None:
        chosen = self.media.choose(tracks, record=self._options.record is not None)
        self._host.described(self.url, tracks, {t.info.index for t in chosen})
        if not chosen:
            listed = ", ".join(f"{t.media} {t.encoding}" for t in tracks) or "none"
            self._fail(
                SessionEnd(Outcome.REFUSED, f"no supported codec (the server offers: {listed})")
            )
            return
        self._setup_task = self.loop.create_task(self._setup(), name="rtsp-setup")

    async def _setup(self) -> None:
        assert self.client is not None
        requests: list[rc.TrackRequest] = []
        for track in self.tracks:
            if self.transport == "udp":
                host = self._options.bind_host or self._local_host()
                try:
                    endpoint = await asyncio.wait_for(
                        open_rtp_endpoint(
                            host,
                            self._config.rtp_port_min,
                            self._config.rtp_port_max,
                            self._rng,
                        ),
                        CONNECT_TIMEOUT_S,
                    )
                except (RtpPortError, OSError, TimeoutError) as exc:
                    self.finish(SessionEnd(Outcome.USE_TCP, f"no UDP port for media ({exc})"))
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
        return self.stream.local_host() if self.stream is not None else "0.0.0.0"

    def _track_set_up(self, event: rc.TrackSetUp) -> None:
        peer = self.stream.peer_host() if self.stream is not None else None
        self.media.set_up(event, peer_host=peer, url_host=self.url.host)
        # The decoders start when PLAY is answered (_started), not here: importing PyAV now
        # would hold up the PLAY request.

    def _started(self, rtp_info: tuple[rc.RtpInfo, ...]) -> None:
        """PLAY is answered. In the order that gets the first picture soonest: ask for a key
        frame (its round trip to the encoder is the longest wait), then start loading PyAV
        (phone/preload.py; numpy and the audio modules follow the first picture) and the video
        decoders, then make the RTP sessions; the key frame takes 50-80 ms to come from a live
        encoder on loopback, and all that fits in it."""
        self.media.ask_for_keyframes_on_join(rtp_info)
        self._write()
        preload.start(video=any(track.kind == "video" for track in self.tracks))
        self.loop.call_later(preload.GC_HOLD_AFTER_PLAY_S, preload.release_gc)  # audio-only streams
        for track in self.tracks:
            if track.kind == "video" and track.media.worker is None:
                track.media.start_video(self.loop, self._host.box, self._show_picture)
        for track in self.tracks:
            self.media.open_rtp(track)

    def _show_picture(
        self,
        picture: DecodedPicture,
        rgb: np.ndarray | None,
        codec: str,
        picture_time: float | None,
    ) -> None:
        if not self._closing:
            self._pictures.picture(picture, rgb, codec, picture_time)

    # --- media ------------------------------------------------------------------------------------
    def _media(
        self,
        track: SessionTrack,
        data: bytes,
        addr: tuple[str, int] | tuple[str, Any],
        rtcp: bool,
        now: float,
    ) -> None:
        if self._closing:
            return
        received = self.media.receive(track, data, addr, rtcp, now)
        if received.media:
            self.last_media = now
        if received.all_bye and self.played:
            self.finish(SessionEnd(Outcome.ENDED, "the server ended the stream (RTCP BYE)"))
        self._arm()

    # --- timers -----------------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._closing and self.done.done():
            return
        deadlines: list[float] = []
        if self.client is not None and (at := self.client.get_timer()) is not None:
            deadlines.append(at)
        deadlines.extend(self.media.deadlines())
        if self._next_stats is not None:
            deadlines.append(self._next_stats)
        if self.play_at is not None:
            deadlines.append(policy.media_deadline(self.play_at, self.last_media))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            self._timer = self.loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        events: list[rc.ClientEvent] = []
        if self.client is not None and (at := self.client.get_timer()) is not None and at <= now:
            events = self.client.handle_timer(now)
        self.media.handle_timer(now)
        if self._next_stats is not None and now >= self._next_stats:
            self._stats(now)
        self._watchdog(now)
        self._flush(events)

    def _stats(self, now: float) -> None:
        frames = self._counters.video_frames
        elapsed, self.fps = policy.frame_rate(self._counted_from, now, frames)
        self._counted_from = Tally(at=now, frames=frames)
        self._next_stats = now + STATS_INTERVAL_S
        waiting = self.media.waiting_for_keyframe
        self._host.stats(elapsed_s=elapsed, fps=self.fps, waiting_for_keyframe=waiting)

    def _watchdog(self, now: float) -> None:
        if self.play_at is None or self._host.state == "paused" or self.done.done():
            return
        end = policy.check_media(
            now,
            play_at=self.play_at,
            last_media=self.last_media,
            transport=self.transport,
            choice=self._options.transport,
        )
        if end is not None:
            self.finish(end)
