"""IceEndpoint on two real loopback sockets: what is sent before the checks end."""

from __future__ import annotations

import asyncio
import random

from softphone.transport.ice import IceEndpoint
from softphone.transport.rtp import open_rtp_endpoint

RTP = bytes([0x80, 0, 0, 1]) + bytes(8) + b"first frame"


async def test_a_datagram_sent_before_the_pair_is_nominated_goes_when_it_is() -> None:
    rng = random.Random(1)
    a_rtp = await open_rtp_endpoint("127.0.0.1", 40000, 41000, rng)
    b_rtp = await open_rtp_endpoint("127.0.0.1", 41000, 42000, rng)
    a = IceEndpoint(a_rtp, host="127.0.0.1", controlling=True, components=1)
    b = IceEndpoint(b_rtp, host="127.0.0.1", controlling=False, components=1)
    got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
    b.timed_sink = lambda data, source, via_rtcp, at: got.put_nowait((data, source))
    try:
        await asyncio.gather(a.gather(), b.gather())
        # The call's first frame, ready before the far end's candidates are even known: no
        # pair yet, so nothing may leave (RFC 8445 §12.1) ...
        a.send(b"stale" + RTP, (b_rtp.host, b_rtp.port))
        a.send(RTP, (b_rtp.host, b_rtp.port))
        assert got.empty()
        # ... and the newest of them leaves once the checks nominate one.
        async with asyncio.timeout(10):
            await asyncio.gather(
                a.connect(b.ufrag, b.pwd, b.local_candidates(), lite=False),
                b.connect(a.ufrag, a.pwd, a.local_candidates(), lite=False),
            )
            data, source = await got.get()
        assert data == RTP and source == (a_rtp.host, a_rtp.port)
        assert got.empty()  # the older one was replaced, not queued
        assert a.state == b.state == "connected"
    finally:
        for end in (a, b):
            end.close()
            await end.wait_closed()
        for rtp in (a_rtp, b_rtp):
            rtp.close()
            await rtp.wait_closed()
