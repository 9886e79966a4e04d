"""The media side of one RTSP session of the player: the tracks it plays and, per track, the
path from a datagram (or an interleaved frame) to the decoder: the RTP session, the reorder
buffer, the depacketiser, then access units to the decode pipeline (phone/player_media.py) and a
recording. It asks for key frames with RTCP PLIs (rtp/feedback.py) and sends what the RTP
sessions build (receiver reports, BYE).

phone/player_session.py owns the connection, the RTSP client and the timers; it hands this the
tracks DESCRIBE listed and the media as it arrives, asks it for its deadlines, and sends
interleaved RTCP for it (``send_interleaved``).

The RTP modules load when PLAY is answered (or with the first datagram), not before: they are
not on the way to PLAY.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, assert_never

from softphone.phone import player_events as pe
from softphone.phone.player_media import AudioOutput, SessionRecording, TrackDecoding
from softphone.phone.player_policy import TransportName
from softphone.rtp.depacketize import Depacketizer, UnsupportedCodec, make_depacketizer
from softphone.rtp.feedback import KeyframeRequester
from softphone.rtsp import client as rc
from softphone.transport.rtp import RtpEndpoint

if TYPE_CHECKING:
    from softphone.phone.player import PlayerCounters
    from softphone.rtp.packet import RtpPacket
    from softphone.rtp.reorder import ReorderBuffer
    from softphone.rtp.session import RtpSession

logger = logging.getLogger(__name__)

REORDER_UDP = 64  # packets (gortsplib's window)
REORDER_DELAY_S = 0.1  # FFmpeg's reorder delay


class MediaHost(Protocol):
    """What the tracks tell the player, and the little they ask of it."""

    def emit(self, event: pe.PhoneEvent) -> None: ...

    def next_recording(self) -> Path | None: ...

    @property
    def video_decoding(self) -> bool:
        """Whether video is decoded (not while nobody can see it)."""
        ...


@dataclass(eq=False)
class SessionTrack:
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


class Received(NamedTuple):
    """What a datagram meant to the session: media arrived (the watchdog's), every track's
    source said BYE (the server ended the presentation)."""

    media: bool
    all_bye: bool


class SessionMedia:
    """The tracks of one session (see the module docstring)."""

    def __init__(
        self,
        transport: TransportName,
        *,
        host: MediaHost,
        rng: random.Random,
        counters: PlayerCounters,
        audio: AudioOutput,
        send_interleaved: Callable[[int, bytes], None],
        clock: Callable[[], float],
    ) -> None:
        self.transport: TransportName = transport
        self._host = host
        self._rng = rng
        self._counters = counters
        self._audio = audio
        self._send_interleaved = send_interleaved
        self._clock = clock
        self.tracks: list[SessionTrack] = []
        self.by_channel: dict[int, tuple[SessionTrack, bool]] = {}
        self._recording: SessionRecording | None = None

    # --- choosing and setting up ------------------------------------------------------------------
    def choose(self, tracks: tuple[rc.Track, ...], *, record: bool) -> list[SessionTrack]:
        """The first video and the first audio track we can play, of those DESCRIBE listed."""
        chosen: list[SessionTrack] = []
        for kind in ("video", "audio"):
            for info in tracks:
                if info.media != kind:
                    continue
                track = self._make_track(info, kind)
                if track is not None:
                    chosen.append(track)
                    break
        self.tracks = chosen
        if chosen and record:
            self._recording = SessionRecording(
                [t.media for t in chosen],
                next_path=self._host.next_recording,
                notify=self._host.emit,
            )
        return chosen

    def _make_track(self, info: rc.Track, kind: Literal["video", "audio"]) -> SessionTrack | None:
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
        return SessionTrack(
            info=info, kind=kind, depack=depack, keyframes=KeyframeRequester(ours), media=media
        )

    def open_rtp(self, track: SessionTrack) -> RtpSession:
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
            track.reorder = self.new_reorder()
        return track.session

    def new_reorder(self) -> ReorderBuffer:
        from softphone.rtp.reorder import ReorderBuffer

        if self.transport == "tcp":
            return ReorderBuffer(capacity=1, max_delay_s=0.0)
        return ReorderBuffer(capacity=REORDER_UDP, max_delay_s=REORDER_DELAY_S)

    def set_up(
        self, event: rc.TrackSetUp, *, peer_host: str | None, url_host: str
    ) -> SessionTrack | None:
        """SETUP of a track answered: where its media comes from and goes to."""
        track = next((t for t in self.tracks if t.info.index == event.index), None)
        if track is None:
            return None
        if event.transport == "tcp" and self.transport == "udp":
            # quirk: a server that answers a UDP SETUP with TCP interleaved; go along with it
            self.transport = "tcp"
            track.reorder = self.new_reorder()
        if event.interleaved is not None:
            track.channel = event.interleaved[0]
            self.by_channel[event.interleaved[0]] = (track, False)
            self.by_channel[event.interleaved[1]] = (track, True)
        if event.server_ports is not None:
            # the source the server names, else the address we connected to (a name in the URL
            # may resolve to several), else the URL's host
            host = event.source or peer_host or url_host
            track.server_rtp = (host, event.server_ports[0])
            track.server_rtcp = (host, event.server_ports[1])
            if track.session is not None:
                track.session.set_remote(
                    remote_rtp=track.server_rtp, remote_rtcp=track.server_rtcp, rtcp_mux=False
                )
        if event.ssrc is not None:
            track.ssrc = event.ssrc
        return track

    # --- media ------------------------------------------------------------------------------------
    def receive(
        self,
        track: SessionTrack,
        data: bytes,
        addr: tuple[str, int] | tuple[str, Any],
        rtcp: bool,
        now: float,
    ) -> Received:
        from softphone.rtp.session import ByeReceived, RtcpReportReceived, RtpPacketReceived

        session = self.open_rtp(track)
        assert track.reorder is not None
        media = all_bye = False
        for event in session.receive_datagram(data, addr, now, on_rtcp_port=rtcp):
            match event:
                case RtpPacketReceived(packet=packet, now=arrived):
                    media = True
                    for in_order, lost in track.reorder.push(packet, arrived):
                        self._depacketize(track, in_order, lost)
                case RtcpReportReceived(sender_report=True, report=report):
                    ntp = getattr(report, "ntp_timestamp", None)
                    rtp_ts = getattr(report, "rtp_timestamp", None)
                    if ntp is not None and rtp_ts is not None:
                        track.media.sender_report = (ntp, rtp_ts)
                case ByeReceived():
                    track.bye = True
                    all_bye = all(t.bye for t in self.tracks)
                case RtcpReportReceived():
                    pass  # receiver reports: what the server thinks of our (absent) stream
                case _:
                    assert_never(event)
        self.send_rtcp(track)
        return Received(media=media, all_bye=all_bye)

    def send_rtcp(self, track: SessionTrack) -> None:
        """Send what the track's RTP session built (receiver reports, BYE)."""
        if track.session is None:
            return
        for data, addr, _via_rtcp in track.session.datagrams_to_send():
            self._send_raw_rtcp(track, data, fallback=addr)

    def _depacketize(self, track: SessionTrack, packet: RtpPacket, lost: int) -> None:
        self._counters.lost_packets += lost
        try:
            units = track.depack.push(packet, lost_before=lost)
        except Exception:  # a depacketiser bug must not end the session
            logger.exception("depacketiser failed on %s", track.info.encoding)
            return
        if track.kind == "video" and (
            track.depack.waiting_for_keyframe or track.media.wants_keyframe
        ):
            self.ask_for_keyframe(track, packet.ssrc)
        for unit in units:
            if self._recording is not None:
                self._recording.write(track.media, unit)
            track.media.take(unit)

    def restart_sequences(self, rtp_info: tuple[rc.RtpInfo, ...], now: float) -> None:
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

    def reset_reorder(self) -> None:
        """A seek: what the reorder buffers hold is from before it."""
        for track in self.tracks:
            track.reorder = self.new_reorder()

    @property
    def waiting_for_keyframe(self) -> bool:
        return any(t.kind == "video" and t.depack.waiting_for_keyframe for t in self.tracks)

    # --- key frames -------------------------------------------------------------------------------
    def ask_for_keyframes_on_join(self, rtp_info: tuple[rc.RtpInfo, ...]) -> None:
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
                self.ask_for_keyframe(track, track.ssrc)

    def ask_for_keyframe(self, track: SessionTrack, media_ssrc: int) -> None:
        """Joining a live stream or after loss, ask for a key frame now instead of waiting up to
        a whole GOP: a Picture Loss Indication (RFC 4585 §6.3.1), paced by rtp/feedback.py."""
        data = track.keyframes.request(media_ssrc, self._clock())
        if data is not None:
            self._send_raw_rtcp(track, data)

    def set_video_decoding(self, enabled: bool) -> None:
        """Decode the video, or not (nobody can see it); back on, ask for a key frame at once
        (the decoder starts again at one)."""
        for track in self.tracks:
            if track.kind == "video":
                track.media.set_decoding(enabled)
                if enabled and track.ssrc is not None:
                    self.ask_for_keyframe(track, track.ssrc)

    def _send_raw_rtcp(
        self, track: SessionTrack, data: bytes, fallback: tuple[str, int] | None = None
    ) -> None:
        if track.channel is not None:
            # RFC 2326 §10.12: RTCP rides the odd interleaved channel.
            self._send_interleaved(track.channel + 1, data)
        elif (
            track.endpoint is not None
            and (destination := track.server_rtcp or fallback) is not None
        ):
            track.endpoint.send(data, destination, via_rtcp=True)

    # --- timers -----------------------------------------------------------------------------------
    def deadlines(self) -> list[float]:
        """When the RTP sessions (reports) and reorder buffers (late packets) want a call."""
        found: list[float] = []
        for track in self.tracks:
            if track.session is not None and (at := track.session.get_timer()) is not None:
                found.append(at)
            if track.reorder is not None and (at := track.reorder.next_deadline()) is not None:
                found.append(at)
        return found

    def handle_timer(self, now: float) -> None:
        for track in self.tracks:
            if (
                track.session is not None
                and (at := track.session.get_timer()) is not None
                and at <= now
            ):
                track.session.handle_timer(now)
                self.send_rtcp(track)
            if (
                track.reorder is not None
                and (at := track.reorder.next_deadline()) is not None
                and at <= now
            ):
                for packet, lost in track.reorder.poll(now):
                    self._depacketize(track, packet, lost)

    # --- the end ----------------------------------------------------------------------------------
    def release(self, now: float) -> None:
        """Say BYE (RFC 3550 §6.6), close the media sockets, the decoders and the recording."""
        for track in self.tracks:
            if track.session is not None:
                with contextlib.suppress(Exception):
                    track.session.bye(now)
                    self.send_rtcp(track)
            if track.endpoint is not None:
                track.endpoint.close()
            track.media.close()
        if self._recording is not None:
            self._recording.close()
            self._recording = None
