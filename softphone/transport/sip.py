"""asyncio drivers for SIP over UDP, TCP and TLS (RFC 3261 §18), IPv4 and IPv6.

``SipTransport`` owns every socket, task and loop timer of the SIP side and pumps one sans-IO core
(``SipCore``), the way aioquic's ``asyncio/protocol.py`` pumps a QUIC connection: bytes in ->
``core.receive_message`` -> ``sink(events)`` -> send what ``core.messages_to_send()`` drained ->
re-arm the single ``loop.call_at`` timer from ``core.get_timer()``.

It never parses SIP. Streams (TCP, TLS) are cut into messages by ``softphone.sip.framing``
(RFC 3261 §18.3, Content-Length framing) and carry RFC 5626 §4.4.1 CRLF keep-alives.

Errors: ``OSError`` is translated into ``TransportError`` at one place, ``listen()``. Failures to
reach a peer are not exceptions: they go to ``core.transport_error(dest, reason, now)`` (RFC 3261
§18.4), and the core turns them into events.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final, Literal, Protocol, cast

from softphone.sip.address import Address, TransportName
from softphone.sip.errors import ParseError, RemoteProtocolError
from softphone.sip.framing import KeepAlivePing, KeepAlivePong, StreamFramer
from softphone.transport.tls import describe_tls_error

logger = logging.getLogger(__name__)

MAX_CONNECTIONS: Final = 512
IDLE_TIMEOUT_S: Final = 15 * 60.0
CONNECT_TIMEOUT_S: Final = 10.0
TLS_SHUTDOWN_TIMEOUT_S: Final = 5.0
READ_SIZE: Final = 64 * 1024
# The UDP socket's receive buffer asked for (the kernel caps it at net.core.rmem_max). Linux's
# default (208 KiB of buffer, ~150 datagrams) overflows in a fraction of a second when a scanner
# floods us while the loop is busy; queued, the INVITEs are answered late instead of never.
UDP_RECEIVE_BUFFER: Final = 4 * 1024 * 1024
# RFC 5626 §4.4.1 / §3.5.1: the client sends a double CRLF ("ping"), the server answers one CRLF.
PING: Final = b"\r\n\r\n"
PONG: Final = b"\r\n"


class TransportError(Exception):
    """We could not do what was asked with the network (bind a port, ...); ``str()`` says why."""


class SipCore(Protocol):
    """The sans-IO SIP core the transport pumps (the UA).

    Event lists are typed ``Sequence[object]`` (covariant) so a core returning
    ``list[Event]`` satisfies the protocol; the sink always gets a fresh ``list``.
    """

    def receive_message(self, data: bytes, source: Address, now: float) -> Sequence[object]:
        """One whole message; ``source`` identifies the peer (the connection, for tcp/tls).

        May raise RemoteProtocolError: the transport logs it and drops the message.
        """
        ...

    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        """Drain the outgoing messages."""
        ...

    def get_timer(self) -> float | None:
        """Earliest deadline on the ``loop.time()`` clock, or None."""
        ...

    def handle_timer(self, now: float) -> Sequence[object]: ...

    def transport_error(self, dest: Address, reason: str, now: float) -> Sequence[object]: ...

    def flow_closed(self, dest: Address, reason: str, now: float) -> Sequence[object]:
        """A TCP/TLS connection ended (the peer or a router closed it, or it failed)."""
        ...


Sink = Callable[[list[object]], None]
TlsContextFactory = Callable[[Address], ssl.SSLContext]
# Sees every SIP message sent (after it went out) or received (before the core reads it), with
# the address it went to or came from: the phone keeps a per-call trace for the ladder screen.
Tap = Callable[[Literal["sent", "received"], bytes, Address], None]


def _ip(host: str) -> str:
    """Socket-level host -> Address host (an IPv6 zone id is not part of our addresses)."""
    return host.split("%", 1)[0]


def _is_v6(host: str) -> bool:
    return ":" in host


class _UdpProtocol(asyncio.DatagramProtocol):
    """One UDP listener; hands datagrams to its SipTransport."""

    def __init__(self, owner: SipTransport, closed: asyncio.Future[None]) -> None:
        self._owner = owner
        self.closed = closed
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner._datagram_received(data, Address("udp", _ip(str(addr[0])), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket do not say which message failed; the core's
        # own timers (RFC 3261 §17) notice the silence.
        logger.info("udp socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _Connection:
    """A tcp/tls connection, keyed by the peer's Address; outgoing data waits until connected."""

    __slots__ = ("address", "framer", "idle_timer", "last_activity", "pending", "task", "writer")

    def __init__(self, address: Address, now: float) -> None:
        self.address = address
        self.framer = StreamFramer()
        self.writer: asyncio.StreamWriter | None = None
        self.pending: list[bytes] = []
        self.last_activity = now
        self.idle_timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self.writer is not None and self.writer.is_closing()

    def attach(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        for data in self.pending:
            writer.write(data)
        self.pending.clear()

    def write(self, data: bytes) -> None:
        if self.writer is None:
            self.pending.append(data)
        else:
            self.writer.write(data)


class SipTransport:
    """Sockets for one SIP core: UDP/TCP/TLS listeners, outgoing connections, timers."""

    def __init__(
        self,
        core: SipCore,
        sink: Sink,
        *,
        tls_context: TlsContextFactory | None = None,
        tls_server_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        tap: Tap | None = None,
    ) -> None:
        self._core = core
        self._sink = sink
        self._tap = tap
        self._tls_context = tls_context
        self._tls_server_context = tls_server_context
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Address] = []
        self._udp: list[tuple[Address, _UdpProtocol]] = []
        self._servers: list[tuple[Address, asyncio.Server]] = []
        self._connections: dict[Address, _Connection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._keep_alives: dict[Address, asyncio.TimerHandle] = {}
        self._closed = False

    # -- public API ------------------------------------------------------------------------

    async def listen(
        self, transport: TransportName, host: str, port: int, *, fallback: bool = False
    ) -> Address:
        """Bind a listener and return its Address (the real port when ``port`` is 0).

        A taken port raises TransportError, or with ``fallback`` binds an ephemeral port.
        """
        if self._closed:
            raise TransportError("the SIP transport is closed")
        if transport == "tls" and self._tls_server_context is None:
            raise TransportError(f"cannot listen on {port}/tls on {host}: no server certificate")
        try:
            return await self._bind(transport, host, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise TransportError(
                    f"cannot listen on port {port}/{transport} on {host}: {exc.strerror or exc}"
                ) from exc
            if not fallback:
                raise TransportError(f"port {port}/{transport} on {host} is in use") from exc
        logger.warning("port %s/%s on %s is in use; using an ephemeral port", port, transport, host)
        try:
            return await self._bind(transport, host, 0)
        except OSError as exc:
            raise TransportError(
                f"cannot listen on {transport} on {host}: {exc.strerror or exc}"
            ) from exc

    def use_tls_server_context(self, context: ssl.SSLContext) -> None:
        """The certificate a TLS listener bound from now on presents (an account on TLS was
        added at run time); listeners already bound keep theirs."""
        self._tls_server_context = context

    async def unlisten(self, address: Address) -> None:
        """Close one listener bound by ``listen`` (for retrying a UDP/TCP port pair)."""
        for entry in [e for e in self._udp if e[0] == address]:
            self._udp.remove(entry)
            if entry[1].transport is not None:
                entry[1].transport.close()
            await entry[1].closed
        for found in [e for e in self._servers if e[0] == address]:
            self._servers.remove(found)
            found[1].close()
            await found[1].wait_closed()
        if address in self._listeners:
            self._listeners.remove(address)

    def listeners(self) -> list[Address]:
        """Every bound listener, in the order they were bound."""
        return list(self._listeners)

    def pump(self) -> None:
        """Send what the core has queued and re-arm its timer. Call after any core input."""
        if self._closed:
            return
        loop = self._running_loop()
        while True:
            failures: list[tuple[Address, str]] = []
            for data, dest in self._core.messages_to_send():
                reason = self._send(data, dest)
                if reason is None and self._tap is not None:
                    self._tap("sent", data, dest)
                if reason is not None:
                    failures.append((dest, reason))
            if not failures:
                break
            for dest, reason in failures:
                logger.info("cannot send to %s: %s", dest, reason)
                self._emit(self._core.transport_error(dest, reason, loop.time()))
        self._arm_timer()

    def keep_alive(self, dest: Address, interval_s: float) -> None:
        """Send a CRLFCRLF ping on the flow to ``dest`` every ``interval_s`` (RFC 5626 §4.4.1).

        For tcp/tls the ping goes on the existing connection to ``dest`` (none is opened for
        it, and it counts as traffic for the idle timeout); for udp it is a datagram.
        """
        self.cancel_keep_alive(dest)
        if self._closed:
            return
        loop = self._running_loop()
        self._keep_alives[dest] = loop.call_at(
            loop.time() + interval_s, self._on_keep_alive, dest, interval_s
        )

    def cancel_keep_alive(self, dest: Address) -> None:
        handle = self._keep_alives.pop(dest, None)
        if handle is not None:
            handle.cancel()

    async def close(self) -> None:
        """Close every socket and connection and wait for every task; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in self._keep_alives.values():
            handle.cancel()
        self._keep_alives.clear()
        for conn in self._connections.values():
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
        self._connections.clear()
        for _, server in self._servers:
            server.close()
        for _, protocol in self._udp:
            if protocol.transport is not None:
                protocol.transport.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, server in self._servers:
            await server.wait_closed()
        await asyncio.gather(*(protocol.closed for _, protocol in self._udp))

    # -- plumbing ----------------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _emit(self, events: Sequence[object]) -> None:
        if events:
            self._sink(list(events))

    def _arm_timer(self) -> None:
        """One loop timer for the core's earliest deadline (aioquic ``transmit()``)."""
        at = self._core.get_timer()
        if self._timer is not None:
            if at is not None and self._timer.when() == at:
                return
            self._timer.cancel()
            self._timer = None
        if at is not None:
            self._timer = self._running_loop().call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        assert self._timer is not None
        # call_at may fire up to one clock tick early; never hand the core a `now` before its
        # own deadline, or it would find nothing due and ask for the same deadline again.
        now = max(self._timer.when(), self._running_loop().time())
        self._timer = None
        self._emit(self._core.handle_timer(now))
        self.pump()

    def _deliver(self, data: bytes, source: Address) -> None:
        if self._tap is not None:
            self._tap("received", data, source)
        try:
            events = self._core.receive_message(data, source, self._running_loop().time())
        except RemoteProtocolError as exc:  # the peer's fault: log, drop, carry on
            logger.info("dropped message from %s: %s", source, exc)
            events = ()
        self._emit(events)
        self.pump()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = self._running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("SIP transport task %s failed", task.get_name(), exc_info=exc)

    async def _bind(self, transport: TransportName, host: str, port: int) -> Address:
        loop = self._running_loop()
        if transport == "udp":
            closed: asyncio.Future[None] = loop.create_future()
            _, protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self, closed), local_addr=(host, port)
            )
            assert protocol.transport is not None
            sock = protocol.transport.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            name = protocol.transport.get_extra_info("sockname")
            address = Address("udp", _ip(str(name[0])), int(name[1]))
            self._udp.append((address, protocol))
        else:
            tls = self._tls_server_context if transport == "tls" else None
            server = await asyncio.start_server(
                lambda reader, writer: self._accepted(transport, reader, writer),
                host,
                port,
                ssl=tls,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S if tls is not None else None,
            )
            name = server.sockets[0].getsockname()
            address = Address(transport, _ip(str(name[0])), int(name[1]))
            self._servers.append((address, server))
        self._listeners.append(address)
        logger.info("listening on %s", address)
        return address

    def _send(self, data: bytes, dest: Address) -> str | None:
        """Send or queue one message; a reason string when it cannot even be tried."""
        if dest.transport == "udp":
            return self._send_datagram(data, dest)
        conn = self._connections.get(dest)
        if conn is not None and conn.closing:
            self._forget(conn)  # its task ends by itself; RFC 3261 §18.2.2: open a new one
            conn = None
        if conn is None:
            if dest.transport == "tls" and self._tls_context is None:
                return "TLS is not configured (no client context)"
            conn = self._connect(dest)
        conn.write(data)
        conn.last_activity = self._running_loop().time()
        return None

    def _send_datagram(self, data: bytes, dest: Address) -> str | None:
        # Send from the first udp listener of the destination's address family.
        for address, protocol in self._udp:
            if _is_v6(address.host) == _is_v6(dest.host) and protocol.transport is not None:
                protocol.transport.sendto(data, (dest.host, dest.port))
                return None
        family = "IPv6" if _is_v6(dest.host) else "IPv4"
        return f"no udp listener for {family} destinations"

    def _datagram_received(self, data: bytes, source: Address) -> None:
        if self._closed or not data.strip():  # empty, or a CRLF keep-alive (RFC 5626 §4.4.1)
            return
        self._deliver(data, source)

    # -- connections -------------------------------------------------------------------------

    def _register(self, conn: _Connection) -> None:
        self._connections[conn.address] = conn
        self._arm_idle(conn)

    def _forget(self, conn: _Connection) -> None:
        if self._connections.get(conn.address) is conn:
            del self._connections[conn.address]
        if conn.idle_timer is not None:
            conn.idle_timer.cancel()
            conn.idle_timer = None

    def _drop(self, conn: _Connection, why: str) -> None:
        logger.info("closing connection to %s: %s", conn.address, why)
        self._forget(conn)
        if conn.task is not None:
            conn.task.cancel()

    def _connect(self, dest: Address) -> _Connection:
        if self._connections and len(self._connections) >= self._max_connections:
            idlest = min(self._connections.values(), key=lambda c: c.last_activity)
            self._drop(idlest, f"more than {self._max_connections} connections")
        conn = _Connection(dest, self._running_loop().time())
        self._register(conn)
        conn.task = self._spawn(self._run_outgoing(conn), f"sip-connect-{dest}")
        return conn

    def _accepted(
        self, transport: TransportName, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """start_server callback; a plain function so the task it starts is ours."""
        peer = writer.get_extra_info("peername")
        address = Address(transport, _ip(str(peer[0])), int(peer[1]))
        if self._closed or len(self._connections) >= self._max_connections:
            logger.warning("refusing connection from %s: too many connections", address)
            writer.close()
            return
        conn = _Connection(address, self._running_loop().time())
        conn.attach(writer)
        self._register(conn)
        conn.task = self._spawn(self._serve(conn, reader), f"sip-accepted-{address}")

    async def _run_outgoing(self, conn: _Connection) -> None:
        dest = conn.address
        try:
            options: dict[str, Any] = {}
            if dest.transport == "tls":
                assert self._tls_context is not None
                options = {
                    "ssl": self._tls_context(dest),  # may fail to read a CA file: OSError
                    "server_hostname": dest.server_name or dest.host,  # RFC 5922 §7.2
                    "ssl_shutdown_timeout": TLS_SHUTDOWN_TIMEOUT_S,
                }
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(dest.host, dest.port, **options)
        except OSError as exc:  # includes ssl.SSLError and TimeoutError
            self._forget(conn)
            self._connect_failed(dest, exc)
            return
        conn.attach(writer)
        logger.info("connected to %s", dest)
        await self._serve(conn, reader)

    def _connect_failed(self, dest: Address, exc: OSError) -> None:
        if isinstance(exc, ssl.SSLError):
            reason = describe_tls_error(exc, dest)
        elif isinstance(exc, TimeoutError):
            reason = f"no answer from {dest} within {self._connect_timeout_s:g} s"
        else:
            # asyncio's strerror is "Connect call failed (...)"; the errno says why.
            detail = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            reason = f"cannot connect to {dest}: {detail}"
        logger.info("%s", reason)
        if self._closed:
            return
        self._emit(self._core.transport_error(dest, reason, self._running_loop().time()))
        self.pump()

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        """Read until EOF, error or junk; then close (RFC 3261 §18.3 framing via StreamFramer)
        and tell the core the flow is gone (a registration on it registers again)."""
        assert conn.writer is not None
        writer = conn.writer
        why = "closed"
        try:
            why = await self._read(conn, reader)
        finally:
            self._forget(conn)
            writer.close()
            if not self._closed:
                now = self._running_loop().time()
                self._emit(self._core.flow_closed(conn.address, why, now))
                self.pump()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> str:
        """Deliver what the connection carries until it ends; why it ended."""
        loop = self._running_loop()
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except OSError as exc:
                logger.info("connection to %s failed: %s", conn.address, exc)
                if isinstance(exc, ssl.SSLError):
                    return describe_tls_error(exc, conn.address)
                return f"failed: {exc}"
            if not data:
                logger.info("connection to %s closed by the peer", conn.address)
                return "closed by the peer"
            conn.last_activity = loop.time()
            try:
                conn.framer.receive_data(data)
            except ParseError as exc:
                logger.info("closing connection to %s: %s", conn.address, exc)
                return f"unreadable: {exc}"
            while True:
                try:
                    event = conn.framer.next_event()
                except ParseError as exc:
                    logger.info("closing connection to %s: %s", conn.address, exc)
                    return f"unreadable: {exc}"
                if event is None:
                    break
                if isinstance(event, bytes):
                    self._deliver(event, conn.address)
                elif isinstance(event, KeepAlivePing):
                    conn.write(PONG)
                elif isinstance(event, KeepAlivePong):
                    logger.debug("keep-alive pong from %s", conn.address)

    def _arm_idle(self, conn: _Connection) -> None:
        conn.idle_timer = self._running_loop().call_at(
            conn.last_activity + self._idle_timeout_s, self._check_idle, conn
        )

    def _check_idle(self, conn: _Connection) -> None:
        conn.idle_timer = None
        if self._connections.get(conn.address) is not conn:
            return
        if self._running_loop().time() - conn.last_activity >= self._idle_timeout_s:
            self._drop(conn, f"idle for {self._idle_timeout_s:g} s")
        else:
            self._arm_idle(conn)

    def _on_keep_alive(self, dest: Address, interval_s: float) -> None:
        loop = self._running_loop()
        self._keep_alives[dest] = loop.call_at(
            loop.time() + interval_s, self._on_keep_alive, dest, interval_s
        )
        if dest.transport == "udp":
            reason = self._send_datagram(PING, dest)
            if reason is not None:
                logger.info("keep-alive to %s not sent: %s", dest, reason)
            return
        conn = self._connections.get(dest)
        if conn is None or conn.closing:
            logger.debug("keep-alive to %s skipped: no connection", dest)
            return
        conn.write(PING)
        conn.last_activity = loop.time()
