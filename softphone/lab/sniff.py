"""A packet sniffer for the lab: when each UDP datagram left or reached a host, from the kernel.

The set-up time benchmark asks when a call's INVITE left the caller and when the first RTP
reached each end, whatever the peers are and whichever path ICE chose. Only the wire knows all
three for baresip as well as for us, so a raw ``AF_PACKET`` socket (packet(7)) reads every
frame of one network namespace on a thread of its own, and keeps, for each UDP/IPv4 datagram:
the kernel's receive time (``SO_TIMESTAMPNS``, wall clock, the same clock in every namespace),
the direction (``PACKET_OUTGOING`` for what this host sent, ``PACKET_HOST`` for what reached it),
the addresses and ports, and the first bytes of the payload — all of it for SIP, whose SDP says
which ports are whose.

A namespace is entered by the reading thread alone (setns(2) with ``CLONE_NEWNET`` changes
only the calling thread), so the benchmark's own sockets stay where they are. Needs root
(CAP_NET_RAW). The reading loop wakes at least every 0.2 s and ends on :meth:`stop`.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from softphone.lab.process import LabError
from softphone.transport.rtp import SO_TIMESTAMPNS, STAMP_SPACE, kernel_time

__all__ = ["Datagram", "PacketSniffer", "is_rtp", "sip_payload"]

ETH_P_ALL: Final = 0x0003
ETH_P_IP: Final = 0x0800
PACKET_HOST: Final = 0
PACKET_OUTGOING: Final = 4
CLONE_NEWNET: Final = 0x40000000
SIP_KEEP: Final = 4096  # bytes of a SIP datagram kept (its SDP)
OTHER_KEEP: Final = 16  # bytes of anything else (enough to tell RTP, STUN, DTLS apart)
MAX_DATAGRAMS: Final = 200_000  # a bound on what one run keeps


@dataclass(frozen=True, slots=True)
class Datagram:
    at: float  # kernel time, seconds since the epoch
    outgoing: bool  # sent by this namespace (else received by it)
    src: tuple[str, int]
    dst: tuple[str, int]
    head: bytes  # the payload's first bytes (all of a SIP message, up to SIP_KEEP)


def is_rtp(head: bytes) -> bool:
    """RTP, plain or SRTP (RFC 7983 §7: first byte 128-191), and not RTCP (RFC 5761 §4:
    payload types 64-95 with the marker bit are RTCP's 192-223)."""
    return len(head) >= 2 and 128 <= head[0] <= 191 and not 64 <= (head[1] & 0x7F) <= 95


def sip_payload(head: bytes) -> bool:
    return head.startswith((b"INVITE ", b"SIP/2.0 ", b"ACK ", b"BYE "))


def _enter(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{netns}", "rb") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise LabError(f"cannot enter network namespace {netns}: {os.strerror(error)}")


def _parse(frame: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    """(src, dst, payload) of a UDP/IPv4 Ethernet frame; None for anything else."""
    if len(frame) < 14 + 20 + 8 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = 14
    header = (frame[ip] & 0x0F) * 4
    if frame[ip] >> 4 != 4 or frame[ip + 9] != socket.IPPROTO_UDP or header < 20:
        return None
    if struct.unpack_from("!H", frame, ip + 6)[0] & 0x1FFF:  # a later fragment: no UDP header
        return None
    udp = ip + header
    if len(frame) < udp + 8:
        return None
    sport, dport = struct.unpack_from("!HH", frame, udp)
    src = socket.inet_ntoa(frame[ip + 12 : ip + 16])
    dst = socket.inet_ntoa(frame[ip + 16 : ip + 20])
    return (src, sport), (dst, dport), frame[udp + 8 :]


class PacketSniffer:
    """Every UDP/IPv4 datagram of one namespace (None: ours), read until :meth:`stop`."""

    def __init__(self, netns: str | None = None, *, name: str = "sniffer") -> None:
        self.netns = netns
        self.name = name
        self._datagrams: list[Datagram] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, timeout_s: float = 5.0) -> PacketSniffer:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise LabError(f"{self.name}: the sniffer did not start in {timeout_s:g} s")
        if self._error is not None:
            raise LabError(f"{self.name}: {self._error}") from self._error
        return self

    def _run(self) -> None:
        try:
            if self.netns is not None:
                _enter(self.netns)
            if SO_TIMESTAMPNS is None:
                raise LabError("the sniffer needs the kernel's timestamps (Linux)")
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.settimeout(0.2)
        except (OSError, LabError) as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        ancillary = STAMP_SPACE
        with sock:
            while not self._stopping.is_set():
                try:
                    frame, extra, _flags, addr = sock.recvmsg(65535, ancillary)
                except TimeoutError:
                    continue
                except OSError as exc:
                    self._error = exc
                    return
                self._keep(frame, extra, addr)

    def _keep(
        self, frame: bytes, extra: list[tuple[int, int, bytes]], addr: tuple[Any, ...]
    ) -> None:
        pkttype = addr[2]
        if pkttype not in (PACKET_HOST, PACKET_OUTGOING):
            return  # broadcast, multicast, another host's
        parsed = _parse(frame)
        if parsed is None:
            return
        src, dst, payload = parsed
        stamp = kernel_time(extra)
        at = 0.0 if stamp is None else stamp
        keep = SIP_KEEP if sip_payload(payload) else OTHER_KEEP
        datagram = Datagram(at, pkttype == PACKET_OUTGOING, src, dst, bytes(payload[:keep]))
        with self._lock:
            if len(self._datagrams) < MAX_DATAGRAMS:
                self._datagrams.append(datagram)

    def datagrams(self, match: Callable[[Datagram], bool] | None = None) -> list[Datagram]:
        """What was read so far (in the order read), those that ``match`` when given."""
        with self._lock:
            kept = list(self._datagrams)
        return kept if match is None else [d for d in kept if match(d)]

    def clear(self) -> None:
        with self._lock:
            self._datagrams.clear()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self._error is not None and not isinstance(self._error, LabError):
            raise LabError(f"{self.name}: reading failed: {self._error}")
