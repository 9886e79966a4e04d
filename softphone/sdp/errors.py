"""SDP errors.

    SdpError
    ├── SdpParseError      text that is not a well-formed SDP description (carries the line number)
    └── MediaRefused       usable SDP whose media we must refuse, with the Warning code to say why
        └── SecurityRefused    (sdp/security.py) media security we do not accept

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


# RFC 3261 §20.43: "One of the network address formats listed in the session description is
# not available": an offer whose only audio is on an address family we have no socket for.
WARN_ADDRESS_FORMAT = 301


class MediaRefused(SdpError):
    """Offered media we cannot take part in. ``warning_code``: the RFC 3261 §20.43 code for
    the Warning header of the 488."""

    def __init__(self, message: str, *, warning_code: int) -> None:
        super().__init__(message)
        self.warning_code = warning_code
