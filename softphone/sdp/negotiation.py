"""The offer/answer model (RFC 3264) for one audio stream.

``create_offer`` builds what we send in an INVITE (or a re-INVITE to hold: ``LocalMedia`` with
``direction=SENDONLY`` or ``INACTIVE``, RFC 3264 §8.4). ``create_answer`` answers a peer's offer
(§6) and ``apply_answer`` reads the peer's answer to ours (§7). Both return a
``NegotiatedMedia``: where to send, with which payload type, and in which direction.

RTP audio is accepted in RTP/AVP(F) and, with media security (sdp/security.py: SDES and
DTLS-SRTP), in RTP/SAVP(F) and UDP/TLS/RTP/SAVP(F); every other stream, and audio streams beyond
the first usable one, are rejected with port 0 (§6). Incrementing the session version on re-offers
(§8) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from softphone.sdp.errors import SdpError
from softphone.sdp.security import (
    RTP_PROTOS,
    LocalSecurity,
    NegotiatedSecurity,
    SecurityRefused,
    answer_security,
    answered_security,
    offer_security,
)
from softphone.sdp.session import (
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

__all__ = [
    "AUXILIARY_ENCODINGS",
    "CodecSpec",
    "LocalMedia",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "apply_answer",
    "codec_matches",
    "create_answer",
    "create_offer",
]

# Formats that ride along with a codec and are never "the codec to send" (lower case).
AUXILIARY_ENCODINGS: Final = frozenset({"telephone-event", "cn", "red", "rtx", "ulpfec", "flexfec"})
TELEPHONE_EVENT: Final = "telephone-event"  # RFC 4733 §7.1.1
SUPPORTED_PROTOS: Final = RTP_PROTOS
FIRST_DYNAMIC_PT: Final = 96  # RFC 3551 §3: 96-127 are dynamic
LAST_DYNAMIC_PT: Final = 127


class CodecLike(Protocol):
    """Anything naming a codec: RtpMap, CodecSpec, NegotiatedCodec."""

    @property
    def encoding(self) -> str: ...
    @property
    def clock_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...


def codec_matches(a: CodecLike, b: CodecLike) -> bool:
    """Same codec: encoding name case-insensitive (RFC 8866 §6.6), equal rate and channels."""
    return (
        a.encoding.lower() == b.encoding.lower()
        and a.clock_rate == b.clock_rate
        and a.channels == b.channels
    )


def _auxiliary(codec: CodecLike) -> bool:
    return codec.encoding.lower() in AUXILIARY_ENCODINGS


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """A codec we can do. ``payload_type`` None = dynamic, numbered from 96 in offers."""

    encoding: str
    clock_rate: int
    channels: int = 1
    payload_type: int | None = None
    fmtp: str | None = None  # what we advertise: "useinbandfec=1", "0-16" for telephone-event


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Our side of the audio stream: where we receive, and what we can do, best codec first."""

    address: str
    port: int
    codecs: tuple[CodecSpec, ...]
    direction: Direction = Direction.SENDRECV
    ptime_ms: int | None = 20
    rtcp_mux: bool = False
    rtcp_port: int | None = None
    security: LocalSecurity | None = None  # None: plain RTP/AVP, as before media security


@dataclass(frozen=True, slots=True)
class NegotiatedCodec:
    """A codec both sides agreed on. ``payload_type`` is the one to SEND with (the peer's).

    ``encoding`` is spelled as in our own list; ``fmtp`` holds the peer's parameters for it
    (what the peer wants to receive, e.g. opus ``maxplaybackrate``).
    """

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int
    fmtp: dict[str, str]


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The outcome for the audio stream, from our point of view."""

    remote_address: str | None
    remote_port: int
    remote_rtcp_port: int | None
    codec: NegotiatedCodec | None  # the first common codec: the one to send
    telephone_event: NegotiatedCodec | None
    direction: Direction  # OUR direction: the peer sendonly -> we recvonly
    rtcp_mux: bool
    ptime_ms: int | None  # the peer's a=ptime, else ours: the packet size to send
    remote_direction: Direction = Direction.SENDRECV  # as the peer wrote it
    # The peer does not want our media although we offered it: see ``on_hold``.
    remote_hold: bool = False
    security: NegotiatedSecurity | None = None  # None: plain RTP

    @property
    def on_hold(self) -> bool:
        """The peer holds us (RFC 3264 §8.4).

        In a peer's offer: it is sendonly/inactive, or its address is 0.0.0.0 (RFC 2543 hold).
        In a peer's answer: the same, unless our own offer forced it (our inactive offer must be
        answered inactive, §6.1; that is our hold, not theirs).
        """
        return self.remote_hold


# -- building our side --------------------------------------------------------------------------


def _assign_payload_types(codecs: tuple[CodecSpec, ...]) -> list[tuple[int, CodecSpec]]:
    """Static PTs as given; dynamic ones numbered from 96, skipping taken numbers (RFC 3551 §3)."""
    taken = {c.payload_type for c in codecs if c.payload_type is not None}
    if len(taken) != sum(c.payload_type is not None for c in codecs):
        raise SdpError("two codecs with the same payload type")
    free = (pt for pt in range(FIRST_DYNAMIC_PT, LAST_DYNAMIC_PT + 1) if pt not in taken)
    result: list[tuple[int, CodecSpec]] = []
    for codec in codecs:
        pt = codec.payload_type if codec.payload_type is not None else next(free, None)
        if pt is None:
            raise SdpError("out of dynamic payload types")
        result.append((pt, codec))
    return result


def _local_section(
    local: LocalMedia,
    codecs: list[tuple[int, CodecSpec]],
    *,
    proto: str,
    direction: Direction,
    rtcp_mux: bool,
    security: Sequence[tuple[str, str | None]] = (),
) -> MediaDescription:
    attributes: list[tuple[str, str | None]] = []
    for pt, codec in codecs:
        attributes.append(
            ("rtpmap", str(RtpMap(pt, codec.encoding, codec.clock_rate, codec.channels)))
        )
        if codec.fmtp is not None:
            attributes.append(("fmtp", f"{pt} {codec.fmtp}"))
    if local.rtcp_port is not None:
        attributes.append(("rtcp", str(local.rtcp_port)))  # RFC 3605 §2.1
    if rtcp_mux:
        attributes.append(("rtcp-mux", None))  # RFC 5761 §5.1.1
    if local.ptime_ms is not None:
        attributes.append(("ptime", str(local.ptime_ms)))  # RFC 8866 §6.4
    attributes.append((direction.value, None))  # RFC 3264 §5.1
    attributes.extend(security)
    return MediaDescription(
        "audio", local.port, proto, [str(pt) for pt, _ in codecs], attributes=attributes
    )


def _session(
    local: LocalMedia,
    media: list[MediaDescription],
    *,
    session_id: int,
    session_version: int,
    username: str,
) -> SessionDescription:
    connection = Connection.for_address(local.address)
    origin = Origin(
        username, str(session_id), session_version, "IN", connection.addr_type, local.address
    )
    return SessionDescription(origin=origin, connection=connection, media=media)


def create_offer(
    local: LocalMedia, *, session_id: int, session_version: int, username: str = "-"
) -> SessionDescription:
    """An offer with one ``m=audio`` stream carrying every codec of ``local`` (§5), in the
    profile its security policy asks for (RTP/AVP without one)."""
    if not local.codecs:
        raise SdpError("no codecs to offer")
    proto, security = offer_security(local.security)
    section = _local_section(
        local,
        _assign_payload_types(local.codecs),
        proto=proto,
        direction=local.direction,
        rtcp_mux=local.rtcp_mux,
        security=security,
    )
    return _session(
        local,
        [section],
        session_id=session_id,
        session_version=session_version,
        username=username,
    )


# -- reading the peer's side --------------------------------------------------------------------


def _pick_telephone_event(
    candidates: list[NegotiatedCodec], codec: NegotiatedCodec
) -> NegotiatedCodec | None:
    """The telephone-event whose clock matches the audio codec's (RFC 4733 §2.1), else the first."""
    same_rate = [c for c in candidates if c.clock_rate == codec.clock_rate]
    return next(iter(same_rate or candidates), None)


def _remote_rtcp_port(m: MediaDescription, *, rtcp_mux: bool) -> int:
    if rtcp_mux:
        return m.port  # RFC 5761 §5.1.3
    return m.rtcp_port or m.port + 1  # RFC 3605 §2.1, else RFC 3550 §11


def _is_null(address: str | None) -> bool:
    return address is not None and Connection(address).is_null


def _usable_audio(m: MediaDescription) -> bool:
    return m.media.lower() == "audio" and m.port != 0 and m.proto.upper() in SUPPORTED_PROTOS


def _rejected(m: MediaDescription) -> MediaDescription:
    """§6: a rejected stream is answered with port 0 and the offer's formats."""
    return MediaDescription(m.media, 0, m.proto, list(m.formats))


def _answer_audio(
    offer: SessionDescription, m: MediaDescription, local: LocalMedia
) -> tuple[MediaDescription, NegotiatedMedia] | None:
    offered = m.rtpmaps()
    # §6.1: the answer uses the offer's payload type numbers; codecs in our preference order.
    common: list[tuple[int, CodecSpec]] = []
    for spec in local.codecs:
        pt = next((p for p, r in offered.items() if codec_matches(spec, r)), None)
        if pt is not None and pt not in (p for p, _ in common):
            common.append((pt, spec))
    if not any(not _auxiliary(spec) for _, spec in common):
        return None

    def negotiated(pt: int, spec: CodecSpec) -> NegotiatedCodec:
        return NegotiatedCodec(pt, spec.encoding, spec.clock_rate, spec.channels, m.fmtp(pt))

    codec = next(negotiated(pt, s) for pt, s in common if not _auxiliary(s))
    events = [negotiated(pt, s) for pt, s in common if s.encoding.lower() == TELEPHONE_EVENT]
    proto, security_attributes, security = answer_security(offer, m, local.security)

    remote_address = offer.media_address(m)
    remote_direction = offer.direction_of(m)
    # §6.1: sendonly -> recvonly, recvonly -> sendonly, inactive -> inactive, intersected with
    # what we want; never send to 0.0.0.0 (§8.4).
    direction = Direction.from_flags(
        sends=local.direction.sends and remote_direction.receives and not _is_null(remote_address),
        receives=local.direction.receives and remote_direction.sends,
    )
    rtcp_mux = m.rtcp_mux and local.rtcp_mux  # RFC 5761 §5.1.1: echo only if offered
    section = _local_section(
        local,
        common,
        proto=proto,
        direction=direction,
        rtcp_mux=rtcp_mux,
        security=security_attributes,
    )
    result = NegotiatedMedia(
        remote_address=remote_address,
        remote_port=m.port,
        remote_rtcp_port=_remote_rtcp_port(m, rtcp_mux=rtcp_mux),
        codec=codec,
        telephone_event=_pick_telephone_event(events, codec),
        direction=direction,
        rtcp_mux=rtcp_mux,
        ptime_ms=m.ptime or local.ptime_ms,
        remote_direction=remote_direction,
        remote_hold=not remote_direction.receives or _is_null(remote_address),
        security=security,
    )
    return section, result


def create_answer(
    offer: SessionDescription,
    local: LocalMedia,
    *,
    session_id: int,
    session_version: int,
    username: str = "-",
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer`` (RFC 3264 §6): one m= per offered m=, in order.

    The first usable audio stream is accepted; all others get port 0. Raises SdpError
    ("no common codec ...") when no audio stream can be accepted, or SecurityRefused when the
    only audio streams with a common codec fail ``local.security``; SIP answers 488.
    """
    sections: list[MediaDescription] = []
    negotiated: NegotiatedMedia | None = None
    refused: SecurityRefused | None = None
    for m in offer.media:
        if negotiated is None and _usable_audio(m):
            try:
                accepted = _answer_audio(offer, m, local)
            except SecurityRefused as exc:  # another m=audio (plain beside SAVP) may do
                refused, accepted = refused or exc, None
            if accepted is not None:
                section, negotiated = accepted
                sections.append(section)
                continue
        sections.append(_rejected(m))
    if negotiated is None and refused is not None:
        raise refused
    if negotiated is None:
        kinds = ", ".join(f"{m.media} {m.proto}" for m in offer.media) or "no streams"
        raise SdpError(f"no common codec (offered: {kinds})")
    answer = _session(
        local,
        sections,
        session_id=session_id,
        session_version=session_version,
        username=username,
    )
    return answer, negotiated


def apply_answer(
    offer: SessionDescription,
    answer: SessionDescription,
    local_security: LocalSecurity | None = None,
) -> NegotiatedMedia:
    """Read the answer to our ``offer`` (RFC 3264 §7); ``local_security``: what the offer was
    made with (its keys), None for a plain offer.

    The codec to send is the first in the answer's list that we offered, sent with the answer's
    payload type. Codecs in the answer that we did not offer are ignored; SdpError if none of
    them was offered, if the answer rejects our audio stream (port 0) or if its m= lines do not
    match the offer's (§6).
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(f"the answer has {len(answer.media)} m= lines, the offer {len(offer.media)}")
    index = next((i for i, m in enumerate(offer.media) if _usable_audio(m)), None)
    if index is None:
        raise SdpError("the offer has no audio stream")
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.media.lower() != ours.media.lower():
        raise SdpError(f"the answer has m={theirs.media} where the offer has m={ours.media}")
    if theirs.port == 0:
        raise SdpError("the answer rejected the audio stream")

    offered = ours.rtpmaps()
    answered = theirs.rtpmaps()
    common: list[NegotiatedCodec] = []
    for pt in theirs.payload_types():
        # A dynamic PT echoed without its rtpmap (a sloppy answerer) means what we offered.
        rtpmap = answered.get(pt) or offered.get(pt)
        if rtpmap is None:
            continue
        mine = next((r for r in offered.values() if codec_matches(r, rtpmap)), None)
        if mine is not None:
            common.append(
                NegotiatedCodec(pt, mine.encoding, mine.clock_rate, mine.channels, theirs.fmtp(pt))
            )
    codec = next((c for c in common if not _auxiliary(c)), None)
    if codec is None:
        raise SdpError("the answer uses no codec we offered")
    events = [c for c in common if c.encoding.lower() == TELEPHONE_EVENT]

    remote_address = answer.media_address(theirs)
    remote_direction = answer.direction_of(theirs)
    offered_direction = offer.direction_of(ours)
    # §6.1 seen from the offerer: the answer's direction reversed, within what we offered.
    direction = Direction.from_flags(
        sends=offered_direction.sends
        and remote_direction.receives
        and not _is_null(remote_address),
        receives=offered_direction.receives and remote_direction.sends,
    )
    rtcp_mux = ours.rtcp_mux and theirs.rtcp_mux
    security = answered_security(offer, ours, answer, theirs, local_security)
    return NegotiatedMedia(
        remote_address=remote_address,
        remote_port=theirs.port,
        remote_rtcp_port=_remote_rtcp_port(theirs, rtcp_mux=rtcp_mux),
        codec=codec,
        telephone_event=_pick_telephone_event(events, codec),
        direction=direction,
        rtcp_mux=rtcp_mux,
        ptime_ms=theirs.ptime or ours.ptime,
        remote_direction=remote_direction,
        remote_hold=offered_direction.sends
        and (not remote_direction.receives or _is_null(remote_address)),
        security=security,
    )
