"""RTP endpoints: a UDP socket pair, RTP on an even port and RTCP on the next (RFC 3550 §11),
taken from the configured range.

Sockets only: datagrams go to a sink callback as ``(data, addr, via_rtcp)``; what they mean is
the business of the sans-IO RTP session (rtp/session.py) that phone/ pumps. With rtcp-mux
(RFC 5761) the RTCP socket simply stays quiet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

logger = logging.getLogger(__name__)

MAX_BIND_ATTEMPTS = 64

DatagramSink = Callable[[bytes, tuple[str, int], bool], None]


class RtpPortError(OSError):
    """No free port pair in the configured RTP range."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint, via_rtcp: bool) -> None:
        self._endpoint = endpoint
        self._via_rtcp = via_rtcp

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint._received(data, (str(addr[0]), int(addr[1])), self._via_rtcp)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is not listening yet: not fatal for RTP.
        self._endpoint.send_errors += 1


class RtpEndpoint:
    def __init__(self, rtp_sock: socket.socket, rtcp_sock: socket.socket, session_id: int) -> None:
        self._socks = (rtp_sock, rtcp_sock)
        self.host: str = rtp_sock.getsockname()[0]
        self.port: int = rtp_sock.getsockname()[1]
        self.rtcp_port: int = rtcp_sock.getsockname()[1]
        self.session_id = session_id
        self.packets_received = 0
        self.send_errors = 0
        self.sink: DatagramSink | None = None
        self._transports: list[asyncio.DatagramTransport] = []
        self._closed = False

    @classmethod
    def open_sync(
        cls, loop: asyncio.AbstractEventLoop, host: str, low: int, high: int, rng: random.Random
    ) -> RtpEndpoint:
        """Bind an even RTP port and the odd RTCP port above it, at random within the range."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        first = low + (low % 2)
        span = max((high - 1 - first) // 2 + 1, 1)
        for _ in range(MAX_BIND_ATTEMPTS):
            port = first + 2 * rng.randrange(span)
            socks: list[socket.socket] = []
            try:
                for p in (port, port + 1):
                    sock = socket.socket(family, socket.SOCK_DGRAM)
                    socks.append(sock)
                    sock.bind((host, p))
                    sock.setblocking(False)
            except OSError:
                for sock in socks:
                    sock.close()
                continue
            endpoint = cls(socks[0], socks[1], rng.randrange(1, 2**32))
            endpoint._attach(loop)
            return endpoint
        raise RtpPortError(f"no free RTP port pair in {low}-{high} after {MAX_BIND_ATTEMPTS} tries")

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        async def attach() -> None:
            for via_rtcp, sock in zip((False, True), self._socks, strict=True):
                transport, _ = await loop.create_datagram_endpoint(
                    partial(_Protocol, self, via_rtcp), sock=sock
                )
                if self._closed:
                    transport.close()
                else:
                    self._transports.append(transport)

        self._attach_task = loop.create_task(attach())

    def _received(self, data: bytes, addr: tuple[str, int], via_rtcp: bool) -> None:
        self.packets_received += 1
        if self.sink is not None:
            self.sink(data, addr, via_rtcp)

    def send(self, data: bytes, addr: tuple[str, int], via_rtcp: bool = False) -> None:
        index = 1 if via_rtcp else 0
        if len(self._transports) <= index:
            return  # not attached yet (the first loop iteration) or closed
        try:
            self._transports[index].sendto(data, addr)
        except OSError:
            self.send_errors += 1

    @property
    def ready(self) -> bool:
        return len(self._transports) == 2

    @property
    def settled(self) -> bool:
        """The task that attaches the sockets to the loop has ended (attached or cancelled)."""
        return self._attach_task.done()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sink = None
        if self._transports:
            for transport in self._transports:
                transport.close()
        else:
            self._attach_task.cancel()
            for sock in self._socks:
                sock.close()

    async def wait_closed(self) -> None:
        """After ``close()``: wait until the attaching task has ended, so it never outlives the
        endpoint (``close()`` cancels it when it had not attached the sockets yet)."""
        await asyncio.wait({self._attach_task})


async def open_rtp_endpoint(host: str, low: int, high: int, rng: random.Random) -> RtpEndpoint:
    endpoint = RtpEndpoint.open_sync(asyncio.get_running_loop(), host, low, high, rng)
    await endpoint._attach_task
    return endpoint
