"""coturn (Debian ``coturn``) as the lab's STUN and TURN server, and two probes that ask it.

:class:`Coturn` runs ``turnserver`` on one address (in the wan namespace of
:mod:`softphone.lab.netns`, ``TURN_HOST`` 203.0.113.30, or on loopback), UDP and TCP on port
3478, no TLS or DTLS, no CLI. Long-term credentials (RFC 8489 §9.2) in realm ``lab.test``: by
default the lab's SIP users and passwords (alice/alicepw, bob/bobpw, ...). Relayed addresses are
the same address, ports ``min_port``-``max_port``. Everything it writes stays in its workdir:
the SQLite user database, the pid file, and its log (stdout, kept by :class:`LabProcess` in
``coturn.log``). It is ready when it answers a STUN Binding request over UDP and accepts TCP.

Probes (blocking, made in the calling thread's namespace, so ``with entered(lab.home):``
asks from behind the router):

- :func:`stun_binding`: our sans-IO client (:mod:`softphone.stun`) over a real socket; the
  address the server saw us at.
- :func:`turn_allocate`: one TURN Allocate (RFC 8656 §7.1) with long-term credentials: the
  first request is challenged (401 with REALM and NONCE), the second carries USERNAME, REALM,
  NONCE and MESSAGE-INTEGRITY; the answer is the relayed address, or the error code.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import random
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from softphone.lab.kamailio import USERS
from softphone.lab.netns import entered, netns_argv
from softphone.lab.pki import DOMAIN
from softphone.lab.process import HOST, LabError, LabProcess, OneProcessPeer, find_binary
from softphone.stun import (
    XOR_MAPPED_ADDRESS,
    BindingFailed,
    BindingSucceeded,
    BindingTransaction,
    StunMessage,
    StunParseError,
)

__all__ = [
    "TURN_PORT",
    "Coturn",
    "TurnAnswer",
    "stun_binding",
    "turn_allocate",
]

TURN_PORT: Final = 3478
# RFC 8656 §18 / RFC 8489 §18.3: methods and attributes the Allocate exchange uses.
ALLOCATE_REQUEST: Final = 0x0003
ALLOCATE_SUCCESS: Final = 0x0103
ALLOCATE_ERROR: Final = 0x0113
USERNAME: Final = 0x0006
MESSAGE_INTEGRITY: Final = 0x0008
LIFETIME: Final = 0x000D
REALM: Final = 0x0014
NONCE: Final = 0x0015
XOR_RELAYED_ADDRESS: Final = 0x0016
REQUESTED_TRANSPORT: Final = 0x0019
UDP_PROTOCOL: Final = 17

Address = tuple[str, int]


# --------------------------------------------------------------------------- probes


def stun_binding(
    server: Address,
    timeout_s: float = 3.0,
    *,
    sock: socket.socket | None = None,
    bind_host: str = "0.0.0.0",
) -> Address:
    """The address ``server`` saw our UDP socket at: ``sock``, or a fresh one bound to
    ``bind_host`` (softphone.stun's client driven by the real clock); LabError when it failed or
    did not answer within ``timeout_s``."""
    with contextlib.ExitStack() as stack:
        if sock is None:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind((bind_host, 0))
        return _binding(sock, server, timeout_s)


def _binding(sock: socket.socket, server: Address, timeout_s: float) -> Address:
    now = time.monotonic()
    # Retransmit every 0.25 s while ``timeout_s`` lasts (RFC 8489's RTO is for the internet).
    transaction = BindingTransaction(
        server,
        rng=random.Random(os.urandom(8)),
        now=now,
        rto_s=0.25,
        max_sends=max(1, int(timeout_s / 0.25)),
        last_wait_rtos=1,
    )
    deadline = now + timeout_s
    while True:
        for data, addr in transaction.datagrams_to_send():
            sock.sendto(data, addr)
        timer = transaction.get_timer()
        wait = min(deadline, timer if timer is not None else deadline) - time.monotonic()
        sock.settimeout(max(0.01, wait))
        try:
            data, addr = sock.recvfrom(2048)
            events = transaction.receive_datagram(data, addr, time.monotonic())
        except TimeoutError:
            events = transaction.handle_timer(time.monotonic())
        for event in events:
            if isinstance(event, BindingSucceeded):
                return event.mapped
            if isinstance(event, BindingFailed):
                raise LabError(f"STUN binding to {server}: {event.reason}")
        if time.monotonic() >= deadline:
            raise LabError(f"STUN binding to {server}: no answer within {timeout_s:g} s")


@dataclass(frozen=True, slots=True)
class TurnAnswer:
    """What an Allocate got: ``relayed`` (XOR-RELAYED-ADDRESS) and ``mapped`` (where the server
    saw us) on success; ``error`` (code, reason) when refused."""

    relayed: Address | None = None
    mapped: Address | None = None
    lifetime_s: int | None = None
    error: tuple[int, str] | None = None


def long_term_key(user: str, realm: str, password: str) -> bytes:
    """RFC 8489 §9.2.2: MD5(username ":" realm ":" password), UTF-8, without the OpaqueString
    preparation (the lab's names and passwords are plain ASCII)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).digest()


def with_integrity(message: StunMessage, key: bytes) -> bytes:
    """``message`` with MESSAGE-INTEGRITY appended (RFC 8489 §14.5: HMAC-SHA1 over the message
    up to the attribute, the header's length already counting it)."""
    raw = bytes(message)
    length = int.from_bytes(raw[2:4], "big") + 24
    mac = hmac.new(key, raw[:2] + length.to_bytes(2, "big") + raw[4:], hashlib.sha1).digest()
    signed = StunMessage(
        message.message_type,
        message.transaction_id,
        (*message.attributes, (MESSAGE_INTEGRITY, mac)),
    )
    return bytes(signed)


def _exchange(
    sock: socket.socket, server: Address, request: bytes, tid: bytes, timeout_s: float
) -> StunMessage:
    """Send ``request`` until its answer comes (every 0.25 s, ``timeout_s`` at most)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        sock.sendto(request, server)
        sock.settimeout(min(0.25, left))
        with contextlib.suppress(TimeoutError):
            while True:
                data, addr = sock.recvfrom(2048)
                with contextlib.suppress(StunParseError):
                    answer = StunMessage.parse(data)
                    if addr == server and answer.transaction_id == tid:
                        return answer
    raise LabError(f"TURN Allocate to {server}: no answer within {timeout_s:g} s")


def turn_allocate(
    server: Address,
    user: str,
    password: str,
    timeout_s: float = 3.0,
    *,
    bind_host: str = "0.0.0.0",
) -> TurnAnswer:
    """One Allocate (UDP relay) from a fresh socket, with long-term credentials (module
    docstring). The allocation is left to expire: the socket closes, and coturn stops with
    the test."""
    rng = random.Random(os.urandom(8))
    transport = ((REQUESTED_TRANSPORT, bytes([UDP_PROTOCOL, 0, 0, 0])),)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((bind_host, 0))
        tid = rng.getrandbits(96).to_bytes(12, "big")
        first = _exchange(
            sock, server, bytes(StunMessage(ALLOCATE_REQUEST, tid, transport)), tid, timeout_s
        )
        realm, nonce = first.attribute(REALM), first.attribute(NONCE)
        if first.message_type != ALLOCATE_ERROR or realm is None or nonce is None:
            raise LabError(f"TURN Allocate to {server}: no challenge but {first}")
        tid = rng.getrandbits(96).to_bytes(12, "big")
        attributes = (*transport, (USERNAME, user.encode()), (REALM, realm), (NONCE, nonce))
        key = long_term_key(user, realm.decode(), password)
        request = with_integrity(StunMessage(ALLOCATE_REQUEST, tid, attributes), key)
        answer = _exchange(sock, server, request, tid, timeout_s)
    if answer.message_type == ALLOCATE_ERROR:
        return TurnAnswer(error=answer.error() or (0, "no ERROR-CODE"))
    if answer.message_type != ALLOCATE_SUCCESS:
        raise LabError(
            f"TURN Allocate to {server}: unexpected answer type {answer.message_type:#06x}"
        )
    relayed_value = answer.attribute(XOR_RELAYED_ADDRESS)
    # XOR-RELAYED-ADDRESS is encoded like XOR-MAPPED-ADDRESS (RFC 8656 §18.5).
    relayed = (
        StunMessage(
            0, answer.transaction_id, ((XOR_MAPPED_ADDRESS, relayed_value),)
        ).mapped_address()
        if relayed_value
        else None
    )
    lifetime = answer.attribute(LIFETIME)
    return TurnAnswer(
        relayed=relayed,
        mapped=answer.mapped_address(),
        lifetime_s=int.from_bytes(lifetime, "big") if lifetime is not None else None,
    )


# --------------------------------------------------------------------------- the server


class Coturn(OneProcessPeer):
    """``turnserver`` on ``host``:``port`` (UDP and TCP), inside ``netns`` when given."""

    peer_name: ClassVar[str] = "coturn"

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = HOST,
        netns: str | None = None,
        port: int = TURN_PORT,
        users: Mapping[str, str] = USERS,
        realm: str = DOMAIN,
        min_port: int = 50000,
        max_port: int = 50099,
    ) -> None:
        """``users``: the long-term credentials it accepts (user -> password); ``min_port`` to
        ``max_port``: where its relayed addresses are (away from the lab's other media)."""
        if not users or any(
            not re.fullmatch(r"[A-Za-z0-9_.-]+", f"{u}{p}") for u, p in users.items()
        ):
            raise LabError(f"coturn users are plain names and passwords, not {dict(users)!r}")
        self.workdir = workdir
        self.host = host
        self.netns = netns
        self.port = port
        self.users = dict(users)
        self.realm = realm
        self.min_port = min_port
        self.max_port = max_port
        self._process: LabProcess | None = None

    @property
    def server(self) -> Address:
        return self.host, self.port

    def stun_uri(self) -> str:
        """``stun:HOST:PORT`` (RFC 7064)."""
        return f"stun:{self.host}:{self.port}"

    def turn_uri(self) -> str:
        """``turn:HOST:PORT`` (RFC 7065); the credentials go beside it."""
        return f"turn:{self.host}:{self.port}"

    def argv(self) -> list[str]:
        binary = find_binary("turnserver", "coturn")
        return [
            binary,
            "-n",  # no configuration file: everything is on this line
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            f"--listening-ip={self.host}",
            f"--listening-port={self.port}",
            f"--relay-ip={self.host}",
            f"--min-port={self.min_port}",
            f"--max-port={self.max_port}",
            "--lt-cred-mech",
            f"--realm={self.realm}",
            *[f"--user={user}:{password}" for user, password in self.users.items()],
            f"--userdb={self.workdir / 'turndb'}",
            f"--pidfile={self.workdir / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
            "--no-software-attribute",
            "--verbose",
        ]

    def start(self, timeout_s: float = 10.0) -> Coturn:
        """Start it (inside ``netns`` when given) and wait until it answers STUN over UDP and
        accepts TCP."""
        with contextlib.ExitStack() as stack:
            if self.netns is not None:
                stack.enter_context(entered(self.netns))
            self.workdir.mkdir(parents=True, exist_ok=True)
            process = self._process = LabProcess(
                netns_argv(self.netns, self.argv()),
                name="coturn",
                cwd=self.workdir,
                log_path=self.workdir / "coturn.log",
            )
            deadline = time.monotonic() + timeout_s
            try:
                process.wait_port(self.port, timeout_s, host=self.host)
                process.wait_until(
                    self._answers_stun,
                    max(0.0, deadline - time.monotonic()),
                    "an answer to a STUN Binding request",
                    poll_s=0.0,
                )
            except LabError as exc:
                tail = process.tail()
                self.stop()
                raise LabError(f"{exc}\ncoturn output:\n{tail}") from None
        return self

    def _answers_stun(self) -> bool:
        try:
            stun_binding(self.server, 0.5, bind_host=self.host)
        except (LabError, OSError):
            return False
        return True
