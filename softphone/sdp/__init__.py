"""SDP (RFC 8866 / 4566) and offer/answer (RFC 3264). Shared by SIP and RTSP; imports neither.

Sans-IO and pure: text in, dataclasses out, and back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from softphone.sdp.errors import SdpError, SdpParseError
from softphone.sdp.session import (
    STATIC_PAYLOAD_TYPES,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

# Offer/answer is for SIP; RTSP only parses. It loads when first asked for (PEP 562), so that
# `softphone play` does not make its classes on the way to PLAY.
_NEGOTIATION = frozenset(
    {
        "AUXILIARY_ENCODINGS",
        "CodecSpec",
        "LocalSecurity",
        "MediaEncryption",
        "NegotiatedSecurity",
        "SecurityRefused",
        "LocalMedia",
        "NegotiatedCodec",
        "NegotiatedMedia",
        "apply_answer",
        "codec_matches",
        "create_answer",
        "create_offer",
    }
)

if TYPE_CHECKING:
    from softphone.sdp.negotiation import (
        AUXILIARY_ENCODINGS,
        CodecSpec,
        LocalMedia,
        NegotiatedCodec,
        NegotiatedMedia,
        apply_answer,
        codec_matches,
        create_answer,
        create_offer,
    )
    from softphone.sdp.security import (
        LocalSecurity,
        MediaEncryption,
        NegotiatedSecurity,
        SecurityRefused,
    )


def __getattr__(name: str) -> Any:
    if name in _NEGOTIATION:
        from softphone.sdp import negotiation, security

        return getattr(security if name in security.__all__ else negotiation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AUXILIARY_ENCODINGS",
    "STATIC_PAYLOAD_TYPES",
    "CodecSpec",
    "Connection",
    "Direction",
    "LocalMedia",
    "LocalSecurity",
    "MediaDescription",
    "MediaEncryption",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "NegotiatedSecurity",
    "Origin",
    "RtpMap",
    "SdpError",
    "SdpParseError",
    "SecurityRefused",
    "SessionDescription",
    "apply_answer",
    "codec_matches",
    "create_answer",
    "create_offer",
]
