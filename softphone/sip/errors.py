"""SIP errors.

    SipError
    └── ProtocolError
        ├── LocalProtocolError      we misused the API (a bug on our side)
        └── RemoteProtocolError     the peer sent something we cannot accept; carries status_hint
            └── ParseError          bytes that are not a well-formed SIP message / URI / header

Contract (as h11): the ``receive_*`` methods of the cores raise only RemoteProtocolError; anything
else escaping them is a bug.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by softphone.sip."""


class ProtocolError(SipError):
    """A violation of the SIP protocol, by us or by the peer."""


class LocalProtocolError(ProtocolError):
    """We asked the core to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something unacceptable.

    ``status_hint`` is the status a server should answer with (RFC 3261 §8.2, §21.4).
    """

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class ParseError(RemoteProtocolError):
    """Malformed SIP message, URI or header value."""
