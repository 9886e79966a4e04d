"""What the RTSP client reports: events (past tense, frozen, compared by value) and the records
they carry (tracks, RTP-Info entries), plus what ``setup()`` is asked for each track."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from softphone.rtsp.headers import TransportName
from softphone.rtsp.url import RtspUrl
from softphone.sdp import SessionDescription


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of RTSP client events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Track:
    """One ``m=`` section of the DESCRIBE answer. ``index`` is its position in ``sdp.media``."""

    index: int
    media: str  # "video", "audio", "application"...
    encoding: str  # as in a=rtpmap ("H264", "MPEG4-GENERIC"); "" when unknown
    clock_rate: int  # 0 when unknown
    channels: int
    payload_type: int
    fmtp: dict[str, str]
    control_url: RtspUrl


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRequest:
    """What ``setup()`` asks for one track. ``client_ports`` (rtp, rtcp) are needed for UDP."""

    index: int
    transport: TransportName
    client_ports: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpInfo:
    """One entry of the RTP-Info header (RFC 2326 §12.33); ``index`` is the matching track."""

    url: str
    index: int | None
    seq: int | None
    rtptime: int | None
    ssrc: int | None = None  # RFC 7826 §18.45; some RTSP 1.0 cameras put it here only


@dataclass(frozen=True, slots=True, kw_only=True)
class Described(Event):
    """DESCRIBE answered with an SDP (RFC 2326 §10.2): the RTP tracks, controls resolved."""

    sdp: SessionDescription
    base_url: RtspUrl
    tracks: tuple[Track, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackSetUp(Event):
    """A SETUP succeeded; ``transport`` is what the server chose, not what we asked."""

    index: int
    transport: TransportName
    interleaved: tuple[int, int] | None
    server_ports: tuple[int, int] | None
    source: str | None
    ssrc: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStarted(Event):
    """PLAY answered (RFC 2326 §10.5): the range that will play, and RTP-Info per track."""

    range_start: float | None  # npt seconds (RFC 2326 §3.6); None for "now" or absent
    range_end: float | None
    rtp_info: tuple[RtpInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused(Event):
    """PAUSE answered (RFC 2326 §10.6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TornDown(Event):
    """TEARDOWN answered (RFC 2326 §10.7): the session is over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirected(Event):
    """A 3xx answer (RFC 2326 §11.3): play ``location`` instead."""

    location: RtspUrl


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed(Event):
    """A request answered with an error status (RFC 2326 §7.1.1)."""

    method: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticationFailed(Event):
    """401 after the credentials were tried, or none to try (RFC 2326 §D)."""

    method: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimedOut(Event):
    """No answer within the request timeout."""

    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InterleavedFrameReceived(Event):
    """A ``$`` frame on a channel that was set up (RFC 2326 §10.12)."""

    channel: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRequestReceived(Event):
    """A request from the server (RFC 2326 §10), already answered."""

    method: str


# Every event the client reports: consumers match on it and end with assert_never, so that a new
# event fails type-checking where it is not handled.
ClientEvent: TypeAlias = (
    Described
    | TrackSetUp
    | PlayStarted
    | Paused
    | TornDown
    | Redirected
    | RequestFailed
    | AuthenticationFailed
    | RequestTimedOut
    | InterleavedFrameReceived
    | ServerRequestReceived
)
