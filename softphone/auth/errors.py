"""Authentication errors, shared by the SIP and RTSP cores.

AuthError
├── ParseError      a challenge or credentials header value that is not well formed
└── NoCredentials   we cannot answer: no credentials fit the challenged realm, or no
                    supported qop
"""

from __future__ import annotations


class AuthError(Exception):
    """Base of every error raised by softphone.auth."""


class ParseError(AuthError):
    """A WWW-Authenticate / Authorization header value that is not well formed."""


class NoCredentials(AuthError):
    """We cannot authenticate: no credentials for the challenged realm, or no usable qop."""
