"""SDP errors.

    SdpError
    └── SdpParseError      text that is not a well-formed SDP description (carries the line number)

``SdpError`` itself is raised by offer/answer (RFC 3264) when a description is well formed but
cannot be used: no common codec, an answer that rejects our audio stream, and so on. SIP maps it
to 488 Not Acceptable Here (RFC 3261 §13.3.1.3).

Contract: ``SessionDescription.parse`` raises only SdpParseError; anything else escaping it is a bug.
"""

from __future__ import annotations


class SdpError(Exception):
    """Base of every error raised by softphone.sdp."""


class SdpParseError(SdpError):
    """Malformed SDP text. ``line`` is the 1-based line number, when one line is to blame."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
