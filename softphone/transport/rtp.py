"""RTP endpoints: a UDP socket bound to an even port in the configured range (RFC 3550 §11).

Until the audio media issue lands, an endpoint only reserves its port (so the SDP we send is
truthful) and counts what arrives; it sends nothing, so a call carries silence.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from typing import Any

logger = logging.getLogger(__name__)

MAX_BIND_ATTEMPTS = 64


class RtpPortError(OSError):
    """No free port pair in the configured RTP range."""


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint.packets_received += 1


class RtpEndpoint:
    def __init__(self, sock: socket.socket, session_id: int) -> None:
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        self.session_id = session_id
        self.packets_received = 0
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    def open_sync(
        cls, loop: asyncio.AbstractEventLoop, host: str, low: int, high: int, rng: random.Random
    ) -> RtpEndpoint:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        first = low + (low % 2)
        span = max((high - first) // 2, 1)
        for _ in range(MAX_BIND_ATTEMPTS):
            port = first + 2 * rng.randrange(span)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            endpoint = cls(sock, rng.randrange(1, 2**32))
            endpoint._attach(loop)
            return endpoint
        raise RtpPortError(f"no free RTP port in {low}-{high} after {MAX_BIND_ATTEMPTS} tries")

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        async def attach() -> None:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Sink(self), sock=self._sock)
            self._transport = transport

        self._attach_task = loop.create_task(attach())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        else:
            self._attach_task.cancel()
            self._sock.close()


async def open_rtp_endpoint(host: str, low: int, high: int, rng: random.Random) -> RtpEndpoint:
    endpoint = RtpEndpoint.open_sync(asyncio.get_running_loop(), host, low, high, rng)
    await endpoint._attach_task
    return endpoint
