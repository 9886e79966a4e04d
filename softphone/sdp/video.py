"""Offer/answer (RFC 3264) for one video stream: VP8, VP9, H.264 and their RTCP feedback
(sans-IO, pure).

The audio stream is sdp/negotiation.py's; this module builds and reads the ``m=video`` section
beside it, so that the caller puts the two together:

- :func:`video_offer_section`: our ``m=video`` when we offer video (a camera, a file or a test
  pattern is configured, or the user asked for video): every codec of :class:`LocalVideo` with
  its ``a=rtpmap``/``a=fmtp`` (VP8 RFC 7741 §6.1, VP9 RFC 9628 §6, H.264 RFC 6184 §8.1),
  ``a=rtcp-fb`` (RFC 4585 §4.2: nack, nack pli, ccm fir (RFC 5104 §7.1), goog-remb),
  ``a=rtcp-mux`` (RFC 5761 §5.1.1), ``b=AS`` (RFC 8866 §5.8) and the direction.
- :func:`answer_video`: our answer to an offered ``m=video``: the offer's payload types, the
  codecs we share in our order, the feedback both sides know, ``recvonly`` when we have no video
  source (RFC 3264 §6.1), port 0 when we cannot take the stream at all (§6: no video wanted, a
  profile we do not speak, no common codec).
- :func:`apply_video_answer`: the peer's answer to our offer (§7).

Codec matching beyond the name and the 90 kHz clock:

- H.264: packetization-mode (0 when absent, RFC 6184 §8.1) must be equal, the profile the same,
  or Baseline offered to our Constrained Baseline (sdp/h264_profile.py ``can_answer``); the
  answer's ``profile-level-id`` has the offer's profile and a level not above the offer's
  (§8.2.2), unless both allow level asymmetry.
- VP9: profile-id (0 when absent, RFC 9628 §6) must be equal.

What the peer said it can receive (``max-fs``, ``max-fr``, the H.264 level, ``b=AS``/``b=TIAS``)
comes back in :class:`NegotiatedVideo` for the encoder to stay within:
``NegotiatedVideoCodec.limits`` reads the codec's (sdp/video_limits.py).

Errors: ``SdpError`` for our own misuse (no codec to offer, two codecs on one payload type).
A peer's offer never raises here: what we cannot use is answered with port 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from softphone.sdp.errors import SdpError
from softphone.sdp.h264_profile import ProfileLevelId, answer_profile_level_id
from softphone.sdp.session import Connection, Direction, MediaDescription, SessionDescription
from softphone.sdp.video_limits import SendLimits, send_limits

VIDEO_CLOCK_RATE: Final = 90000  # RFC 7741 §6.1, RFC 9628 §6, RFC 6184 §8.1
# SRTP profiles too (SDES, DTLS-SRTP): their keys are sdp/security.py's business, the caller's
# (phone/video.py).
VIDEO_PROTOS: Final = frozenset(
    {"RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"}
)
FIRST_DYNAMIC_PT: Final = 96
LAST_DYNAMIC_PT: Final = 127
FEEDBACK: Final = ("nack", "nack pli", "ccm fir", "goog-remb")
"""What we can do with feedback: resend on NACK, key frame on PLI and FIR, follow REMB."""
_FMTP_SEPARATOR: Final = ";"


@dataclass(frozen=True, slots=True)
class VideoCodec:
    """A video codec we can do. ``fmtp``: parameters we advertise (lower-case keys)."""

    encoding: str  # VP8, VP9, H264
    fmtp: Mapping[str, str] = field(default_factory=dict)
    payload_type: int | None = None  # None: dynamic, numbered from 96

    @property
    def name(self) -> str:
        return self.encoding.upper()


DEFAULT_CODECS: Final = (
    VideoCodec("VP8"),
    VideoCodec("VP9", {"profile-id": "0"}),
    VideoCodec(
        "H264",
        {
            "profile-level-id": "42e01f",  # Constrained Baseline 3.1: 720p30
            "packetization-mode": "1",
            "level-asymmetry-allowed": "1",
        },
    ),
    VideoCodec("H264", {"profile-level-id": "42e01f", "packetization-mode": "0"}),
)


@dataclass(frozen=True, slots=True)
class LocalVideo:
    """Our side of the video stream."""

    address: str
    port: int
    can_send: bool
    """A video source is configured (camera, file, test pattern): without one we only receive."""
    can_receive: bool = True
    codecs: tuple[VideoCodec, ...] = DEFAULT_CODECS
    feedback: tuple[str, ...] = FEEDBACK
    rtcp_mux: bool = True
    max_bitrate_kbps: int | None = None  # b=AS: what we want to receive at most
    proto: str = "RTP/AVP"  # as the audio stream's, so that a peer sees one profile


@dataclass(frozen=True, slots=True)
class NegotiatedVideoCodec:
    """A codec both sides agreed on; ``payload_type`` is the peer's. ``fmtp`` holds the peer's
    parameters (what it receives: max-fs, max-fr, profile-level-id ...), ``feedback`` the
    rtcp-fb both sides named for it."""

    payload_type: int
    encoding: str
    clock_rate: int
    fmtp: dict[str, str]
    feedback: frozenset[str]
    # H.264 without level asymmetry: our answer's level, the lower of the two, is the one both
    # directions use (RFC 6184 §8.2.2); None: the level of ``fmtp`` stands.
    level_cap: ProfileLevelId | None = None

    @property
    def limits(self) -> SendLimits:
        """What the peer can receive of this codec (sdp/video_limits.py)."""
        return send_limits(self.encoding, self.fmtp, level_cap=self.level_cap)


@dataclass(frozen=True, slots=True)
class NegotiatedVideo:
    """The outcome for the video stream, from our point of view."""

    remote_address: str | None
    remote_port: int
    remote_rtcp_port: int | None
    codec: NegotiatedVideoCodec | None  # the one to send with (first common), None if none
    receive_codecs: tuple[NegotiatedVideoCodec, ...]  # every one the peer may send us
    direction: Direction  # OUR direction
    rtcp_mux: bool
    remote_bitrate_bps: int | None  # the peer's b=TIAS, else b=AS: what it wants at most


# -- parameters -----------------------------------------------------------------------------


def _lower(params: Mapping[str, str]) -> dict[str, str]:
    return {k.strip().lower(): v.strip() for k, v in params.items()}


def _fmtp_text(params: Mapping[str, str]) -> str:
    return _FMTP_SEPARATOR.join(f"{k}={v}" if v else k for k, v in params.items())


def _packetization_mode(params: Mapping[str, str]) -> str:
    return params.get("packetization-mode", "") or "0"


def _profile(params: Mapping[str, str]) -> ProfileLevelId | None:
    try:
        return ProfileLevelId.parse(params.get("profile-level-id"))
    except SdpError:
        return None


def _compatible(ours: VideoCodec, name: str, clock_rate: int, theirs: Mapping[str, str]) -> bool:
    """Same codec, as the module docstring says (``theirs``: lower-case fmtp keys)."""
    if ours.name != name.upper() or clock_rate != VIDEO_CLOCK_RATE:
        return False
    mine = _lower(ours.fmtp)
    if ours.name == "H264":
        their_profile, our_profile = _profile(theirs), _profile(mine)
        return (
            _packetization_mode(mine) == _packetization_mode(theirs)
            and their_profile is not None
            and our_profile is not None
            and our_profile.can_answer(their_profile)
        )
    if ours.name == "VP9":
        return (mine.get("profile-id") or "0") == (theirs.get("profile-id") or "0")
    return ours.name == "VP8"


def _answer_fmtp(ours: VideoCodec, theirs: Mapping[str, str]) -> dict[str, str]:
    """Our fmtp in an answer: RFC 6184 §8.2.2 for H.264, ours as is for the others."""
    mine = _lower(ours.fmtp)
    if ours.name != "H264":
        return mine
    offered, own = _profile(theirs), _profile(mine)
    assert offered is not None and own is not None  # _compatible checked both
    asymmetry = theirs.get("level-asymmetry-allowed") == "1" and (
        mine.get("level-asymmetry-allowed") == "1"
    )
    answer = dict(mine)
    answer["profile-level-id"] = str(answer_profile_level_id(offered, own, asymmetry=asymmetry))
    if not asymmetry:
        answer.pop("level-asymmetry-allowed", None)
    return answer


def _level_cap(answer: Mapping[str, str]) -> ProfileLevelId | None:
    """The level both directions use when our H.264 answer does not allow asymmetry (RFC 6184
    §8.2.2: the answer's, at most the offer's); None with asymmetry or another codec."""
    if "profile-level-id" not in answer or answer.get("level-asymmetry-allowed") == "1":
        return None
    return _profile(answer)


def _feedback(m: MediaDescription, pt: int) -> set[str]:
    """``a=rtcp-fb`` values for ``pt`` and for ``*`` (RFC 4585 §4.2), lower case, blanks
    squeezed ("nack  pli" is "nack pli")."""
    found: set[str] = set()
    for value in m.attribute_all("rtcp-fb"):
        head, _, rest = (value or "").strip().partition(" ")
        if head in ("*", str(pt)) and rest.strip():
            found.add(" ".join(rest.lower().split()))
    return found


def _bitrate(m: MediaDescription) -> int | None:
    """b=TIAS (RFC 3890 §6.2, bits/s) or b=AS (RFC 8866 §5.8, kbit/s)."""
    values = {kind.upper(): value for kind, value in m.bandwidths}
    for kind, scale in (("TIAS", 1), ("AS", 1000)):
        text = values.get(kind, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text) * scale
    return None


# -- our side ---------------------------------------------------------------------------------


def _assign(codecs: tuple[VideoCodec, ...], taken: set[int]) -> list[tuple[int, VideoCodec]]:
    fixed = [c.payload_type for c in codecs if c.payload_type is not None]
    if len(set(fixed)) != len(fixed) or taken & set(fixed):
        raise SdpError("two codecs with the same payload type")
    used = taken | set(fixed)
    free = (pt for pt in range(FIRST_DYNAMIC_PT, LAST_DYNAMIC_PT + 1) if pt not in used)
    out = []
    for codec in codecs:
        pt = codec.payload_type if codec.payload_type is not None else next(free, None)
        if pt is None:
            raise SdpError("out of dynamic payload types")
        out.append((pt, codec))
    return out


def _section(
    local: LocalVideo,
    codecs: list[tuple[int, VideoCodec, dict[str, str], tuple[str, ...]]],
    *,
    proto: str,
    direction: Direction,
    rtcp_mux: bool,
    address: str | None,
) -> MediaDescription:
    attributes: list[tuple[str, str | None]] = []
    for pt, codec, fmtp, feedback in codecs:
        attributes.append(("rtpmap", f"{pt} {codec.name}/{VIDEO_CLOCK_RATE}"))
        if fmtp:
            attributes.append(("fmtp", f"{pt} {_fmtp_text(fmtp)}"))
        attributes.extend(("rtcp-fb", f"{pt} {fb}") for fb in feedback)
    if rtcp_mux:
        attributes.append(("rtcp-mux", None))
    attributes.append((direction.value, None))
    section = MediaDescription(
        "video", local.port, proto, [str(pt) for pt, *_ in codecs], attributes=attributes
    )
    if local.max_bitrate_kbps:
        section.bandwidths.append(("AS", str(local.max_bitrate_kbps)))
    if address is not None:
        section.connection = Connection.for_address(address)
    return section


def video_offer_section(
    local: LocalVideo, *, taken_payload_types: set[int] | None = None, address: str | None = None
) -> MediaDescription:
    """Our ``m=video`` for an offer. ``taken_payload_types``: the audio stream's numbers, kept
    apart so that one number means one codec in the whole offer (RFC 3264 §5.1 allows reuse
    across streams; peers that demultiplex by payload type mishandle it). ``address``: a c=
    line for this section when it differs from the session's."""
    if not local.codecs:
        raise SdpError("no video codecs to offer")
    direction = Direction.from_flags(sends=local.can_send, receives=local.can_receive)
    entries = [
        (pt, codec, _lower(codec.fmtp), local.feedback)
        for pt, codec in _assign(local.codecs, taken_payload_types or set())
    ]
    return _section(
        local,
        entries,
        proto=local.proto,
        direction=direction,
        rtcp_mux=local.rtcp_mux,
        address=address,
    )


def _remote_rtcp_port(m: MediaDescription, rtcp_mux: bool) -> int:
    if rtcp_mux:
        return m.port  # RFC 5761 §5.1.3
    return m.rtcp_port or m.port + 1  # RFC 3605 §2.1, else RFC 3550 §11


def _is_null(address: str | None) -> bool:
    return address is not None and Connection(address).is_null


def rejected_video(m: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a stream we do not take, answered with port 0 and the offer's formats."""
    return MediaDescription(m.media, 0, m.proto, list(m.formats))


def answer_video(
    offer: SessionDescription, m: MediaDescription, local: LocalVideo | None
) -> tuple[MediaDescription, NegotiatedVideo | None]:
    """Our answer section to the offered ``m`` (an ``m=video``) and what it settles; None and a
    port-0 section when we do not take it (no ``local``, a profile we do not speak, no common
    codec, or the offer's port is 0 already)."""
    if (
        local is None
        or m.port == 0
        or m.media.lower() != "video"
        or m.proto.upper() not in VIDEO_PROTOS
    ):
        return rejected_video(m), None
    # §6.1: the offer's payload type numbers, our codecs in our preference order.
    offered = m.rtpmaps()
    chosen: list[tuple[int, VideoCodec, dict[str, str], tuple[str, ...]]] = []
    negotiated: list[NegotiatedVideoCodec] = []
    for codec in local.codecs:
        for pt, rtpmap in offered.items():
            theirs = _lower(m.fmtp(pt))
            if any(pt == c[0] for c in chosen) or not _compatible(
                codec, rtpmap.encoding, rtpmap.clock_rate, theirs
            ):
                continue
            feedback = tuple(fb for fb in local.feedback if fb in _feedback(m, pt))
            answer_fmtp = _answer_fmtp(codec, theirs)
            chosen.append((pt, codec, answer_fmtp, feedback))
            negotiated.append(
                NegotiatedVideoCodec(
                    pt,
                    codec.name,
                    VIDEO_CLOCK_RATE,
                    theirs,
                    frozenset(feedback),
                    level_cap=_level_cap(answer_fmtp),
                )
            )
            break
    if not chosen:
        return rejected_video(m), None
    remote_address = offer.media_address(m)
    remote_direction = offer.direction_of(m)
    direction = Direction.from_flags(
        sends=local.can_send and remote_direction.receives and not _is_null(remote_address),
        receives=local.can_receive and remote_direction.sends,
    )
    rtcp_mux = m.rtcp_mux and local.rtcp_mux
    section = _section(
        local, chosen, proto=m.proto, direction=direction, rtcp_mux=rtcp_mux, address=None
    )
    result = NegotiatedVideo(
        remote_address=remote_address,
        remote_port=m.port,
        remote_rtcp_port=_remote_rtcp_port(m, rtcp_mux),
        codec=negotiated[0],
        receive_codecs=tuple(negotiated),
        direction=direction,
        rtcp_mux=rtcp_mux,
        remote_bitrate_bps=_bitrate(m),
    )
    return section, result


def apply_video_answer(
    offer: SessionDescription, ours: MediaDescription, answer: SessionDescription, index: int
) -> NegotiatedVideo | None:
    """Read the answer's section ``index`` to our ``m=video`` ``ours`` (RFC 3264 §7); None when
    the peer rejected it (port 0) or answered with no codec we offered. Raises SdpError when the
    answer has no section there or another media in it (a malformed answer, §6)."""
    if index >= len(answer.media):
        raise SdpError(f"the answer has no m= line {index + 1} for our video")
    theirs = answer.media[index]
    if theirs.media.lower() != "video":
        raise SdpError(f"the answer has m={theirs.media} where the offer has m=video")
    if theirs.port == 0:
        return None
    offered = ours.rtpmaps()
    common: list[NegotiatedVideoCodec] = []
    for pt, rtpmap in theirs.rtpmaps().items():
        mine = offered.get(pt)
        if mine is None or mine.encoding.upper() != rtpmap.encoding.upper():
            continue
        theirs_fmtp = _lower(theirs.fmtp(pt))
        if mine.encoding.upper() == "H264":
            ours_fmtp = _lower(ours.fmtp(pt))
            if _packetization_mode(ours_fmtp) != _packetization_mode(theirs_fmtp):
                continue
        feedback = _feedback(ours, pt) & _feedback(theirs, pt)
        common.append(
            NegotiatedVideoCodec(
                pt, mine.encoding.upper(), VIDEO_CLOCK_RATE, theirs_fmtp, frozenset(feedback)
            )
        )
    if not common:
        return None
    remote_address = answer.media_address(theirs)
    remote_direction = answer.direction_of(theirs)
    offered_direction = offer.direction_of(ours)
    direction = Direction.from_flags(
        sends=offered_direction.sends
        and remote_direction.receives
        and not _is_null(remote_address),
        receives=offered_direction.receives and remote_direction.sends,
    )
    rtcp_mux = ours.rtcp_mux and theirs.rtcp_mux
    return NegotiatedVideo(
        remote_address=remote_address,
        remote_port=theirs.port,
        remote_rtcp_port=_remote_rtcp_port(theirs, rtcp_mux),
        codec=common[0],
        receive_codecs=tuple(common),
        direction=direction,
        rtcp_mux=rtcp_mux,
        remote_bitrate_bps=_bitrate(theirs),
    )


__all__ = [
    "DEFAULT_CODECS",
    "FEEDBACK",
    "LocalVideo",
    "NegotiatedVideo",
    "NegotiatedVideoCodec",
    "VideoCodec",
    "answer_video",
    "apply_video_answer",
    "rejected_video",
    "video_offer_section",
]
