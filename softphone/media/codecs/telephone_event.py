"""telephone-event (RFC 4733): a descriptor only; the payloads are built by rtp/dtmf.py.

RFC 4733 §7.1.1: "telephone-event/8000" with a dynamic payload type; we advertise events 0-16
(the DTMF digits 0-9 * # A-D and flash, §3.2).
"""

from __future__ import annotations

from typing import Final

from softphone.media.codecs.base import CodecDescriptor

TELEPHONE_EVENT: Final = CodecDescriptor(
    encoding="telephone-event",
    clock_rate=8000,
    sample_rate=8000,
    channels=1,
    static_payload_type=None,
    fmtp="0-16",
    has_plc=False,
    has_fec=False,
    make_encoder=None,
    make_decoder=None,
)
