"""The phone's place on the network: each configured account turned into what the SIP core
needs (its outbound hop found through DNS, RFC 3263), the address that goes into Via and
Contact, and the SIP listeners (UDP and TCP on one port, TLS on its own: 5061 by default)."""

from __future__ import annotations

import logging
import random
import socket
import ssl
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from softphone.config import Account
from softphone.phone import events as pe
from softphone.phone.errors import NetworkError, PhoneError
from softphone.phone.tls import listener_context
from softphone.sip.account import AccountConfig
from softphone.sip.address import DEFAULT_PORTS, Address, TransportName
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri
from softphone.transport.resolver import DnsBackend, ResolveError, resolve
from softphone.transport.sip import SipTransport, TransportError

__all__ = [
    "KEEPALIVE_STREAM_S",
    "KEEPALIVE_UDP_S",
    "account_config",
    "add_tls_listener",
    "advertised_host",
    "alternate_host",
    "keep_alive_interval",
    "listen",
    "local_account",
    "resolve_hop",
    "resolve_hops",
    "stable_instance_id",
    "unresolved_account",
]

logger = logging.getLogger(__name__)

INSTANCE_FILE = "instance-id"
KEEPALIVE_UDP_S = 25.0
KEEPALIVE_STREAM_S = 90.0
EPHEMERAL_ATTEMPTS = 8
UNSPECIFIED_HOSTS = ("0.0.0.0", "::", "")


def keep_alive_interval(
    hop: Address, flow_timer_s: int | None = None, rng: random.Random | None = None
) -> float:
    """How often to ping the outbound hop's flow (RFC 5626 §4.4.1): NAT bindings for UDP time
    out much sooner than TCP connections. A registrar's Flow-Timer wins: a random interval
    between 80 % and 100 % of it, so that many clients do not ping in step."""
    default = KEEPALIVE_UDP_S if hop.transport == "udp" else KEEPALIVE_STREAM_S
    if flow_timer_s is None or flow_timer_s <= 0:
        return default
    return flow_timer_s * (0.8 + 0.2 * (rng or random.Random()).random())


async def resolve_hop(
    uri: SipUri, transport: TransportName, *, dns: DnsBackend, rng: random.Random
) -> Address:
    """The first address RFC 3263 server location gives for ``uri``."""
    return (await resolve_hops(uri, transport, dns=dns, rng=rng))[0]


async def resolve_hops(
    uri: SipUri, transport: TransportName, *, dns: DnsBackend, rng: random.Random
) -> tuple[Address, ...]:
    """Every address RFC 3263 server location gives for ``uri``, in the order to try them
    (SRV priority, RFC 2782 weighted choice with ``rng``, then each target's A and AAAA
    addresses): the list requests fail over along (sip/failover.py)."""
    port = uri.port
    if transport == "tls" and port is None:
        port = 5061
    try:
        targets = await resolve(
            uri.host,
            port=port,
            transport=(uri.transport or transport),  # type: ignore[arg-type]
            sips=uri.scheme == "sips",
            backend=dns,
            rng=rng,
        )
    except ResolveError as exc:
        raise NetworkError(f"cannot find the server for {uri}: {exc}") from None
    return tuple(target.address() for target in targets)


async def account_config(
    acct: Account, *, dns: DnsBackend, rng: random.Random, instance_id: str | None = None
) -> AccountConfig:
    """The SIP core's view of a configured account, its outbound hop resolved."""
    hop_uri = acct.proxy or acct.registrar
    targets = (
        await resolve_hops(hop_uri, acct.transport, dns=dns, rng=rng) if hop_uri is not None else ()
    )
    if len(targets) > 1:
        logger.info(
            "%s: servers in the order to try them: %s",
            acct.name,
            ", ".join(str(t) for t in targets),
        )
    return AccountConfig(
        name=acct.name,
        aor=acct.uri,
        username=acct.auth_username,
        password=acct.password,
        display_name=acct.display_name,
        registrar=acct.registrar,
        outbound=targets[0] if targets else None,
        targets=targets,
        transport=acct.transport,
        expires=acct.expires,
        binding_check_s=float(acct.binding_check) or None,
        only_from_proxy=acct.only_from_proxy,
        instance_id=instance_id,
        prack=acct.prack,
        session_expires_s=acct.session_expires,
    )


def stable_instance_id(directory: Path) -> str:
    """This phone's RFC 5626 instance id (§4.1: a UUID that stays the same across restarts),
    kept in ``directory``; made and written there the first time. A directory that cannot be
    written still gives an id (for this run only: the registrar then sees a new phone after a
    restart, as it would without one)."""
    path = directory / INSTANCE_FILE
    try:
        return str(uuid.UUID(path.read_text(encoding="ascii").strip()))
    except (OSError, ValueError):
        pass
    made = str(uuid.uuid4())
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(made + "\n", encoding="ascii")
        temporary.replace(path)
    except OSError as exc:
        logger.warning("cannot keep the instance id in %s: %s", path, exc)
    return made


def unresolved_account(acct: Account) -> AccountConfig:
    """An account whose server could not be found, as the registrations list shows it (it is
    not given to the SIP core: it has nowhere to send)."""
    return AccountConfig(
        name=acct.name,
        aor=acct.uri,
        username=acct.auth_username,
        display_name=acct.display_name,
        registrar=acct.registrar,
        transport=acct.transport,
        expires=acct.expires,
    )


async def add_tls_listener(
    transport: SipTransport,
    ua: UserAgent,
    *,
    accounts: Sequence[Account],
    data_dir: Path,
    bind_host: str,
    sip_port: int | None,
    tls_port: int | None,
    advertised: str,
    emit: Callable[[pe.PhoneEvent], None],
) -> None:
    """Accounts changed at run time: listen on TLS as :func:`listen` does at start when one of
    them now wants it, so that a peer or a registrar that opens its own TLS connection to our
    Contact (RFC 3261 §18.2.1) finds someone there. A listener that cannot be made (the port
    taken, an unusable certificate) is said once, and the account stays client-only: TLS is
    advertised on the UDP port and requests come back over our own connection (RFC 5626)."""
    if any(a.transport == "tls" for a in transport.listeners()):
        return
    context: ssl.SSLContext | None = None
    try:
        context = await listener_context(accounts, data_dir, advertised, emit)
        if context is not None:
            transport.use_tls_server_context(context)
            await _listen_tls(transport, ua, bind_host, tls_port, sip_port, advertised, emit)
            return
    except PhoneError as exc:
        emit(pe.Notice(level="warning", text=f"no TLS listener, TLS is client-only: {exc}"))
    if any(a.transport == "tls" for a in accounts):
        port = next((a.port for a in transport.listeners() if a.transport == "udp"), None)
        if port is not None:
            ua.add_listener(Address("tls", advertised, port))


def local_account(bind_host: str) -> Account:
    """No account configured: a peer-to-peer identity on this host."""
    host = bind_host if bind_host not in ("0.0.0.0", "::") else "localhost"
    return Account(name="local", uri=SipUri(user="softphone", host=host))


def advertised_host(bind_host: str, accounts: Iterable[AccountConfig]) -> str:
    """The address that goes into Via and Contact: the bind address when it is specific, else
    the local address the kernel would use to reach the first outbound hop. A UDP connect()
    sends nothing; it only asks the routing table."""
    if bind_host not in UNSPECIFIED_HOSTS:
        return bind_host
    for acct in accounts:
        if acct.outbound is not None:
            return _route_source(acct.outbound.host) or "127.0.0.1"
    return _route_source("192.0.2.1") or "127.0.0.1"


def alternate_host(bind_host: str, advertised: str) -> str | None:
    """Our media address in the family ``advertised`` is not, when the sockets reach both: a
    socket bound to "::" is dual-stack (Linux's default ``bindv6only=0``), so an IPv4 offer can be
    answered on IPv4 and an IPv6 offer on IPv6. Any other bind address is one family only."""
    if bind_host != "::":
        return None
    probe = "192.0.2.1" if ":" in advertised else "2001:db8::1"  # documentation ranges
    return _route_source(probe)


async def listen(
    transport: SipTransport,
    ua: UserAgent,
    *,
    accounts: Iterable[AccountConfig],
    bind_host: str,
    port: int | None,
    advertised: str,
    emit: Callable[[pe.PhoneEvent], None],
    tls: bool = False,
    tls_port: int | None = None,
) -> None:
    """Bind UDP and TCP on one port and tell the core its listeners. With ``tls`` (the
    transport has a server certificate) TLS listens on ``tls_port``; without, an account on TLS
    is client-only: the core advertises TLS on the UDP port, and requests come back over our
    connection.

    A port None is the default port with a fallback to a free one when it is taken; 0 is a
    port the kernel picks (UDP and TCP: one free for both; TLS: 0 too when ``port`` is)."""
    fallback = port is None
    wanted = DEFAULT_PORTS["udp"] if port is None else port
    transports: list[TransportName] = ["udp", "tcp"]
    if tls or any(acct.transport == "tls" for acct in accounts):
        transports.append("tls")
    bound_port = wanted
    bound: dict[TransportName, Address] = {}
    if port == 0:
        bound = await _ephemeral_pair(transport, bind_host)
        bound_port = bound["udp"].port
    for name in transports:
        if name == "tls":
            if tls:
                await _listen_tls(transport, ua, bind_host, tls_port, port, advertised, emit)
            else:
                ua.add_listener(Address("tls", advertised, bound_port))
            continue
        try:
            address = bound.get(name) or await transport.listen(
                name, bind_host, bound_port, fallback=fallback
            )
        except TransportError as exc:
            raise PhoneError(str(exc)) from None
        moved = address.port != bound_port
        if moved and name == "udp":
            emit(
                pe.Notice(
                    level="warning",
                    text=f"port {wanted}/{name} is in use; using {address.port} instead",
                )
            )
            bound_port = address.port
        ua.add_listener(Address(name, advertised, address.port))
        emit(pe.Listening(transport=name, host=address.host, port=address.port, fallback=moved))


async def _listen_tls(
    transport: SipTransport,
    ua: UserAgent,
    bind_host: str,
    tls_port: int | None,
    port: int | None,
    advertised: str,
    emit: Callable[[pe.PhoneEvent], None],
) -> None:
    if tls_port is None and port == 0:
        tls_port = 0  # an ephemeral SIP port asks for an ephemeral TLS one too
    wanted = DEFAULT_PORTS["tls"] if tls_port is None else tls_port
    try:
        address = await transport.listen("tls", bind_host, wanted, fallback=tls_port is None)
    except TransportError as exc:
        raise PhoneError(str(exc)) from None
    moved = wanted != 0 and address.port != wanted
    if moved:
        emit(
            pe.Notice(
                level="warning", text=f"port {wanted}/tls is in use; using {address.port} instead"
            )
        )
    ua.replace_listener(Address("tls", advertised, address.port))
    emit(pe.Listening(transport="tls", host=address.host, port=address.port, fallback=moved))


async def _ephemeral_pair(transport: SipTransport, bind_host: str) -> dict[TransportName, Address]:
    """A port free for both UDP and TCP. The kernel picks the UDP one; the same TCP port may
    be someone's ephemeral connection, so try again with a new one (bounded)."""
    for _ in range(EPHEMERAL_ATTEMPTS):
        try:
            udp = await transport.listen("udp", bind_host, 0)
        except TransportError as exc:
            raise PhoneError(str(exc)) from None
        try:
            tcp = await transport.listen("tcp", bind_host, udp.port)
        except TransportError:
            await transport.unlisten(udp)
            continue
        return {"udp": udp, "tcp": tcp}
    raise PhoneError(
        f"no port free for both UDP and TCP on {bind_host} after {EPHEMERAL_ATTEMPTS} tries"
    )


def _route_source(host: str) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None
