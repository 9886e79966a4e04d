"""One RTSP session of the player: one connection (transport/rtsp.py) carrying OPTIONS, DESCRIBE,
SETUP per track and PLAY (the sans-IO client, rtsp/client.py), then the media until the server,
the network or the user ends it; :meth:`PlayerSession.run` returns how it ended
(phone/player_policy.py decides what follows).

Per played track it pumps the RTP session, the reorder buffer and the depacketiser (rtp/) and
hands access units to the decode pipeline (phone/player_media.py); it asks for key frames with
RTCP PLIs (rtp/feedback.py) and sends the receiver reports the RTP session builds. One loop
timer serves every deadline: the client's, the RTP sessions' and reorder buffers', the stats
and the media watchdog.

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, assert_never

from softphone.config import Config
from softphone.phone import player_events as pe
from softphone.phone import player_policy as policy
from softphone.phone import preload
from softphone.phone.player_media import (
    AudioOutput,
    PictureOutput,
    SessionRecording,
    TrackDecoding,
)
from softphone.phone.player_policy import Outcome, SessionEnd, TransportName
from softphone.rtp.depacketize import Depacketizer, UnsupportedCodec, make_depacketizer
from softphone.rtp.feedback import KeyframeRequester
from softphone.rtsp import client as rc
from softphone.rtsp.errors import RtspError
from softphone.rtsp.url import RtspUrl
from softphone.transport.rtp import RtpEndpoint, RtpPortError, open_rtp_endpoint
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
    from softphone.rtp.packet import RtpPacket
    from softphone.rtp.reorder import ReorderBuffer
    from softphone.rtp.session import RtpSession

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
TEARDOWN_WAIT_S = 1.0
STATS_INTERVAL_S = 1.0
REORDER_UDP = 64  # packets (gortsplib's window)
REORDER_DELAY_S = 0.1  # FFmpeg's reorder delay
WORKER_JOIN_S = 2.0


class SessionHost(Protocol):
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

    def emit(self, event: pe.PhoneEvent) -> None: ...

    def described(self, url: RtspUrl, tracks: tuple[rc.Track, ...], chosen: set[int]) -> None: ...

    def playing(self, transport: TransportName, start: float | None, end: float | None) -> None: ...

    def paused(self) -> None: ...

    def stats(self, *, elapsed_s: float, fps: float, waiting_for_keyframe: bool) -> None: ...

    def next_recording(self) -> Path | None: ...

    @property
    def video_decoding(self) -> bool:
        """Whether video is decoded (not while nobody can see it)."""
        ...


@dataclass(eq=False)
class _Track:
    """One played stream of a session: its depacketiser, RTP session, decoding and state."""

    info: rc.Track
    kind: Literal["video", "audio"]
    depack: Depacketizer
    keyframes: KeyframeRequester  # its sender SSRC is ours, the RTP session's too (given to it)
    media: TrackDecoding
    session: RtpSession | None = None  # made when PLAY is answered (or with the first datagram)
    reorder: ReorderBuffer | None = None
    server_rtp: tuple[str, int] | None = None
    endpoint: RtpEndpoint | None = None
    channel: int | None = None  # interleaved RTP channel (RTCP on channel + 1)
    server_rtcp: tuple[str, int] | None = None
    bye: bool = False
    ssrc: int | None = None  # the server's, from SETUP's Transport or PLAY's RTP-Info


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
        self.transport: TransportName = transport
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
        self.tracks: list[_Track] = []
        self.by_channel: dict[int, tuple[_Track, bool]] = {}
        self.played = False
        self.play_at: float | None = None
        self.last_media: float | None = None
        self.media_packets = 0
        self.fps = 0.0
        self._frames_at_tick = 0
        self._timer: asyncio.TimerHandle | None = None
        self._next_stats: float | None = None
        self._setup_task: asyncio.Task[None] | None = None
        self._recording: SessionRecording | None = None
        self._closing = False
        self._released = False
        self._closed = False

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
            return SessionEnd(Outcome.BROKEN, f"cannot reach {url.host}:{url.port}: {exc.reason}")
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
        for track in self.tracks:
            if track.session is not None:
                with contextlib.suppress(Exception):
                    track.session.bye(self.loop.time())
                    self._send_rtcp(track)
            if track.endpoint is not None:
                track.endpoint.close()
            track.media.close()
        if self._recording is not None:
            self._recording.close()
            self._recording = None
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
            for track in self.tracks:
                track.reorder = self._new_reorder()
            self._audio.clear()
        self.client.play(self.loop.time(), start_npt=start_npt)
        self._flush([])

    def set_video_decoding(self, enabled: bool) -> None:
        """Decode the video, or not (nobody can see it); back on, ask for a key frame at once
        (the decoder starts again at one)."""
        for track in self.tracks:
            if track.kind == "video":
                track.media.set_decoding(enabled)
                if enabled and track.ssrc is not None:
                    self._ask_for_keyframe(track, track.ssrc)

    def _restart_sequences(self, rtp_info: tuple[rc.RtpInfo, ...], now: float) -> None:
        """PLAY answered after a PAUSE: the server goes on at RTP-Info's ``seq`` (RFC 2326
        §12.33), and a live source has moved on meanwhile. The numbers it skipped were never
        sent: the reorder buffer and the RTP session count from there, not as lost packets."""
        for track in self.tracks:
            seq = next((i.seq for i in rtp_info if i.index == track.info.index), None)
            if track.session is not None and seq is not None:
                track.session.restart_sequence(seq)
            if track.reorder is not None:
                for packet, lost in track.reorder.restart(seq, now):
                    self._depacketize(track, packet, lost)

    def _new_reorder(self) -> ReorderBuffer:
        from softphone.rtp.reorder import ReorderBuffer

        if self.transport == "tcp":
            return ReorderBuffer(capacity=1, max_delay_s=0.0)
        return ReorderBuffer(capacity=REORDER_UDP, max_delay_s=REORDER_DELAY_S)

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
        reason = f"connection lost: {exc}" if exc else "the server closed the connection"
        self._fail(SessionEnd(Outcome.BROKEN, reason))

    def _fail(self, end: SessionEnd) -> None:
        self.finish(policy.refused_before_play(end, played=self.played or self._host.has_played))

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
                    self._restart_sequences(event.rtp_info, now)
                self.played = True
                self.play_at = now
                self.last_media = None
                self._started(event.rtp_info)
                self._host.playing(self.transport, start, end)
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
                found = self.by_channel.get(channel)
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
        chosen: list[_Track] = []
        for kind in ("video", "audio"):
            for info in tracks:
                if info.media != kind:
                    continue
                track = self._make_track(info, kind)
                if track is not None:
                    chosen.append(track)
                    break
        self._host.described(self.url, tracks, {t.info.index for t in chosen})
        if not chosen:
            listed = ", ".join(f"{t.media} {t.encoding}" for t in tracks) or "none"
            self._fail(
                SessionEnd(Outcome.REFUSED, f"no supported codec (the server offers: {listed})")
            )
            return
        self.tracks = chosen
        if self._options.record is not None:
            self._recording = SessionRecording(
                [t.media for t in chosen],
                next_path=self._host.next_recording,
                notify=self._host.emit,
            )
        self._setup_task = self.loop.create_task(self._setup(), name="rtsp-setup")

    def _make_track(self, info: rc.Track, kind: Literal["video", "audio"]) -> _Track | None:
        try:
            depack = make_depacketizer(
                info.encoding, info.clock_rate, info.fmtp, info.channels or 1
            )
        except UnsupportedCodec:
            return None
        # RFC 3550 §8.1: our SSRC is random; drawn now for the PLI sent before the RTP session
        # exists, and given to that session when it is made.
        ours = self._rng.getrandbits(32)
        media = TrackDecoding(
            info,
            kind,
            depack,
            counters=self._counters,
            audio=self._audio,
            notify=self._host.emit,
            decoding=self._host.video_decoding,
        )
        return _Track(
            info=info, kind=kind, depack=depack, keyframes=KeyframeRequester(ours), media=media
        )

    def _open_rtp(self, track: _Track) -> RtpSession:
        """The track's RTP session and reorder buffer, made when PLAY is answered (or with a
        datagram before that): the RTP modules load after PLAY has gone out, while the server
        prepares its first key frame, not before it."""
        if track.session is None:
            from softphone.rtp.session import RtpSession

            info = track.info
            track.session = RtpSession(
                rng=self._rng,
                cname=f"softphone-{self._rng.getrandbits(32):08x}",
                remote_rtp=track.server_rtp,
                remote_rtcp=track.server_rtcp,
                rtcp_mux=False,
                clock_rates={info.payload_type: info.clock_rate}
                if info.payload_type is not None
                else {},
                ssrc=track.keyframes.sender_ssrc,
            )
        if track.reorder is None:
            track.reorder = self._new_reorder()
        return track.session

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
        if event.server_ports is not None and self.stream is not None:
            host = event.source or self.url.host
            peer = self.stream.peer_host()
            if event.source is None and peer:
                host = peer
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
            if track.kind == "video" and track.media.worker is None:
                track.media.start_video(self.loop, self._host.box, self._show_picture)
        for track in self.tracks:
            self._open_rtp(track)

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
                        track.media.sender_report = (ntp, rtp_ts)
                case ByeReceived():
                    track.bye = True
                    if all(t.bye for t in self.tracks) and self.played:
                        self.finish(
                            SessionEnd(Outcome.ENDED, "the server ended the stream (RTCP BYE)")
                        )
                case RtcpReportReceived():
                    pass  # receiver reports: what the server thinks of our (absent) stream
                case _:
                    assert_never(event)
        self._send_rtcp(track)
        self._arm()

    def _send_rtcp(self, track: _Track) -> None:
        """Send what the track's RTP session built (receiver reports, BYE)."""
        if track.session is None:
            return
        for data, addr, _via_rtcp in track.session.datagrams_to_send():
            self._send_raw_rtcp(track, data, fallback=addr)

    def _depacketize(self, track: _Track, packet: RtpPacket, lost: int) -> None:
        self._counters.lost_packets += lost
        try:
            units = track.depack.push(packet, lost_before=lost)
        except Exception:  # a depacketiser bug must not end the session
            logger.exception("depacketiser failed on %s", track.info.encoding)
            return
        if track.kind == "video" and (
            track.depack.waiting_for_keyframe or track.media.wants_keyframe
        ):
            self._ask_for_keyframe(track, packet.ssrc)
        for unit in units:
            if self._recording is not None:
                self._recording.write(track.media, unit)
            track.media.take(unit)

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
        a whole GOP: a Picture Loss Indication (RFC 4585 §6.3.1), paced by rtp/feedback.py."""
        data = track.keyframes.request(media_ssrc, self.loop.time())
        if data is not None:
            self._send_raw_rtcp(track, data)

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
        c = self._counters
        elapsed = now - self._next_stats + STATS_INTERVAL_S
        self.fps = (c.video_frames - self._frames_at_tick) / max(elapsed, 1e-3)
        self._frames_at_tick = c.video_frames
        self._next_stats = now + STATS_INTERVAL_S
        waiting = any(t.kind == "video" and t.depack.waiting_for_keyframe for t in self.tracks)
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
