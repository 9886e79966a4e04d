"""A home network behind a NAT router, built from Linux network namespaces and nftables.

Three namespaces joined by two veth pairs (documentation ranges, never the host's interfaces):

    home (192.168.1.100) --lan0/int0-- nat (192.168.1.1 | 203.0.113.1) --ext0/wan0-- wan
                                                                                 203.0.113.10 registrar
                                                                                 203.0.113.20 far-end phone

- ``home``: the softphone's side; default route via the router.
- ``nat``: ``ip_forward``, an nftables masquerade on ``ext0`` (with ``fully-random`` for random
  port mapping per destination, i.e. a "symmetric" NAT), a forward chain that accepts
  established/related traffic and LAN to WAN and drops the rest through the named counter
  ``dropped`` (one-way audio shows there at a glance), and a short UDP conntrack timeout so
  that keep-alives matter within a test. Unsolicited packets to the router itself are dropped
  too (and counted), as a home router's firewall does: accepted, a far end's early RTP to our
  public port would make a conntrack entry that moves our own mapping of that port elsewhere.
- ``wan``: the "internet": Kamailio and baresip. It routes 192.168.0.0/16 back through the router,
  so media sent to a private address reaches the router and is dropped there, as the internet
  would drop it. Its route's source is the far-end phone's address: baresip binds its RTP to
  0.0.0.0, and RTP leaving from the registrar's address would not match the router's conntrack
  entry.

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
    "HOME_HOST",
    "REGISTRAR_HOST",
    "ROUTER_LAN",
    "ROUTER_WAN",
    "Mapping",
    "NatLab",
    "entered",
    "netns_argv",
    "remove_stale",
]

REGISTRAR_HOST: Final = "203.0.113.10"
FAR_HOST: Final = "203.0.113.20"
ROUTER_WAN: Final = "203.0.113.1"
ROUTER_LAN: Final = "192.168.1.1"
HOME_HOST: Final = "192.168.1.100"
NETNS_DIR: Final = Path("/run/netns")
PREFIX: Final = "spnat"
COMMAND_TIMEOUT_S: Final = 10.0
CLONE_NEWNET: Final = 0x40000000

# "endpoint-independent": one public port per private one, whatever the destination (plain
# masquerade keeps the source port when it can). "random": a new random public port for each
# destination (fully-random), the mapping STUN cannot predict for anyone but the STUN server.
Mapping = Literal["endpoint-independent", "random"]


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
        found = re.fullmatch(rf"{PREFIX}(\d+)-\d+-(wan|nat|home)", entry.name)
        if found is None or _pid_alive(int(found.group(1))):
            continue
        with contextlib.suppress(LabError):
            _run([ip, "netns", "del", entry.name])
            removed.append(entry.name)
    return removed


def _ruleset(mapping: Mapping) -> str:
    random_ports = " fully-random" if mapping == "random" else ""
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
class NatLab:
    """The three namespaces of one topology (module docstring); made by :meth:`create`."""

    wan: str
    nat: str
    home: str
    mapping: Mapping
    udp_timeout_s: int

    registrar_host: ClassVar[str] = REGISTRAR_HOST
    far_host: ClassVar[str] = FAR_HOST
    router_wan: ClassVar[str] = ROUTER_WAN
    home_host: ClassVar[str] = HOME_HOST

    @classmethod
    def create(
        cls, *, mapping: Mapping = "endpoint-independent", udp_timeout_s: int = 30, tag: int = 0
    ) -> NatLab:
        """Build the topology; LabError (after removing what was made) when a step fails,
        PeerMissing when ``ip`` or ``nft`` is not installed."""
        ip = find_binary("ip", "iproute2")
        nft = find_binary("nft", "nftables")
        sysctl = find_binary("sysctl", "procps")
        remove_stale()
        base = f"{PREFIX}{os.getpid()}-{tag}"
        lab = cls(
            wan=f"{base}-wan",
            nat=f"{base}-nat",
            home=f"{base}-home",
            mapping=mapping,
            udp_timeout_s=udp_timeout_s,
        )
        made: list[str] = []
        try:
            for name in (lab.wan, lab.nat, lab.home):
                _run([ip, "netns", "add", name])
                made.append(name)
            wan, nat, home = lab.wan, lab.nat, lab.home
            steps = [
                # veths are made inside the namespaces: the host's interfaces are never touched
                [
                    ip,
                    "-n",
                    wan,
                    "link",
                    "add",
                    "wan0",
                    "type",
                    "veth",
                    "peer",
                    "ext0",
                    "netns",
                    nat,
                ],
                [
                    ip,
                    "-n",
                    home,
                    "link",
                    "add",
                    "lan0",
                    "type",
                    "veth",
                    "peer",
                    "int0",
                    "netns",
                    nat,
                ],
                [ip, "-n", wan, "addr", "add", f"{REGISTRAR_HOST}/24", "dev", "wan0"],
                [ip, "-n", wan, "addr", "add", f"{FAR_HOST}/24", "dev", "wan0"],
                [ip, "-n", nat, "addr", "add", f"{ROUTER_WAN}/24", "dev", "ext0"],
                [ip, "-n", nat, "addr", "add", f"{ROUTER_LAN}/24", "dev", "int0"],
                [ip, "-n", home, "addr", "add", f"{HOME_HOST}/24", "dev", "lan0"],
                *[[ip, "-n", ns, "link", "set", "lo", "up"] for ns in (wan, nat, home)],
                [ip, "-n", wan, "link", "set", "wan0", "up"],
                [ip, "-n", nat, "link", "set", "ext0", "up"],
                [ip, "-n", nat, "link", "set", "int0", "up"],
                [ip, "-n", home, "link", "set", "lan0", "up"],
                [ip, "-n", home, "route", "add", "default", "via", ROUTER_LAN],
                [ip, "-n", wan, "route", "add", "192.168.0.0/16", "via", ROUTER_WAN],
                [
                    ip,
                    "-n",
                    wan,
                    "route",
                    "replace",
                    "203.0.113.0/24",
                    "dev",
                    "wan0",
                    "src",
                    FAR_HOST,
                ],
                [ip, "netns", "exec", nat, sysctl, "-qw", "net.ipv4.ip_forward=1"],
            ]
            for argv in steps:
                _run(argv)
            _run([ip, "netns", "exec", nat, nft, "-f", "-"], stdin=_ruleset(mapping))
            # conntrack's sysctls exist once the ruleset loaded nf_conntrack into the namespace
            _run(
                [
                    ip,
                    "netns",
                    "exec",
                    nat,
                    sysctl,
                    "-qw",
                    f"net.netfilter.nf_conntrack_udp_timeout={udp_timeout_s}",
                    f"net.netfilter.nf_conntrack_udp_timeout_stream={udp_timeout_s}",
                ],
            )
        except (LabError, PeerMissing):
            for name in made:
                with contextlib.suppress(LabError):
                    _run([ip, "netns", "del", name])
            raise
        return lab

    def close(self) -> None:
        """Remove the namespaces (and with them the veths and the ruleset). Processes started
        inside must be stopped first: a namespace lives on while a process is in it."""
        ip = find_binary("ip", "iproute2")
        errors: list[str] = []
        for name in (self.home, self.nat, self.wan):
            if (NETNS_DIR / name).exists():
                try:
                    _run([ip, "netns", "del", name])
                except LabError as exc:
                    errors.append(str(exc))
        if errors:
            raise LabError("; ".join(errors))

    # -- what the router saw

    def dropped(self) -> int:
        """Packets the router dropped from the wan side (nothing of ours asked for them)."""
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
        """The router's UDP conntrack entries, one line each (``/proc/net/nf_conntrack`` as the
        router's namespace sees it)."""
        with entered(self.nat):
            text = Path("/proc/net/nf_conntrack").read_text(encoding="ascii", errors="replace")
        return [line for line in text.splitlines() if " udp " in f" {line} "]
