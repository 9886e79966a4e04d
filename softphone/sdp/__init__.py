"""SDP (RFC 8866 / 4566) and offer/answer (RFC 3264). Shared by SIP and RTSP; imports neither.

Sans-IO and pure: text in, dataclasses out, and back.
"""

from __future__ import annotations

from softphone.sdp.errors import SdpError, SdpParseError
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
from softphone.sdp.session import (
    STATIC_PAYLOAD_TYPES,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

__all__ = [
    "AUXILIARY_ENCODINGS",
    "STATIC_PAYLOAD_TYPES",
    "CodecSpec",
    "Connection",
    "Direction",
    "LocalMedia",
    "MediaDescription",
    "NegotiatedCodec",
    "NegotiatedMedia",
    "Origin",
    "RtpMap",
    "SdpError",
    "SdpParseError",
    "SessionDescription",
    "apply_answer",
    "codec_matches",
    "create_answer",
    "create_offer",
]
