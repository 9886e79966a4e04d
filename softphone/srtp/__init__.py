"""Media encryption: SRTP (RFC 3711) through libsrtp, keyed by SDES (RFC 4568) or by a DTLS-SRTP
handshake (RFC 5764) on the media port; the phone's DTLS certificate.

This sits beside media/ and transport/: it wraps C libraries (libsrtp, OpenSSL) and keeps no
socket. The SDP side of keying (a=crypto, a=fingerprint, a=setup) is in sdp/, sans-IO.
"""

from __future__ import annotations

from softphone.srtp.certificate import DtlsCertificate, load_or_create
from softphone.srtp.context import SrtpContext, SrtpError, SrtpStats
from softphone.srtp.dtls import DtlsSrtp, DtlsState, SrtpKeys
from softphone.srtp.protection import MediaProtection, is_rtcp

__all__ = [
    "DtlsCertificate",
    "DtlsSrtp",
    "DtlsState",
    "MediaProtection",
    "SrtpContext",
    "SrtpError",
    "SrtpKeys",
    "SrtpStats",
    "is_rtcp",
    "load_or_create",
]
