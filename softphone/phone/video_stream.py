"""One call's video stream on the event loop: its own RTP socket pair, the sans-IO pieces of
rtp/ for video, and PyAV to encode what we send and decode what we receive.

Sending (when SDP lets us and a source is configured):
    source (media/video_source.py) -> VideoEncoder -> packetiser (rtp/packetize/) -> RtpSession
    -> socket, paced at the source's frame rate by a loop timer; what goes out is kept in the
    send history for NACKs; the receiver's RTCP (rtp/video_sender.py) asks for key frames (PLI,
    FIR), resends (NACK) and a bitrate (loss, REMB, TMMBR) that the encoder follows.
Receiving:
    socket -> RtpSession (SSRC, loss, RTCP reports) -> VideoReceiver (NACK, reorder,
    depacketiser, PLI/FIR) -> VideoDecoder -> the last picture, kept for the front ends
    (:meth:`VideoStream.picture`: with our self-view), and the access units to a Matroska
    recording when one runs (media/record.py, no re-encoding).
With SDES keys the socket side is SRTP (srtp/protection.py), as for the call's audio.

The source is read and each picture encoded on a worker thread of the sender
(phone/video_send.py): PyAV lets the GIL go while libvpx or x264 work (a VP8 key frame at
640x360 takes up to 40 ms here, the loop's longest wait meanwhile stayed at 2 ms), and a
camera's read blocks until its next picture. The rest (packets, RTCP, decoding: well under a
millisecond a picture) runs on the loop. A source that fails (a camera unplugged) stops our
picture, never the call: ``on_source_lost`` is told once.

A broken far-end stream never ends the call either, nor reaches the screen: the decoder counts
its errors, the receiver asks for a key frame (PLI, rate-limited), the last good picture stays
until one decodes (phone/video_health.py), and ``on_picture`` is told when the picture breaks
and when it is back. Pictures larger than ``MAX_PICTURE_PIXELS`` or under ``MIN_PICTURE_SIDE`` count as broken.

Lip sync (rtp/lipsync.py): a decoded picture waits until the call's audio captured with it
plays, from both streams' sender reports; our own SRs tell the call's one wall clock and map
each picture's capture instant, so the far end can do the same.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import av
import numpy as np
from av.video.frame import VideoFrame

from softphone.media.errors import MediaError
from softphone.media.record import RecordedStream, StreamRecorder
from softphone.media.video import DecodedPicture, VideoDecoder, fit
from softphone.media.video_encode import EncodedFrame
from softphone.phone.video import VideoSettings
from softphone.phone.video_health import PictureHealth
from softphone.phone.video_send import SourceLost, VideoSender, codec_name, open_source
from softphone.rtp.depacketize import AccessUnit, make_depacketizer
from softphone.rtp.errors import RtpError, RtpParseError
from softphone.rtp.lipsync import VIDEO_CLOCK, AudioPlayout, LipSync, SenderClock
from softphone.rtp.packet import RtcpSenderReport, RtpPacket, is_rtcp, parse_rtcp
from softphone.rtp.session import ByeReceived, RtcpReportReceived, RtpPacketReceived, RtpSession
from softphone.rtp.video_receiver import VideoReceiver
from softphone.sdp import NegotiatedSecurity
from softphone.sdp.video import NegotiatedVideo
from softphone.srtp import DtlsCertificate, MediaProtection, SrtpError
from softphone.transport.ice import IceEndpoint
from softphone.transport.rtp import RtpEndpoint

if TYPE_CHECKING:
    from softphone.media.video import Rgb

__all__ = ["VideoStream", "open_source"]

logger = logging.getLogger(__name__)

CLOCK: Final = VIDEO_CLOCK
MAX_PICTURE_PIXELS: Final = 4096 * 2304  # a bigger picture is refused (a corrupt header, a DoS)
MIN_PICTURE_SIDE: Final = 16  # nor one smaller than a macroblock (a key frame's header damaged)
FPS_WINDOW_S: Final = 2.0
THUMB: Final = 4  # the self-view is a quarter of the picture's width


def _rgb(frame: VideoFrame, width: int, height: int) -> Rgb:
    try:
        array = frame.reformat(width, height, "rgb24").to_ndarray()
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"cannot scale our picture: {exc}") from exc
    return np.ascontiguousarray(array, dtype=np.uint8).reshape(height, width, 3)


class AudioSyncSource(Protocol):
    """The call's audio, as lip sync sees it (phone/media.py ``CallMedia``)."""

    @property
    def remote_cname(self) -> str | None: ...

    def sync_point(self) -> tuple[SenderClock, AudioPlayout] | None: ...


def _no_certificate() -> DtlsCertificate:
    raise SrtpError("DTLS-SRTP needs a certificate and none was given")


class VideoStream:
    """One call's video (see the module docstring). ``on_notice`` is told what goes wrong (a
    source that fails, an encoder that cannot open); the call goes on without our picture."""

    def __init__(
        self,
        *,
        endpoint: RtpEndpoint | IceEndpoint,
        negotiated: NegotiatedVideo,
        settings: VideoSettings,
        rng: random.Random,
        cname: str,
        on_notice: Callable[[str], None] = lambda _: None,
        on_source_lost: Callable[[str], None] = lambda _: None,
        on_picture: Callable[[bool, str], None] = lambda _broken, _reason: None,
        peer_tool: str | None = None,
        security: NegotiatedSecurity | None = None,
        certificate: Callable[[], DtlsCertificate] | None = None,
        ntp_offset_s: float | None = None,
        audio: Callable[[], AudioSyncSource | None] = lambda: None,
    ) -> None:
        """``peer_tool``: the peer's SDP ``a=tool`` (a known peer's quirks); ``security``: the
        SDES keys SDP settled (SRTP), None for plain RTP. ``ntp_offset_s``: wall clock - loop
        clock, the call's audio's (our SRs of both tell one time, RFC 3550 §6.4.1); ``audio``:
        the call's audio now, which received pictures are timed to (lip sync). Raises SrtpError
        for keys libsrtp refuses."""
        self._loop = asyncio.get_running_loop()
        self._endpoint = endpoint
        self._settings = settings
        self._on_notice = on_notice
        self._on_source_lost = on_source_lost
        self._on_picture = on_picture
        self._health = PictureHealth()
        self._peer_tool = peer_tool
        self.negotiated = negotiated
        now = self._loop.time()
        self._session = RtpSession(
            rng=rng,
            cname=cname,
            remote_rtp=self._remote_rtp(negotiated),
            remote_rtcp=self._remote_rtcp(negotiated),
            rtcp_mux=negotiated.rtcp_mux,
            clock_rates={c.payload_type: CLOCK for c in negotiated.receive_codecs},
            now=now,
            ntp_offset_s=ntp_offset_s if ntp_offset_s is not None else 0.0,
        )
        # Our timestamps count from here, whatever sender runs (a re-offer's new encoder goes
        # on from where the old one was, never back): tick n was captured at epoch + n / CLOCK.
        self._epoch = now
        self._audio = audio
        self._peer_sr: tuple[int, int, int] | None = None  # (SSRC, NTP, RTP) of its last SR
        self._sync: LipSync[DecodedPicture] = LipSync()
        self._certificate = certificate
        self._protection = self._protect(security, negotiated.rtcp_mux)
        self._dropped_before_keys = False
        self._receiver: VideoReceiver | None = None
        self._decoder: VideoDecoder | None = None
        self._receive_pt: int | None = None
        self._sender: VideoSender | None = None
        self._sending_allowed = False
        self._send_failed = False
        self._rtt_s: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tick: asyncio.Handle | None = None
        self._arrivals: deque[float] = deque()
        self.closed = False
        self._sent_before = 0  # frames sent by senders closed before (a re-offer)
        self.frames_received = 0
        self.decode_errors = 0
        self.unknown_payload_types = 0
        self.last_picture: DecodedPicture | None = None
        self.picture_listeners: list[Callable[[DecodedPicture], None]] = []
        self._recorder: StreamRecorder | None = None
        self.recording: Path | None = None
        self.codec_name = negotiated.codec.encoding if negotiated.codec is not None else None
        endpoint.timed_sink = self._on_datagram

    # ------------------------------------------------------------------ negotiation
    @staticmethod
    def _remote_rtp(n: NegotiatedVideo) -> tuple[str, int] | None:
        return (n.remote_address, n.remote_port) if n.remote_address else None

    @staticmethod
    def _remote_rtcp(n: NegotiatedVideo) -> tuple[str, int] | None:
        if not n.remote_address or n.remote_rtcp_port is None:
            return None
        return (n.remote_address, n.remote_rtcp_port)

    def _protect(
        self, security: NegotiatedSecurity | None, rtcp_mux: bool
    ) -> MediaProtection | None:
        """SRTP as SDP settled; a DTLS-SRTP handshake starts now (a client's ClientHello)."""
        if security is None:
            return None
        protection = MediaProtection(
            security, rtcp_mux=rtcp_mux, certificate=self._certificate or _no_certificate
        )
        protection.start(self._now())
        return protection

    def update(self, negotiated: NegotiatedVideo, security: NegotiatedSecurity | None) -> None:
        """A re-offer settled new terms: new addresses, codec, direction or keys."""
        if security is None or self._protection is None:
            self._protection = self._protect(security, negotiated.rtcp_mux)
        else:
            self._protection.update(security, rtcp_mux=negotiated.rtcp_mux, now=self._now())
        old, self.negotiated = self.negotiated, negotiated
        if (old.remote_address, old.remote_port, old.rtcp_mux) != (
            negotiated.remote_address,
            negotiated.remote_port,
            negotiated.rtcp_mux,
        ):
            self._session.set_remote(
                remote_rtp=self._remote_rtp(negotiated),
                remote_rtcp=self._remote_rtcp(negotiated),
                rtcp_mux=negotiated.rtcp_mux,
            )
        self._session.set_clock_rates({c.payload_type: CLOCK for c in negotiated.receive_codecs})
        if negotiated.codec is not None:
            self.codec_name = negotiated.codec.encoding
        sender = self._sender
        if sender is not None and (
            negotiated.codec != sender.codec or not negotiated.direction.sends
        ):
            self._stop_sending()
        self.allow_sending(self._sending_allowed)

    def allow_sending(self, allowed: bool) -> None:
        """Send our picture from now on (the call is answered), or stop (early media)."""
        self._sending_allowed = allowed
        n = self.negotiated
        wanted = (
            allowed
            and n.direction.sends
            and n.codec is not None
            and self._settings.can_send
            and not self._send_failed
        )
        if not wanted:
            self._stop_sending()
            return
        if self._sender is None and n.codec is not None:
            try:
                self._sender = VideoSender(
                    n.codec, self._settings, self._session.ssrc, self._now(), self._peer_tool
                )
            except MediaError as exc:
                self._send_failed = True
                self._on_notice(f"video cannot be sent: {exc}")
                return
            self._tick = self._loop.call_soon(self._send_picture)

    def _stop_sending(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self._sender is not None:
            self._sent_before += self._sender.encoder.frames
            self._sender.close()
            self._sender = None

    # ------------------------------------------------------------------ sending
    def _send_picture(self) -> None:
        """A tick of the source's clock: the next picture goes to the encoding worker."""
        self._tick = None
        sender = self._sender
        if sender is None or self.closed:
            return
        now = self._now()
        if not sender.busy:
            sender.busy = True
            sender.ticks = max(round((now - self._epoch) * CLOCK), sender.ticks + 1)
            job = self._loop.run_in_executor(sender.worker, sender.take_and_encode, sender.ticks)
            job.add_done_callback(partial(self._encoded, sender))
        # The next picture at its own time on the source's clock; a late loop (or a slow
        # encoder) skips pictures, never bunches them up.
        sender.pictures += 1
        period = 1.0 / sender.fps
        due = sender.started + sender.pictures * period
        if due < now:
            sender.pictures = int((now - sender.started) / period) + 1
            due = sender.started + sender.pictures * period
        self._tick = self._loop.call_at(due, self._send_picture)

    def _encoded(
        self, sender: VideoSender, job: asyncio.Future[tuple[VideoFrame, list[EncodedFrame]]]
    ) -> None:
        """Back on the loop: the encoded picture is packetised and sent."""
        sender.busy = False
        if sender is not self._sender or self.closed or job.cancelled():
            return
        now = self._now()
        try:
            picture, frames = job.result()
            sender.last_frame = picture
            codec = sender.codec
            for frame in frames:
                captured = self._epoch + frame.timestamp / CLOCK  # the tick it was read at
                for payload in sender.packetizer.packetize(frame.data, frame.timestamp):
                    self._session.send_rtp(
                        payload.payload,
                        payload_type=codec.payload_type,
                        media_ticks=payload.timestamp,
                        marker=payload.marker,
                        clock_rate=CLOCK,
                        now=now,
                        sampled_at=captured,
                    )
        except SourceLost as exc:  # the call goes on: audio, and the far end's picture
            self._send_failed = True
            self._stop_sending()
            self._on_source_lost(str(exc))
        except (MediaError, RtpError) as exc:
            self._send_failed = True
            self._stop_sending()
            self._on_notice(f"video sending stopped: {exc}")
        self._flush()

    # ------------------------------------------------------------------ receiving
    def _on_datagram(
        self, data: bytes, addr: tuple[str, int], via_rtcp: bool, arrival: float
    ) -> None:
        if self.closed:
            return
        now = arrival
        if self._protection is not None:
            plain = self._protection.incoming(data, addr, via_rtcp, now)
            if plain is None:  # a DTLS record (answered in _flush), or dropped and counted
                self._flush()
                return
            data = plain
        for event in self._session.receive_datagram(data, addr, now, on_rtcp_port=via_rtcp):
            match event:
                case RtpPacketReceived(packet=packet, now=at):
                    self._receive(packet, at)
                case RtcpReportReceived(rtt_ms=rtt_ms, report=report):
                    if rtt_ms is not None:
                        self._rtt_s = rtt_ms / 1000.0
                    if isinstance(report, RtcpSenderReport):
                        self._peer_sr = (report.ssrc, report.ntp_timestamp, report.rtp_timestamp)
                case ByeReceived():
                    pass  # the call's end comes from SIP
        if via_rtcp or is_rtcp(data):
            self._feedback(data, now)
        self._flush()

    def _feedback(self, data: bytes, now: float) -> None:
        sender = self._sender
        if sender is None:
            return
        try:
            packets = parse_rtcp(data)
        except RtpParseError:
            return
        actions = sender.feedback.receive_rtcp(packets, now, self._rtt_s)
        for packet in actions.resend:
            self._session.send_raw(bytes(packet), rtcp=False)
        if actions.keyframe:
            sender.encoder.request_keyframe()
        if actions.bitrate_bps is not None:  # the worker applies it before the next picture
            sender.bitrate = (actions.bitrate_bps, now)
        if actions.rtcp is not None:
            self._session.send_raw(actions.rtcp, rtcp=True)

    def _receive(self, packet: RtpPacket, now: float) -> None:
        codec = next(
            (c for c in self.negotiated.receive_codecs if c.payload_type == packet.payload_type),
            None,
        )
        if codec is None or not self.negotiated.direction.receives:
            self.unknown_payload_types += codec is None
            return
        if self._receiver is None or self._receive_pt != packet.payload_type:
            try:
                depacketizer = make_depacketizer(codec.encoding, CLOCK, codec.fmtp)
                self._decoder = VideoDecoder(codec_name(codec))
            except (RtpError, MediaError) as exc:
                self.unknown_payload_types += 1
                logger.info("cannot receive %s: %s", codec.encoding, exc)
                return
            self._receiver = VideoReceiver(
                depacketizer, our_ssrc=self._session.ssrc, feedback=codec.feedback
            )
            self._receive_pt = packet.payload_type
            self._sync.clear()  # pictures of the old decoder
        units = self._receiver.receive(packet, now)
        if not units and self._receiver.depacketizer.waiting_for_keyframe:
            self._health.unusable(now)  # frames dropped until a key frame (PLI asked)
        self._decode(units, now)

    def record(self, path: Path | None) -> None:
        """Write the video we receive to Matroska at ``path`` as it comes (media/record.py: no
        re-encoding, from the next key frame); None stops and finishes the file."""
        recorder, self._recorder, self.recording = self._recorder, None, None
        if recorder is not None:
            recorder.close()
        if path is None:
            return
        codec = self.negotiated.codec
        name = codec_name(codec) if codec is not None else "vp8"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recorder = StreamRecorder(path, [RecordedStream(codec=name, clock_rate=CLOCK)])
        self.recording = path
        if self._receiver is not None:  # it starts at a key frame: ask for one now
            self._receiver.request_keyframe()

    def _record(self, unit: AccessUnit) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        try:
            recorder.write(0, unit)
        except MediaError as exc:
            self.record(None)
            self._on_notice(f"video recording stopped: {exc}")

    def _decode(self, units: list[AccessUnit], now: float) -> None:
        decoder, receiver = self._decoder, self._receiver
        if decoder is None or receiver is None:
            return
        health = self._health
        for unit in units:
            self._record(unit)
            errors, skipped = decoder.errors + decoder.corrupt, decoder.skipped
            pictures = decoder.decode(unit)
            if decoder.errors + decoder.corrupt > errors:
                self._broken(f"a {unit.codec} frame does not decode", now)
            elif decoder.skipped > skipped:
                health.unusable(now)  # no key frame yet
            for picture in pictures:
                w, h = picture.width, picture.height
                if min(w, h) < MIN_PICTURE_SIDE or w * h > MAX_PICTURE_PIXELS:
                    self._broken(f"a {picture.width}x{picture.height} picture", now)
                elif health.picture(now, keyframe=unit.keyframe):
                    self.frames_received += 1
                    self._arrivals.append(now)
                    self._hold(picture, now)
        while self._arrivals and now - self._arrivals[0] > FPS_WINDOW_S:
            self._arrivals.popleft()
        for change in health.changes():
            self._on_picture(change.broken, change.reason)
        self.release(now)

    def _broken(self, reason: str, now: float) -> None:
        """The decoder failed: ask for a key frame, hold the last good picture."""
        self.decode_errors += 1
        if self._receiver is not None:
            self._receiver.decode_failed()
        self._health.failed(now, reason)

    def _hold(self, picture: DecodedPicture, now: float) -> None:
        """Lip sync (rtp/lipsync.py): the picture waits until the audio captured with it
        plays, from both streams' SRs (same CNAME: one participant's wall clock)."""
        receiver, sr, audio = self._receiver, self._peer_sr, self._audio()
        video: SenderClock | None = None
        if sr is not None and receiver is not None and sr[0] == receiver.media_ssrc:
            video = SenderClock(sr[1], sr[2], CLOCK)
        point = audio.sync_point() if audio is not None else None
        theirs, ours = self._session.remote_cname, audio.remote_cname if audio else None
        self._sync.push(
            picture,
            picture.timestamp,
            now,
            video=video,
            audio=point[0] if point is not None else None,
            playout=point[1] if point is not None else None,
            same_cname=theirs is None or ours is None or theirs == ours,
        )

    def release(self, now: float) -> None:
        """The picture due at ``now`` (lip sync), if one is, becomes the one front ends draw (the
        loop timer calls it at the next one due; drawing calls it too)."""
        picture = self._sync.pop_due(now)
        if picture is None:
            return
        self.last_picture = picture
        for listener in list(self.picture_listeners):
            listener(picture)

    # ------------------------------------------------------------------ timers and output
    def _flush(self) -> None:
        sender, now = self._sender, self._now()
        receiver = self._receiver
        if receiver is not None:
            feedback = receiver.rtcp_to_send(now, self._rtt_s)
            if feedback is not None:
                self._session.send_raw(feedback, rtcp=True)
        for data, dest, via_rtcp in self._session.datagrams_to_send():
            if sender is not None and not via_rtcp and not is_rtcp(data):
                try:
                    sender.feedback.sent(RtpPacket.parse(data), now)
                except RtpParseError:
                    pass
            if self._protection is not None:
                protected = self._protection.outgoing(data, via_rtcp)
                if protected is None:  # no keys yet (the DTLS-SRTP handshake runs)
                    self._dropped_before_keys |= not via_rtcp
                    continue
                if self._dropped_before_keys and not via_rtcp and sender is not None:
                    # The key frame went out before the keys: the receiver needs another.
                    self._dropped_before_keys = False
                    sender.encoder.request_keyframe()
                data = protected
            self._endpoint.send(data, dest, via_rtcp)
        if self._protection is not None:
            self._send_records(self._protection)
        self._arm_timer()

    def _send_records(self, protection: MediaProtection) -> None:
        """DTLS records to where the peer's came from, else to its signalled ports."""
        n = self.negotiated
        for record, via_rtcp, source in protection.datagrams_to_send():
            to = source
            if to is None and n.remote_address:
                port = n.remote_rtcp_port if via_rtcp and n.remote_rtcp_port else n.remote_port
                to = (n.remote_address, port)
            if to is not None:
                self._endpoint.send(record, to, via_rtcp)

    def _arm_timer(self) -> None:
        if self.closed:
            return
        receiver = self._receiver
        times = [self._session.get_timer()]
        if self._protection is not None:
            times.append(self._protection.get_timer())
        if receiver is not None:
            times.append(receiver.next_deadline(self._rtt_s))
        times.append(self._sync.next_due())
        at = min((t for t in times if t is not None), default=None)
        if self._timer is not None and at is not None and self._timer.when() == at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if at is not None:
            self._timer = self._loop.call_at(max(at, self._now()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        self._session.handle_timer(now)
        if self._protection is not None:
            self._protection.handle_timer(now)  # DTLS retransmissions
        if self._receiver is not None:
            self._decode(self._receiver.poll(now), now)
        self.release(now)
        self._flush()

    def _now(self) -> float:
        return self._loop.time()

    # ------------------------------------------------------------------ what front ends see
    @property
    def self_view(self) -> VideoFrame | None:
        """The last picture we sent (before encoding), for a self-view."""
        return self._sender.last_frame if self._sender is not None else None

    @property
    def frames_sent(self) -> int:
        current = self._sender.encoder.frames if self._sender is not None else 0
        return self._sent_before + current

    def picture(self, width: int, height: int, *, self_view: bool = True) -> Rgb | None:
        """What to draw in a ``width`` x ``height`` pixel box: the far end's last picture fitted
        in it (aspect kept), with our own as a thumbnail in its bottom-right corner; ours alone
        while nothing has come; None before either."""
        self.release(self._now())
        far, own = self.last_picture, self.self_view if self_view else None
        if width < 2 or height < 2 or (far is None and own is None):
            return None
        try:
            if far is None:
                assert own is not None
                w, h = fit(own.width, own.height, width, height)
                return _rgb(own, w, h)
            w, h = far.fit(width, height)
            canvas = far.to_rgb(w, h)
            if own is not None and w >= 16 and h >= 16:
                tw, th = fit(own.width, own.height, max(2, w // THUMB), max(2, h // THUMB))
                canvas = canvas.copy()
                canvas[h - th - 1 : h - 1, w - tw - 1 : w - 1] = _rgb(own, tw, th)
            return canvas
        except (MediaError, ValueError) as exc:
            logger.debug("cannot draw the video: %s", exc)
            return None

    def stats(self) -> dict[str, object]:
        """The ``video_*`` statistics (names fixed: tools outside the project read them). fps,
        width and height are the received picture's; when nothing is received, the sent one's."""
        now = self._now()
        recent = [t for t in self._arrivals if now - t <= FPS_WINDOW_S]
        fps = len(recent) / FPS_WINDOW_S
        width = self.last_picture.width if self.last_picture is not None else None
        height = self.last_picture.height if self.last_picture is not None else None
        sender = self._sender
        if self.last_picture is None and sender is not None:
            elapsed = max(now - sender.started, 1e-3)
            fps = min(sender.encoder.frames / elapsed, float(sender.fps))
            width, height = sender.encoder.width, sender.encoder.height
        return {
            "video_codec": self.codec_name,
            "video_frames_sent": self.frames_sent,
            "video_frames_received": self.frames_received,
            "video_fps": round(fps, 1),
            "video_width": width,
            "video_height": height,
            "video_keyframe_requests": (
                self._receiver.keyframe_requests if self._receiver is not None else 0
            ),
            "video_nacks_sent": self._receiver.nacks_sent if self._receiver is not None else 0,
            "video_encryption": self._protection.method if self._protection else "none",
            # Lip sync: "active" while pictures are timed to the audio ("off" before both
            # streams' SRs; "out-of-range", "mismatched": see rtp/lipsync.py), and how long the
            # last picture was held after it was decoded.
            "video_sync": self._sync.state.value,
            "video_sync_ms": round(self._sync.hold_s * 1000.0, 1),
            # The far end's picture: "waiting", "good" or "broken" (held until a key frame).
            "video_picture": self._health.state.name.lower(),
            "video_decode_errors": self.decode_errors,
        }

    def close(self) -> None:
        if self.closed:
            return
        now = self._now()
        self._stop_sending()
        try:
            self._session.bye(now)
            if self._protection is not None:
                self._protection.close()  # DTLS close_notify
            self._flush()
        except Exception:  # the BYE is a courtesy: never let it break a hang-up
            logger.exception("video RTCP BYE failed")
        self.closed = True
        self.record(None)
        for handle in (self._timer, self._tick):
            if handle is not None:
                handle.cancel()
        self._timer = self._tick = None
        self._endpoint.timed_sink = None
        if self._decoder is not None:
            self._decoder.close()
