"""A STUN client for one question, "what address does the server see me at?" (RFC 8489), sans-IO.

Behind a NAT the address a socket is bound to is not the one the far end must send to. A STUN
Binding request sent from the socket itself is answered with XOR-MAPPED-ADDRESS: the public
address and port the NAT gave that socket (§14.2). The phone asks once per call for its RTP and
RTCP sockets and puts the answers into the SDP.

- :class:`StunMessage`: parse and serialise the 20-byte header (§5) and the attributes (§14);
  :func:`is_stun` tells STUN from RTP and RTCP on one socket (RFC 7983 §7: the first byte is
  0-3, and the magic cookie is there).
- :class:`BindingTransaction`: one request over UDP with its retransmissions (§6.2.1: the first
  after RTO, each interval doubling, the last send waited on for ``last_wait_rtos`` x RTO), its
  states as a table. Inputs: ``receive_datagram``, ``handle_timer`` (each with ``now``);
  outputs: events and ``datagrams_to_send()``. The transaction id comes from an injected
  ``random.Random``.

No authentication (Binding needs none, §9) and no FINGERPRINT: the answer is checked by its
transaction id, its magic cookie and the address it came from.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    import random

__all__ = [
    "BINDING_ERROR",
    "BINDING_REQUEST",
    "BINDING_SUCCESS",
    "BindingFailed",
    "BindingInput",
    "BindingState",
    "BindingSucceeded",
    "BindingTransaction",
    "StunEvent",
    "StunMessage",
    "StunParseError",
    "is_stun",
]

Address: TypeAlias = tuple[str, int]

MAGIC_COOKIE: Final = 0x2112A442
HEADER: Final = struct.Struct("!HHI12s")
BINDING_REQUEST: Final = 0x0001
BINDING_SUCCESS: Final = 0x0101
BINDING_ERROR: Final = 0x0111
MAPPED_ADDRESS: Final = 0x0001
XOR_MAPPED_ADDRESS: Final = 0x0020
ERROR_CODE: Final = 0x0009
SOFTWARE: Final = 0x8022
FAMILY_IPV4: Final = 0x01
FAMILY_IPV6: Final = 0x02
RTO_S: Final = 0.5  # §6.2.1: the initial retransmission timeout
MAX_SENDS: Final = 7  # Rc
LAST_WAIT_RTOS: Final = 16  # Rm


class StunParseError(ValueError):
    """Bytes that are not a STUN message we can read."""


def is_stun(data: bytes) -> bool:
    """A STUN message, not RTP or RTCP (RFC 7983 §7: first byte 0-3; RFC 8489 §5: the cookie)."""
    return (
        len(data) >= HEADER.size
        and data[0] < 4
        and int.from_bytes(data[4:8], "big") == MAGIC_COOKIE
        and len(data) % 4 == 0
    )


@dataclass(frozen=True, slots=True)
class StunMessage:
    """One STUN message: its type (method and class, §5), transaction id and attributes."""

    message_type: int
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> StunMessage:
        if not is_stun(data):
            raise StunParseError("not a STUN message (first bits, magic cookie or length)")
        message_type, length, _cookie, transaction_id = HEADER.unpack_from(data)
        if HEADER.size + length != len(data):
            raise StunParseError(f"length {length} does not match {len(data) - HEADER.size} bytes")
        attributes: list[tuple[int, bytes]] = []
        offset = HEADER.size
        while offset < len(data):
            if offset + 4 > len(data):
                raise StunParseError("truncated attribute header")
            kind, size = struct.unpack_from("!HH", data, offset)
            value = data[offset + 4 : offset + 4 + size]
            if len(value) != size:
                raise StunParseError(f"attribute 0x{kind:04x} is truncated")
            attributes.append((kind, value))
            offset += 4 + size + (-size % 4)  # §14: values are padded to 4 bytes
        return cls(message_type, transaction_id, tuple(attributes))

    def __bytes__(self) -> bytes:
        body = b"".join(
            struct.pack("!HH", kind, len(value)) + value + b"\x00" * (-len(value) % 4)
            for kind, value in self.attributes
        )
        header = HEADER.pack(self.message_type, len(body), MAGIC_COOKIE, self.transaction_id)
        return header + body

    def attribute(self, kind: int) -> bytes | None:
        return next((value for k, value in self.attributes if k == kind), None)

    def mapped_address(self) -> Address | None:
        """XOR-MAPPED-ADDRESS (§14.2), else the old MAPPED-ADDRESS (§14.1) of RFC 3489
        servers; None when neither is there or readable."""
        xored = self.attribute(XOR_MAPPED_ADDRESS)
        if xored is not None:
            return _address(xored, xor_with=self.transaction_id)
        plain = self.attribute(MAPPED_ADDRESS)
        return _address(plain, xor_with=None) if plain is not None else None

    def error(self) -> tuple[int, str] | None:
        """ERROR-CODE (§14.8): (code, reason phrase)."""
        value = self.attribute(ERROR_CODE)
        if value is None or len(value) < 4:
            return None
        return (value[2] & 0x07) * 100 + value[3], value[4:].decode("utf-8", "replace")


def _address(value: bytes, *, xor_with: bytes | None) -> Address | None:
    if len(value) < 8:
        return None
    family, port = value[1], int.from_bytes(value[2:4], "big")
    raw = value[4:]
    cookie = MAGIC_COOKIE.to_bytes(4, "big")
    if xor_with is not None:
        port ^= MAGIC_COOKIE >> 16
        mask = cookie + xor_with  # §14.2: IPv4 with the cookie, IPv6 with cookie + id
        raw = bytes(a ^ b for a, b in zip(raw, mask, strict=False))
    if family == FAMILY_IPV4 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)), port
    if family == FAMILY_IPV6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw)), port
    return None


def xor_mapped_address(address: Address, transaction_id: bytes) -> bytes:
    """The value of an XOR-MAPPED-ADDRESS for ``address`` (what a server sends; for tests)."""
    ip = ipaddress.ip_address(address[0])
    family = FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6
    mask = MAGIC_COOKIE.to_bytes(4, "big") + transaction_id
    raw = bytes(a ^ b for a, b in zip(ip.packed, mask, strict=False))
    return bytes([0, family]) + (address[1] ^ (MAGIC_COOKIE >> 16)).to_bytes(2, "big") + raw


# --- the transaction ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BindingSucceeded:
    """The server sees our socket at ``mapped``."""

    server: Address
    mapped: Address


@dataclass(frozen=True, slots=True)
class BindingFailed:
    """No usable answer: an error response, or silence until the transaction timed out."""

    server: Address
    reason: str


StunEvent: TypeAlias = BindingSucceeded | BindingFailed


class BindingState(Enum):
    WAITING = auto()  # sent, waiting for the answer (retransmitting)
    SUCCEEDED = auto()
    FAILED = auto()


class BindingInput(Enum):
    SUCCESS_RECEIVED = auto()
    ERROR_RECEIVED = auto()
    TIMED_OUT = auto()


BS, BI = BindingState, BindingInput
# RFC 8489 §6.2.1 and §6.3. A pair not listed leaves the state as it is: a late or repeated
# answer to a finished transaction changes nothing.
BINDING_TRANSITIONS: Final[Mapping[tuple[BindingState, BindingInput], BindingState]] = {
    (BS.WAITING, BI.SUCCESS_RECEIVED): BS.SUCCEEDED,
    (BS.WAITING, BI.ERROR_RECEIVED): BS.FAILED,
    (BS.WAITING, BI.TIMED_OUT): BS.FAILED,
}


class BindingTransaction:
    """One Binding request to ``server`` over UDP, retransmitted until answered (module docstring).

    The defaults are RFC 8489's (39.5 s before giving up); a caller that must not keep a call
    waiting passes fewer sends (``max_sends=3, last_wait_rtos=2``: 2.5 s)."""

    def __init__(
        self,
        server: Address,
        *,
        rng: random.Random,
        now: float,
        rto_s: float = RTO_S,
        max_sends: int = MAX_SENDS,
        last_wait_rtos: int = LAST_WAIT_RTOS,
        software: str | None = None,
    ) -> None:
        self.server = server
        self.transaction_id = rng.getrandbits(96).to_bytes(12, "big")
        attributes: tuple[tuple[int, bytes], ...] = ()
        if software:
            attributes = ((SOFTWARE, software.encode()[:127]),)
        self.request = bytes(StunMessage(BINDING_REQUEST, self.transaction_id, attributes))
        self.state = BindingState.WAITING
        self._rto_s = rto_s
        self._max_sends = max_sends
        self._last_wait_rtos = last_wait_rtos
        self._sends = 1
        self._interval_s = rto_s
        self._timer_at: float | None = (
            now + rto_s if max_sends > 1 else now + rto_s * last_wait_rtos
        )
        self._outbox: list[tuple[bytes, Address]] = [(self.request, server)]

    def _apply(self, event: BindingInput) -> bool:
        nxt = BINDING_TRANSITIONS.get((self.state, event))
        if nxt is None:
            return False
        self.state = nxt
        self._timer_at = None
        return True

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        return self._timer_at

    def handle_timer(self, now: float) -> list[StunEvent]:
        if self._timer_at is None or now < self._timer_at:
            return []
        if self._sends >= self._max_sends:
            waited = self._rto_s * (2 ** (self._max_sends - 1) - 1 + self._last_wait_rtos)
            if not self._apply(BindingInput.TIMED_OUT):
                return []
            reason = f"no answer from {self.server[0]}:{self.server[1]} in {waited:g} s"
            return [BindingFailed(self.server, reason)]
        self._sends += 1
        self._outbox.append((self.request, self.server))
        self._interval_s *= 2
        if self._sends >= self._max_sends:
            self._timer_at = now + self._rto_s * self._last_wait_rtos
        else:
            self._timer_at = now + self._interval_s
        return []

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> list[StunEvent]:
        """A datagram that came to the socket; only our answer, from our server, counts."""
        if self.state is not BindingState.WAITING or addr != self.server:
            return []
        try:
            message = StunMessage.parse(data)
        except StunParseError:
            return []
        if message.transaction_id != self.transaction_id:
            return []
        if message.message_type == BINDING_SUCCESS:
            mapped = message.mapped_address()
            if mapped is None:
                self._apply(BindingInput.ERROR_RECEIVED)
                return [BindingFailed(self.server, "the answer carries no mapped address")]
            self._apply(BindingInput.SUCCESS_RECEIVED)
            return [BindingSucceeded(self.server, mapped)]
        if message.message_type == BINDING_ERROR:
            self._apply(BindingInput.ERROR_RECEIVED)
            code, phrase = message.error() or (0, "no ERROR-CODE")
            return [BindingFailed(self.server, f"error {code} {phrase}".strip())]
        return []
