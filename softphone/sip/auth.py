"""Digest authentication for SIP (RFC 3261 §22). The implementation is shared with RTSP and
lives in :mod:`softphone.auth.digest`; this module keeps the SIP-side import path."""

from __future__ import annotations

from softphone.auth.digest import (
    Algorithm,
    AuthError,
    Challenge,
    Credentials,
    DigestClient,
    make_challenge,
    parse_challenges,
    verify_authorization,
)

__all__ = [
    "Algorithm",
    "AuthError",
    "Challenge",
    "Credentials",
    "DigestClient",
    "make_challenge",
    "parse_challenges",
    "verify_authorization",
]
