"""Tests for softphone.transport.resolver (RFC 3263 server location).

Every look-up goes through StubBackend, except the DnspythonBackend tests, which talk to a tiny
DNS server of our own on 127.0.0.1 (never the system resolver).
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from softphone.sip.address import Address, TransportName
from softphone.transport.resolver import (
    DnspythonBackend,
    ResolveError,
    StubBackend,
    Target,
    order_srv,
    resolve,
)


async def run(
    host: str,
    backend: StubBackend,
    *,
    port: int | None = None,
    transport: TransportName | None = None,
    sips: bool = False,
    supported: Sequence[TransportName] = ("udp", "tcp", "tls"),
    seed: int = 1,
) -> list[tuple[str, str, int]]:
    targets = await resolve(
        host,
        port=port,
        transport=transport,
        sips=sips,
        backend=backend,
        rng=random.Random(seed),
        supported=supported,
    )
    return [(t.transport, t.host, t.port) for t in targets]


# --- Numeric hosts: no DNS at all -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "transport", "sips", "expected"),
    [
        ("192.0.2.1", None, None, False, ("udp", "192.0.2.1", 5060)),
        ("192.0.2.1", 5080, None, False, ("udp", "192.0.2.1", 5080)),
        ("192.0.2.1", None, "tcp", False, ("tcp", "192.0.2.1", 5060)),
        ("192.0.2.1", None, "tls", False, ("tls", "192.0.2.1", 5061)),
        ("192.0.2.1", None, None, True, ("tls", "192.0.2.1", 5061)),
        ("192.0.2.1", None, "tcp", True, ("tls", "192.0.2.1", 5061)),
        ("[::1]", None, None, False, ("udp", "::1", 5060)),
        ("[::1]", 5070, "tcp", False, ("tcp", "::1", 5070)),
        ("[0:0::1]", None, None, True, ("tls", "::1", 5061)),
    ],
)
async def test_numeric_ip_needs_no_dns(
    host: str,
    port: int | None,
    transport: TransportName | None,
    sips: bool,
    expected: tuple[str, str, int],
) -> None:
    backend = StubBackend()
    assert await run(host, backend, port=port, transport=transport, sips=sips) == [expected]
    assert backend.queries == []


async def test_target_address_and_server_name() -> None:
    [target] = await resolve(
        "[::1]", port=5061, transport="tls", sips=False, backend=StubBackend(), rng=random.Random(0)
    )
    assert target == Target("tls", "::1", 5061, "::1")
    address = target.address()
    assert address == Address("tls", "::1", 5061)
    assert address.server_name == "::1"
    assert address.host_port == "[::1]:5061"


async def test_bad_bracketed_host() -> None:
    with pytest.raises(ResolveError, match="not an IPv6 literal"):
        await run("[lab.test]", StubBackend())


# --- Explicit port: A/AAAA only ---------------------------------------------------------------


async def test_explicit_port_skips_naptr_and_srv() -> None:
    backend = StubBackend(
        naptr={"lab.test": [(10, 10, "s", "SIP+D2T", "_sip._tcp.lab.test")]},
        srv={"_sip._tcp.lab.test": [(0, 0, 5999, "other.lab.test")]},
        a={"lab.test": ["127.0.0.1"]},
        aaaa={"lab.test": ["::1"]},
    )
    assert await run("Lab.Test.", backend, port=5080) == [
        ("udp", "127.0.0.1", 5080),
        ("udp", "::1", 5080),
    ]
    assert sorted(backend.queries) == [("A", "lab.test"), ("AAAA", "lab.test")]
    assert await run("lab.test", backend, port=5081, sips=True) == [
        ("tls", "127.0.0.1", 5081),
        ("tls", "::1", 5081),
    ]


async def test_server_name_is_the_uri_host() -> None:
    backend = StubBackend(
        srv={"_sips._tcp.lab.test": [(0, 0, 5061, "edge1.provider.test")]},
        a={"edge1.provider.test": ["127.0.0.2"]},
    )
    [target] = await resolve(
        "lab.test", port=None, transport=None, sips=True, backend=backend, rng=random.Random(0)
    )
    assert target == Target("tls", "127.0.0.2", 5061, "lab.test")


async def test_localhost_goes_through_the_backend() -> None:
    backend = StubBackend(a={"localhost": ["127.0.0.1"]})
    assert await run("localhost", backend, port=5060) == [("udp", "127.0.0.1", 5060)]
    with pytest.raises(ResolveError, match="no A/AAAA records for localhost"):
        await run("localhost", StubBackend(), port=5060)


# --- Transport given, no port: SRV then A/AAAA ------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "sips", "srv_name", "resolved"),
    [
        ("udp", False, "_sip._udp.lab.test", "udp"),
        ("tcp", False, "_sip._tcp.lab.test", "tcp"),
        ("tls", False, "_sips._tcp.lab.test", "tls"),
        ("tcp", True, "_sips._tcp.lab.test", "tls"),
    ],
)
async def test_transport_without_port_uses_srv(
    transport: TransportName, sips: bool, srv_name: str, resolved: str
) -> None:
    backend = StubBackend(
        srv={srv_name: [(10, 0, 5999, "sip1.lab.test"), (5, 0, 6000, "sip2.lab.test")]},
        a={"sip1.lab.test": ["127.0.0.1"], "sip2.lab.test": ["127.0.0.2"]},
        aaaa={"sip2.lab.test": ["::2"]},
    )
    assert await run("lab.test", backend, transport=transport, sips=sips) == [
        (resolved, "127.0.0.2", 6000),
        (resolved, "::2", 6000),
        (resolved, "127.0.0.1", 5999),
    ]
    assert backend.queries[0] == ("SRV", srv_name)
    assert ("NAPTR", "lab.test") not in backend.queries


async def test_transport_without_srv_falls_back_to_a_on_default_port() -> None:
    backend = StubBackend(a={"lab.test": ["127.0.0.1"]})
    assert await run("lab.test", backend, transport="tls") == [("tls", "127.0.0.1", 5061)]
    assert backend.queries[0] == ("SRV", "_sips._tcp.lab.test")
    with pytest.raises(ResolveError, match=re.escape("no SRV/A/AAAA records for nothing.test")):
        await run("nothing.test", StubBackend(), transport="tcp")


# --- Neither: NAPTR -> SRV -> A/AAAA ----------------------------------------------------------

NAPTR_ZONE: Mapping[str, list[tuple[int, int, str, str, str]]] = {
    "lab.test": [
        (20, 10, "s", "SIP+D2U", "_sip._udp.lab.test"),
        (10, 20, "S", "SIP+D2T", "_sip._tcp.lab.test"),
        (10, 10, "s", "SIPS+D2T", "_sips._tcp.lab.test"),
        (5, 10, "s", "SIP+D2S", "_sip._sctp.lab.test"),  # SCTP: not ours
        (5, 20, "s", "SIPS+D2W", "_sips._ws.lab.test"),  # WebSocket: not ours
        (6, 10, "", "SIP+D2U", ""),  # non-terminal rewrite: not supported
    ]
}
SRV_ZONE: Mapping[str, list[tuple[int, int, int, str]]] = {
    "_sip._udp.lab.test": [(0, 0, 5060, "udp.lab.test")],
    "_sip._tcp.lab.test": [(0, 0, 5060, "tcp.lab.test")],
    "_sips._tcp.lab.test": [(0, 0, 5061, "tls.lab.test")],
    "_sip._sctp.lab.test": [(0, 0, 5060, "sctp.lab.test")],
    "_sips._ws.lab.test": [(0, 0, 443, "ws.lab.test")],
}
A_ZONE: Mapping[str, list[str]] = {
    "udp.lab.test": ["127.0.0.1"],
    "tcp.lab.test": ["127.0.0.2"],
    "tls.lab.test": ["127.0.0.3"],
    "sctp.lab.test": ["127.0.0.4"],
    "ws.lab.test": ["127.0.0.5"],
    "lab.test": ["127.0.0.9"],
}


async def test_naptr_order_preference_and_unsupported_services() -> None:
    backend = StubBackend(naptr=NAPTR_ZONE, srv=SRV_ZONE, a=A_ZONE)
    assert await run("lab.test", backend) == [
        ("tls", "127.0.0.3", 5061),
        ("tcp", "127.0.0.2", 5060),
        ("udp", "127.0.0.1", 5060),
    ]
    assert backend.queries[0] == ("NAPTR", "lab.test")
    assert ("SRV", "_sip._sctp.lab.test") not in backend.queries
    assert ("SRV", "_sips._ws.lab.test") not in backend.queries


async def test_naptr_filtered_to_supported_transports() -> None:
    backend = StubBackend(naptr=NAPTR_ZONE, srv=SRV_ZONE, a=A_ZONE)
    assert await run("lab.test", backend, supported=("udp", "tcp")) == [
        ("tcp", "127.0.0.2", 5060),
        ("udp", "127.0.0.1", 5060),
    ]
    assert ("SRV", "_sips._tcp.lab.test") not in backend.queries


async def test_sips_uses_only_sips_naptr() -> None:
    backend = StubBackend(naptr=NAPTR_ZONE, srv=SRV_ZONE, a=A_ZONE)
    assert await run("lab.test", backend, sips=True) == [("tls", "127.0.0.3", 5061)]


async def test_sips_without_tls_support_fails() -> None:
    with pytest.raises(ResolveError, match="needs TLS"):
        await run("lab.test", StubBackend(), sips=True, supported=("udp", "tcp"))
    with pytest.raises(ResolveError, match="transport=udp"):
        await run("lab.test", StubBackend(), sips=True, transport="udp")
    with pytest.raises(ResolveError, match="not supported"):
        await run("lab.test", StubBackend(), transport="tls", supported=("udp",))


async def test_unusable_naptr_falls_back_to_srv() -> None:
    backend = StubBackend(
        naptr={"lab.test": [(10, 10, "s", "SIP+D2S", "_sip._sctp.lab.test")]},
        srv=SRV_ZONE,
        a=A_ZONE,
    )
    assert await run("lab.test", backend) == [
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.2", 5060),
        ("tls", "127.0.0.3", 5061),
    ]


async def test_no_naptr_queries_srv_for_each_supported_transport_in_order() -> None:
    backend = StubBackend(srv=SRV_ZONE, a=A_ZONE)
    assert await run("lab.test", backend, supported=("tcp", "udp")) == [
        ("tcp", "127.0.0.2", 5060),
        ("udp", "127.0.0.1", 5060),
    ]
    srv_queries = [name for rrtype, name in backend.queries if rrtype == "SRV"]
    assert srv_queries == ["_sip._tcp.lab.test", "_sip._udp.lab.test"]


async def test_no_naptr_sips_queries_only_sips_srv() -> None:
    backend = StubBackend(srv=SRV_ZONE, a=A_ZONE)
    assert await run("lab.test", backend, sips=True) == [("tls", "127.0.0.3", 5061)]
    srv_queries = [name for rrtype, name in backend.queries if rrtype == "SRV"]
    assert srv_queries == ["_sips._tcp.lab.test"]


@pytest.mark.parametrize(("sips", "expected"), [(False, ("udp", 5060)), (True, ("tls", 5061))])
async def test_no_naptr_no_srv_uses_a_and_aaaa(sips: bool, expected: tuple[str, int]) -> None:
    backend = StubBackend(a={"lab.test": ["127.0.0.1"]}, aaaa={"lab.test": ["::1"]})
    transport, port = expected
    assert await run("lab.test", backend, sips=sips) == [
        (transport, "127.0.0.1", port),
        (transport, "::1", port),
    ]


async def test_nothing_found_raises() -> None:
    backend = StubBackend()
    with pytest.raises(ResolveError, match=re.escape("no NAPTR/SRV/A/AAAA records for lab.test")):
        await run("lab.test", backend)
    assert [q[0] for q in backend.queries] == ["NAPTR", "SRV", "SRV", "SRV", "A", "AAAA"]
    with pytest.raises(ResolveError, match="empty host"):
        await run("", backend)


async def test_srv_dot_target_means_not_available() -> None:
    backend = StubBackend(srv={"_sip._udp.lab.test": [(0, 0, 0, ".")]}, a=A_ZONE)
    # The "." SRV yields nothing; _sip._tcp/_sips._tcp have none: fall back to A.
    assert await run("lab.test", backend) == [("udp", "127.0.0.9", 5060)]


async def test_duplicate_targets_are_collapsed() -> None:
    backend = StubBackend(
        naptr={
            "lab.test": [
                (10, 10, "s", "SIP+D2U", "_sip._udp.lab.test"),
                (20, 10, "s", "SIP+D2U", "_sip._udp.lab.test"),
            ]
        },
        srv=SRV_ZONE,
        a=A_ZONE,
    )
    assert await run("lab.test", backend) == [("udp", "127.0.0.1", 5060)]


async def test_failing_aaaa_does_not_hide_a() -> None:
    backend = StubBackend(a={"lab.test": ["127.0.0.1"]}, failing=["lab.test"])
    # Every look-up for lab.test fails, so NAPTR fails first and the error propagates.
    with pytest.raises(ResolveError, match=re.escape("NAPTR look-up for lab.test timed out")):
        await run("lab.test", backend)

    class AaaaTimesOut(StubBackend):
        async def aaaa(self, name: str) -> list[str]:
            raise ResolveError(f"AAAA look-up for {name} timed out")

    assert await run("lab.test", AaaaTimesOut(a={"lab.test": ["127.0.0.1"]}), port=5060) == [
        ("udp", "127.0.0.1", 5060)
    ]
    with pytest.raises(ResolveError, match=re.escape("AAAA look-up for lab.test timed out")):
        await run("lab.test", AaaaTimesOut(), port=5060)


# --- RFC 2782 ordering ------------------------------------------------------------------------

WEIGHTED = [
    (10, 60, 5060, "big.lab.test"),
    (10, 30, 5060, "mid.lab.test"),
    (10, 10, 5060, "small.lab.test"),
    (10, 0, 5060, "zero.lab.test"),
    (5, 0, 5060, "first.lab.test"),
    (20, 100, 5060, "last.lab.test"),
]


def test_srv_priority_first_then_weights() -> None:
    ordered = order_srv(WEIGHTED, random.Random(3))
    assert ordered[0][3] == "first.lab.test"
    assert ordered[-1][3] == "last.lab.test"
    assert sorted(r[3] for r in ordered[1:5]) == [
        "big.lab.test",
        "mid.lab.test",
        "small.lab.test",
        "zero.lab.test",
    ]


def test_srv_weighted_order_is_deterministic_under_a_seed() -> None:
    first = [order_srv(WEIGHTED, random.Random(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    orders = {tuple(r[3] for r in order_srv(WEIGHTED, random.Random(seed))) for seed in range(50)}
    assert len(orders) > 1  # the rng really decides


def test_srv_weights_shape_the_first_pick() -> None:
    rng = random.Random(2782)
    picks = collections.Counter(order_srv(WEIGHTED[:4], rng)[0][3] for _ in range(4000))
    # Expected shares 60/30/10 of 100 (+ the zero weight only when the draw is exactly 0).
    assert 0.55 < picks["big.lab.test"] / 4000 < 0.65
    assert 0.25 < picks["mid.lab.test"] / 4000 < 0.35
    assert 0.07 < picks["small.lab.test"] / 4000 < 0.13
    assert picks["zero.lab.test"] / 4000 < 0.03


async def test_resolve_uses_the_injected_rng_for_srv() -> None:
    backend = StubBackend(
        srv={"_sip._udp.lab.test": [(0, 50, 5060, "a.lab.test"), (0, 50, 5060, "b.lab.test")]},
        a={"a.lab.test": ["127.0.0.1"], "b.lab.test": ["127.0.0.2"]},
    )
    runs = {tuple(await run("lab.test", backend, transport="udp", seed=s)) for s in range(20)}
    assert len(runs) == 2
    assert await run("lab.test", backend, transport="udp", seed=7) == await run(
        "lab.test", backend, transport="udp", seed=7
    )


# --- Import hygiene ---------------------------------------------------------------------------


def test_import_does_not_load_dnspython() -> None:
    code = "import sys, softphone.transport.resolver; print('dns' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "False"


# --- DnspythonBackend against our own DNS server on 127.0.0.1 ---------------------------------

ZONE: Mapping[tuple[str, str], list[str]] = {
    ("lab.test.", "NAPTR"): ['10 20 "s" "SIP+D2U" "" _sip._udp.lab.test.'],
    ("_sip._udp.lab.test.", "SRV"): ["0 5 5070 sip1.lab.test.", "1 0 0 ."],
    ("sip1.lab.test.", "A"): ["127.0.0.1"],
    ("sip1.lab.test.", "AAAA"): ["::1"],
}
SILENT = "slow.lab.test."


class _DnsServer(asyncio.DatagramProtocol):
    """Answers from ZONE; NXDOMAIN for unknown names; never answers SILENT (a timeout)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text()
        if name == SILENT:
            return
        response = dns.message.make_response(query)
        rrtype = dns.rdatatype.to_text(question.rdtype)
        texts = ZONE.get((name, rrtype))
        if texts:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", rrtype, *texts))
        elif not any(key[0] == name for key in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
async def dns_port() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_DnsServer, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def test_dnspython_backend_answers(dns_port: int) -> None:
    backend = DnspythonBackend(nameservers=["127.0.0.1"], port=dns_port, timeout_s=2.0)
    assert await backend.naptr("lab.test") == [(10, 20, "s", "SIP+D2U", "_sip._udp.lab.test")]
    assert sorted(await backend.srv("_sip._udp.lab.test")) == [
        (0, 5, 5070, "sip1.lab.test"),
        (1, 0, 0, "."),
    ]
    assert await backend.a("sip1.lab.test") == ["127.0.0.1"]
    assert await backend.aaaa("sip1.lab.test") == ["::1"]
    assert await backend.a("lab.test") == []  # NoAnswer
    assert await backend.srv("missing.lab.test") == []  # NXDOMAIN
    targets = await resolve(
        "lab.test", port=None, transport=None, sips=False, backend=backend, rng=random.Random(0)
    )
    assert targets == [
        Target("udp", "127.0.0.1", 5070, "lab.test"),
        Target("udp", "::1", 5070, "lab.test"),
    ]


async def test_dnspython_backend_timeout_is_resolve_error(dns_port: int) -> None:
    backend = DnspythonBackend(nameservers=["127.0.0.1"], port=dns_port, timeout_s=0.3)
    with pytest.raises(ResolveError, match=re.escape("A look-up for slow.lab.test timed out")):
        await backend.a("slow.lab.test")
