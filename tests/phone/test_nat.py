"""The public address of a call's media (phone/nat.py): STUN asked from the RTP and RTCP sockets
themselves (a real loopback STUN responder), and the order of preference when it is silent."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import cast

import pytest

from softphone.phone.nat import MediaAddress, StunCache, media_address, stun_mappings
from softphone.stun import (
    BINDING_SUCCESS,
    XOR_MAPPED_ADDRESS,
    StunMessage,
    xor_mapped_address,
)
from softphone.transport.rtp import RtpEndpoint, open_rtp_endpoint


class Responder(asyncio.DatagramProtocol):
    """A STUN server that says each socket is at 198.51.100.7, port + 10000."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[tuple[str, int]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = StunMessage.parse(data)
        self.seen.append(addr)
        mapped = ("198.51.100.7", addr[1] + 10000)
        value = xor_mapped_address(mapped, request.transaction_id)
        reply = StunMessage(BINDING_SUCCESS, request.transaction_id, ((XOR_MAPPED_ADDRESS, value),))
        assert self.transport is not None
        self.transport.sendto(bytes(reply), addr)


@pytest.fixture
async def endpoint() -> AsyncIterator[RtpEndpoint]:
    rtp = await open_rtp_endpoint("127.0.0.1", 20000, 30000, random.Random(1))
    yield rtp
    rtp.close()
    await rtp.wait_closed()


async def test_stun_is_asked_from_both_sockets(endpoint: RtpEndpoint) -> None:
    loop = asyncio.get_running_loop()
    transport, responder = await loop.create_datagram_endpoint(
        Responder, local_addr=("127.0.0.1", 0)
    )
    try:
        server = transport.get_extra_info("sockname")
        async with asyncio.timeout(2):
            mapped = await stun_mappings(endpoint, server, random.Random(2), rtcp=True)
    finally:
        transport.close()
    assert mapped == (
        ("198.51.100.7", endpoint.port + 10000),
        ("198.51.100.7", endpoint.rtcp_port + 10000),
    )
    assert sorted(responder.seen) == [
        ("127.0.0.1", endpoint.port),
        ("127.0.0.1", endpoint.rtcp_port),
    ]
    assert endpoint.stun_sink is None  # RTP goes to the call again


async def test_a_silent_stun_server_gives_up_within_1_25_s(endpoint: RtpEndpoint) -> None:
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        started = loop.time()
        async with asyncio.timeout(3):
            mapped = await stun_mappings(
                endpoint, silent.get_extra_info("sockname"), random.Random(3), rtcp=True
            )
        assert mapped is None and 1.2 <= loop.time() - started < 2.5
    finally:
        silent.close()


class FakeEndpoint:
    port = 40000
    rtcp_port = 40001


def test_stun_first_then_the_registrar_then_our_own_address() -> None:
    rtp = FakeEndpoint()
    stun = (("198.51.100.7", 50000), None)
    assert media_address(rtp, "192.168.1.100", stun=stun, registered_host="203.0.113.1") == (  # type: ignore[arg-type]
        MediaAddress("198.51.100.7", 50000, 50001, "stun")
    )
    assert media_address(rtp, "192.168.1.100", stun=None, registered_host="203.0.113.1") == (  # type: ignore[arg-type]
        MediaAddress("203.0.113.1", 40000, 40001, "registrar")
    )
    for registered in ("192.168.1.100", None):
        assert media_address(rtp, "192.168.1.100", stun=None, registered_host=registered) == (  # type: ignore[arg-type]
            MediaAddress("192.168.1.100", 40000, 40001, "local")
        )


def test_a_silent_server_is_left_alone_for_five_minutes() -> None:
    cache = StunCache()
    cache.silent("stun.example:3478", now=100.0)
    assert not cache.usable("stun.example:3478", 399.0)
    assert cache.usable("stun.example:3478", 400.0) and cache.usable("other", 100.0)
