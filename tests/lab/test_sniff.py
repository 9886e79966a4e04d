"""The lab's sniffer on this machine's loopback: datagrams seen leaving and arriving, with the
kernel's time, and RTP told apart from RTCP, STUN and DTLS (RFC 7983)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from softphone.lab.sniff import PacketSniffer, _parse, is_rtp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a raw socket needs root")


def test_is_rtp_by_the_first_bytes() -> None:
    assert is_rtp(bytes([0x80, 0])) and is_rtp(bytes([0x80, 0x80 | 111]))  # marker bit set
    assert not is_rtp(bytes([0x81, 200]))  # RTCP sender report
    assert not is_rtp(bytes([0x00, 0x01]))  # STUN binding request
    assert not is_rtp(bytes([22, 0xFE]))  # DTLS handshake
    assert not is_rtp(b"SIP/2.0 200 OK") and not is_rtp(b"\x80")


def test_parse_takes_udp_over_ipv4_only() -> None:
    assert _parse(b"\x00" * 12 + b"\x86\xdd" + b"\x00" * 60) is None  # IPv6
    assert _parse(b"short") is None


def test_the_sniffer_sees_a_datagram_leave_and_arrive_on_loopback() -> None:
    sniffer = PacketSniffer(name="test-sniffer").start()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        sender = a.getsockname()
        before = time.time()
        a.sendto(b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\r\n", b.getsockname())
        a.sendto(bytes([0x80, 111]) + bytes(10), b.getsockname())
        b.recvfrom(100)
        b.recvfrom(100)
        deadline = time.monotonic() + 5.0
        mine = []
        while time.monotonic() < deadline and len(mine) < 4:
            mine = sniffer.datagrams(lambda d: d.dst == b.getsockname())
            time.sleep(0.01)
    finally:
        sniffer.stop()
        a.close()
        b.close()
    assert [(d.outgoing, is_rtp(d.head)) for d in mine] == [
        (True, False),
        (False, False),
        (True, True),
        (False, True),
    ]
    assert mine[0].head.startswith(b"INVITE sip:bob@") and mine[0].src == sender
    assert all(before - 1.0 <= d.at <= time.time() for d in mine)
