"""ICE (RFC 8445) for a call's media, with aioice as the agent, on the call's own RTP sockets.

The call's :class:`~softphone.transport.rtp.RtpEndpoint` sockets (from the configured port
range, with kernel arrival times) are the host candidates: component 1 is the RTP socket,
component 2 the RTCP one. aioice's protocol objects talk to them through a small adapter
transport, so that

- STUN (connectivity checks, consent, the STUN server's answers) on those sockets goes to aioice
  (the endpoint's ``stun_sink``; RFC 7983 tells STUN from RTP, RTCP and DTLS by the first byte);
- media goes on to the call's ``timed_sink`` as it always did, with its source and arrival time;
- server-reflexive candidates are the STUN server's view of those very sockets.

A relay candidate (RFC 8656) has aioice's own socket to the TURN server; what the relay brings
from a peer goes to the same sink with that peer's address (a relay's protocol of our own: aioice's
hands the data on without it).

:class:`IceEndpoint` looks like the RtpEndpoint to phone/media.py (``host``, ``port``,
``timed_sink``, ``send``). Until a component's pair is nominated nothing is sent on it (RFC 8445
§12.1: media goes on a valid pair); after it, every datagram goes on the selected pair of its
component, whatever address the RTP session names. When the far end does not do ICE, :meth:`IceEndpoint.use_plain`
sends from the default candidate to the address its SDP gave (RFC 8445 §5.1.4: the default
candidate is what a peer without ICE uses).

aioice gives no public accessor for the selected pair, nor a way to bring one's own sockets:
:class:`_Connection` reads ``_nominated`` and overrides gathering, as aiortc does, and
re-sends a pending check's request (a STUN transaction's private fields); aioice is
pinned below 1.0 for this.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, Final, Literal

from aioice import Candidate, Connection
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import CandidatePair, StunProtocol, relayed_candidate, server_reflexive_candidate

from softphone.sdp.ice import IceCandidate
from softphone.transport.rtp import RtpEndpoint, TimedDatagramSink

__all__ = ["IceEndpoint", "IceState", "candidate_from_sdp", "candidate_to_sdp"]

logger = logging.getLogger(__name__)

IceState = Literal["gathering", "checking", "connected", "failed", "off"]
GATHER_TIMEOUT_S: Final = 3  # the STUN and TURN servers' answers, before the SDP goes out


def candidate_to_sdp(c: Candidate) -> IceCandidate:
    return IceCandidate(
        foundation=c.foundation,
        component=c.component,
        transport=c.transport.upper(),
        priority=c.priority,
        address=c.host,
        port=c.port,
        type=c.type,
        related_address=c.related_address,
        related_port=c.related_port,
    )


def candidate_from_sdp(c: IceCandidate) -> Candidate:
    return Candidate(
        foundation=c.foundation,
        component=c.component,
        transport=c.transport.lower(),
        priority=c.priority,
        host=c.address,
        port=c.port,
        type=c.type,
        related_address=c.related_address,
        related_port=c.related_port,
    )


class _SocketTransport(asyncio.DatagramTransport):
    """aioice's view of one of the endpoint's sockets: what it sends goes out of that socket."""

    def __init__(self, endpoint: RtpEndpoint, via_rtcp: bool, address: tuple[str, int]) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._via_rtcp = via_rtcp
        self._address = address
        self._protocol: StunProtocol | None = None
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._closing and addr is not None:
            self._endpoint.send(bytes(data), (str(addr[0]), int(addr[1])), self._via_rtcp)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._address if name == "sockname" else default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        # The socket is the call's: closed with its RtpEndpoint, never by aioice.
        if not self._closing:
            self._closing = True
            if self._protocol is not None:
                self._protocol.connection_lost(None)


class _RelayProtocol(StunProtocol):
    """A relayed candidate's protocol: what the relay brings from a peer that is not STUN
    (RFC 7983: first byte above 3) goes to the call with that peer's address, which aioice's
    own protocol drops; the call latches onto it and answers it through the relay."""

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        if isinstance(data, bytes) and data and data[0] > 3:
            receiver = self.receiver
            if isinstance(receiver, _Connection):
                receiver.relayed(data, (str(addr[0]), int(addr[1])), self.local_candidate.component)
                return
        super().datagram_received(data, addr)


class _Connection(Connection):
    """aioice's Connection with the call's sockets as host candidates (module docstring), and
    relayed data handed straight to a sink."""

    def __init__(
        self,
        endpoint: RtpEndpoint,
        host: str,
        relayed: Callable[[bytes, tuple[str, int], int], None],
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self._endpoint = endpoint
        self._host = host
        self.relayed = relayed
        self.turn_failed = False
        self.on_nominated: Callable[[int], None] | None = None

    async def gather_candidates(self) -> None:
        """Gather like aioice, on our sockets (RFC 8445 §5.1.1): host, then server-reflexive and
        relayed candidates at once, each bounded by GATHER_TIMEOUT_S."""
        if self._local_candidates_start:
            return
        self._local_candidates_start = True
        by_component: dict[int, StunProtocol] = {}
        for component in sorted(self._components):
            port = self._endpoint.port if component == 1 else self._endpoint.rtcp_port
            protocol = StunProtocol(self)
            transport = _SocketTransport(self._endpoint, component == 2, (self._host, port))
            transport._protocol = protocol
            protocol.connection_made(transport)
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", self._host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=self._host,
                port=port,
                type="host",
            )
            by_component[component] = protocol
            self._protocols.append(protocol)
            self._local_candidates.append(protocol.local_candidate)

        def stun_received(data: bytes, addr: tuple[str, int], via_rtcp: bool) -> None:
            protocol = by_component.get(2 if via_rtcp else 1)
            if protocol is not None:
                protocol.datagram_received(data, addr)

        self._endpoint.stun_sink = stun_received
        tasks: list[asyncio.Task[tuple[Candidate, StunProtocol | None]]] = []
        ipv4 = ipaddress.ip_address(self._host).version == 4
        for component, protocol in by_component.items():
            if self.stun_server is not None and ipv4:
                tasks.append(
                    asyncio.create_task(server_reflexive_candidate(protocol, self.stun_server))
                )
            if self.turn_server is not None:
                tasks.append(
                    asyncio.create_task(
                        relayed_candidate(
                            component=component,
                            hide_related_address=False,
                            protocol_factory=lambda: _RelayProtocol(self),
                            turn_server=self.turn_server,
                            turn_username=self.turn_username,
                            turn_password=self.turn_password,
                            turn_ssl=self.turn_ssl,
                            turn_transport=self.turn_transport,
                        )
                    )
                )
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=GATHER_TIMEOUT_S)
            for task in pending:
                task.cancel()
            relays = 0
            for task in done:
                if task.exception() is not None:
                    logger.info("ICE gathering: %r", task.exception())
                    continue
                candidate, relay = task.result()
                self._local_candidates.append(candidate)
                if relay is not None:
                    relays += 1
                    self._protocols.append(relay)
            self.turn_failed = self.turn_server is not None and relays == 0
        self._local_candidates_end = True

    def check_incoming(self, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        super().check_incoming(message, addr, protocol)
        # RFC 8445 §7.3.1.4: a check from the far end on a pair whose own check is in progress
        # triggers a check of that pair at once. aioice waits for the pending request's next
        # retransmission instead (up to 1.6 s later); behind a router that filters by address,
        # that retransmission is the first of ours to get through (the far end's check just
        # opened the way), so the pair waited for nothing. Sending the pending request again
        # now is that triggered check: its answer completes the same transaction.
        for pair in self._check_list:
            if (
                pair.protocol is protocol
                and pair.remote_addr == addr
                and pair.state == CandidatePair.State.IN_PROGRESS
            ):
                for transaction in list(protocol.transactions.values()):
                    request = getattr(transaction, "_Transaction__request", None)
                    if (
                        request is not None
                        and getattr(transaction, "_Transaction__addr", None) == addr
                    ):
                        protocol.send_stun(request, addr)

    def check_complete(self, pair: CandidatePair) -> None:
        super().check_complete(pair)
        if (
            self.on_nominated is not None
            and pair.nominated
            and self._nominated.get(pair.component) is pair
        ):
            self.on_nominated(pair.component)

    def data_received(self, data: bytes, component: int) -> None:
        # The sockets' own media never reaches aioice, and the relays' goes to ``relayed`` with
        # its source (_RelayProtocol): nothing else is media.
        logger.debug("ICE: %d bytes of unexpected data on component %d", len(data), component)

    def selected(self, component: int) -> Any:
        return self._nominated.get(component)


class IceEndpoint:
    """One call's media over ICE (module docstring). ``host`` is our address for host
    candidates; ``stun_server``/``turn_server`` are (host, port) already resolved."""

    def __init__(
        self,
        endpoint: RtpEndpoint,
        *,
        host: str,
        controlling: bool,
        components: int,
        stun_server: tuple[str, int] | None = None,
        turn_server: tuple[str, int] | None = None,
        turn_username: str | None = None,
        turn_password: str | None = None,
    ) -> None:
        self.rtp = endpoint
        self.state: IceState = "gathering"
        self._timed_sink: TimedDatagramSink | None = None
        self._plain = False
        self._loop = asyncio.get_running_loop()
        self._connection = _Connection(
            endpoint,
            host,
            self._relayed,
            ice_controlling=controlling,
            components=components,
            stun_server=stun_server,
            turn_server=turn_server,
            turn_username=turn_username,
            turn_password=turn_password,
            use_ipv6=":" in host,
            use_ipv4=":" not in host,
        )
        self._close_task: asyncio.Task[None] | None = None
        self._held: dict[int, tuple[bytes, tuple[str, int], bool]] = {}
        self._connection.on_nominated = self._nominated

    def _nominated(self, component: int) -> None:
        held = self._held.pop(component, None)
        if held is not None and self.state == "checking":
            self.send(*held)

    # ---------------------------------------------------------------- the RtpEndpoint face
    @property
    def host(self) -> str:
        return self.rtp.host

    @property
    def port(self) -> int:
        return self.rtp.port

    @property
    def timed_sink(self) -> TimedDatagramSink | None:
        return self._timed_sink

    @timed_sink.setter
    def timed_sink(self, sink: TimedDatagramSink | None) -> None:
        self._timed_sink = sink
        self.rtp.timed_sink = sink

    def read_by_poll(self, polled: bool) -> None:
        """As RtpEndpoint's: the checks' STUN on the RTP socket then waits for the audio pump's
        next step too (at most 20 ms; ICE retransmits after 500 ms, RFC 8445 §14.3)."""
        self.rtp.read_by_poll(polled)

    def poll(self) -> None:
        self.rtp.poll()

    def send(self, data: bytes, addr: tuple[str, int], via_rtcp: bool = False) -> None:
        component = 2 if via_rtcp else 1
        if self._plain:
            # From the default candidate: a relay's is its own protocol; a host or
            # server-reflexive one is the call's socket itself.
            relay = self._relay_protocol(component)
            if relay is not None:
                relay.transport.sendto(data, addr)
            else:
                self.rtp.send(data, addr, via_rtcp)
            return
        if self.state == "connected":
            pair = self._connection.selected(component) or self._connection.selected(1)
        elif self.state == "checking":
            # RFC 8445 §12.1: media may flow on a component as soon as it has a nominated pair,
            # before the other component's checks end (the far end's RTCP component took 3 s
            # more, through two routers, and our speech waited for it).
            pair = self._connection.selected(component)
            if pair is None:
                # The newest datagram waits for the pair and goes the moment it is nominated:
                # a call's first frame, ready a few ms before the checks end, cost 20 ms more
                # (the next frame's) when dropped.
                self._held[component] = (data, addr, via_rtcp)
                return
        else:
            return
        if pair is not None:
            pair.protocol.transport.sendto(data, pair.remote_addr)

    def _relayed(self, data: bytes, source: tuple[str, int], component: int) -> None:
        sink = self._timed_sink
        if sink is not None:
            sink(data, source, component == 2, self._loop.time())

    def _relay_protocol(self, component: int) -> Any:
        """The relay's protocol when the default candidate of ``component`` is relayed."""
        default = self._connection.get_default_candidate(component)
        if default is None or default.type != "relay":
            return None
        for protocol in self._connection._protocols:
            if protocol.local_candidate is default:
                return protocol
        return None

    # ---------------------------------------------------------------- ICE
    async def gather(self) -> None:
        await self._connection.gather_candidates()
        self.state = "checking"

    @property
    def controlling(self) -> bool:
        """Our role (RFC 8445 §6.1.1); one for every stream of the session."""
        return bool(self._connection.ice_controlling)

    @property
    def turn_failed(self) -> bool:
        """A TURN server was configured and gave no relay candidate (wrong credentials, or no
        answer within GATHER_TIMEOUT_S)."""
        return self._connection.turn_failed

    @property
    def ufrag(self) -> str:
        return self._connection.local_username

    @property
    def pwd(self) -> str:
        return self._connection.local_password

    def local_candidates(self) -> list[IceCandidate]:
        return [candidate_to_sdp(c) for c in self._connection.local_candidates]

    def default_candidate(self, component: int) -> IceCandidate | None:
        """RFC 8445 §5.1.4: relay if any, else server-reflexive, else host (lowest priority)."""
        found = self._connection.get_default_candidate(component)
        return candidate_to_sdp(found) if found is not None else None

    def use_plain(self) -> None:
        """The far end does not do ICE: plain RTP from the default candidates."""
        self._plain = True
        self.state = "off"

    async def connect(
        self, ufrag: str, pwd: str, candidates: list[IceCandidate], *, lite: bool
    ) -> None:
        """Run the checks against the far end's candidates (RFC 8445 §6-8). Raises
        ConnectionError when no pair works."""
        self._connection.remote_username = ufrag
        self._connection.remote_password = pwd
        self._connection.remote_is_lite = lite
        for candidate in candidates:
            await self._connection.add_remote_candidate(candidate_from_sdp(candidate))
        await self._connection.add_remote_candidate(None)
        try:
            await self._connection.connect()
        except ConnectionError:
            self.state = "failed"
            raise
        self.state = "connected"

    async def lost(self) -> None:
        """Return when the connection has closed: our :meth:`close`, or consent to send
        expired (RFC 7675: the far end stopped answering the checks that aioice sends every
        ~5 s on the selected pair)."""
        await self._connection.get_event()  # ConnectionClosed is aioice's only event

    def selected_types(self) -> tuple[str, str] | None:
        """The selected pair of component 1 as (local type, remote type)."""
        pair = self._connection.selected(1)
        if pair is None:
            return None
        return pair.local_candidate.type, pair.remote_candidate.type

    def summary(self) -> tuple[str, str | None]:
        """The state, and the selected pair as "local type/remote type" ("srflx/host"), for the
        call's statistics."""
        types = self.selected_types() if self.state == "connected" else None
        return self.state, "/".join(types) if types is not None else None

    def close(self) -> None:
        """Close the agent (the RTP sockets stay the RtpEndpoint's to close)."""
        if self._close_task is None:
            self.rtp.stun_sink = None
            self._close_task = self._loop.create_task(self._connection.close())

    async def wait_closed(self) -> None:
        if self._close_task is not None:
            await asyncio.wait({self._close_task})
