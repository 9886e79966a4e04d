"""RTSP errors.

    RtspError
    └── ProtocolError
        ├── LocalProtocolError      we misused the API (a bug on our side), e.g. pause() in INIT
        └── RemoteProtocolError     the server sent something we cannot accept
            └── ParseError          bytes that are not a well-formed RTSP message, URL or header

Contract (as h11): ``RtspConnection.next_event`` and ``RtspClient.receive_data`` raise only
RemoteProtocolError; anything else escaping them is a bug. After one, the TCP connection cannot
be resynchronised: the driver closes it.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "ParseError",
    "ProtocolError",
    "RemoteProtocolError",
    "RtspError",
]


class RtspError(Exception):
    """Base of every error raised by softphone.rtsp."""


class ProtocolError(RtspError):
    """A violation of RTSP, by us or by the server."""


class LocalProtocolError(ProtocolError):
    """We asked the core to do something the protocol (or its state) does not allow."""


class RemoteProtocolError(ProtocolError):
    """The server sent something unacceptable."""


class ParseError(RemoteProtocolError):
    """A malformed RTSP message, URL or header value."""
