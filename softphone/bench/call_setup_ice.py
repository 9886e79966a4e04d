"""``softphone bench setup --topology ice-host|ice-srflx|ice-relay``: call set-up time with ICE
(RFC 8445) in the NAT lab, softphone against baresip calling the same baresip.

The figure is call_setup.py's: from the INVITE leaving the caller to the later of the first
audio reaching the callee and the first reaching the caller, read off the wire by a sniffer in
each end's own network namespace (:mod:`softphone.lab.sniff`; one kernel clock for all). Each
topology is built for the run (:mod:`softphone.lab.netns`: documentation and private addresses,
removed at the end) with Kamailio as registrar and proxy (203.0.113.10) and coturn as STUN/TURN
server (203.0.113.30); both callers and the callee do ICE with the same servers:

- ``ice-host``: no NAT. Callers on the wan at 203.0.113.20, the callee on coturn's host; the
  checks succeed on host candidates.
- ``ice-srflx``: callers behind router A (192.168.1.100), the callee behind router B
  (192.168.2.100), both endpoint-independent: the pair is a host candidate to the far end's
  server-reflexive (or peer-reflexive) one, through both routers.
- ``ice-relay``: both routers map every destination to a new random port, so only a TURN relay
  gets through; both sides have coturn credentials and the pair goes through a relay. Media
  reaching a caller from its relay comes as TURN ChannelData (RFC 8656 §12.4), counted here.

baresip waits about two seconds before its first check and nominates a second later (seen in
the lab with and without us), so as the callee it bounds both callers' figures: the comparison
says what the caller's own side adds.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from softphone.bench.call_peers import SoftphoneDial, stopping
from softphone.bench.call_setup import SetupTime, comparison, legs_of
from softphone.lab.baresip import Baresip
from softphone.lab.coturn import Coturn
from softphone.lab.kamailio import USERS, Kamailio
from softphone.lab.netns import FAR_HOST, HOME2_HOST, HOME_HOST, TURN_HOST, Mapping, NatLab
from softphone.lab.pki import make_pki
from softphone.lab.process import LabError
from softphone.lab.sniff import Datagram, PacketSniffer, is_rtp

CALL_TIMEOUT_S: Final = 20.0  # baresip's checks through relays take seconds
POLL_S: Final = 0.05
# Long enough that no mapping is forgotten during a run: keep-alives are not what is measured.
UDP_TIMEOUT_S: Final = 600


@dataclass(frozen=True, slots=True)
class Topology:
    name: str
    description: str
    mapping: Mapping
    callee_router: Mapping | None  # None: no NAT, the callee on the relay's host
    turn: bool


TOPOLOGIES: Final = {
    t.name: t
    for t in (
        Topology("ice-host", "ICE, host candidates, no NAT", "endpoint-independent", None, False),
        Topology(
            "ice-srflx",
            "ICE through two endpoint-independent routers (server-reflexive)",
            "endpoint-independent",
            "endpoint-independent",
            False,
        ),
        Topology(
            "ice-relay",
            "ICE through two random-mapping routers (TURN relay)",
            "random",
            "random",
            True,
        ),
    )
}


def is_media(head: bytes) -> bool:
    """RTP, or RTP inside TURN ChannelData (RFC 8656 §12.4: channels 0x4000-0x4FFF, a 4-byte
    header before the data)."""
    return is_rtp(head) or (len(head) >= 6 and 0x40 <= head[0] <= 0x4F and is_rtp(head[4:]))


def measure(
    caller: Iterable[Datagram], callee: Iterable[Datagram], caller_host: str
) -> SetupTime | None:
    """The set-up of the first call in the two namespaces' datagrams: the INVITE leaving
    ``caller_host``, the first media arriving in each namespace after it (at any of its
    addresses: baresip offers a host candidate on each, the wan's registrar address too);
    None before the INVITE."""
    invite = next(
        (
            d.at
            for d in sorted(caller, key=lambda d: d.at)
            if d.outgoing and d.src[0] == caller_host and d.head.startswith(b"INVITE ")
        ),
        None,
    )
    if invite is None:
        return None

    def first(datagrams: Iterable[Datagram]) -> float | None:
        return min(
            (d.at for d in datagrams if not d.outgoing and d.at >= invite and is_media(d.head)),
            default=None,
        )

    return SetupTime(invite, first(callee), first(caller))


@dataclass
class _Lab:
    topology: Topology
    nat: NatLab
    kamailio: Kamailio
    coturn: Coturn
    caller_ns: str
    caller_host: str
    callee_ns: str
    callee_host: str

    def ice(self, user: str) -> dict[str, Any]:
        """lab.Baresip's ICE options for ``user``."""
        if self.topology.turn:
            return {
                "medianat": "ice",
                "stun_server": self.coturn.turn_uri(),
                "stun_user": user,
                "stun_password": USERS[user],
            }
        return {"medianat": "ice", "stun_server": self.coturn.stun_uri()}

    def account(self, user: str) -> str:
        """The softphone's ``[[account]]`` for ``user``."""
        hop = f"sip:{self.kamailio.host}:{self.kamailio.udp_port};transport=udp"
        server = f"{self.coturn.host}:{self.coturn.port}"
        text = (
            f'[[account]]\nname = "{user}"\nuri = "sip:{user}@{self.kamailio.domain}"\n'
            f'password = "{USERS[user]}"\nregistrar = "{hop}"\nproxy = "{hop}"\n'
            f'stun_server = "{server}"\n'
        )
        if self.topology.turn:
            text += (
                f'turn_server = "{server}"\nturn_username = "{user}"\n'
                f'turn_password = "{USERS[user]}"\n'
            )
        return text


@contextlib.contextmanager
def _lab(topology: Topology, workdir: Path, tag: int) -> Iterator[_Lab]:
    nat = NatLab.create(
        mapping=topology.mapping,
        second_router=topology.callee_router,
        udp_timeout_s=UDP_TIMEOUT_S,
        tag=tag,
    )
    try:
        kamailio = Kamailio(
            workdir / "kamailio",
            make_pki(workdir / "pki"),
            host=nat.registrar_host,
            netns=nat.wan,
            nat_aliases=False,
            nat_contacts=True,  # baresip behind a router names its private address
        )
        coturn = Coturn(workdir / "coturn", host=nat.turn_host, netns=nat.relay)
        with stopping(kamailio, coturn):
            kamailio.start()
            coturn.start()
            if nat.second is None:
                where = (nat.wan, FAR_HOST, nat.relay, TURN_HOST)
            else:
                where = (nat.home, HOME_HOST, nat.second.home, HOME2_HOST)
            yield _Lab(topology, nat, kamailio, coturn, *where)
    finally:
        nat.close()


def _wait_measured(
    lab: _Lab, sniffers: tuple[PacketSniffer, PacketSniffer], what: str
) -> SetupTime:
    deadline = time.monotonic() + CALL_TIMEOUT_S
    found = None
    while time.monotonic() < deadline:
        found = measure(sniffers[0].datagrams(), sniffers[1].datagrams(), lab.caller_host)
        if found is not None and found.complete:
            return found
        time.sleep(POLL_S)
    seen = (
        "no INVITE"
        if found is None
        else f"media at the callee: {found.at_callee is not None},"
        f" at the caller: {found.at_caller is not None}"
    )
    raise LabError(
        f"{lab.topology.name}, {what}: no audio both ways within {CALL_TIMEOUT_S:g} s ({seen})"
    )


def run_topology(topology: Topology, workdir: Path, calls: int, tag: int) -> dict[str, Any]:
    """``calls`` calls by each caller to one auto-answering baresip, in ``topology``."""
    measured: dict[str, list[float]] = {"softphone": [], "baresip": []}
    legs: dict[str, list[tuple[float, float]]] = {"softphone": [], "baresip": []}
    with _lab(topology, workdir, tag) as lab:
        sniffers = (
            PacketSniffer(lab.caller_ns, name="caller-sniffer"),
            PacketSniffer(lab.callee_ns, name="callee-sniffer"),
        )
        callee = Baresip(
            workdir / "callee",
            kamailio=lab.kamailio,
            user="bob",
            auto_answer=True,
            codecs="opus/48000/2",
            host=lab.callee_host,
            netns=lab.callee_ns,
            rtcp_mux=True,
            **lab.ice("bob"),
        )
        caller = Baresip(
            workdir / "caller",
            kamailio=lab.kamailio,
            user="alice",
            codecs="opus/48000/2",
            host=lab.caller_host,
            netns=lab.caller_ns,
            rtcp_mux=True,
            **lab.ice("alice"),
        )
        with stopping(*sniffers, callee, caller):
            for sniffer in sniffers:
                sniffer.start()
            callee.start()
            caller.start()
            for n in range(calls):
                for sniffer in sniffers:
                    sniffer.clear()
                dial = SoftphoneDial(
                    workdir / f"softphone-{n}",
                    callee.aor,
                    play=None,
                    codecs=("opus",),
                    # Hung up by SIGTERM once measured (the checks take seconds).
                    extra_args=("--no-audio", "--duration", "60", "--log-level", "DEBUG"),
                    env={**os.environ, "XDG_DATA_HOME": str(workdir / "data")},
                    account=lab.account("carol"),
                    bind=lab.caller_host,
                    netns=lab.caller_ns,
                )
                dial.exit_wait_s = 0.0
                with stopping(dial):
                    dial.start()
                    found = _wait_measured(lab, sniffers, "softphone")
                measured["softphone"].append(found.both_ways_ms or 0.0)
                legs["softphone"].append(legs_of(found))

                for sniffer in sniffers:
                    sniffer.clear()
                mark = caller.mark()
                caller.dial(callee.aor)
                try:
                    found = _wait_measured(lab, sniffers, "baresip")
                finally:
                    caller.hangup()
                    caller.wait_event("CALL_CLOSED", timeout_s=CALL_TIMEOUT_S, since=mark)
                measured["baresip"].append(found.both_ways_ms or 0.0)
                legs["baresip"].append(legs_of(found))
    return {
        "topology": topology.name,
        "description": topology.description,
        "calls_per_caller": calls,
        **comparison(measured, legs),
    }


def run(workdir: Path, calls: int, names: Iterable[str]) -> dict[str, Any]:
    rows = [
        run_topology(TOPOLOGIES[name], workdir / name, calls, tag)
        for tag, name in enumerate(names, start=1)
    ]
    return {"calls_per_caller": calls, "topologies": rows}


def report(result: dict[str, Any]) -> str:
    lines = [
        "call set-up with ICE, INVITE to first audio both ways,"
        f" {result['calls_per_caller']} calls each, callee baresip (ice):",
        f"  {'topology':<10} {'caller':<10} {'median ms':>10} {'p90 ms':>8} {'ratio':>6}",
    ]
    for row in result["topologies"]:
        for who in ("softphone", "baresip"):
            figures = row[who]
            ratio = row["median_ratio"] if who == "softphone" else ""
            legs = row["legs_ms"].get(who, {})
            lines.append(
                f"  {row['topology']:<10} {who:<10} {figures['median_ms']!s:>10}"
                f" {figures['p90_ms']!s:>8} {ratio!s:>6}"
                f"   (first media at the callee {legs.get('to_callee_median')} ms,"
                f" at the caller {legs.get('to_caller_median')} ms)"
            )
    return "\n".join(lines)
