"""The address our media is reached at from behind a NAT, for the SDP of each call.

A far end sends RTP to the address our SDP names (most do not latch onto where our packets come
from: baresip does not). Behind a home router the socket's own address is private, so the SDP
must carry the public one (RFC 3264 §5, c= and m=). In order of preference:

1. STUN (RFC 8489): the account's ``stun_server`` is asked from the call's RTP and RTCP sockets
   themselves, so the answers are exactly the router's mappings of those sockets.
2. The address the registrar saw our REGISTER come from (Via received, RFC 3581), with the RTP
   ports unchanged: right for routers that keep the source port when they can (Linux
   masquerade, most home routers), and the far end's latching, if it does, fixes the rest.
3. The local address.

A STUN server that did not answer is not asked again for ``STUN_RETRY_AFTER_S``: every call
would otherwise wait for its silence.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from softphone.config import Account
from softphone.config_nat import parse_host_port
from softphone.sip.account import is_ip_literal
from softphone.stun import BindingFailed, BindingSucceeded, BindingTransaction
from softphone.transport.resolver import DnsBackend, ResolveError
from softphone.transport.rtp import RtpEndpoint

__all__ = [
    "MediaAddress",
    "PublicMedia",
    "StunCache",
    "media_address",
    "stun_mappings",
    "stun_servers",
    "stun_target",
]

logger = logging.getLogger(__name__)

STUN_RTO_S: Final = 0.25
STUN_SENDS: Final = 3  # sends at 0, 0.25 and 0.75 s; given up at 1.25 s
STUN_LAST_WAIT_RTOS: Final = 2
STUN_RETRY_AFTER_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class MediaAddress:
    """Where the far end sends our RTP and RTCP, and how we learned it."""

    host: str
    rtp_port: int
    rtcp_port: int
    source: str  # "stun", "registrar" or "local"


def media_address(
    endpoint: RtpEndpoint,
    local_host: str,
    *,
    stun: tuple[tuple[str, int], tuple[str, int] | None] | None,
    registered_host: str | None,
) -> MediaAddress:
    """The address for the SDP (module docstring): STUN's mappings of the RTP and RTCP sockets
    (an RTCP mapping that did not come is guessed as RTP's + 1), else the registrar's view of
    our host with our own ports, else ours."""
    if stun is not None:
        rtp, rtcp = stun
        return MediaAddress(rtp[0], rtp[1], rtcp[1] if rtcp is not None else rtp[1] + 1, "stun")
    if registered_host is not None and registered_host != local_host:
        return MediaAddress(registered_host, endpoint.port, endpoint.rtcp_port, "registrar")
    return MediaAddress(local_host, endpoint.port, endpoint.rtcp_port, "local")


def stun_servers(accounts: Iterable[Account]) -> dict[str, str]:
    """Account name -> its ``stun_server``, for the accounts that have one."""
    return {a.name: a.stun_server for a in accounts if a.stun_server is not None}


async def stun_target(server: str, dns: DnsBackend) -> tuple[str, int] | None:
    """``HOST[:PORT]`` as an address to send to: a name is looked up (A records); None when
    it cannot be."""
    parsed = parse_host_port(server)
    if parsed is None:
        return None
    host, port = parsed
    if is_ip_literal(host):
        return host, port
    try:
        found = await dns.a(host)
    except ResolveError as exc:
        logger.info("STUN server %s not found: %s", host, exc)
        return None
    return (found[0], port) if found else None


class StunCache:
    """Which STUN servers stayed silent lately (module docstring)."""

    def __init__(self) -> None:
        self._silent_until: dict[str, float] = {}

    def usable(self, server: str, now: float) -> bool:
        return self._silent_until.get(server, 0.0) <= now

    def silent(self, server: str, now: float) -> None:
        self._silent_until[server] = now + STUN_RETRY_AFTER_S


async def stun_mappings(
    endpoint: RtpEndpoint, server: tuple[str, int], rng: random.Random, *, rtcp: bool
) -> tuple[tuple[str, int], tuple[str, int] | None] | None:
    """The STUN server's view of the endpoint's RTP socket (and of its RTCP socket, with
    ``rtcp``), each asked from the socket itself; None when RTP's went unanswered."""
    loop = asyncio.get_running_loop()
    await endpoint.attached()
    # One transaction per socket, pumped together: [0] from the RTP socket, [1] from RTCP's.
    transactions = [
        BindingTransaction(
            server,
            rng=rng,
            now=loop.time(),
            rto_s=STUN_RTO_S,
            max_sends=STUN_SENDS,
            last_wait_rtos=STUN_LAST_WAIT_RTOS,
        )
        for _ in range(2 if rtcp else 1)
    ]
    results: list[tuple[str, int] | None] = [None] * len(transactions)
    changed = asyncio.Event()

    def handle(index: int, events: list[BindingSucceeded | BindingFailed]) -> None:
        for event in events:
            if isinstance(event, BindingSucceeded):
                results[index] = event.mapped
            else:
                logger.info("STUN %s:%s: %s", server[0], server[1], event.reason)
            changed.set()

    def received(data: bytes, addr: tuple[str, int], via_rtcp: bool) -> None:
        index = int(via_rtcp)
        if index < len(transactions):
            handle(index, transactions[index].receive_datagram(data, addr, loop.time()))

    endpoint.stun_sink = received
    try:
        while True:
            for index, tx in enumerate(transactions):
                for data, dest in tx.datagrams_to_send():
                    endpoint.send(data, dest, via_rtcp=bool(index))
            timers = [at for tx in transactions if (at := tx.get_timer()) is not None]
            if not timers:
                break
            at = min(timers)
            changed.clear()
            try:
                async with asyncio.timeout_at(at):
                    await changed.wait()
            except TimeoutError:
                now = max(at, loop.time())
                for index, tx in enumerate(transactions):
                    handle(index, tx.handle_timer(now))
    finally:
        endpoint.stun_sink = None
    if results[0] is None:
        return None
    return results[0], results[1] if rtcp else None


class PublicMedia:
    """Where each call's media is reached from outside (module docstring): the account's STUN
    server asked from the call's own sockets, else the registrar's view, else our address.
    :meth:`configure` takes the accounts whenever they change."""

    def __init__(self, dns: DnsBackend, rng: random.Random) -> None:
        self._dns = dns
        self._rng = rng
        self._servers: dict[str, str] = {}  # account -> its stun_server
        self._cache = StunCache()

    def configure(self, accounts: Iterable[Account]) -> None:
        self._servers = stun_servers(accounts)

    async def address(
        self,
        account: str,
        rtp: RtpEndpoint,
        *,
        advertised: str,
        registered_host: str | None,
        clock: Callable[[], float],
        warn: Callable[[str], None],
    ) -> MediaAddress:
        """The call's media address; ``warn`` is told when the STUN server stayed silent."""
        server = self._servers.get(account)
        mapped = None
        if server is not None and self._cache.usable(server, clock()):
            target = await stun_target(server, self._dns)
            if target is not None:
                mapped = await stun_mappings(rtp, target, self._rng, rtcp=True)
            if mapped is None:
                self._cache.silent(server, clock())
                warn(f"STUN server {server} did not answer; using the address the registrar sees")
        address = media_address(rtp, advertised, stun=mapped, registered_host=registered_host)
        logger.info(
            "media of a call on %s at %s:%s (%s)",
            account,
            address.host,
            address.rtp_port,
            address.source,
        )
        return address
