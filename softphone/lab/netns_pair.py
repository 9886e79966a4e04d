"""Two network namespaces joined by a veth pair, and total packet loss on demand (nftables).
(A home network behind a NAT router is :mod:`softphone.lab.netns`; this pair is for cutting a
link, as the reliability faults do.)

:class:`NamespacePair` makes ``<name>-a`` (``203.0.113.1``) and ``<name>-b`` (``203.0.113.2``),
documentation addresses (RFC 5737) that exist only inside them, with loopback up in each. A
process runs in one with :meth:`NamespacePair.prefix` (``ip netns exec NS``) before its argv.
:meth:`NamespacePair.drop_all` adds an nftables table to one side whose input and output chains
drop every packet (the link is cut both ways); :meth:`NamespacePair.restore` deletes it.
:meth:`NamespacePair.remove` deletes both namespaces, which ends the veth pair and the rules.

Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); :func:`namespaces_usable`
says why not when they cannot be made. Names carry our pid, so runs side by side never meet.
"""

from __future__ import annotations

import os
import subprocess
from typing import Final, Literal

from softphone.lab.process import LabError, PeerMissing, find_binary

__all__ = ["NamespacePair", "namespaces_usable"]

Side = Literal["a", "b"]
ADDRESSES: Final[dict[Side, str]] = {"a": "203.0.113.1", "b": "203.0.113.2"}
_TABLE: Final = "softphone_lab_loss"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def namespaces_usable() -> str | None:
    """None when this process can make namespaces and nftables rules; otherwise why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        find_binary("ip", "iproute2")
        find_binary("nft", "nftables")
    except PeerMissing as exc:
        return str(exc)
    return None


class NamespacePair:
    """See the module docstring."""

    def __init__(self, name: str = "sp-lab") -> None:
        self.name = f"{name}-{os.getpid()}"
        self._ip = find_binary("ip", "iproute2")
        self._nft = find_binary("nft", "nftables")
        self._made: list[str] = []

    def namespace(self, side: Side) -> str:
        return f"{self.name}-{side}"

    def address(self, side: Side) -> str:
        return ADDRESSES[side]

    def prefix(self, side: Side) -> tuple[str, ...]:
        return (self._ip, "netns", "exec", self.namespace(side))

    def create(self) -> NamespacePair:
        ip = self._ip
        try:
            for side in ("a", "b"):
                _run([ip, "netns", "add", self.namespace(side)])
                self._made.append(self.namespace(side))
                _run([*self.prefix(side), ip, "link", "set", "lo", "up"])
            veth_a, veth_b = f"vsa{os.getpid()}"[:15], f"vsb{os.getpid()}"[:15]
            _run([ip, "link", "add", veth_a, "netns", self.namespace("a"), "type", "veth",
                  "peer", "name", veth_b, "netns", self.namespace("b")])  # fmt: skip
            for side, dev in (("a", veth_a), ("b", veth_b)):
                ns: Side = "a" if side == "a" else "b"
                _run([*self.prefix(ns), ip, "addr", "add", f"{ADDRESSES[ns]}/24", "dev", dev])
                _run([*self.prefix(ns), ip, "link", "set", dev, "up"])
        except LabError:
            self.remove()
            raise
        return self

    def drop_all(self, side: Side) -> None:
        """Every packet into and out of ``side`` is dropped from now on."""
        rules = (
            f"table inet {_TABLE} {{\n"
            "  chain in { type filter hook input priority -100; policy drop; }\n"
            "  chain out { type filter hook output priority -100; policy drop; }\n"
            "}\n"
        )
        done = subprocess.run(
            [*self.prefix(side), self._nft, "-f", "-"],
            input=rules,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if done.returncode != 0:
            raise LabError(f"nft: {done.stderr.strip()}")

    def restore(self, side: Side) -> None:
        _run([*self.prefix(side), self._nft, "delete", "table", "inet", _TABLE])

    def remove(self) -> None:
        for ns in reversed(self._made):
            subprocess.run([self._ip, "netns", "delete", ns], capture_output=True, check=False)
        self._made.clear()

    def __enter__(self) -> NamespacePair:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()
