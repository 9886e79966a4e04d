"""SDP offer/answer (RFC 3264) for the phone's calls: what we offer, how we answer an offer, and
what an answer to our offer leaves negotiated. Each call keeps its own SDP state in its
:class:`~softphone.phone.call_info.CallInfo` (last offer, local and remote descriptions, version)."""

from __future__ import annotations

import logging

from softphone.media.codecs import available_codecs
from softphone.phone.call_info import CallInfo
from softphone.sdp import (
    CodecSpec,
    Direction,
    LocalMedia,
    SdpError,
    SessionDescription,
    apply_answer,
    create_answer,
    create_offer,
)

__all__ = ["TELEPHONE_EVENT", "OfferAnswer", "codec_specs"]

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


class OfferAnswer:
    """Our side of every call's SDP: the advertised address, the call's RTP ports and the
    configured codecs. ``address`` is set once the phone knows its advertised host."""

    def __init__(self, codecs: tuple[CodecSpec, ...], address: str = "127.0.0.1") -> None:
        self.codecs = codecs
        self.address = address

    def _local(self, info: CallInfo, direction: Direction) -> LocalMedia:
        """Our side of the call's media: its public address when learned (phone/nat.py)."""
        rtp = info.rtp
        assert rtp is not None
        public = info.media_address
        return LocalMedia(
            address=public.host if public is not None else self.address,
            port=public.rtp_port if public is not None else rtp.port,
            codecs=self.codecs,
            direction=direction,
            rtcp_port=public.rtcp_port if public is not None else rtp.rtcp_port,
            rtcp_mux=True,  # RFC 5761: used when the peer agrees
        )

    def offer(self, info: CallInfo, direction: Direction) -> SessionDescription:
        """A new offer (a new session version) for the call; it becomes its local SDP."""
        assert info.rtp is not None
        info.session_version += 1
        offer = create_offer(
            self._local(info, direction),
            session_id=info.rtp.session_id,
            session_version=info.session_version,
        )
        info.local_sdp = offer
        return offer

    def apply_answer(self, info: CallInfo, sdp: bytes) -> SdpError | None:
        """The peer's answer to our last offer: what it negotiates becomes the call's media.
        Returns the problem when the answer is unusable (the call keeps what it had)."""
        if info.offer is None:
            return None
        try:
            info.media = apply_answer(info.offer, SessionDescription.parse(sdp))
            info.remote_sdp = sdp
        except SdpError as exc:
            return exc
        return None

    def answer(self, info: CallInfo, offer_sdp: bytes | None, direction: Direction) -> bytes | None:
        """Answer an offer (or, for an offer-less INVITE, make our offer). None when the offer
        cannot be answered (no common codec, unusable SDP). The call needs its RTP endpoint."""
        assert info.rtp is not None
        if not offer_sdp:
            info.offer = self.offer(info, direction)
            return bytes(info.offer)
        try:
            offer = SessionDescription.parse(offer_sdp)
            info.session_version += 1
            answer, media = create_answer(
                offer,
                self._local(info, direction),
                session_id=info.rtp.session_id,
                session_version=info.session_version,
            )
        except SdpError as exc:
            logger.info("cannot answer offer: %s", exc)
            return None
        info.media = media
        info.local_sdp = answer
        info.remote_sdp = offer_sdp
        return bytes(answer)
