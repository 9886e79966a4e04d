"""RTP endpoints: a UDP socket pair, RTP on an even port and RTCP on the next (RFC 3550 §11),
taken from the configured range.

Sockets only: datagrams go to a sink callback as ``(data, addr, via_rtcp)``, or to
``timed_sink`` as ``(data, addr, via_rtcp, arrival)``; what they mean is the business of the
sans-IO RTP session (rtp/session.py) that phone/ pumps. With rtcp-mux (RFC 5761) the RTCP
socket simply stays quiet. STUN answers (RFC 7983 §7 tells them apart by the first byte) go to
``stun_sink`` while one is set: the phone asks a STUN server for the sockets' public address.

Each socket is read with ``loop.add_reader`` and drained on every wake-up, not through an
asyncio datagram transport, for two reasons:

- **Arrival times.** ``arrival`` is when the kernel received the datagram (``SO_TIMESTAMPNS``),
  on the loop's clock. The jitter buffer measures the network's jitter from it; the time the
  event loop got round to the socket adds our own scheduling delays, and a loop that was held up
  by 30 ms would read a burst of on-time packets as a delay spike (and raise its target for it).
- **Bursts.** A transport reads one datagram per loop iteration: after a stall, packets that
  were already here stayed in the kernel while the audio pump ran, and the pump concealed
  frames it had. Draining reads everything that is here before anything else runs.

A call's audio may take the RTP socket off the loop (``read_by_poll``) and drain it from the
audio pump instead (``poll``), once per pump step. A wake-up of the process costs about 0.1 ms
of CPU on a virtual machine (a bare 20 ms timer), more than reading the packet, and the pump
wakes every 20 ms anyway. The kernel's arrival times keep the jitter buffer's measure exact;
the pump renders only after it has polled, so a packet is never played later for it. The RTCP
socket stays on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Final

from softphone.stun import is_stun

logger = logging.getLogger(__name__)

MAX_BIND_ATTEMPTS = 64
MAX_DATAGRAM: Final = 65535
MAX_READS_PER_WAKE: Final = 256
"""Datagrams read per wake-up at most, so that a flood cannot hold the loop."""
_TIMESPEC: Final = struct.Struct("@ll")  # struct timespec: tv_sec, tv_nsec
# Python's socket module does not export SO_TIMESTAMPNS; 35 is Linux's (asm-generic/socket.h,
# SO_TIMESTAMPNS_OLD, the one with a native struct timespec). Without it every arrival was the
# loop's reading time, and a packet read by the pump seemed up to a step late.
SO_TIMESTAMPNS: Final = getattr(
    socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None
)
"""Set on a socket (SOL_SOCKET, 1) to have each datagram stamped; None where unknown."""
STAMP_SPACE: Final = socket.CMSG_SPACE(_TIMESPEC.size) if SO_TIMESTAMPNS is not None else 0
"""Ancillary buffer size for ``recvmsg`` that holds the stamp."""

DatagramSink = Callable[[bytes, tuple[str, int], bool], None]
TimedDatagramSink = Callable[[bytes, tuple[str, int], bool, float], None]


def kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp among a datagram's control messages (``recvmsg``'s third
    item), wall-clock seconds since the epoch; None without one (``SO_TIMESTAMPNS``)."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return float(seconds) + float(nanoseconds) * 1e-9
    return None


def arrival_time(ancillary: list[tuple[int, int, bytes]], now: float, wall: float) -> float:
    """When the kernel received a datagram, on the loop's clock: ``now`` is the loop's time and
    ``wall`` the wall clock's, both read as the socket is drained (after the datagram came, before
    it is read); the kernel's stamp is wall-clock time. Never after ``now``; ``now`` itself when
    the stamp is missing."""
    stamp = kernel_time(ancillary)
    return now if stamp is None else now - max(0.0, wall - stamp)


class RtpPortError(OSError):
    """No free port pair in the configured RTP range."""


class RtpEndpoint:
    def __init__(self, rtp_sock: socket.socket, rtcp_sock: socket.socket, session_id: int) -> None:
        self._socks = (rtp_sock, rtcp_sock)
        # Read once: ``socket.family`` builds an enum on every read, and send() needs it per packet.
        self._dual_stack = rtp_sock.family == socket.AF_INET6
        self.host: str = rtp_sock.getsockname()[0]
        self.port: int = rtp_sock.getsockname()[1]
        self.rtcp_port: int = rtcp_sock.getsockname()[1]
        self.session_id = session_id
        self.packets_received = 0
        self.send_errors = 0
        self.receive_errors = 0
        self.sink: DatagramSink | None = None
        self.timed_sink: TimedDatagramSink | None = None
        """Takes precedence over ``sink``: also given the datagram's arrival (loop clock)."""
        self.stun_sink: DatagramSink | None = None
        """Gets STUN messages instead of the other sinks while set."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attached: list[socket.socket] = []
        self._stamped = False
        self._closed = False
        self._polled = False  # the RTP socket is read by poll(), not by the loop
        for sock in self._socks:
            if SO_TIMESTAMPNS is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    self._stamped = True
                except OSError:
                    self._stamped = False

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
        self._loop = loop

        async def attach() -> None:
            for via_rtcp, sock in zip((False, True), self._socks, strict=True):
                if self._closed:
                    return
                if via_rtcp or not self._polled:
                    loop.add_reader(sock.fileno(), self._readable, sock, via_rtcp)
                self._attached.append(sock)

        self._attach_task = loop.create_task(attach())

    def _readable(self, sock: socket.socket, via_rtcp: bool) -> None:
        """Drain the socket: everything the kernel holds, each with its arrival time."""
        assert self._loop is not None
        now = self._loop.time()
        wall = time.time()
        for _ in range(MAX_READS_PER_WAKE):
            if self._closed:
                return
            try:
                data, ancillary, _flags, addr = sock.recvmsg(MAX_DATAGRAM, STAMP_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors surface here; they never end the stream
                self.receive_errors += 1
                continue
            self._received(
                data, (str(addr[0]), int(addr[1])), via_rtcp, arrival_time(ancillary, now, wall)
            )

    def read_by_poll(self, polled: bool) -> None:
        """True: the loop stops reading the RTP socket and ``poll`` drains it (the audio pump
        calls it every step); False: the loop reads it again, datagrams queued meanwhile
        included (the socket is readable at once)."""
        if polled == self._polled:
            return
        self._polled = polled
        rtp = self._socks[0]
        if self._closed or self._loop is None or rtp not in self._attached:
            return  # the attaching task reads the flag
        if self._loop.is_closed():
            return  # a phone stopping after its loop: nothing reads any more
        if polled:
            self._loop.remove_reader(rtp.fileno())
        else:
            self._loop.add_reader(rtp.fileno(), self._readable, rtp, False)

    def poll(self) -> None:
        """Drain the RTP socket now, while it is read by poll (``read_by_poll``)."""
        rtp = self._socks[0]
        if self._polled and not self._closed and rtp in self._attached:
            self._readable(rtp, False)

    def _received(self, data: bytes, addr: tuple[str, int], via_rtcp: bool, arrival: float) -> None:
        if self.stun_sink is not None and is_stun(data):
            self.stun_sink(data, addr, via_rtcp)
            return
        self.packets_received += 1
        if self.timed_sink is not None:
            self.timed_sink(data, addr, via_rtcp, arrival)
        elif self.sink is not None:
            self.sink(data, addr, via_rtcp)

    def send(self, data: bytes, addr: tuple[str, int], via_rtcp: bool = False) -> None:
        if self._closed or len(self._attached) < 2:
            return  # not attached yet (the first loop iteration) or closed
        sock = self._socks[1 if via_rtcp else 0]
        if self._dual_stack and ":" not in addr[0]:
            # A dual-stack socket (bound to "::") reaches IPv4 peers at their mapped address.
            addr = (f"::ffff:{addr[0]}", addr[1])
        try:
            sock.sendto(data, addr)
        except OSError:  # a full send buffer, or ICMP unreachable from a peer not listening yet
            self.send_errors += 1

    @property
    def kernel_stamps(self) -> bool:
        """The kernel stamps what arrives (``SO_TIMESTAMPNS``): arrival times are exact."""
        return self._stamped

    @property
    def ready(self) -> bool:
        return len(self._attached) == 2 and not self._closed

    @property
    def settled(self) -> bool:
        """The task that attaches the sockets to the loop has ended (attached or cancelled)."""
        return self._attach_task.done()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sink = None
        self.stun_sink = None
        self.timed_sink = None
        self._attach_task.cancel()
        if self._loop is not None and not self._loop.is_closed():
            for sock in self._attached:
                self._loop.remove_reader(sock.fileno())
        self._attached.clear()
        for sock in self._socks:
            sock.close()

    async def attached(self) -> None:
        """Wait until both sockets are read by the loop (``send`` works from then on)."""
        await asyncio.shield(self._attach_task)

    async def wait_closed(self) -> None:
        """After ``close()``: wait until the attaching task has ended, so it never outlives the
        endpoint (``close()`` cancels it when it had not attached the sockets yet)."""
        await asyncio.wait({self._attach_task})


async def open_rtp_endpoint(host: str, low: int, high: int, rng: random.Random) -> RtpEndpoint:
    endpoint = RtpEndpoint.open_sync(asyncio.get_running_loop(), host, low, high, rng)
    await endpoint._attach_task
    return endpoint
