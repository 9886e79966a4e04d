"""SipTransport over real loopback sockets (port 0), driven by a scripted fake core.

Nothing sleeps: every wait is on a condition, a queue or a stream under ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from softphone.sip.address import Address
from softphone.sip.errors import RemoteProtocolError
from softphone.transport.sip import SipTransport, TransportError

TIMEOUT_S = 2.0

Reply = Callable[[bytes, Address], list[tuple[bytes, Address]]]


class FakeCore:
    """Records its inputs; sends what the test scripts (``outbox``, ``reply``, ``deadlines``)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, Address]] = []
        self.errors: list[tuple[Address, str]] = []
        self.closed_flows: list[tuple[Address, str]] = []
        self.timer_calls: list[float] = []
        self.outbox: list[tuple[bytes, Address]] = []
        self.deadlines: list[float] = []
        self.reply: Reply | None = None
        self.reject: set[bytes] = set()
        self.changed = asyncio.Event()

    def receive_message(self, data: bytes, source: Address, now: float) -> list[object]:
        self.changed.set()
        if data in self.reject:
            raise RemoteProtocolError("scripted rejection")
        self.received.append((data, source))
        if self.reply is not None:
            self.outbox += self.reply(data, source)
        return [("received", data)]

    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timer(self, now: float) -> list[object]:
        self.changed.set()
        self.timer_calls.append(now)
        if self.deadlines and self.deadlines[0] <= now:
            self.deadlines.pop(0)
        return [("timer", now)]

    def transport_error(self, dest: Address, reason: str, now: float) -> list[object]:
        self.changed.set()
        self.errors.append((dest, reason))
        return [("error", reason)]

    def flow_closed(self, dest: Address, reason: str, now: float) -> list[object]:
        self.closed_flows.append((dest, reason))
        self.changed.set()
        return []

    async def until(self, cond: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT_S):
            while not cond():
                self.changed.clear()
                await self.changed.wait()


def sip(method: str = "OPTIONS", body: bytes = b"", call_id: str = "c1") -> bytes:
    head = (
        f"{method} sip:bob@example.test SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def reply_ok(data: bytes, source: Address) -> list[tuple[bytes, Address]]:
    return [(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", source)]


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait((data, addr))

    async def next(self) -> tuple[bytes, tuple[str, int]]:
        async with asyncio.timeout(TIMEOUT_S):
            return await self.inbox.get()


async def udp_peer(host: str) -> tuple[asyncio.DatagramTransport, Peer, int]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=(host, 0))
    return transport, peer, transport.get_extra_info("sockname")[1]


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def sunk() -> list[object]:
    return []


@pytest.fixture
async def sip_transport(core: FakeCore, sunk: list[object]) -> AsyncIterator[SipTransport]:
    transport = SipTransport(core, sunk.extend)
    yield transport
    await transport.close()


# -- UDP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_round_trip_both_ways(
    host: str, core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this host")
    local = await sip_transport.listen("udp", host, 0)
    assert local.transport == "udp" and local.host == host and local.port != 0
    assert sip_transport.listeners() == [local]
    peer_transport, peer, peer_port = await udp_peer(host)
    try:
        core.outbox.append((b"INVITE", Address("udp", host, peer_port)))
        sip_transport.pump()
        data, addr = await peer.next()
        assert data == b"INVITE" and addr[1] == local.port

        core.reply = reply_ok
        peer_transport.sendto(b"SIP/2.0 180 Ringing", (host, local.port))
        await core.until(lambda: len(core.received) == 1)
        assert core.received == [(b"SIP/2.0 180 Ringing", Address("udp", host, peer_port))]
        assert sunk == [("received", b"SIP/2.0 180 Ringing")]
        data, _ = await peer.next()  # the core's reply was flushed after the receive
        assert data.startswith(b"SIP/2.0 200 OK")
    finally:
        peer_transport.close()


async def test_udp_ignores_empty_and_crlf_datagrams(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    local = await sip_transport.listen("udp", "127.0.0.1", 0)
    peer_transport, _, _ = await udp_peer("127.0.0.1")
    try:
        for data in (b"", b"\r\n\r\n", b"\r\n", b"MESSAGE"):
            peer_transport.sendto(data, ("127.0.0.1", local.port))
        await core.until(lambda: len(core.received) >= 1)
        assert [data for data, _ in core.received] == [b"MESSAGE"]
    finally:
        peer_transport.close()


def _rmem_max() -> int:
    try:
        return int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return 0


async def test_udp_receive_buffer_holds_a_burst_while_the_loop_is_busy(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    if _rmem_max() < 1024 * 1024:
        pytest.skip("net.core.rmem_max below 1 MiB: the kernel caps the buffer we ask for")
    local = await sip_transport.listen("udp", "127.0.0.1", 0)
    peer_transport, _, _ = await udp_peer("127.0.0.1")
    burst = [sip(call_id=f"c{i}", body=b"x" * 500) for i in range(1000)]
    try:
        for data in burst:  # all sent before the loop gets to read one: they queue in the kernel
            peer_transport.sendto(data, ("127.0.0.1", local.port))
        await core.until(lambda: len(core.received) == len(burst))
        assert [data for data, _ in core.received] == burst
    finally:
        peer_transport.close()


async def test_remote_protocol_error_is_logged_and_dropped(
    core: FakeCore,
    sunk: list[object],
    sip_transport: SipTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="softphone.transport.sip")
    local = await sip_transport.listen("udp", "127.0.0.1", 0)
    peer_transport, _, peer_port = await udp_peer("127.0.0.1")
    core.reject.add(b"JUNK")
    try:
        peer_transport.sendto(b"JUNK", ("127.0.0.1", local.port))
        peer_transport.sendto(b"GOOD", ("127.0.0.1", local.port))
        await core.until(lambda: len(core.received) == 1)
        assert core.received[0][0] == b"GOOD"
        assert sunk == [("received", b"GOOD")]
        dropped = [r for r in caplog.records if "dropped message" in r.getMessage()]
        assert len(dropped) == 1 and dropped[0].levelno == logging.INFO
        assert f"udp:127.0.0.1:{peer_port}" in dropped[0].getMessage()
    finally:
        peer_transport.close()


async def test_udp_send_without_listener_of_that_family_is_a_transport_error(
    core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    await sip_transport.listen("udp", "127.0.0.1", 0)
    dest = Address("udp", "::1", 5060)
    core.outbox.append((b"INVITE", dest))
    sip_transport.pump()
    assert core.errors == [(dest, "no udp listener for IPv6 destinations")]
    assert sunk == [("error", "no udp listener for IPv6 destinations")]


# -- timers ------------------------------------------------------------------------------------


async def test_timer_fires_once_per_deadline_and_rearms(
    core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    now = asyncio.get_running_loop().time()
    core.deadlines = [now + 0.01, now + 0.02]
    sip_transport.pump()
    await core.until(lambda: len(core.timer_calls) == 2)
    first, second = core.timer_calls
    assert first >= now + 0.01 and second >= now + 0.02
    assert core.deadlines == []
    assert sunk == [("timer", first), ("timer", second)]
    core.deadlines = [asyncio.get_running_loop().time() + 0.01]
    sip_transport.pump()
    sip_transport.pump()  # re-pumping with the same deadline keeps one timer, not two
    await core.until(lambda: len(core.timer_calls) == 3)
    assert len(core.timer_calls) == 3


# -- listen ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["udp", "tcp"])
async def test_port_in_use(
    name: str, core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    taken = await sip_transport.listen(name, "127.0.0.1", 0)  # type: ignore[arg-type]
    other = SipTransport(FakeCore(), sunk.extend)
    try:
        with pytest.raises(TransportError) as raised:
            await other.listen(name, "127.0.0.1", taken.port)  # type: ignore[arg-type]
        assert str(raised.value) == f"port {taken.port}/{name} on 127.0.0.1 is in use"
        moved = await other.listen(name, "127.0.0.1", taken.port, fallback=True)  # type: ignore[arg-type]
        assert moved.port not in (0, taken.port)
        assert other.listeners() == [moved]
    finally:
        await other.close()


async def test_unlisten_frees_the_port_and_forgets_the_listener(
    sip_transport: SipTransport,
) -> None:
    udp = await sip_transport.listen("udp", "127.0.0.1", 0)
    tcp = await sip_transport.listen("tcp", "127.0.0.1", udp.port)
    await sip_transport.unlisten(udp)
    assert sip_transport.listeners() == [tcp]
    await sip_transport.unlisten(tcp)
    assert sip_transport.listeners() == []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # both ports can be bound again
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", udp.port))


async def test_tls_listener_needs_a_server_context(sip_transport: SipTransport) -> None:
    with pytest.raises(TransportError, match="no server certificate"):
        await sip_transport.listen("tls", "127.0.0.1", 0)


# -- TCP ---------------------------------------------------------------------------------------


class StreamPeer:
    """A plain asyncio TCP server standing in for the far end."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1") -> None:
        self.server = await asyncio.start_server(self._on_client, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.put_nowait((reader, writer))

    async def next(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(TIMEOUT_S):
            return await self.accepted.get()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(TIMEOUT_S):
        return await reader.readexactly(n)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(TIMEOUT_S):
        return await reader.read()


async def open_client(
    port: int, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(TIMEOUT_S):
        return await asyncio.open_connection(host, port)


async def test_tcp_connects_on_send_and_receives_on_that_connection(
    core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    peer = StreamPeer()
    await peer.start()
    dest = Address("tcp", "127.0.0.1", peer.port)
    try:
        first, second = sip(call_id="a"), sip(call_id="b")
        core.outbox += [(first, dest), (second, dest)]  # queued until connected
        sip_transport.pump()
        reader, writer = await peer.next()
        assert await read_exactly(reader, len(first) + len(second)) == first + second
        answer = sip("NOTIFY")
        writer.write(answer)
        await core.until(lambda: len(core.received) == 1)
        assert core.received == [(answer, dest)]  # source = the connection's key
        core.outbox.append((sip(call_id="c"), dest))
        sip_transport.pump()
        assert await read_exactly(reader, len(sip(call_id="c"))) == sip(call_id="c")
        assert peer.accepted.empty()  # no second connection
        writer.close()
    finally:
        await peer.close()


async def test_a_connection_the_server_closes_is_reported_as_a_closed_flow(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    peer = StreamPeer()
    await peer.start()
    dest = Address("tcp", "127.0.0.1", peer.port)
    try:
        core.outbox.append((sip(), dest))
        sip_transport.pump()
        reader, writer = await peer.next()
        await read_exactly(reader, len(sip()))
        assert core.closed_flows == []
        writer.close()  # the server (or a router in the way) ends the flow
        await core.until(lambda: bool(core.closed_flows))
        assert core.closed_flows == [(dest, "closed by the peer")]
    finally:
        await peer.close()
    await sip_transport.close()
    assert core.closed_flows == [(dest, "closed by the peer")]  # our own close says nothing


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_tcp_reply_reuses_accepted_connection(
    host: str, core: FakeCore, sip_transport: SipTransport
) -> None:
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this host")
    local = await sip_transport.listen("tcp", host, 0)
    core.reply = reply_ok
    reader, writer = await open_client(local.port, host)
    try:
        writer.write(sip("REGISTER"))
        ok = reply_ok(b"", local)[0][0]
        assert await read_exactly(reader, len(ok)) == ok
        client_port = writer.get_extra_info("sockname")[1]
        assert core.received == [(sip("REGISTER"), Address("tcp", host, client_port))]
    finally:
        writer.close()


async def test_tcp_framing_across_chunk_boundaries(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    local = await sip_transport.listen("tcp", "127.0.0.1", 0)
    one, two = sip("MESSAGE", b"hello"), sip("INFO", b"x" * 300, call_id="c2")
    stream = one + two
    _, writer = await open_client(local.port)
    try:
        cuts = [0, 7, len(one) - 3, len(one) + 40, len(stream)]
        for start, end in itertools.pairwise(cuts):
            writer.write(stream[start:end])
            await writer.drain()
        await core.until(lambda: len(core.received) == 2)
        assert [data for data, _ in core.received] == [one, two]
    finally:
        writer.close()


async def test_tcp_keep_alive_ping_is_answered_with_crlf(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    local = await sip_transport.listen("tcp", "127.0.0.1", 0)
    reader, writer = await open_client(local.port)
    try:
        writer.write(b"\r\n\r\n")
        assert await read_exactly(reader, 2) == b"\r\n"
        assert core.received == []
    finally:
        writer.close()


async def test_junk_closes_only_that_connection(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    local = await sip_transport.listen("tcp", "127.0.0.1", 0)
    bad_reader, bad_writer = await open_client(local.port)
    _, good_writer = await open_client(local.port)
    try:
        bad_writer.write(b"\x00\x01\x02 this is not SIP\r\nContent-Length: zz\r\n\r\n")
        assert await read_eof(bad_reader) == b""
        good_writer.write(sip())
        await core.until(lambda: len(core.received) == 1)
        assert core.received[0][0] == sip()
    finally:
        bad_writer.close()
        good_writer.close()


async def test_connect_failure_reports_transport_error(
    core: FakeCore, sunk: list[object], sip_transport: SipTransport
) -> None:
    with socket.socket() as unused:  # bound, not listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        dest = Address("tcp", "127.0.0.1", unused.getsockname()[1])
        core.outbox.append((sip(), dest))
        sip_transport.pump()
        await core.until(lambda: len(core.errors) == 1)
    assert core.errors[0][0] == dest
    assert "refused" in core.errors[0][1] and str(dest) in core.errors[0][1]
    assert sunk == [("error", core.errors[0][1])]


async def test_tls_send_without_client_context_is_a_transport_error(
    core: FakeCore, sip_transport: SipTransport
) -> None:
    dest = Address("tls", "127.0.0.1", 5061)
    core.outbox.append((sip(), dest))
    sip_transport.pump()
    assert core.errors == [(dest, "TLS is not configured (no client context)")]


async def test_idle_connection_is_closed(core: FakeCore, sunk: list[object]) -> None:
    transport = SipTransport(core, sunk.extend, idle_timeout_s=0.05)
    try:
        local = await transport.listen("tcp", "127.0.0.1", 0)
        reader, writer = await open_client(local.port)
        writer.write(sip())
        await core.until(lambda: len(core.received) == 1)
        assert await read_eof(reader) == b""  # closed by the idle timer
        writer.close()
    finally:
        await transport.close()


async def test_connections_are_bounded(core: FakeCore, sunk: list[object]) -> None:
    transport = SipTransport(core, sunk.extend, max_connections=1)
    try:
        local = await transport.listen("tcp", "127.0.0.1", 0)
        _, first_writer = await open_client(local.port)
        first_writer.write(sip())
        await core.until(lambda: len(core.received) == 1)
        second_reader, second_writer = await open_client(local.port)
        assert await read_eof(second_reader) == b""  # refused: the table is full
        first_writer.write(sip(call_id="again"))
        await core.until(lambda: len(core.received) == 2)  # the first one still works
        first_writer.close()
        second_writer.close()
    finally:
        await transport.close()


# -- keep-alive --------------------------------------------------------------------------------


async def test_keep_alive_over_udp_and_tcp(core: FakeCore, sip_transport: SipTransport) -> None:
    await sip_transport.listen("udp", "127.0.0.1", 0)
    peer_transport, peer, peer_port = await udp_peer("127.0.0.1")
    stream_peer = StreamPeer()
    await stream_peer.start()
    tcp_dest = Address("tcp", "127.0.0.1", stream_peer.port)
    try:
        udp_dest = Address("udp", "127.0.0.1", peer_port)
        sip_transport.keep_alive(udp_dest, 0.01)
        assert (await peer.next())[0] == b"\r\n\r\n"
        assert (await peer.next())[0] == b"\r\n\r\n"
        sip_transport.cancel_keep_alive(udp_dest)

        core.outbox.append((sip(), tcp_dest))
        sip_transport.pump()
        reader, writer = await stream_peer.next()
        assert await read_exactly(reader, len(sip())) == sip()
        sip_transport.keep_alive(tcp_dest, 0.01)
        assert await read_exactly(reader, 8) == b"\r\n\r\n" * 2
        writer.write(b"\r\n")  # the pong is swallowed, not delivered as a message
        writer.write(sip())
        await core.until(lambda: len(core.received) == 1)
        assert core.received == [(sip(), tcp_dest)]
        writer.close()
    finally:
        peer_transport.close()
        await stream_peer.close()


# -- close -------------------------------------------------------------------------------------


async def test_close_leaves_no_tasks_and_is_idempotent(core: FakeCore, sunk: list[object]) -> None:
    transport = SipTransport(core, sunk.extend)
    udp = await transport.listen("udp", "127.0.0.1", 0)
    tcp = await transport.listen("tcp", "127.0.0.1", 0)
    peer = StreamPeer()
    await peer.start()
    try:
        # An accepted connection, an outgoing connection, a keep-alive and a core timer.
        reader, writer = await open_client(tcp.port)
        writer.write(sip())
        await core.until(lambda: len(core.received) == 1)
        outgoing = Address("tcp", "127.0.0.1", peer.port)
        core.outbox.append((sip(), outgoing))
        core.deadlines = [asyncio.get_running_loop().time() + 60]
        transport.pump()
        peer_reader, peer_writer = await peer.next()
        transport.keep_alive(Address("udp", "127.0.0.1", 9), 60)

        await transport.close()
        await transport.close()

        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert await read_eof(reader) == b""
        assert await read_eof(peer_reader) == b""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", udp.port))  # the udp port is free again
        core.outbox.append((sip(), outgoing))
        transport.pump()  # a closed transport sends nothing
        assert peer.accepted.empty()
        writer.close()
        peer_writer.close()
    finally:
        await peer.close()
