"""RTP endpoints: the task that attaches their sockets to the loop never outlives them."""

from __future__ import annotations

import asyncio
import random

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
