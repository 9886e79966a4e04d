"""Home networks behind NAT routers, built from Linux network namespaces and nftables.

Namespaces joined by veth pairs (documentation ranges, never the host's interfaces); the "wan"
is one Ethernet segment (a bridge), so the routers reach each other directly, as two homes do
across the internet:

    home  192.168.1.100 -lan0/int0- nat  192.168.1.1 | 203.0.113.1 -ext0/wan0-+
    home2 192.168.2.100 -lan0/int0- nat2 192.168.2.1 | 203.0.113.2 -ext0/wan1-+- br0 (wan)
    relay 203.0.113.30 (TURN), 203.0.113.40 (rtpengine) ------- eth0/wan2-+  203.0.113.10 registrar
                                                                               203.0.113.20 far end

- ``home``: the softphone's side; default route via its router. ``home2`` and ``nat2`` (router
  B) exist only when asked for (``NatLab.create(second_router=...)``).
- ``nat`` / ``nat2``: ``ip_forward``, an nftables masquerade on ``ext0``, a forward chain that
  accepts established/related traffic and LAN to WAN and drops the rest through the named
  counter ``dropped`` (one-way audio shows there at a glance), and a short UDP conntrack
  timeout so that keep-alives matter within a test. Unsolicited packets to the router itself are
  dropped too (and counted), as a home router's firewall does: accepted, a far end's early RTP
  to our public port would make a conntrack entry that moves our own mapping of that port
  elsewhere. Each router has its own mapping (:data:`Mapping`): ``endpoint-independent`` (plain
  masquerade keeps the source port when it can), or ``random`` (``masquerade
  random,fully-random``: a new random public port for each destination, a "symmetric" NAT that
  only a relay gets through).
- ``relay``: a host of its own on the wan for the media relays: the STUN/TURN server (coturn,
  ``TURN_HOST``) and the provider's media relay (rtpengine, ``RTPENGINE_HOST``). Of its own,
  because a packet between two addresses of one namespace leaves from the address it goes to,
  whatever the route's source says: a far-end phone beside coturn would reach the relay from
  coturn's address, not its own, and find no TURN permission for it.
- ``wan``: the "internet": Kamailio, baresip, rtpengine. It routes 192.168.0.0/16 back
  through router A (192.168.2.0/24 through router B), so media sent to a private address reaches
  a router and is dropped there, as the internet would drop it. Its route's source is the
  far-end phone's address: baresip binds its RTP to 0.0.0.0, and RTP leaving from the
  registrar's address would not match the router's conntrack entry.

Processes run inside a namespace with ``ip netns exec NS`` (:func:`netns_argv`); this process's
own sockets are made inside one with :func:`entered`, which moves only the calling thread (a
network namespace is per thread) and moves it back afterwards. A socket stays in the namespace it
was made in, so a phone whose thread is in ``home`` keeps working after the thread moves on.

Setup and teardown are bounded (every command has a timeout); a failed setup removes what it
made, and :meth:`NatLab.close` removes the namespaces (their veths go with them). Names carry
this process's pid, so parallel runs never meet, and namespaces left by a run whose process is
gone are removed by the next one (:func:`remove_stale`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal

from softphone.lab.process import LabError, PeerMissing, find_binary

__all__ = [
    "FAR_HOST",
    "HOME2_HOST",
    "HOME_HOST",
    "REGISTRAR_HOST",
    "ROUTER2_LAN",
    "ROUTER2_WAN",
    "ROUTER_LAN",
    "ROUTER_WAN",
    "RTPENGINE_HOST",
    "TURN_HOST",
    "Mapping",
    "NatLab",
    "Router",
    "entered",
    "netns_argv",
    "remove_stale",
]

REGISTRAR_HOST: Final = "203.0.113.10"
FAR_HOST: Final = "203.0.113.20"
TURN_HOST: Final = "203.0.113.30"
RTPENGINE_HOST: Final = "203.0.113.40"
ROUTER_WAN: Final = "203.0.113.1"
ROUTER_LAN: Final = "192.168.1.1"
HOME_HOST: Final = "192.168.1.100"
ROUTER2_WAN: Final = "203.0.113.2"
ROUTER2_LAN: Final = "192.168.2.1"
HOME2_HOST: Final = "192.168.2.100"
NETNS_DIR: Final = Path("/run/netns")
PREFIX: Final = "spnat"
COMMAND_TIMEOUT_S: Final = 10.0
CLONE_NEWNET: Final = 0x40000000

# "endpoint-independent": one public port per private one, whatever the destination (plain
# masquerade keeps the source port when it can). "random": a new random public port for each
# destination (random,fully-random), the mapping STUN cannot predict for anyone but the STUN
# server.
Mapping = Literal["endpoint-independent", "random"]
MAPPINGS: Final[tuple[Mapping, ...]] = ("endpoint-independent", "random")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the calling thread inside network namespace ``name`` for the ``with`` block.

    Sockets made inside stay in ``name`` for their whole life; the thread goes back to the
    namespace it was in (even on an exception)."""
    libc = _libc()
    with open("/proc/thread-self/ns/net", "rb") as own, open(NETNS_DIR / name, "rb") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"cannot enter network namespace {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(own.fileno(), CLONE_NEWNET) != 0:  # pragma: no cover - cannot happen
                raise LabError("cannot return to the original network namespace")


def netns_argv(name: str | None, argv: list[str]) -> list[str]:
    """``argv`` run inside namespace ``name`` (``ip netns exec`` execs it: the pid is the same)."""
    if name is None:
        return argv
    return [find_binary("ip", "iproute2"), "netns", "exec", name, *argv]


def _run(argv: list[str], *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer within {COMMAND_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Remove namespaces this module made in runs whose process is gone; their names."""
    if not NETNS_DIR.is_dir():
        return []
    ip = find_binary("ip", "iproute2")
    removed: list[str] = []
    for entry in NETNS_DIR.iterdir():
        found = re.fullmatch(rf"{PREFIX}(\d+)-\d+-(wan|relay|nat2?|home2?)", entry.name)
        if found is None or _pid_alive(int(found.group(1))):
            continue
        with contextlib.suppress(LabError):
            _run([ip, "netns", "del", entry.name])
            removed.append(entry.name)
    return removed


def _ruleset(mapping: Mapping) -> str:
    # random: the port is picked at random (not kept from the source), and per connection
    # (fully-random), so every destination sees another public port.
    random_ports = " random,fully-random" if mapping == "random" else ""
    return f"""
table ip labnat {{
    counter dropped {{ }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "ext0" masquerade{random_ports}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "int0" oifname "ext0" accept
        counter name "dropped" drop
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "ext0" ct state new counter name "dropped" drop
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class Router:
    """One home network behind one NAT router: the router's namespace ``nat`` (public address
    ``wan_address`` on the wan, ``lan_address`` inside) and the home's namespace ``home``, whose
    one host is ``home_host``."""

    nat: str
    home: str
    wan_address: str
    lan_address: str
    home_host: str
    lan_prefix: str
    mapping: Mapping
    wan_port: str  # the wan side's end of the router's link (in the wan namespace)

    def dropped(self) -> int:
        """Packets this router dropped from the wan side (nothing behind it asked for them)."""
        out = _run(
            [
                find_binary("ip"),
                "netns",
                "exec",
                self.nat,
                find_binary("nft"),
                "list",
                "counter",
                "ip",
                "labnat",
                "dropped",
            ]
        )
        found = re.search(r"packets (\d+)", out)
        if found is None:
            raise LabError(f"no packet count in {out!r}")
        return int(found.group(1))

    def udp_mappings(self) -> list[str]:
        """This router's UDP conntrack entries, one line each (``/proc/net/nf_conntrack`` as
        the router's namespace sees it)."""
        with entered(self.nat):
            text = Path("/proc/net/nf_conntrack").read_text(encoding="ascii", errors="replace")
        return [line for line in text.splitlines() if " udp " in f" {line} "]

    def steps(self, ip: str, wan: str, sysctl: str) -> list[list[str]]:
        """The commands that link this router to the wan's bridge and its home behind it."""
        nat, home = self.nat, self.home
        lan_bits = self.lan_prefix.split("/")[1]
        return [
            # veths are made inside the namespaces: the host's interfaces are never touched
            [ip, "-n", wan, *f"link add {self.wan_port} type veth peer ext0 netns {nat}".split()],
            [ip, "-n", home, *f"link add lan0 type veth peer int0 netns {nat}".split()],
            [ip, "-n", wan, "link", "set", self.wan_port, "master", "br0"],
            [ip, "-n", nat, "addr", "add", f"{self.wan_address}/24", "dev", "ext0"],
            [ip, "-n", nat, "addr", "add", f"{self.lan_address}/{lan_bits}", "dev", "int0"],
            [ip, "-n", home, "addr", "add", f"{self.home_host}/{lan_bits}", "dev", "lan0"],
            *[[ip, "-n", ns, "link", "set", "lo", "up"] for ns in (nat, home)],
            [ip, "-n", wan, "link", "set", self.wan_port, "up"],
            [ip, "-n", nat, "link", "set", "ext0", "up"],
            [ip, "-n", nat, "link", "set", "int0", "up"],
            [ip, "-n", home, "link", "set", "lan0", "up"],
            [ip, "-n", home, "route", "add", "default", "via", self.lan_address],
            [ip, "netns", "exec", nat, sysctl, "-qw", "net.ipv4.ip_forward=1"],
        ]

    def configure(self, ip: str, nft: str, sysctl: str, udp_timeout_s: int) -> None:
        """Its nftables ruleset, then conntrack's UDP timeouts (their sysctls exist once the
        ruleset loaded nf_conntrack into the namespace)."""
        _run([ip, "netns", "exec", self.nat, nft, "-f", "-"], stdin=_ruleset(self.mapping))
        _run(
            [ip, "netns", "exec", self.nat, sysctl, "-qw",
             f"net.netfilter.nf_conntrack_udp_timeout={udp_timeout_s}",
             f"net.netfilter.nf_conntrack_udp_timeout_stream={udp_timeout_s}"]
        )  # fmt: skip


def _check_mapping(mapping: str) -> Mapping:
    for known in MAPPINGS:
        if mapping == known:
            return known
    raise LabError(f"a router's mapping is one of {MAPPINGS}, not {mapping!r}")


@dataclass(frozen=True, slots=True)
class NatLab:
    """The namespaces of one topology (module docstring); made by :meth:`create`.

    ``router`` is router A (the softphone's home: ``nat``, ``home``, ``mapping`` and
    :meth:`dropped` are its); ``second`` is router B and its home, or None."""

    wan: str
    relay: str
    router: Router
    second: Router | None
    udp_timeout_s: int

    registrar_host: ClassVar[str] = REGISTRAR_HOST
    far_host: ClassVar[str] = FAR_HOST
    turn_host: ClassVar[str] = TURN_HOST
    rtpengine_host: ClassVar[str] = RTPENGINE_HOST
    router_wan: ClassVar[str] = ROUTER_WAN
    home_host: ClassVar[str] = HOME_HOST

    @property
    def nat(self) -> str:
        return self.router.nat

    @property
    def home(self) -> str:
        return self.router.home

    @property
    def mapping(self) -> Mapping:
        return self.router.mapping

    @property
    def routers(self) -> tuple[Router, ...]:
        return (self.router,) if self.second is None else (self.router, self.second)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.wan, self.relay, *[ns for r in self.routers for ns in (r.nat, r.home)])

    @classmethod
    def create(
        cls,
        *,
        mapping: Mapping = "endpoint-independent",
        udp_timeout_s: int = 30,
        tag: int = 0,
        second_router: Mapping | None = None,
    ) -> NatLab:
        """Build the topology: router A with ``mapping``, and router B with ``second_router``
        when given (its home 192.168.2.0/24). LabError (after removing what was made) when a
        step fails or a mapping is unknown, PeerMissing when ``ip`` or ``nft`` is not
        installed."""
        mapping = _check_mapping(mapping)
        if second_router is not None:
            second_router = _check_mapping(second_router)
        ip = find_binary("ip", "iproute2")
        nft = find_binary("nft", "nftables")
        sysctl = find_binary("sysctl", "procps")
        remove_stale()
        base = f"{PREFIX}{os.getpid()}-{tag}"
        router = Router(
            nat=f"{base}-nat",
            home=f"{base}-home",
            wan_address=ROUTER_WAN,
            lan_address=ROUTER_LAN,
            home_host=HOME_HOST,
            lan_prefix="192.168.1.0/24",
            mapping=mapping,
            wan_port="wan0",
        )
        second = None
        if second_router is not None:
            second = Router(
                nat=f"{base}-nat2",
                home=f"{base}-home2",
                wan_address=ROUTER2_WAN,
                lan_address=ROUTER2_LAN,
                home_host=HOME2_HOST,
                lan_prefix="192.168.2.0/24",
                mapping=second_router,
                wan_port="wan1",
            )
        lab = cls(
            wan=f"{base}-wan",
            relay=f"{base}-relay",
            router=router,
            second=second,
            udp_timeout_s=udp_timeout_s,
        )
        made: list[str] = []
        try:
            for name in lab.namespaces:
                _run([ip, "netns", "add", name])
                made.append(name)
            wan = lab.wan
            steps = [
                [ip, "-n", wan, "link", "set", "lo", "up"],
                [ip, "-n", wan, "link", "add", "br0", "type", "bridge"],
                *[
                    [ip, "-n", wan, "addr", "add", f"{host}/24", "dev", "br0"]
                    for host in (REGISTRAR_HOST, FAR_HOST)
                ],
                [ip, "-n", wan, "link", "set", "br0", "up"],
                [ip, "-n", wan, *f"link add wan2 type veth peer eth0 netns {lab.relay}".split()],
                [ip, "-n", wan, "link", "set", "wan2", "master", "br0"],
                *[
                    [ip, "-n", lab.relay, "addr", "add", f"{host}/24", "dev", "eth0"]
                    for host in (TURN_HOST, RTPENGINE_HOST)
                ],
                *[[ip, "-n", lab.relay, "link", "set", dev, "up"] for dev in ("lo", "eth0")],
                [ip, "-n", wan, "link", "set", "wan2", "up"],
            ]
            for r in lab.routers:
                steps += r.steps(ip, wan, sysctl)
            # Private addresses lead to a router that drops what is sent there, as the internet
            # would (a relay told to send to a private ICE candidate must not get "network
            # unreachable": coturn ends the allocation on it). The more specific route wins:
            # router B's home through router B.
            for ns in (wan, lab.relay):
                steps += [
                    [ip, "-n", ns, "route", "add", r.lan_prefix, "via", r.wan_address]
                    for r in lab.routers[1:]
                ]
                steps.append([ip, "-n", ns, "route", "add", "192.168.0.0/16", "via", ROUTER_WAN])
            steps.append(
                [ip, "-n", wan, *f"route replace 203.0.113.0/24 dev br0 src {FAR_HOST}".split()]
            )
            for argv in steps:
                _run(argv)
            for r in lab.routers:
                r.configure(ip, nft, sysctl, udp_timeout_s)
        except (LabError, PeerMissing):
            for name in reversed(made):
                with contextlib.suppress(LabError):
                    _run([ip, "netns", "del", name])
            raise
        return lab

    def close(self) -> None:
        """Remove the namespaces (and with them the veths and the rulesets). Processes started
        inside must be stopped first: a namespace lives on while a process is in it."""
        ip = find_binary("ip", "iproute2")
        errors: list[str] = []
        for name in reversed(self.namespaces):
            if (NETNS_DIR / name).exists():
                try:
                    _run([ip, "netns", "del", name])
                except LabError as exc:
                    errors.append(str(exc))
        if errors:
            raise LabError("; ".join(errors))

    # -- what router A saw (router B's: ``lab.second.dropped()``, ``lab.second.udp_mappings()``)

    def dropped(self) -> int:
        """Packets router A dropped from the wan side (nothing of ours asked for them)."""
        return self.router.dropped()

    def udp_mappings(self) -> list[str]:
        """Router A's UDP conntrack entries, one line each."""
        return self.router.udp_mappings()
