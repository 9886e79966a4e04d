"""RTP errors.

    RtpError
    └── RtpParseError      bytes that are not a well-formed RTP or RTCP packet

``RtpError`` itself means misuse of the API (a packet built with out-of-range fields, an input
the session's state does not allow): a bug on our side.

Contract: ``RtpPacket.parse`` and ``parse_rtcp`` raise only RtpParseError; anything else escaping
them is a bug. ``RtpSession.receive_datagram`` raises nothing for what the network sends: a
malformed datagram is counted and dropped: one bad packet never ends a call.
"""

from __future__ import annotations


class RtpError(Exception):
    """Base of every error raised by softphone.rtp; raised directly for API misuse."""


class RtpParseError(RtpError):
    """Malformed RTP or RTCP bytes."""
