"""A call's media: the RTP session, the encoder, the playout and DTMF, glued to an audio port.

Data path, all on the event loop:
    microphone -> AudioEngine -> capture() -> resample -> encoder -> RtpSession -> socket
    socket -> RtpSession -> Playout.put() ... AudioEngine -> render() -> Playout.pull() -> speaker
The sans-IO pieces (rtp/session.py, rtp/dtmf.py, rtp/jitter.py) never see the loop; this module
feeds them ``now`` from the loop clock and arms one timer for both: the RTCP reports, and a
DTMF digit whose end packets were all lost.

With SRTP (srtp/protection.py) the socket side of the RTP session is wrapped: what arrives is
unprotected (or, for DTLS records, handed to the handshake) before the session sees it, and what
the session sends is protected on its way out; packets that fail are dropped and counted there.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, assert_never

import numpy as np

from softphone.media.codecs import (
    CodecDescriptor,
    CodecError,
    DecoderOptions,
    Encoder,
    EncoderOptions,
    get_codec,
)
from softphone.media.playout import Playout
from softphone.media.resample import Resampler
from softphone.media.silence import silent_block
from softphone.media.wav import RECORDING_SYNC_S, StereoRecorder
from softphone.phone.api import StreamSummary
from softphone.phone.media_stats import MediaStats
from softphone.rtp.dtmf import DtmfDigitReceived, DtmfReceiver, DtmfSender
from softphone.rtp.emodel import estimate_mos
from softphone.rtp.lipsync import AudioPlayout, SenderClock
from softphone.rtp.packet import RtcpSenderReport, RtpPacket
from softphone.rtp.session import ByeReceived, RtcpReportReceived, RtpPacketReceived, RtpSession
from softphone.sdp import Direction, NegotiatedMedia, SessionDescription
from softphone.srtp import MediaProtection
from softphone.transport.ice import IceEndpoint
from softphone.transport.rtp import RtpEndpoint

logger = logging.getLogger(__name__)

Pcm = np.ndarray
MIN_PULL = 32  # samples: tiny pulls only cost time


def receive_map(
    local: SessionDescription | None, remote: SessionDescription | None
) -> dict[int, tuple[str, int]]:
    """Payload type -> (encoding, clock rate) from both descriptions of the audio stream.

    Our own description says how the peer should label what it sends us; a peer that reuses its
    own numbers instead (it happens) is understood too. Ours wins on a clash.
    """
    out: dict[int, tuple[str, int]] = {}
    for sdp in (local, remote):
        if sdp is None:
            continue
        m = sdp.first_media("audio")
        if m is None:
            continue
        for pt, rtpmap in m.rtpmaps().items():
            out.setdefault(pt, (rtpmap.encoding, rtpmap.clock_rate))
    return out


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _lookup(encoding: str) -> CodecDescriptor | None:
    try:
        return get_codec(encoding)
    except (CodecError, KeyError):
        return None


class CallMedia:
    """One call's audio stream. Created when SDP is negotiated; ``update`` on re-INVITE."""

    def __init__(
        self,
        *,
        call_id: str,
        endpoint: RtpEndpoint | IceEndpoint,
        media: NegotiatedMedia,
        pt_map: Mapping[int, tuple[str, int]],
        engine_rate: int,
        rng: random.Random,
        cname: str,
        on_dtmf: Callable[[str, Literal["rtp", "info"], int], None],
        on_bye: Callable[[str], None] | None = None,
        ntp_offset_s: float | None = None,
    ) -> None:
        """``ntp_offset_s``: wall clock - loop clock, the call's one for its every stream (the
        sender reports of our audio and video must tell the same time, RFC 3550 §6.4.1)."""
        self.call_id = call_id
        self._endpoint = endpoint
        self._rng = rng
        self._engine_rate = engine_rate
        self._on_dtmf = on_dtmf
        self._on_bye = on_bye
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.muted = False
        self.mixed = False  # a conference feeds it (phone/mixing.py)
        self.sending_allowed = True  # False until the call is answered (early media: listen only)
        self.closed = False
        self._session = RtpSession(
            rng=rng,
            cname=cname,
            remote_rtp=None,
            remote_rtcp=None,
            rtcp_mux=media.rtcp_mux,
            ntp_offset_s=(
                time.time() - self._loop.time() if ntp_offset_s is None else ntp_offset_s
            ),
        )
        self._peer_sr: tuple[int, int, int] | None = None  # (SSRC, NTP, RTP) of its last SR
        endpoint.timed_sink = self._on_datagram
        self._media = media
        self._remote: tuple[tuple[str, int], tuple[str, int], bool] | None = None
        self._pt_map: dict[int, tuple[str, int]] = dict(pt_map)
        self._codec: CodecDescriptor | None = None
        self._encoder: Encoder | None = None
        self._send_pt = 0
        self._frame_samples = 0
        self._frame_ticks = 0
        self._media_ticks = 0
        self._mic_buffer = np.zeros(0, dtype=np.float32)
        self._to_codec: Resampler | None = None
        self._mic_primed = False  # the codec resampler's tail put ahead of the first frame
        self._to_engine: Resampler | None = None
        self._playout: Playout | None = None
        self._playout_codec = ""
        self._recv_pt: int | None = None
        self._recv_ssrc: int | None = None  # the source the playout follows
        self._out_fifo = np.zeros(0, dtype=np.float32)
        self._dtmf_sender = DtmfSender(clock_rate=8000)
        self._dtmf_base_ticks = 0
        self._dtmf_receiver = DtmfReceiver()
        self._dtmf_queue: list[str] = []
        self._last_loss_percent = -1
        self.unknown_payload_types = 0
        self._recorder: StereoRecorder | None = None
        self.recording_path: Path | None = None
        self.protection: MediaProtection | None = None
        self.update(media, pt_map)

    def protect(self, protection: MediaProtection | None, now: float) -> None:
        """Use ``protection`` from now on (None: plain RTP); its DTLS handshake starts now."""
        self.protection = protection
        if protection is not None:
            protection.start(now)
        self._flush()

    # ------------------------------------------------------------------ negotiation
    def update(
        self, media: NegotiatedMedia, pt_map: Mapping[int, tuple[str, int]] | None = None
    ) -> None:
        """(Re)apply what SDP negotiated: peer address, codec, direction (hold)."""
        self._media = media
        if pt_map is not None:
            self._pt_map = dict(pt_map)
        address = media.remote_address
        if address and address not in ("0.0.0.0", "::") and media.remote_port:
            rtcp_port = media.remote_rtcp_port or (
                media.remote_port if media.rtcp_mux else media.remote_port + 1
            )
            remote = ((address, media.remote_port), (address, rtcp_port), media.rtcp_mux)
            if remote != self._remote:  # a re-INVITE that keeps the address keeps the latch
                self._remote = remote
                self._session.set_remote(
                    remote_rtp=remote[0], remote_rtcp=remote[1], rtcp_mux=remote[2]
                )
        if media.codec is None:
            return
        codec = _lookup(media.codec.encoding)
        if codec is None or codec.make_encoder is None or codec.make_decoder is None:
            raise CodecError(f"negotiated codec {media.codec.encoding} is not available here")
        # Jitter is measured on audio payload types only: RFC 4733 events would inflate it.
        self._session.set_clock_rates(
            {
                pt: rate
                for pt, (enc, rate) in self._pt_map.items()
                if enc.lower() not in ("telephone-event", "cn")
            }
        )
        # Only what SDP negotiated may move where we send and listen (RFC 4961 latching).
        self._session.set_latch_filter(payload_types=self._pt_map.keys())
        if (
            self._codec is None
            or codec.encoding != self._codec.encoding
            or media.codec.payload_type != self._send_pt
        ):
            self._codec = codec
            frame_ms = media.ptime_ms if media.ptime_ms in (10, 20, 30, 40, 60) else 20
            try:
                self._encoder = codec.make_encoder(
                    EncoderOptions(frame_ms=frame_ms, fmtp=media.codec.fmtp)
                )
            except CodecError:  # a ptime this codec cannot frame (G.722 at 30 ms): use 20 ms
                frame_ms = 20
                self._encoder = codec.make_encoder(
                    EncoderOptions(frame_ms=frame_ms, fmtp=media.codec.fmtp)
                )
            self._send_pt = media.codec.payload_type
            self._frame_samples = codec.sample_rate * frame_ms // 1000
            self._frame_ticks = codec.clock_rate * frame_ms // 1000
            self._mic_buffer = np.zeros(0, dtype=np.float32)
            self._to_codec = Resampler(self._engine_rate, codec.sample_rate)
            self._mic_primed = False
            self._last_loss_percent = -1

    def _ensure_playout(self, pt: int, encoding: str) -> Playout | None:
        if self._playout is not None and pt == self._recv_pt:
            return self._playout
        codec = _lookup(encoding)
        if codec is None or codec.make_decoder is None:
            return None
        if self._playout is not None and self._playout_codec == codec.encoding:
            self._recv_pt = pt  # same codec under another number: keep the buffer
            return self._playout
        self._playout = Playout(codec, codec.make_decoder(DecoderOptions()))
        self._playout_codec = codec.encoding
        self._recv_pt = pt
        self._to_engine = Resampler(codec.sample_rate, self._engine_rate)
        self._out_fifo = np.zeros(0, dtype=np.float32)
        return self._playout

    @property
    def sends(self) -> bool:
        return self._media.direction.sends and self.sending_allowed and not self.closed

    @property
    def receives(self) -> bool:
        return self._media.direction.receives and not self.closed

    @property
    def direction(self) -> Direction:
        return self._media.direction

    @property
    def codec_name(self) -> str:
        return self._codec.encoding if self._codec is not None else "-"

    # ------------------------------------------------------------------ audio port
    def capture(self, pcm: Pcm, now: float, *, others: Pcm | None = None) -> None:
        """Microphone audio at the engine's rate: frame it, encode it, send it. In a conference
        (phone/mixing.py) ``others`` is what the other parties said, sent with it: mute silences
        only our microphone, never them."""
        if self.closed or self._codec is None or self._encoder is None or self._to_codec is None:
            return
        self._poll_dtmf(now)
        ours = silent_block(len(pcm)) if self.muted else pcm
        if self._recorder is not None:
            self._recorder.write_local(ours if self.sends else silent_block(len(pcm)))
        converted = self._to_codec.process(ours if others is None else ours + others)
        if not self._mic_primed:
            # The resampler holds its filter's tail back (15 samples at 8 kHz), so a frame
            # would lack them at the end of the block that completes it and wait a whole block
            # more (10 ms on a sound card). That much silence first puts the frame boundaries
            # on the blocks' again: 2 ms of shift instead of a block's wait.
            self._mic_primed = True
            owed = np.zeros(self._to_codec.held_back, dtype=np.float32)
            converted = np.concatenate((owed, converted)) if len(owed) else converted
        self._mic_buffer = (
            np.concatenate((self._mic_buffer, converted)) if len(self._mic_buffer) else converted
        )
        sent = False
        while len(self._mic_buffer) >= self._frame_samples:
            frame = self._mic_buffer[: self._frame_samples]
            self._mic_buffer = self._mic_buffer[self._frame_samples :]
            if self.sends and not self._dtmf_sender.busy:
                payload = self._encoder.encode(frame)
                self._session.send_rtp(
                    payload,
                    payload_type=self._send_pt,
                    media_ticks=self._media_ticks,
                    clock_rate=self._codec.clock_rate,
                    now=now,
                )
                sent = True
            self._media_ticks += self._frame_ticks
        if sent:
            self._flush()

    def render(self, samples: int, now: float) -> Pcm:
        """``samples`` of far-end audio at the engine's rate (silence when there is none)."""
        out = self._render(samples, now)
        if self._recorder is not None and not self.mixed:
            self._recorder.write_remote(out)
        return out

    def read_by_pump(self, polled: bool) -> None:
        """While attached to an engine, its pump reads our RTP socket (transport/rtp.py)."""
        self._endpoint.read_by_poll(polled)

    def poll_network(self) -> None:
        self._endpoint.poll()

    def hear(self, pcm: Pcm) -> None:
        """In a conference: what we hear of all its parties, the recording's remote side."""
        if self._recorder is not None and self.mixed:
            self._recorder.write_remote(pcm)

    def _render(self, samples: int, now: float) -> Pcm:
        playout, resampler = self._playout, self._to_engine
        if playout is None or resampler is None or not self.receives:
            return np.zeros(samples, dtype=np.float32)
        # Pull only what the speaker needs now (plus the resampler's rounding): pulling ahead of
        # the clock would ask the jitter buffer for packets before their time.
        fifo = self._out_fifo
        if not len(fifo) and resampler.is_identity and samples >= MIN_PULL:
            # The codec runs at the engine's rate (Opus at 48 kHz): the pull is the block.
            return resampler.process(playout.pull(samples, now))
        for _ in range(
            8
        ):  # bounded: one pull almost always suffices; the resampler may hold back a few
            lacking = samples - len(fifo)
            if lacking <= 0:
                break
            want = max(-(-lacking * playout.sample_rate // self._engine_rate), MIN_PULL)
            fifo = np.concatenate((fifo, resampler.process(playout.pull(want, now))))
        out, self._out_fifo = fifo[:samples], fifo[samples:]
        if len(out) < samples:
            out = np.concatenate((out, np.zeros(samples - len(out), dtype=np.float32)))
        return out.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: Path) -> None:
        """Stereo WAV, local on the left and remote on the right, at the engine's rate. The
        header is kept valid while writing, so a killed process leaves a playable file."""
        if self._recorder is not None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recorder = StereoRecorder(path, self._engine_rate, sync_s=RECORDING_SYNC_S)
        self.recording_path = path

    def stop_recording(self) -> Path | None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        recorder.close()
        return self.recording_path

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    # ------------------------------------------------------------------ DTMF
    def send_dtmf(self, digits: str, now: float) -> None:
        """RFC 4733 events on the negotiated telephone-event payload type."""
        if self._media.telephone_event is None:
            raise ValueError("the peer did not offer telephone-event")
        if self._dtmf_sender.busy:
            self._dtmf_queue.append(digits)
            return
        self._dtmf_base_ticks = self._media_ticks
        self._dtmf_sender.start(digits, now)

    @property
    def has_telephone_event(self) -> bool:
        return self._media.telephone_event is not None

    def _poll_dtmf(self, now: float) -> None:
        te = self._media.telephone_event
        if te is None:
            return
        if not self._dtmf_sender.busy and self._dtmf_queue:
            self._dtmf_base_ticks = self._media_ticks
            self._dtmf_sender.start(self._dtmf_queue.pop(0), now)
        packets = self._dtmf_sender.poll(now)
        for packet in packets:
            # The event clock is 8 kHz; the audio clock may differ (Opus 48 kHz): scale the offset.
            scale = (self._codec.clock_rate if self._codec else 8000) / 8000
            self._session.send_rtp(
                packet.payload,
                payload_type=te.payload_type,
                media_ticks=self._dtmf_base_ticks + int(packet.timestamp_offset_ticks * scale),
                marker=packet.marker,
                clock_rate=te.clock_rate,
                now=now,
            )
        if packets:
            self._flush()

    # ------------------------------------------------------------------ network
    def _on_datagram(
        self, data: bytes, addr: tuple[str, int], via_rtcp: bool, arrival: float
    ) -> None:
        """``arrival``: when the kernel received it, on the loop's clock (transport/rtp.py)."""
        if self.closed:
            return
        now = arrival
        if self.protection is not None:
            plain = self.protection.incoming(data, addr, via_rtcp, now)
            if plain is None:  # a DTLS record (answered below), or dropped and counted
                self._flush()
                return
            data = plain
        try:
            events = self._session.receive_datagram(data, addr, now, on_rtcp_port=via_rtcp)
        except Exception:  # the session promises not to raise; one bad packet never ends a call
            logger.exception("RTP datagram from %s could not be handled", addr)
            return
        for event in events:
            match event:
                case RtpPacketReceived(packet=packet):
                    self._on_rtp(packet, now)
                case RtcpReportReceived(report=RtcpSenderReport() as sr):
                    self._peer_sr = (sr.ssrc, sr.ntp_timestamp, sr.rtp_timestamp)
                    self._adapt_encoder(now)
                case RtcpReportReceived():
                    self._adapt_encoder(now)
                case ByeReceived(reason=reason):
                    if self._on_bye is not None:
                        self._on_bye(reason)
                case _:
                    assert_never(event)
        self._flush()

    def _on_rtp(self, packet: RtpPacket, now: float) -> None:
        known = self._pt_map.get(packet.payload_type)
        if known is None:
            self.unknown_payload_types += 1
            return
        encoding = known[0]
        if encoding.lower() == "telephone-event":
            for digit in self._dtmf_receiver.receive(packet.payload, packet.timestamp, now):
                self._digit(digit)
            return
        if encoding.lower() == "cn":
            return  # comfort noise (RFC 3389): the playout conceals the silence anyway
        if not self._media.direction.receives:
            return
        playout = self._ensure_playout(packet.payload_type, encoding)
        if playout is None:
            self.unknown_payload_types += 1
            return
        if packet.ssrc != self._recv_ssrc:
            if self._recv_ssrc is not None:
                playout.new_source()
            self._recv_ssrc = packet.ssrc
        playout.put(
            sequence=packet.sequence,
            timestamp=packet.timestamp,
            payload=packet.payload,
            now=now,
            marker=packet.marker,
        )

    def _digit(self, event: DtmfDigitReceived) -> None:
        self._on_dtmf(event.digit, "rtp", event.duration_ms)

    def _adapt_encoder(self, now: float) -> None:
        """Opus: tell the encoder how much loss the peer reports, so in-band FEC matches it."""
        if self._encoder is None:
            return
        stats = self._session.stats(now)
        percent = (
            round(100 * stats.remote_fraction_lost) if stats.remote_fraction_lost is not None else 0
        )
        percent = min(max(percent, 0), 30)
        if percent != self._last_loss_percent:
            self._encoder.set_packet_loss(percent)
            self._last_loss_percent = percent

    def _flush(self) -> None:
        self._send(self._session.datagrams_to_send())
        self._arm_timer()

    def _send(self, datagrams: list[tuple[bytes, tuple[str, int], bool]]) -> None:
        protection = self.protection
        if protection is None:
            for data, dest, via_rtcp in datagrams:
                self._endpoint.send(data, dest, via_rtcp)
            return
        for data, dest, via_rtcp in datagrams:
            protected = protection.outgoing(data, via_rtcp)
            if protected is not None:  # None: no keys yet (DTLS-SRTP handshake running)
                self._endpoint.send(protected, dest, via_rtcp)
        for record, via_rtcp, source in protection.datagrams_to_send():
            to = source
            if to is None and self._remote is not None:
                to = self._remote[1] if via_rtcp else self._remote[0]
            if to is not None:
                self._endpoint.send(record, to, via_rtcp)

    def _arm_timer(self) -> None:
        if self.closed:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        # RTCP reports, and a DTMF digit whose end packets were all lost (reported on timeout).
        # The earliest, without building a list: this runs for every packet sent.
        at = self._session.get_timer()
        for t in (
            self._dtmf_receiver.next_deadline(),
            self.protection.get_timer() if self.protection is not None else None,
        ):
            if t is not None and (at is None or t < at):
                at = t
        # Called for every packet sent: a timer already set for the same deadline stays (a new
        # handle per packet left the loop's heap full of cancelled ones).
        if self._timer is not None and at is not None and self._timer.when() == at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if at is not None:
            self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        self._session.handle_timer(now)  # does nothing before its own deadline
        if self.protection is not None:
            self.protection.handle_timer(now)  # DTLS retransmissions
        for digit in self._dtmf_receiver.poll(now):
            self._digit(digit)
        self._flush()

    # ------------------------------------------------------------------ stats and end
    def sync_point(self) -> tuple[SenderClock, AudioPlayout] | None:
        """For the video's lip sync (rtp/lipsync.py): the last SR of the source we play and
        which of its timestamps reached the speaker when; None before both."""
        playout, sr = self._playout, self._peer_sr
        if playout is None or sr is None or sr[0] != self._recv_ssrc:
            return None
        last = playout.last_played
        if last is None:
            return None
        clock = SenderClock(sr[1], sr[2], playout.codec.clock_rate)
        return clock, AudioPlayout(last.timestamp, last.play_time)

    @property
    def remote_cname(self) -> str | None:
        return self._session.remote_cname

    def stats(self, now: float) -> MediaStats:
        s = self._session.stats(now)
        p = self._playout.stats() if self._playout is not None else None
        jb_ms = p.buffer_delay_ms if p is not None else 0.0
        frame_ms = 1000 * self._frame_samples / self._codec.sample_rate if self._codec else 20.0
        one_way = (s.rtt_ms / 2 if s.rtt_ms is not None else 0.0) + jb_ms + frame_ms
        late = p.late if p is not None else 0
        played = max(p.packets_played if p is not None else 0, 1)
        protection = self.protection
        srtp = protection.stats() if protection is not None else {}
        loss = s.loss_percent + 100.0 * late / (played + late)
        endpoint = self._endpoint
        ice = endpoint.summary() if isinstance(endpoint, IceEndpoint) else ("off", None)
        estimate = estimate_mos(
            codec=self.codec_name,
            one_way_delay_ms=one_way,
            loss_percent=loss,
            burst_ratio=s.burst_ratio,
        )
        return MediaStats(
            codec=self.codec_name,
            packets_sent=s.packets_sent,
            packets_received=s.packets_received,
            packets_lost=s.packets_lost,
            loss_percent=s.loss_percent,
            fraction_lost=s.fraction_lost,
            jitter_ms=s.jitter_ms,
            rtt_ms=s.rtt_ms,
            remote_loss_percent=(
                100.0 * s.remote_fraction_lost if s.remote_fraction_lost is not None else None
            ),
            remote_jitter_ms=s.remote_jitter_ms,
            jitter_buffer_ms=jb_ms,
            target_delay_ms=p.target_delay_ms if p is not None else 0.0,
            concealed_ms=p.concealed_ms if p is not None else 0.0,
            stretched_ms=(p.accelerated_ms + p.expanded_ms) if p is not None else 0.0,
            late_packets=late,
            mos=estimate.mos,
            r_factor=estimate.r,
            encryption=protection.method if protection is not None else "none",
            srtp_suite=protection.suite if protection is not None else None,
            srtp_auth_failures=srtp.get("srtp_auth_failures", 0),
            srtp_replay_drops=srtp.get("srtp_replay_drops", 0),
            srtp_dropped=srtp.get("srtp_dropped", 0),
            encryption_error=protection.failure if protection is not None else None,
            ice=ice[0],
            ice_pair=ice[1],
        )

    def streams(self, now: float, *, advertised: str | None = None) -> list[StreamSummary]:
        """The stream we send and the one we receive, as they are now. ``advertised``: the
        address to show for ours when the socket is bound to every address."""
        s = self._session.stats(now)
        host = self._endpoint.host
        if advertised is not None and host in ("0.0.0.0", "::"):
            host = advertised
        local = _host_port(host, self._endpoint.port)
        signalled = self._remote[0] if self._remote is not None else None
        peer = s.latched_address or signalled
        remote = _host_port(*peer) if peer is not None else ""
        send_rate = self._codec.clock_rate if self._codec is not None else None
        sent = StreamSummary(
            direction="sent",
            ssrc=self._session.ssrc,
            local=local,
            remote=remote,
            codec=self.codec_name,
            payload_type=self._send_pt if self._codec is not None else None,
            clock_rate=send_rate,
            packets=s.packets_sent,
            lost=s.remote_packets_lost,
            loss_percent=s.remote_cumulative_loss_percent,
            jitter_ms=s.remote_jitter_ms,
            jitter_buffer_ms=None,
        )
        recv_pt = self._recv_pt
        encoding, rate = (
            self._pt_map.get(recv_pt, ("-", None)) if recv_pt is not None else ("-", None)
        )
        playout = self._playout.stats() if self._playout is not None else None
        received = StreamSummary(
            direction="received",
            ssrc=s.remote_ssrc,
            local=local,
            remote=remote,
            codec=encoding,
            payload_type=recv_pt,
            clock_rate=rate,
            packets=s.packets_received,
            lost=s.packets_lost,
            loss_percent=s.loss_percent,
            jitter_ms=s.jitter_ms,
            jitter_buffer_ms=playout.buffer_delay_ms if playout is not None else None,
        )
        return [sent, received]

    def close(self, now: float) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_recording()
        try:
            self._session.bye(now)
            self._send(self._session.datagrams_to_send())
            if self.protection is not None:
                self.protection.close()  # DTLS close_notify
                self._send([])
        except Exception:
            logger.exception("RTCP BYE failed")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
