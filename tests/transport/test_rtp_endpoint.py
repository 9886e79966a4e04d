"""RTP endpoints: the task that attaches their sockets to the loop never outlives them; what
arrives is handed over with the kernel's receive time."""

from __future__ import annotations

import asyncio
import random
import socket

from softphone.transport.rtp import RtpEndpoint, open_rtp_endpoint


async def test_closing_before_the_sockets_attach_ends_the_attaching_task() -> None:
    endpoint = RtpEndpoint.open_sync(
        asyncio.get_running_loop(), "127.0.0.1", 40000, 40998, random.Random("early")
    )
    assert not endpoint.settled  # the sockets attach on the loop's next turn
    endpoint.close()
    async with asyncio.timeout(1):
        await endpoint.wait_closed()
    assert endpoint.settled and not endpoint.ready


async def test_an_opened_endpoint_is_attached_and_settled() -> None:
    endpoint = await open_rtp_endpoint("127.0.0.1", 40000, 40998, random.Random("opened"))
    try:
        assert endpoint.ready and endpoint.settled and endpoint.port % 2 == 0
    finally:
        endpoint.close()
    async with asyncio.timeout(1):
        await endpoint.wait_closed()


async def test_datagrams_arrive_with_the_kernels_receive_time_on_the_loop_clock() -> None:
    loop = asyncio.get_running_loop()
    endpoint = await open_rtp_endpoint("127.0.0.1", 40000, 40998, random.Random("timed"))
    got: list[tuple[bytes, bool, float, float]] = []
    all_here = asyncio.Event()

    def sink(data: bytes, addr: tuple[str, int], via_rtcp: bool, arrival: float) -> None:
        got.append((data, via_rtcp, arrival, loop.time()))
        if len(got) == 3:
            all_here.set()

    endpoint.timed_sink = sink
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        before = loop.time()
        for i in range(2):
            sender.sendto(bytes([i]), ("127.0.0.1", endpoint.port))
        sender.sendto(b"rtcp", ("127.0.0.1", endpoint.rtcp_port))
        async with asyncio.timeout(1):
            await all_here.wait()
    finally:
        sender.close()
        endpoint.close()
    rtp = [(data, arrival) for data, via_rtcp, arrival, _ in got if not via_rtcp]
    assert [data for data, _ in rtp] == [b"\x00", b"\x01"]
    assert [data for data, via_rtcp, _, _ in got if via_rtcp] == [b"rtcp"]
    # Received before it was handed over, after it was sent, in order.
    assert all(before - 0.005 <= arrival <= delivered for _, _, arrival, delivered in got)
    assert rtp[0][1] <= rtp[1][1]
