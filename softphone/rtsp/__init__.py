"""RTSP 1.0 sans-IO client core (RFC 2326): URLs (url.py), messages and ``$`` framing
(message.py), the client (client.py) with its state table (state.py), events (events.py), header
readers (headers.py) and what it does with refusals, redirects and 401s (status.py). No sockets,
no clocks: the connection is softphone/transport/rtsp.py, and one session of the player
(softphone/phone/player_session.py) drives the client."""

from __future__ import annotations

from softphone.rtsp.client import (
    AuthenticationFailed,
    Described,
    Event,
    InterleavedFrameReceived,
    Paused,
    PlayStarted,
    Redirected,
    RequestFailed,
    RequestTimedOut,
    RtpInfo,
    RtspClient,
    ServerRequestReceived,
    State,
    TornDown,
    Track,
    TrackRequest,
    TrackSetUp,
)
from softphone.rtsp.errors import (
    LocalProtocolError,
    ParseError,
    ProtocolError,
    RemoteProtocolError,
    RtspError,
)
from softphone.rtsp.message import (
    NEED_DATA,
    Headers,
    InterleavedFrame,
    RtspConnection,
    RtspRequest,
    RtspResponse,
)
from softphone.rtsp.status import explain
from softphone.rtsp.url import RtspUrl

__all__ = [
    "NEED_DATA",
    "AuthenticationFailed",
    "Described",
    "Event",
    "Headers",
    "InterleavedFrame",
    "InterleavedFrameReceived",
    "LocalProtocolError",
    "ParseError",
    "Paused",
    "PlayStarted",
    "ProtocolError",
    "Redirected",
    "RemoteProtocolError",
    "RequestFailed",
    "RequestTimedOut",
    "RtpInfo",
    "RtspClient",
    "RtspConnection",
    "RtspError",
    "RtspRequest",
    "RtspResponse",
    "RtspUrl",
    "ServerRequestReceived",
    "State",
    "TornDown",
    "Track",
    "TrackRequest",
    "TrackSetUp",
    "explain",
]
