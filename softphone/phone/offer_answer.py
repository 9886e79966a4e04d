"""SDP offer/answer (RFC 3264) for the phone's calls: what we offer, how we answer an offer, and
what an answer to our offer leaves negotiated. Each call keeps its own SDP state in its
:class:`~softphone.phone.call_info.CallInfo` (last offer, local and remote descriptions, version)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from softphone.media.codecs import available_codecs
from softphone.phone.call_info import CallInfo
from softphone.phone.video import CallVideo  # av is imported lazily there
from softphone.sdp import (
    CodecSpec,
    Direction,
    LocalMedia,
    LocalSecurity,
    MediaEncryption,
    MediaRefused,
    SdpError,
    SessionDescription,
    apply_answer,
    create_answer,
    create_offer,
)
from softphone.sdp.crypto import SUITES, CryptoAttribute
from softphone.sdp.security import DTLS_PROTOS
from softphone.srtp import DtlsCertificate
from softphone.transport.rtp import RtpEndpoint

__all__ = ["TELEPHONE_EVENT", "OfferAnswer", "codec_specs", "warning_for"]

logger = logging.getLogger(__name__)

TELEPHONE_EVENT = CodecSpec(
    encoding="telephone-event", clock_rate=8000, payload_type=101, fmtp="0-16"
)


def codec_specs(order: tuple[str, ...]) -> tuple[CodecSpec, ...]:
    """What we offer, in the configured order, leaving out codecs whose library is missing;
    RFC 4733 telephone-event always goes last."""
    available = available_codecs()
    specs: list[CodecSpec] = []
    for name in order:
        codec = available.get(name.lower())
        if codec is None:
            continue
        specs.append(
            CodecSpec(
                encoding=codec.encoding,
                clock_rate=codec.clock_rate,
                channels=codec.channels,
                payload_type=codec.static_payload_type,
                fmtp=codec.fmtp,
            )
        )
    return (*specs, TELEPHONE_EVENT)


WARN_MEDIA_FORMAT = 305  # RFC 3261 §20.43 "Incompatible media format": no common codec


def warning_for(problem: SdpError | None) -> tuple[int, str]:
    """The Warning (code, text) for the 488 that refuses an offer because of ``problem``."""
    if isinstance(problem, MediaRefused):  # media security, or an address family we lack
        return problem.warning_code, str(problem)
    return WARN_MEDIA_FORMAT, str(problem) if problem is not None else "no common codec"


def _offers_dtls(offer: SessionDescription | None) -> bool:
    return offer is not None and any(m.proto.upper() in DTLS_PROTOS for m in offer.media)


class OfferAnswer:
    """Our side of every call's SDP: the advertised address, the call's RTP ports, the
    configured codecs and each account's media encryption. ``address`` is set once the phone
    knows its advertised host; ``encryption`` gives an account's policy by name;
    ``certificate`` the DTLS certificate, made when first needed."""

    def __init__(
        self,
        codecs: tuple[CodecSpec, ...],
        address: str = "127.0.0.1",
        *,
        encryption: Callable[[str], MediaEncryption] = lambda _: MediaEncryption.SRTP_OPTIONAL,
        certificate: Callable[[], DtlsCertificate] | None = None,
        ice: Callable[[CallInfo], list[tuple[str, str | None]]] = lambda _: [],
        video: CallVideo | None = None,
    ) -> None:
        self.codecs = codecs
        self.address = address
        # Our address in the other family when the media sockets are dual-stack (bound to
        # "::"): an offer on that family is answered there rather than refused.
        self.alternate_address: str | None = None
        self._encryption = encryption
        self._certificate = certificate
        self._ice = ice
        self.video = video  # the m=video of offers and answers (phone/video.py)

    def _with_ice(self, info: CallInfo, sdp: SessionDescription) -> SessionDescription:
        """The call's ICE attributes (phone/ice.py) added to its audio stream (RFC 8839 §5)."""
        audio = sdp.first_media("audio")
        if audio is not None and audio.port != 0:
            audio.attributes.extend(self._ice(info))
        return sdp

    def _security(self, info: CallInfo, offer: SessionDescription | None) -> LocalSecurity:
        """The call's keys, made once per call so that re-offers keep them (RFC 4568 §7.1.4
        allows new ones; keeping them keeps the rollover counter going). The certificate
        is loaded when the policy or the peer's offer asks for DTLS-SRTP."""
        security = info.local_security
        if security is None:
            policy = self._encryption(info.account)
            crypto: tuple[CryptoAttribute, ...] = ()
            if policy is not MediaEncryption.NONE:  # RFC 4568 §6.1: key ‖ salt, fresh per call
                crypto = tuple(
                    CryptoAttribute(tag, suite.name, secrets.token_bytes(suite.key_salt_length))
                    for tag, suite in enumerate(SUITES.values(), start=1)
                )
            security = LocalSecurity(policy, crypto)
        wants_dtls = security.policy is MediaEncryption.DTLS_SRTP or (
            security.policy is not MediaEncryption.NONE and _offers_dtls(offer)
        )
        if wants_dtls and security.fingerprint is None and self._certificate is not None:
            security = LocalSecurity(
                security.policy, security.crypto, self._certificate().fingerprint
            )
        info.local_security = security
        return security

    def _local(
        self,
        info: CallInfo,
        rtp: RtpEndpoint | None,
        direction: Direction,
        offer: SessionDescription | None = None,
    ) -> LocalMedia:
        """Our side of the call's media: its public address when learned (phone/nat.py); with
        no RTP endpoint (a dry run before ringing), port 9 (RFC 8866 §5.14: discard)."""
        public = info.media_address if rtp is not None else None
        rtcp_port: int | None
        if public is not None:
            address, port, rtcp_port = public.host, public.rtp_port, public.rtcp_port
        else:
            address = self.address
            port = rtp.port if rtp is not None else 9
            rtcp_port = rtp.rtcp_port if rtp is not None else None
        return LocalMedia(
            address=address,
            port=port,
            codecs=self.codecs,
            direction=direction,
            rtcp_port=rtcp_port,
            rtcp_mux=True,  # RFC 5761: used when the peer agrees
            security=self._security(info, offer),
            alternate_address=self.alternate_address,
        )

    def problem(self, info: CallInfo, offer_sdp: bytes | None) -> SdpError | None:
        """Why the peer's offer cannot be answered, without answering it (before ringing)."""
        if not offer_sdp:
            return None
        try:
            offer = SessionDescription.parse(offer_sdp)
            create_answer(
                offer,
                self._local(info, None, Direction.SENDRECV, offer),
                session_id=0,
                session_version=0,
            )
        except SdpError as exc:
            return exc
        return None

    def offer(self, info: CallInfo, direction: Direction) -> SessionDescription:
        """A new offer (a new session version) for the call; it becomes its local SDP."""
        assert info.rtp is not None
        info.session_version += 1
        offer = create_offer(
            self._local(info, info.rtp, direction),
            session_id=info.rtp.session_id,
            session_version=info.session_version,
        )
        self._with_ice(info, offer)
        if self.video is not None:
            self.video.address = self.address
            self.video.offer(info, offer)
        info.local_sdp = offer
        return offer

    def apply_answer(self, info: CallInfo, sdp: bytes) -> SdpError | None:
        """The peer's answer to our last offer: what it negotiates becomes the call's media.
        Returns the problem when the answer is unusable (the call keeps what it had)."""
        if info.offer is None:
            return None
        try:
            info.media = apply_answer(
                info.offer, SessionDescription.parse(sdp), info.local_security
            )
            info.remote_sdp = sdp
            if self.video is not None:
                self.video.answered(info, info.offer, sdp)
        except SdpError as exc:
            return exc
        return None

    def answer(self, info: CallInfo, offer_sdp: bytes | None, direction: Direction) -> bytes | None:
        """Answer an offer (or, for an offer-less INVITE, make our offer). None when the offer
        cannot be answered (no common codec, unusable SDP, media security refused), with the
        reason in ``info.sdp_problem``. The call needs its RTP endpoint."""
        assert info.rtp is not None
        if not offer_sdp:
            info.offer = self.offer(info, direction)
            return bytes(info.offer)
        try:
            offer = SessionDescription.parse(offer_sdp)
            info.session_version += 1
            answer, media = create_answer(
                offer,
                self._local(info, info.rtp, direction, offer),
                session_id=info.rtp.session_id,
                session_version=info.session_version,
            )
        except SdpError as exc:
            logger.info("cannot answer offer: %s", exc)
            info.sdp_problem = exc
            return None
        info.sdp_problem = None
        self._with_ice(info, answer)
        if self.video is not None:
            self.video.address = self.address
            self.video.answer(info, offer, answer)
        info.media = media
        info.local_sdp = answer
        info.remote_sdp = offer_sdp
        return bytes(answer)
