"""Phones on the IPv6 loopback: a call between two of them negotiates ``c=IN IP6`` and RTP
flows over IPv6 sockets; a phone whose sockets are IPv4 only refuses an IPv6-only offer with
488 and Warning 301 (RFC 3261 §20.43) instead of answering with an address the caller cannot
reach."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest
from phone_support import expect, port_of
from speech_quality import SPEECH

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, FileAudio, NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


async def _phone(
    host: str, seed: str, *, auto_answer: bool = False, audio: AudioProvider | None = None
) -> Phone:
    phone = Phone(
        Config(),
        bind_host=host,
        sip_port=0,
        rng=random.Random(seed),
        dns=StubBackend(),
        auto_answer=auto_answer,
        audio=audio or NullAudio(),
    )
    await phone.start()
    return phone


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    yield made
    for phone in made:
        await phone.stop()


async def test_call_on_ipv6_loopback_carries_ip6_media(phones: list[Phone]) -> None:
    callee = await _phone("::1", "v6-callee", auto_answer=True, audio=FileAudio(SPEECH, None))
    caller = await _phone("::1", "v6-caller")
    phones += [callee, caller]
    call_id = await caller.dial(f"sip:softphone@[::1]:{port_of(callee)}")
    await expect(caller, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    info = caller.call(call_id)
    assert info.media is not None and info.media.remote_address == "::1"
    assert info.local_sdp is not None and "c=IN IP6 ::1" in str(info.local_sdp)
    assert info.rtp is not None
    # The callee talks: its RTP reaches our IPv6 socket (the endpoint counts what it received).
    stats = await expect(
        caller,
        lambda e: isinstance(e, pe.CallStats) and int(e.stats["packets_received"]) >= 20,
        timeout_s=15,
    )
    assert isinstance(stats, pe.CallStats) and info.rtp.packets_received >= 20
    await caller.hangup(call_id)
    await expect(caller, lambda e: isinstance(e, pe.CallEnded))


async def test_ipv4_only_phone_refuses_an_ipv6_offer_with_warning_301(
    phones: list[Phone],
) -> None:
    callee = await _phone("127.0.0.1", "v4-callee", auto_answer=True)
    phones.append(callee)
    port = port_of(callee)
    sdp = (
        b"v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0\r\n"
    )
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Catch(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Catch, local_addr=("127.0.0.1", 0))
    try:
        me = transport.get_extra_info("sockname")[1]
        invite = (
            f"INVITE sip:softphone@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-v6offer;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\n"
            f"To: <sip:softphone@127.0.0.1:{port}>\r\nCall-ID: v6offer\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:bob@127.0.0.1:{me}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n"
        ).encode() + sdp
        transport.sendto(invite, ("127.0.0.1", port))
        async with asyncio.timeout(5):
            while not (reply := await replies.get()).startswith(b"SIP/2.0 4"):
                assert reply.startswith(b"SIP/2.0 1"), reply[:40]
        assert reply.startswith(b"SIP/2.0 488 ")
        assert b"\r\nWarning: 301 " in reply and b"IP6" in reply
    finally:
        transport.close()
    notice = await expect(callee, lambda e: isinstance(e, pe.Notice))
    assert isinstance(notice, pe.Notice) and "IP6" in notice.text
