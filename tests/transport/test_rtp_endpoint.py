"""RTP endpoints: the task that attaches their sockets to the loop never outlives them; what
arrives is handed over with the kernel's receive time."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import sys

import pytest

from softphone.transport.rtp import RtpEndpoint, arrival_time, open_rtp_endpoint


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


async def test_a_polled_rtp_socket_waits_for_poll_and_goes_back_to_the_loop_when_let_go() -> None:
    """The audio pump reads a call's RTP socket (read_by_poll): the loop leaves it alone
    meanwhile, poll() hands over what came with the kernel's times, and once let go the loop
    reads it again. The RTCP socket stays with the loop throughout."""
    loop = asyncio.get_running_loop()
    endpoint = await open_rtp_endpoint("127.0.0.1", 40000, 40998, random.Random("polled"))
    got: list[tuple[bytes, bool, float]] = []
    arrived = asyncio.Event()

    def sink(data: bytes, addr: tuple[str, int], via_rtcp: bool, arrival: float) -> None:
        got.append((data, via_rtcp, arrival))
        arrived.set()

    endpoint.timed_sink = sink
    if sys.platform.startswith("linux"):
        # The kernel's stamps, not the time of the poll: a packet read by the pump a step after
        # it came would otherwise look a step late to the jitter buffer.
        assert endpoint.kernel_stamps
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        endpoint.read_by_poll(True)
        sent_at = loop.time()
        sender.sendto(b"rtp-1", ("127.0.0.1", endpoint.port))
        sender.sendto(b"rtcp", ("127.0.0.1", endpoint.rtcp_port))
        async with asyncio.timeout(1):
            await arrived.wait()  # the RTCP, read by the loop
        for _ in range(5):  # turns of the loop, each of which would have read a watched socket
            await asyncio.sleep(0)
        assert [(data, via_rtcp) for data, via_rtcp, _ in got] == [(b"rtcp", True)]

        endpoint.poll()
        assert [data for data, _, _ in got] == [b"rtcp", b"rtp-1"]
        assert sent_at - 0.005 <= got[1][2] <= loop.time()  # the kernel's time, not poll's

        endpoint.read_by_poll(False)
        arrived.clear()
        sender.sendto(b"rtp-2", ("127.0.0.1", endpoint.port))
        async with asyncio.timeout(1):
            await arrived.wait()
        assert [data for data, _, _ in got] == [b"rtcp", b"rtp-1", b"rtp-2"]
        endpoint.poll()  # not polled any more: nothing to do, nothing read twice
        assert len(got) == 3
    finally:
        sender.close()
        endpoint.close()


async def test_an_endpoint_polled_before_its_sockets_attach_leaves_rtp_to_poll() -> None:
    loop = asyncio.get_running_loop()
    endpoint = RtpEndpoint.open_sync(loop, "127.0.0.1", 40000, 40998, random.Random("early-poll"))
    endpoint.read_by_poll(True)  # before the attaching task has run
    await endpoint.attached()
    got: list[bytes] = []
    endpoint.timed_sink = lambda data, addr, via_rtcp, arrival: got.append(data)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(b"rtp", ("127.0.0.1", endpoint.port))
        for _ in range(5):
            await asyncio.sleep(0)
        assert got == []
        async with asyncio.timeout(1):
            while not got:  # the datagram crosses loopback at once; bounded by the timeout
                endpoint.poll()
                await asyncio.sleep(0)
        assert got == [b"rtp"]
    finally:
        sender.close()
        endpoint.close()


def test_letting_go_of_a_polled_socket_after_the_loop_closed_does_nothing() -> None:
    """A phone that stops after its loop has closed hands the socket back to no loop: no
    RuntimeError from a closed loop."""
    loop = asyncio.new_event_loop()
    try:
        endpoint = loop.run_until_complete(
            open_rtp_endpoint("127.0.0.1", 40000, 40998, random.Random("closed-loop"))
        )
        endpoint.read_by_poll(True)
    finally:
        loop.close()
    endpoint.read_by_poll(False)
    endpoint.close()
    assert not endpoint.ready


def _stamp(seconds: float) -> list[tuple[int, int, bytes]]:
    whole = int(seconds)
    return [(socket.SOL_SOCKET, 35, struct.pack("@ll", whole, round((seconds - whole) * 1e9)))]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_TIMESTAMPNS is Linux's")
def test_the_kernels_wall_clock_stamp_is_moved_onto_the_loop_clock_and_never_ahead_of_it() -> None:
    now, wall = 500.0, 1_700_000_000.0
    assert arrival_time(_stamp(wall - 0.030), now, wall) == pytest.approx(now - 0.030, abs=1e-6)
    assert arrival_time(_stamp(wall + 0.010), now, wall) == now  # a clock step: not the future
    assert arrival_time([], now, wall) == now  # no stamp: read now
    assert arrival_time([(socket.SOL_SOCKET, 35, b"\x00" * 4)], now, wall) == now  # truncated
