"""A call's media (phone/media.py ``CallMedia``) on its own, without sockets: a stand-in RTP
endpoint that keeps what the call sends, and a call built on it (shared by tests/phone)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from softphone.phone.media import CallMedia
from softphone.sdp import Direction
from softphone.sdp.negotiation import NegotiatedCodec, NegotiatedMedia

PEER = ("127.0.0.1", 40000)


@dataclass
class StandInEndpoint:
    """What CallMedia needs of an RTP endpoint: a sink it sets, and send(). Keeps the RTP it
    sends (not RTCP), of ``payload_type`` only when one is given."""

    payload_type: int | None = None
    timed_sink: object = None
    sent: list[bytes] = field(default_factory=list)

    def send(self, data: bytes, dest: tuple[str, int], via_rtcp: bool) -> None:
        if via_rtcp:
            return
        if self.payload_type is None or data[1] & 0x7F == self.payload_type:
            self.sent.append(data)


def make_call(
    codec: NegotiatedCodec,
    *,
    engine_rate: int,
    rtcp_mux: bool = True,
    endpoint: StandInEndpoint | None = None,
) -> tuple[CallMedia, StandInEndpoint]:
    """A send-and-receive call with ``codec`` on a stand-in endpoint (its own, unless given)."""
    endpoint = endpoint or StandInEndpoint()
    media = NegotiatedMedia(
        remote_address=PEER[0],
        remote_port=PEER[1],
        remote_rtcp_port=PEER[1] if rtcp_mux else PEER[1] + 1,
        codec=codec,
        telephone_event=None,
        direction=Direction.SENDRECV,
        rtcp_mux=rtcp_mux,
        ptime_ms=20,
    )
    call = CallMedia(
        call_id="c",
        endpoint=endpoint,  # type: ignore[arg-type]
        media=media,
        pt_map={codec.payload_type: (codec.encoding, codec.clock_rate)},
        engine_rate=engine_rate,
        rng=random.Random(1),
        cname="test",
        on_dtmf=lambda digit, method, ms: None,
    )
    return call, endpoint
