"""Locating SIP servers (RFC 3263 §4): a URI's host, port and transport -> targets to try.

:func:`resolve` returns every target in the order to try them (callers fail over, RFC 3263
§4.3). DNS goes through an injectable :class:`DnsBackend`: :class:`DnspythonBackend` for real
look-ups (dnspython is imported only when one is built, so importing this module stays cheap)
and :class:`StubBackend` for tests and fixed, hosts-file-like overrides.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from softphone.sip.address import DEFAULT_PORTS, TRANSPORTS, Address, TransportName

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rdata

__all__ = [
    "DnsBackend",
    "DnspythonBackend",
    "ResolveError",
    "StubBackend",
    "Target",
    "order_srv",
    "resolve",
]

logger = logging.getLogger(__name__)

NaptrRecord = tuple[int, int, str, str, str]  # (order, preference, flags, service, replacement)
SrvRecord = tuple[int, int, int, str]  # (priority, weight, port, target)


class ResolveError(Exception):
    """Server location failed; the message says which look-up."""


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send a request: an IP literal (v6 without brackets), port and transport.

    ``server_name`` is the host of the URI, which a TLS peer's certificate must carry
    (RFC 5922 §4), whatever SRV target the address came from.
    """

    transport: TransportName
    host: str
    port: int
    server_name: str

    def address(self) -> Address:
        return Address(self.transport, self.host, self.port, self.server_name)


class DnsBackend(Protocol):
    """The DNS look-ups RFC 3263 needs. Names have no trailing dot; no answer is ``[]``."""

    async def naptr(self, name: str) -> list[NaptrRecord]: ...

    async def srv(self, name: str) -> list[SrvRecord]: ...

    async def a(self, name: str) -> list[str]: ...

    async def aaaa(self, name: str) -> list[str]: ...


def _normalize(name: str) -> str:
    return name.rstrip(".").lower()


class StubBackend(DnsBackend):
    """Answers from dicts keyed by name (case and a trailing dot do not matter).

    Every query is appended to ``queries`` as ``(rrtype, name)`` so tests can check which
    look-ups happened. Names in ``failing`` raise ResolveError, as a timing-out server would.
    """

    def __init__(
        self,
        *,
        naptr: Mapping[str, Sequence[NaptrRecord]] | None = None,
        srv: Mapping[str, Sequence[SrvRecord]] | None = None,
        a: Mapping[str, Sequence[str]] | None = None,
        aaaa: Mapping[str, Sequence[str]] | None = None,
        failing: Collection[str] = (),
    ) -> None:
        self._naptr = {_normalize(k): list(v) for k, v in (naptr or {}).items()}
        self._srv = {_normalize(k): list(v) for k, v in (srv or {}).items()}
        self._a = {_normalize(k): list(v) for k, v in (a or {}).items()}
        self._aaaa = {_normalize(k): list(v) for k, v in (aaaa or {}).items()}
        self._failing = {_normalize(n) for n in failing}
        self.queries: list[tuple[str, str]] = []

    def _look_up(self, rrtype: str, name: str) -> str:
        key = _normalize(name)
        self.queries.append((rrtype, key))
        if key in self._failing:
            raise ResolveError(f"{rrtype} look-up for {key} timed out")
        return key

    async def naptr(self, name: str) -> list[NaptrRecord]:
        return list(self._naptr.get(self._look_up("NAPTR", name), []))

    async def srv(self, name: str) -> list[SrvRecord]:
        return list(self._srv.get(self._look_up("SRV", name), []))

    async def a(self, name: str) -> list[str]:
        return list(self._a.get(self._look_up("A", name), []))

    async def aaaa(self, name: str) -> list[str]:
        return list(self._aaaa.get(self._look_up("AAAA", name), []))


class DnspythonBackend(DnsBackend):
    """Real DNS through ``dns.asyncresolver``. NXDOMAIN / no answer -> ``[]``; timeouts and
    server failures -> ResolveError (the one place dnspython errors are translated).

    ``nameservers`` None reads the system configuration (/etc/resolv.conf).
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout_s: float = 5.0,
    ) -> None:
        import dns.asyncresolver  # lazily: dnspython costs start-up time

        if nameservers is None:
            resolver = dns.asyncresolver.Resolver()
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = list(nameservers)
        resolver.port = port
        resolver.lifetime = timeout_s
        self._resolver: dns.asyncresolver.Resolver = resolver

    async def _query(self, name: str, rrtype: str) -> list[dns.rdata.Rdata]:
        import dns.exception
        import dns.resolver

        try:
            answer = await self._resolver.resolve(name, rrtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            raise ResolveError(f"{rrtype} look-up for {name} timed out") from exc
        except dns.exception.DNSException as exc:
            raise ResolveError(f"{rrtype} look-up for {name} failed: {exc}") from exc
        return list(answer)

    async def naptr(self, name: str) -> list[NaptrRecord]:
        from dns.rdtypes.IN.NAPTR import NAPTR

        return [
            (
                int(rr.order),
                int(rr.preference),
                bytes(rr.flags).decode("ascii", "replace"),
                bytes(rr.service).decode("ascii", "replace"),
                str(rr.replacement.to_text(omit_final_dot=True)),
            )
            for rr in await self._query(name, "NAPTR")
            if isinstance(rr, NAPTR)
        ]

    async def srv(self, name: str) -> list[SrvRecord]:
        from dns.rdtypes.IN.SRV import SRV

        return [
            (
                int(rr.priority),
                int(rr.weight),
                int(rr.port),
                # The root target means "service not available" (RFC 2782).
                str(rr.target.to_text(omit_final_dot=True)) or ".",
            )
            for rr in await self._query(name, "SRV")
            if isinstance(rr, SRV)
        ]

    async def a(self, name: str) -> list[str]:
        from dns.rdtypes.IN.A import A

        return [str(rr.address) for rr in await self._query(name, "A") if isinstance(rr, A)]

    async def aaaa(self, name: str) -> list[str]:
        from dns.rdtypes.IN.AAAA import AAAA

        return [str(rr.address) for rr in await self._query(name, "AAAA") if isinstance(rr, AAAA)]


# RFC 3263 §4.1 NAPTR services and the SRV service names (RFC 3263 §4.1, RFC 3261 §26.2.2:
# "sips" over TCP is TLS; SIP+D2S/SCTP and WebSocket services are not ours).
_NAPTR_SERVICES: Final[Mapping[str, TransportName]] = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
}
_SRV_PREFIXES: Final[Mapping[TransportName, str]] = {
    "udp": "_sip._udp",
    "tcp": "_sip._tcp",
    "tls": "_sips._tcp",
}


def _ip_literal(host: str) -> str | None:
    """The IP address in ``host`` ("192.0.2.1", "[::1]", "::1"), or None for a name."""
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        return str(ipaddress.ip_address(host[1:-1] if bracketed else host))
    except ValueError:
        if bracketed:
            raise ResolveError(f"not an IPv6 literal: {host}") from None
        return None


def order_srv(records: Sequence[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """RFC 2782 ordering: ascending priority; within a priority, weighted random selection.

    "." targets (service decidedly not available) are dropped.
    """
    usable = [r for r in records if r[3] not in (".", "")]
    ordered: list[SrvRecord] = []
    for priority in sorted({r[0] for r in usable}):
        # RFC 2782: zero-weight records go first, so they get picked only with small chance.
        pending = sorted((r for r in usable if r[0] == priority), key=lambda r: r[1] != 0)
        while pending:
            total = sum(r[1] for r in pending)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(pending):
                running += record[1]
                if running >= pick:
                    ordered.append(pending.pop(index))
                    break
    return ordered


async def _addresses(name: str, backend: DnsBackend) -> list[str]:
    """A then AAAA records of ``name`` (IPv4 first); an IP literal stands for itself.

    One family failing (a resolver that times out on AAAA, say) does not hide the other.
    """
    literal = _ip_literal(name)
    if literal is not None:
        return [literal]
    results = await asyncio.gather(backend.a(name), backend.aaaa(name), return_exceptions=True)
    addresses: list[str] = []
    errors: list[BaseException] = []
    for result in results:
        if isinstance(result, ResolveError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            addresses += result
    if not addresses and errors:
        raise errors[0]
    return addresses


async def _srv_targets(
    srv_name: str,
    transport: TransportName,
    server_name: str,
    backend: DnsBackend,
    rng: random.Random,
) -> list[Target]:
    targets: list[Target] = []
    for _, _, port, target in order_srv(await backend.srv(srv_name), rng):
        for ip in await _addresses(target, backend):
            targets.append(Target(transport, ip, port, server_name))
    return targets


async def _host_targets(
    name: str, transport: TransportName, port: int | None, backend: DnsBackend
) -> list[Target]:
    port = DEFAULT_PORTS[transport] if port is None else port
    return [Target(transport, ip, port, name) for ip in await _addresses(name, backend)]


def _unique(targets: list[Target]) -> list[Target]:
    seen: set[tuple[str, str, int]] = set()
    out: list[Target] = []
    for target in targets:
        key = (target.transport, target.host, target.port)
        if key not in seen:
            seen.add(key)
            out.append(target)
    return out


def _pick_transport(
    transport: TransportName | None, *, sips: bool, supported: Sequence[TransportName]
) -> TransportName | None:
    """Check/adjust an explicit transport; RFC 3261 §26.2.2: a SIPS URI means TLS."""
    if transport is None:
        return None
    if transport not in TRANSPORTS:
        raise ResolveError(f"unknown transport {transport!r}")
    if sips:
        if transport == "udp":
            raise ResolveError("a sips: URI cannot use transport=udp")
        transport = "tls"
    if transport not in supported:
        raise ResolveError(f"transport {transport} is not supported here")
    return transport


def _default_transport(*, sips: bool, supported: Sequence[TransportName]) -> TransportName:
    # RFC 3263 §4.1: UDP for a SIP URI, TCP (TLS) for a SIPS URI.
    if sips:
        return "tls"
    return "udp" if "udp" in supported else supported[0]


async def resolve(
    uri_host: str,
    *,
    port: int | None,
    transport: TransportName | None,
    sips: bool,
    backend: DnsBackend,
    rng: random.Random,
    supported: Sequence[TransportName] = ("udp", "tcp", "tls"),
) -> list[Target]:
    """Every target for a SIP(S) URI, in the order to try them (RFC 3263 §4).

    ``uri_host`` is the URI's host (a name, IPv4 or bracketed IPv6); ``port`` and
    ``transport`` come from the URI (its ``transport`` parameter), None when absent.
    Raises ResolveError when nothing usable is found or a look-up fails.
    """
    supported = [t for t in supported if not sips or t == "tls"]
    if not supported:
        raise ResolveError("a sips: URI needs TLS, which is not supported here")
    chosen = _pick_transport(transport, sips=sips, supported=supported)
    if not uri_host:
        raise ResolveError("empty host")

    # RFC 3263 §4.1/§4.2: a numeric IP needs no DNS at all.
    literal = _ip_literal(uri_host)
    if literal is not None:
        chosen = chosen or _default_transport(sips=sips, supported=supported)
        port = DEFAULT_PORTS[chosen] if port is None else port
        return [Target(chosen, literal, port, literal)]

    name = _normalize(uri_host)
    if port is not None:
        # §4.2: an explicit port means A/AAAA only, no NAPTR or SRV.
        chosen = chosen or _default_transport(sips=sips, supported=supported)
        targets = await _host_targets(name, chosen, port, backend)
        if not targets:
            raise ResolveError(f"no A/AAAA records for {name}")
        return targets

    if chosen is not None:
        # §4.2: transport known, no port: SRV for it, then A/AAAA on the default port.
        srv_name = f"{_SRV_PREFIXES[chosen]}.{name}"
        targets = await _srv_targets(srv_name, chosen, name, backend, rng)
        if not targets:
            targets = await _host_targets(name, chosen, None, backend)
        if not targets:
            raise ResolveError(f"no SRV/A/AAAA records for {name}")
        return _unique(targets)

    # §4.1: neither: NAPTR, ordered by order then preference, keeping the services we support
    # (for a SIPS URI only SIPS+D2T); each names the SRV records to look up.
    targets = []
    naptrs = sorted(await backend.naptr(name), key=lambda r: (r[0], r[1]))
    for _, _, flags, service, replacement in naptrs:
        naptr_transport = _NAPTR_SERVICES.get(service.upper())
        if (
            naptr_transport is None
            or naptr_transport not in supported
            or flags.lower() != "s"
            or not replacement
        ):
            logger.debug("ignoring NAPTR %s %s -> %s for %s", flags, service, replacement, name)
            continue
        srv_name = _normalize(replacement)
        targets += await _srv_targets(srv_name, naptr_transport, name, backend, rng)
    if not targets:
        # §4.1: no (usable) NAPTR: an SRV query for each supported transport, in order.
        for candidate in supported:
            srv_name = f"{_SRV_PREFIXES[candidate]}.{name}"
            targets += await _srv_targets(srv_name, candidate, name, backend, rng)
    if not targets:
        # §4.2: no SRV either: A/AAAA on the default port of the default transport.
        default = _default_transport(sips=sips, supported=supported)
        targets = await _host_targets(name, default, None, backend)
    if not targets:
        raise ResolveError(f"no NAPTR/SRV/A/AAAA records for {name}")
    return _unique(targets)
