"""Video in the phone's calls: the ``m=video`` of each offer and answer (sdp/video.py) and each
call's video stream (phone/video_stream.py) on an RTP socket pair of its own.

The audio's offer/answer (phone/offer_answer.py) makes the session description; this module adds
or answers the video section in it, and reads the video of an answer to our offer:

- Offer (RFC 3264 §5): an ``m=video`` after the audio when the call wants video (``dial
  --video``: :attr:`VideoSettings.offer`; or a key in the TUI, by re-INVITE:
  :meth:`CallVideo.want`). Once a call's SDP has had video, every later offer keeps the
  section (§8: m= lines are never removed), with port 0 when video is turned off (§8.2).
- Answer (§6): a peer's ``m=video`` is taken, sendrecv when we have a source, receive-only
  when we have none (§6.1); port 0 for what sdp/video.py cannot take.
- The streams start, change and stop with the call's audio (phone/calls.py ``sync_media``).
- Behind a NAT the video's address is the public host the audio's STUN or registrar found
  (phone/nat.py) with the video socket's own ports: right for routers that keep source ports.
- A call whose account does ICE gives its video an ICE agent of its own (phone/video_ice.py):
  candidates on the m=video, its default candidate in c=/m=, media on the selected pair; a
  video whose checks fail stops, the call goes on.

Encryption follows the call's account (its ``media_encryption``): with SDES the video section
carries keys of its own (RFC 4568, made per call like the audio's), with DTLS-SRTP the audio's
certificate fingerprint and a handshake of its own on the video's port (RFC 5764 §4.1); the
stream is SRTP (srtp/protection.py). An answer or offer that does not meet the policy leaves
the call without video rather than with plain video.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from softphone.media.errors import MediaError
from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.video_ice import VideoIce, remote_video_ice
from softphone.sdp import (
    LocalSecurity,
    MediaEncryption,
    NegotiatedSecurity,
    SdpError,
    SessionDescription,
)
from softphone.sdp.crypto import SUITES, CryptoAttribute
from softphone.sdp.security import (
    answer_security,
    answered_security,
    offer_security,
)
from softphone.sdp.session import Connection, MediaDescription
from softphone.sdp.video import (
    DEFAULT_CODECS,
    LocalVideo,
    NegotiatedVideoCodec,
    VideoCodec,
    answer_video,
    apply_video_answer,
    rejected_video,
    video_offer_section,
)
from softphone.sdp.video_limits import SendFormat, send_format
from softphone.srtp import DtlsCertificate, SrtpError
from softphone.transport.rtp import RtpEndpoint

if TYPE_CHECKING:  # PyAV is loaded with the first call that has video
    from softphone.media.video import Rgb
    from softphone.phone.video_stream import VideoStream

__all__ = ["EMPTY_STATS", "CallVideo", "VideoSettings", "local_codecs", "sending_format"]

logger = logging.getLogger(__name__)

EMPTY_STATS: dict[str, object] = {
    "video_codec": None,
    "video_frames_sent": 0,
    "video_frames_received": 0,
    "video_fps": 0.0,
    "video_width": None,
    "video_height": None,
}

SourceKind = Literal["pattern", "file", "camera"]


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """What the phone sends as video. ``source`` None: nothing (video offers are answered
    receive-only); ``path``: the file (looped) or the camera device. ``offer``: outgoing calls
    offer video (``dial --video``); without it only the peer's offer brings video."""

    source: SourceKind | None = None
    path: str | None = None
    offer: bool = False
    width: int = 320
    height: int = 240
    fps: int = 15
    record: str | None = None  # --video-record: the received video of calls, to Matroska
    codecs: tuple[str, ...] = ("VP8", "VP9", "H264")  # offered and answered, in this order
    # H.264's packetization modes (RFC 6184 §6.2, §6.3), offered and answered in this order.
    h264_packetization_modes: tuple[int, ...] = (1, 0)
    start_bitrate_bps: int = 400_000
    min_bitrate_bps: int = 100_000
    max_bitrate_bps: int = 1_500_000

    def __post_init__(self) -> None:
        modes = self.h264_packetization_modes
        if not modes or len(set(modes)) != len(modes) or not set(modes) <= {0, 1}:
            raise ValueError(f"H.264 packetization modes are 1 and/or 0, not {modes!r}")

    @property
    def can_send(self) -> bool:
        return self.source is not None


def _packetization_mode(codec: VideoCodec) -> int:
    return int(codec.fmtp.get("packetization-mode", "0") or "0")  # RFC 6184 §8.1: 0 if absent


def local_codecs(settings: VideoSettings) -> tuple[VideoCodec, ...]:
    """Our video codecs in ``settings.codecs`` order; H.264 once per packetization mode of
    ``settings.h264_packetization_modes``, in that order."""
    out: list[VideoCodec] = []
    for name in settings.codecs:
        same = [codec for codec in DEFAULT_CODECS if codec.name == name.upper()]
        if name.upper() == "H264":
            by_mode = {_packetization_mode(codec): codec for codec in same}
            same = [by_mode[m] for m in settings.h264_packetization_modes if m in by_mode]
        out += same
    return tuple(out)


def sending_format(codec: NegotiatedVideoCodec, settings: VideoSettings) -> SendFormat:
    """The size, frame rate and bitrates we send ``codec`` at: ours from ``settings``, brought
    within what the peer can receive (its H.264 level and max-fs/max-mbps/max-br, VP8/VP9
    max-fs/max-fr: sdp/video_limits.py). MediaError for a size that is not even."""
    try:
        fmt = send_format(
            codec.limits,
            width=settings.width,
            height=settings.height,
            fps=settings.fps,
            min_bitrate_bps=settings.min_bitrate_bps,
            start_bitrate_bps=settings.start_bitrate_bps,
            max_bitrate_bps=settings.max_bitrate_bps,
        )
    except SdpError as exc:
        raise MediaError(str(exc)) from exc
    if (fmt.width, fmt.height, fmt.fps, fmt.max_bitrate_bps) != (
        settings.width,
        settings.height,
        settings.fps,
        settings.max_bitrate_bps,
    ):
        logger.info(
            "%s to a peer that receives %s: %dx%d at %d fps, at most %d bit/s",
            codec.encoding,
            codec.limits,
            fmt.width,
            fmt.height,
            fmt.fps,
            fmt.max_bitrate_bps,
        )
    return fmt


def _video_index(sdp: SessionDescription | None) -> int | None:
    if sdp is None:
        return None
    return next((i for i, m in enumerate(sdp.media) if m.media.lower() == "video"), None)


def _ice_stats(info: CallInfo) -> dict[str, object]:
    """``video_ice`` ("off", "checking", "connected", "failed") and ``video_ice_pair`` (the
    selected pair's "local type/remote type")."""
    state, pair = info.video_ice.summary() if info.video_ice is not None else ("off", None)
    return {"video_ice": state, "video_ice_pair": pair}


def _tool(sdp: bytes | None) -> str | None:
    """The peer's ``a=tool`` (RFC 8866 §6.3): its name and version."""
    try:
        return SessionDescription.parse(sdp).attribute("tool") if sdp else None
    except SdpError:
        return None


class CallVideo:
    """Every call's video. ``open_rtp`` opens an RTP socket pair now."""

    def __init__(
        self,
        settings: VideoSettings,
        *,
        rng: random.Random,
        emit: Callable[[pe.PhoneEvent], None],
        open_rtp: Callable[[], RtpEndpoint],
        certificate: Callable[[], DtlsCertificate] | None = None,
        ice: VideoIce | None = None,
    ) -> None:
        self.settings = settings
        self._ice = ice  # the video's ICE agents, for accounts that do ICE
        if ice is not None:
            ice.on_failed = self._ice_failed
        self._rng = rng
        self._emit = emit
        self._open_rtp = open_rtp
        self._certificate = certificate  # DTLS-SRTP's, the audio's
        self.address = "127.0.0.1"  # our advertised address, the audio's (set by OfferAnswer)
        self._streams: dict[str, VideoStream] = {}  # by Call-ID, while a call has video
        self._recorded = 0  # calls whose video --video-record took
        self._protected: dict[str, NegotiatedSecurity | None] = {}  # what SDP settled

    def _security(self, info: CallInfo) -> LocalSecurity | None:
        """The call's video keys (None: plain RTP), under the policy of the call's audio: SDES
        keys of its own, made once per call (RFC 4568 §6.1), and the audio's certificate
        fingerprint for DTLS-SRTP (the video runs a handshake of its own, RFC 5764 §4.1)."""
        audio = info.local_security
        if audio is None or audio.policy is MediaEncryption.NONE:
            return None
        video = info.video_security
        if video is None or video.policy is not audio.policy:
            crypto = tuple(
                CryptoAttribute(tag, suite.name, secrets.token_bytes(suite.key_salt_length))
                for tag, suite in enumerate(SUITES.values(), start=1)
            )
            video = LocalSecurity(audio.policy, crypto)
        if video.fingerprint != audio.fingerprint:
            video = LocalSecurity(video.policy, video.crypto, audio.fingerprint)
        info.video_security = video
        return video

    # ------------------------------------------------------------------ wishes
    def want(self, info: CallInfo, on: bool) -> None:
        """Video on or off in the call's next offer. On again after its ICE failed: a new
        agent gathers for it (phone/video_ice.py)."""
        info.video_wanted = on
        if on and self._ice is not None and VideoIce.failed(info):
            self._ice.close(info)

    def needs_ice(self, info: CallInfo, offer_sdp: bytes | None) -> bool:
        """Whether our offer (``offer_sdp`` None) or our answer to ``offer_sdp`` will have video
        that has no ICE agent yet, for an account that does ICE (and, answering, an offer whose
        video does ICE). A video already running without an agent keeps going without."""
        ice = self._ice
        if ice is None or info.video_ice is not None or info.call_id in self._streams:
            return False
        if not ice.enabled(info.account):
            return False
        if not offer_sdp:
            return self._wanted(info)
        try:
            return remote_video_ice(offer_sdp) is not None
        except SdpError:
            return False  # the answer says why, or answers without video ICE

    async def prepare_ice(
        self, info: CallInfo, *, host: str | None = None, offer_sdp: bytes | None
    ) -> None:
        """Before an offer (``offer_sdp`` None) or the answer to ``offer_sdp`` goes out: gather
        the video's ICE candidates on ``host`` (default: our advertised address) when
        :meth:`needs_ice` (phone/video_ice.py)."""
        if self._ice is None or not self.needs_ice(info, offer_sdp):
            return
        if info.video_rtp is None:
            try:
                info.video_rtp = self._open_rtp()
            except OSError:
                return  # the offer or answer says why it has no video
        await self._ice.prepare(
            info, info.video_rtp, host=host or self.address, offer_sdp=offer_sdp
        )

    def _ice_failed(self, info: CallInfo, reason: str) -> None:
        """The video's checks failed or its consent expired: the video stops, the call goes
        on; our next offers have it off (port 0)."""
        info.video_wanted = False
        info.video_media = None
        self._close_stream(info)

    def _wanted(self, info: CallInfo) -> bool:
        if info.video_wanted is None:
            info.video_wanted = self.settings.offer
        return info.video_wanted

    def _local(self, info: CallInfo, proto: str) -> LocalVideo:
        """Our side of the call's video; inactive while we hold the call (the audio goes
        sendonly for music on hold; a held party sees nothing, our camera included)."""
        if info.video_rtp is None:
            info.video_rtp = self._open_rtp()
        ice = info.video_ice_address
        return LocalVideo(
            address=self._host(info),
            port=ice.rtp_port if ice is not None else info.video_rtp.port,
            can_send=self.settings.can_send and not info.local_hold,
            can_receive=not info.local_hold,
            codecs=local_codecs(self.settings),
            max_bitrate_kbps=self.settings.max_bitrate_bps // 1000,
            proto=proto,
        )

    def _host(self, info: CallInfo) -> str:
        """Where the far end reaches our video: the public host the audio's STUN or registrar
        found (phone/nat.py), with the video socket's own ports (right for routers that keep
        source ports, as most do); else our advertised address. With ICE: the video's default
        candidate (RFC 8445 §5.1.4)."""
        if info.video_ice_address is not None:
            return info.video_ice_address.host
        public = info.media_address
        if public is not None and public.source in ("stun", "registrar"):
            return public.host
        return self.address

    def _address_for(self, info: CallInfo, sdp: SessionDescription) -> str | None:
        """A c= for the video section when the session's is not our video socket's address."""
        ours = self._host(info)
        session = sdp.connection.address if sdp.connection is not None else None
        return None if session == ours else ours

    # ------------------------------------------------------------------ SDP
    def offer(self, info: CallInfo, offer: SessionDescription) -> None:
        """Add our ``m=video`` to the call's new offer (see the module docstring)."""
        had_video = _video_index(info.local_sdp) is not None or info.video_media is not None
        wanted = self._wanted(info)
        if not wanted and not had_video:
            return
        audio = offer.media[0] if offer.media else None
        taken = {int(f) for f in audio.formats if f.isdigit()} if audio is not None else set()
        try:
            proto, security = offer_security(self._security(info))
            local = self._local(info, proto)
            section = video_offer_section(
                local, taken_payload_types=taken, address=self._address_for(info, offer)
            )
            section.attributes[-1:-1] = security  # the keys before the direction
        except (SdpError, OSError) as exc:
            self._emit(pe.Notice(level="warning", text=f"video is not offered: {exc}"))
            return
        if not wanted:
            section = MediaDescription("video", 0, section.proto, list(section.formats))
        elif self._ice is not None:
            section.attributes.extend(self._ice.attributes(info))  # RFC 8839 §5
        offer.media.append(section)

    def answer(self, info: CallInfo, offer: SessionDescription, answer: SessionDescription) -> None:
        """Answer the offer's ``m=video`` (rejected by the audio's answer) in ``answer``."""
        index = _video_index(offer)
        if index is None or index >= len(answer.media):
            info.video_media = None
            return
        m = offer.media[index]
        if m.port == 0:
            info.video_media = None
            return
        if VideoIce.failed(info):  # no path for video: it stays off (phone/video_ice.py)
            answer.media[index] = rejected_video(m)
            info.video_media = None
            return
        try:
            _, keys, protected = answer_security(offer, m, self._security(info))
            local = self._local(info, m.proto)
        except (SdpError, OSError) as exc:
            self._emit(pe.Notice(level="warning", text=f"video refused: {exc}"))
            answer.media[index] = rejected_video(m)
            info.video_media = None
            return
        section, negotiated = answer_video(offer, m, local)
        if negotiated is not None:
            address = self._address_for(info, answer)
            if address is not None:
                section.connection = Connection.for_address(address)
            section.attributes[-1:-1] = keys
            self._protected[info.call_id] = protected
            if self._ice is not None:
                section.attributes.extend(self._ice.attributes(info))
        answer.media[index] = section
        info.video_media = negotiated
        info.video_wanted = negotiated is not None

    def answered(self, info: CallInfo, offer: SessionDescription, answer_sdp: bytes) -> None:
        """The peer's answer to our last offer: the video it settles (None: none)."""
        index = _video_index(offer)
        if index is None or offer.media[index].port == 0:
            info.video_media = None
            return
        try:
            answer = SessionDescription.parse(answer_sdp)
            info.video_media = apply_video_answer(offer, offer.media[index], answer, index)
            if info.video_media is not None:
                self._protected[info.call_id] = answered_security(
                    offer, offer.media[index], answer, answer.media[index], self._security(info)
                )
        except SdpError as exc:
            self._emit(pe.Notice(level="warning", text=f"unusable video answer: {exc}"))
            info.video_media = None

    # ------------------------------------------------------------------ streams
    def sync(self, info: CallInfo, *, sending: bool, cname: str) -> None:
        """Start, update or stop the call's video to match what SDP settled."""
        negotiated = info.video_media
        if negotiated is None or info.video_rtp is None or info.state == "ended":
            self._close_stream(info)
            ended = info.state not in ("established", "held")  # stop() closes it then
            if self._ice is not None and not ended and not VideoIce.failed(info):
                # Turned off (port 0, RFC 3264 §8.2), the stream is gone with its ICE: turned
                # on again it is a new stream with new candidates. (A failed agent stays: the
                # far end's offers of video are refused while it is there.)
                self._ice.close(info)
            return
        from softphone.phone.video_stream import VideoStream

        if self._ice is not None:
            self._ice.start(info)
        stream = self._streams.get(info.call_id)
        try:
            if stream is None:
                stream = self._streams[info.call_id] = VideoStream(
                    endpoint=info.video_ice or info.video_rtp,
                    negotiated=negotiated,
                    settings=self.settings,
                    rng=self._rng,
                    cname=cname,
                    on_notice=lambda text: self._emit(pe.Notice(level="warning", text=text)),
                    on_source_lost=lambda reason: self._emit(
                        pe.VideoSourceLost(call_id=info.call_id, reason=reason)
                    ),
                    on_picture=lambda broken, reason: self._emit(
                        pe.VideoPictureChanged(call_id=info.call_id, broken=broken, reason=reason)
                    ),
                    peer_tool=_tool(info.remote_sdp),
                    security=self._protected.get(info.call_id),
                    certificate=self._certificate,
                    ntp_offset_s=info.ntp_offset_s,
                    audio=lambda: info.audio,  # lip sync times pictures to the call's audio
                )
                if self.settings.record is not None:
                    stream.record(self._record_path(info))
            elif stream.negotiated != negotiated:
                stream.update(negotiated, self._protected.get(info.call_id))
            if sending:
                stream.allow_sending(True)
            elif info.state not in ("established", "held"):
                stream.allow_sending(False)
        except (
            MediaError,
            SdpError,
            OSError,
            SrtpError,
        ) as exc:  # never plain where SRTP was agreed
            self._close_stream(info)
            self._emit(pe.Notice(level="error", text=f"video could not start: {exc}"))

    def _record_path(self, info: CallInfo) -> Path:
        """``--video-record PATH`` for the first call with video, PATH-2, -3... for the next."""
        assert self.settings.record is not None
        self._recorded += 1
        path = Path(self.settings.record)
        return path if self._recorded == 1 else path.with_stem(f"{path.stem}-{self._recorded}")

    def record(self, info: CallInfo, path: Path | None) -> None:
        """Record the call's received video to ``path`` (Matroska) beside its audio recording;
        None stops. A call without video has nothing to record."""
        stream = self._streams.get(info.call_id)
        if stream is None:
            return
        try:
            stream.record(path)
        except (MediaError, OSError) as exc:
            self._emit(pe.Notice(level="warning", text=f"cannot record the video: {exc}"))

    def stream(self, call_id: str) -> VideoStream | None:
        """The call's running video stream, if it has one."""
        return self._streams.get(call_id)

    def picture(self, call_id: str, width: int, height: int) -> Rgb | None:
        """The call's video to draw in ``width`` x ``height`` pixels (phone/video_stream.py
        ``VideoStream.picture``): the far end with our self-view; None without video."""
        stream = self._streams.get(call_id)
        return stream.picture(width, height) if stream is not None else None

    def _close_stream(self, info: CallInfo) -> None:
        stream = self._streams.pop(info.call_id, None)
        if stream is not None:
            info.video_final = {**stream.stats(), **_ice_stats(info)}
            stream.close()

    def stop(self, info: CallInfo) -> RtpEndpoint | None:
        """The call ended: its video stream closes; returns its sockets for the caller to close
        (phone/calls.py waits for endpoints still being set up)."""
        self._close_stream(info)
        self._protected.pop(info.call_id, None)
        if self._ice is not None:
            self._ice.close(info)
        rtp, info.video_rtp = info.video_rtp, None
        return rtp

    async def wait_closed(self) -> None:
        """Wait for the video ICE agents closed so far."""
        if self._ice is not None:
            await self._ice.wait_closed()

    def stats(self, info: CallInfo) -> dict[str, object]:
        """The call's ``video_*`` statistics, now or as they were when its video closed."""
        stream = self._streams.get(info.call_id)
        if stream is not None:
            return {**stream.stats(), **_ice_stats(info)}
        return dict(info.video_final or {**EMPTY_STATS, **_ice_stats(info)})
