"""A call's microphone framing on a sound card: a 48 kHz device hands the call 10 ms blocks,
and a 20 ms PCMU frame must go out with the block that completes it, not one block later
because the 48 -> 8 kHz resampler still holds its filter's tail."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from softphone.media.codecs.g711 import ulaw_to_linear
from softphone.phone.media import CallMedia
from softphone.rtp.packet import RtpPacket
from softphone.sdp import Direction
from softphone.sdp.negotiation import NegotiatedCodec, NegotiatedMedia

PEER = ("127.0.0.1", 40000)
BLOCK = 480  # 10 ms at 48 kHz


@dataclass
class StandInEndpoint:
    timed_sink: object = None
    sent: list[bytes] = field(default_factory=list)

    def send(self, data: bytes, dest: tuple[str, int], via_rtcp: bool) -> None:
        if not via_rtcp:
            self.sent.append(data)


def make_call() -> tuple[CallMedia, StandInEndpoint]:
    endpoint = StandInEndpoint()
    media = NegotiatedMedia(
        remote_address=PEER[0],
        remote_port=PEER[1],
        remote_rtcp_port=PEER[1] + 1,
        codec=NegotiatedCodec(0, "PCMU", 8000, 1, {}),
        telephone_event=None,
        direction=Direction.SENDRECV,
        rtcp_mux=False,
        ptime_ms=20,
    )
    call = CallMedia(
        call_id="c",
        endpoint=endpoint,  # type: ignore[arg-type]
        media=media,
        pt_map={0: ("PCMU", 8000)},
        engine_rate=48000,
        rng=random.Random(1),
        cname="test",
        on_dtmf=lambda digit, method, ms: None,
    )
    return call, endpoint


async def test_each_pcmu_frame_leaves_with_the_block_that_completes_it() -> None:
    call, endpoint = make_call()
    rng = np.random.default_rng(2)
    signal = (0.3 * rng.standard_normal(20 * BLOCK)).astype(np.float32)
    counts = []
    for k in range(20):
        call.capture(signal[k * BLOCK : (k + 1) * BLOCK], now=k * 0.01)
        counts.append(len(endpoint.sent))
    # One frame per two blocks, from the second block on (not the third).
    assert counts == [k // 2 for k in range(1, 21)]
    # The frames carry the microphone 2 ms late (the tail as leading silence), nothing lost.
    heard = np.concatenate(
        [ulaw_to_linear(np.frombuffer(RtpPacket.parse(d).payload, np.uint8)) for d in endpoint.sent]
    ).astype(np.float64)
    assert np.all(heard[:15] == 0) and np.any(heard[15:20] != 0)
    timestamps = [RtpPacket.parse(d).timestamp for d in endpoint.sent]
    assert np.all(np.diff(timestamps) == 160)
