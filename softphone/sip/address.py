"""Transport addresses as the cores see them (no sockets here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

TransportName: TypeAlias = Literal["udp", "tcp", "tls"]

TRANSPORTS: Final[tuple[TransportName, ...]] = ("udp", "tcp", "tls")
DEFAULT_PORTS: Final[dict[TransportName, int]] = {"udp": 5060, "tcp": 5060, "tls": 5061}
RELIABLE: Final[frozenset[TransportName]] = frozenset({"tcp", "tls"})


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message goes or came from: a transport, an IP literal and a port.

    ``host`` is always an IP address (v4 or v6, v6 without brackets); name resolution
    (RFC 3263) happens before an Address is made. For TLS, ``server_name`` is the name the
    peer's certificate must carry; it does not take part in equality, so a connection is
    identified by (transport, host, port) alone.
    """

    transport: TransportName
    host: str
    port: int
    server_name: str | None = field(default=None, compare=False)

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.transport}:{self.host_port}"
