"""A call's microphone framing on a sound card: a 48 kHz device hands the call 10 ms blocks,
and a 20 ms PCMU frame must go out with the block that completes it, not one block later
because the 48 -> 8 kHz resampler still holds its filter's tail."""

from __future__ import annotations

import numpy as np
from call_media_support import StandInEndpoint
from call_media_support import make_call as make_pcmu_call

from softphone.media.codecs.g711 import ulaw_to_linear
from softphone.phone.media import CallMedia
from softphone.rtp.packet import RtpPacket
from softphone.sdp.negotiation import NegotiatedCodec

BLOCK = 480  # 10 ms at 48 kHz


def make_call() -> tuple[CallMedia, StandInEndpoint]:
    codec = NegotiatedCodec(0, "PCMU", 8000, 1, {})
    return make_pcmu_call(codec, engine_rate=48000, rtcp_mux=False)


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
