"""DTLS-SRTP (RFC 5764): the DTLS handshake on a media port, and the SRTP keys it exports.

Sans-IO in shape (aioquic's): datagrams in through :meth:`DtlsSrtp.receive_datagram`, records
out through :meth:`DtlsSrtp.datagrams_to_send`, time through ``now`` and one deadline
(:meth:`get_timer` / :meth:`handle_timer`). The phone's media loop pumps it.

Why pyOpenSSL: Python's ``ssl`` module has no DTLS, and ``cryptography`` has no TLS at all.
pyOpenSSL exposes OpenSSL's ``DTLS_METHOD`` with memory BIOs (no socket: the records are ours to
carry), the use_srtp extension (RFC 5764 §4.1), the DTLS retransmission timer and the keying
material exporter (RFC 5705). aiortc builds on the same calls.

The peer's certificate is self-signed; what authenticates it is its hash, which must equal the
``a=fingerprint`` of its SDP (RFC 5763 §5). Until the handshake is done nothing may be sent as
SRTP, and a handshake that fails or never completes leaves the call without media (FAILED).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final, Literal

from OpenSSL import SSL, crypto

from softphone.sdp.crypto import SUITES, Fingerprint
from softphone.srtp.certificate import DtlsCertificate, certificate_fingerprint

__all__ = ["DtlsInput", "DtlsSrtp", "DtlsState", "SrtpKeys"]

logger = logging.getLogger(__name__)

# RFC 5764 §4.1.2 profile names (RFC 7714 §14.2 for GCM) -> the SDES names SrtpContext takes.
DTLS_PROFILES: Final = {
    b"SRTP_AEAD_AES_128_GCM": "AEAD_AES_128_GCM",
    b"SRTP_AES128_CM_SHA1_80": "AES_CM_128_HMAC_SHA1_80",
    b"SRTP_AES128_CM_SHA1_32": "AES_CM_128_HMAC_SHA1_32",
}
EXPORTER_LABEL: Final = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
HANDSHAKE_TIMEOUT_S: Final = 20.0  # a handshake not done by then will not be
MAX_DATAGRAM: Final = 1200  # records packed per datagram up to this size (no IP fragments)
_RECORD_HEADER: Final = struct.Struct("!B2s2s6sH")  # RFC 6347 §4.1: type version epoch seq len


class DtlsState(Enum):
    NEW = auto()
    HANDSHAKING = auto()
    CONNECTED = auto()
    FAILED = auto()
    CLOSED = auto()


class DtlsInput(Enum):
    START = auto()
    HANDSHAKE_DONE = auto()
    HANDSHAKE_FAILED = auto()  # an alert, a bad fingerprint, no SRTP profile in common
    TIMED_OUT = auto()
    PEER_CLOSED = auto()  # close_notify
    CLOSE = auto()


S, In = DtlsState, DtlsInput
# A pair not listed is ignored: a late record after FAILED or CLOSED changes nothing.
TRANSITIONS: Final[Mapping[tuple[DtlsState, DtlsInput], DtlsState]] = {
    (S.NEW, In.START): S.HANDSHAKING,
    (S.NEW, In.CLOSE): S.CLOSED,
    (S.HANDSHAKING, In.HANDSHAKE_DONE): S.CONNECTED,
    (S.HANDSHAKING, In.HANDSHAKE_FAILED): S.FAILED,
    (S.HANDSHAKING, In.TIMED_OUT): S.FAILED,
    (S.HANDSHAKING, In.PEER_CLOSED): S.FAILED,
    (S.HANDSHAKING, In.CLOSE): S.CLOSED,
    (S.CONNECTED, In.PEER_CLOSED): S.CLOSED,
    (S.CONNECTED, In.CLOSE): S.CLOSED,
    (S.FAILED, In.CLOSE): S.FAILED,
}


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What the handshake exported: the suite and master key ‖ salt for each direction."""

    suite: str
    local_key: bytes = field(repr=False)
    remote_key: bytes = field(repr=False)


def split_records(data: bytes, limit: int = MAX_DATAGRAM) -> list[bytes]:
    """Whole DTLS records (RFC 6347 §4.1) grouped into datagrams of at most ``limit`` bytes,
    as far as records allow (a record is never cut)."""
    datagrams: list[bytes] = []
    current = b""
    at = 0
    while at + _RECORD_HEADER.size <= len(data):
        length = _RECORD_HEADER.unpack_from(data, at)[4]
        record = data[at : at + _RECORD_HEADER.size + length]
        at += len(record)
        if current and len(current) + len(record) > limit:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams


def _accept_any(
    connection: SSL.Connection, certificate: crypto.X509, error: int, depth: int, ok: int
) -> bool:
    return True  # self-signed by design: the fingerprint check after the handshake decides


def _context(certificate: DtlsCertificate) -> SSL.Context:
    context = SSL.Context(SSL.DTLS_METHOD)
    context.set_options(SSL.OP_NO_QUERY_MTU)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any)
    context.use_certificate(certificate.certificate)
    context.use_privatekey(certificate.private_key)
    context.check_privatekey()
    context.set_cipher_list(b"HIGH:!aNULL:!MD5:!RC4:!3DES")
    context.set_tlsext_use_srtp(b":".join(DTLS_PROFILES))  # our preference order
    return context


class DtlsSrtp:
    """One DTLS association for one media component (RTP, or RTCP without rtcp-mux).

    ``role`` is ours: "client" sends the ClientHello (a=setup:active), "server" waits for it."""

    def __init__(
        self,
        certificate: DtlsCertificate,
        *,
        role: Literal["client", "server"],
        remote_fingerprint: Fingerprint,
    ) -> None:
        self.role = role
        self.remote_fingerprint = remote_fingerprint
        self.state = DtlsState.NEW
        self.keys: SrtpKeys | None = None
        self.error: str | None = None
        self._connection = SSL.Connection(_context(certificate), None)
        self._connection.set_ciphertext_mtu(MAX_DATAGRAM)
        if role == "client":
            self._connection.set_connect_state()
        else:
            self._connection.set_accept_state()
        self._outgoing: list[bytes] = []
        self._retransmit_at: float | None = None
        self._give_up_at: float | None = None

    def _apply(self, event: DtlsInput) -> None:
        after = TRANSITIONS.get((self.state, event))
        if after is not None:
            self.state = after

    # -- inputs
    def start(self, now: float) -> None:
        """Begin: a client sends its ClientHello now; a server waits for one."""
        if self.state is not DtlsState.NEW:
            return
        self._apply(DtlsInput.START)
        self._give_up_at = now + HANDSHAKE_TIMEOUT_S
        self._step(now)

    def receive_datagram(self, data: bytes, now: float) -> None:
        """A datagram whose first byte says DTLS (20-63, RFC 7983 §7)."""
        if self.state not in (DtlsState.HANDSHAKING, DtlsState.CONNECTED):
            return
        try:
            self._connection.bio_write(data)
        except SSL.Error:
            return
        self._step(now)

    def handle_timer(self, now: float) -> None:
        if self.state is not DtlsState.HANDSHAKING:
            return
        if self._give_up_at is not None and now >= self._give_up_at:
            self._fail("the DTLS handshake did not complete", DtlsInput.TIMED_OUT)
            return
        if self._retransmit_at is not None and now >= self._retransmit_at:
            try:
                self._connection.DTLSv1_handle_timeout()  # RFC 6347 §4.2.4: resend the flight
            except SSL.Error as exc:
                self._fail(f"DTLS retransmission failed: {exc}", DtlsInput.HANDSHAKE_FAILED)
                return
            self._collect(now)

    def close(self) -> None:
        """Send close_notify when connected (RFC 5246 §7.2.1); nothing more after this."""
        if self.state is DtlsState.CONNECTED:
            try:
                self._connection.shutdown()
            except SSL.Error:
                pass
            self._drain()
        self._apply(DtlsInput.CLOSE)
        self._retransmit_at = self._give_up_at = None

    # -- outputs
    def datagrams_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        if self.state is not DtlsState.HANDSHAKING:
            return None
        timers = [t for t in (self._retransmit_at, self._give_up_at) if t is not None]
        return min(timers) if timers else None

    # -- the handshake
    def _step(self, now: float) -> None:
        if self.state is DtlsState.HANDSHAKING:
            try:
                self._connection.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                self._drain()  # the alert goes to the peer
                self._fail(f"DTLS handshake failed: {exc}", DtlsInput.HANDSHAKE_FAILED)
                return
            else:
                self._drain()
                self._established()
                return
        elif self.state is DtlsState.CONNECTED:
            try:
                self._connection.recv(4096)  # no application data in DTLS-SRTP; alerts only
            except SSL.ZeroReturnError:
                self._apply(DtlsInput.PEER_CLOSED)
            except SSL.Error:
                pass
        self._collect(now)

    def _collect(self, now: float) -> None:
        self._drain()
        if self.state is DtlsState.HANDSHAKING:
            timeout = self._connection.DTLSv1_get_timeout()
            self._retransmit_at = now + timeout if timeout is not None else None

    def _drain(self) -> None:
        pending = b""
        while True:
            try:
                pending += self._connection.bio_read(65536)
            except SSL.WantReadError:
                break
        if pending:
            self._outgoing += split_records(pending)

    def _fail(self, reason: str, event: DtlsInput) -> None:
        self.error = reason
        self._apply(event)
        self._retransmit_at = self._give_up_at = None
        logger.info("%s", reason)

    def _established(self) -> None:
        peer = self._connection.get_peer_certificate(as_cryptography=True)
        if peer is None:
            self._fail("the DTLS peer sent no certificate", DtlsInput.HANDSHAKE_FAILED)
            return
        seen = certificate_fingerprint(peer, self.remote_fingerprint.algorithm)
        if seen.value != self.remote_fingerprint.value:
            self._fail(
                "the DTLS peer's certificate does not match its a=fingerprint",
                DtlsInput.HANDSHAKE_FAILED,
            )
            return
        profile = self._connection.get_selected_srtp_profile()
        suite = DTLS_PROFILES.get(profile)
        if suite is None:
            self._fail("no SRTP profile in common (use_srtp)", DtlsInput.HANDSHAKE_FAILED)
            return
        spec = SUITES[suite]
        material = self._connection.export_keying_material(EXPORTER_LABEL, 2 * spec.key_salt_length)
        # RFC 5764 §4.2: client key, server key, client salt, server salt.
        k, s = spec.key_length, spec.salt_length
        client_key, server_key = material[:k], material[k : 2 * k]
        client_salt, server_salt = material[2 * k : 2 * k + s], material[2 * k + s :]
        client, server = client_key + client_salt, server_key + server_salt
        local, remote = (client, server) if self.role == "client" else (server, client)
        self.keys = SrtpKeys(suite, local, remote)
        self._retransmit_at = self._give_up_at = None
        self._apply(DtlsInput.HANDSHAKE_DONE)
        logger.info("DTLS-SRTP handshake done as %s: %s", self.role, suite)
