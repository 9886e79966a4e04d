"""A call's media protection: what the RTP port receives is sorted by its first byte (RFC 7983),
DTLS records go to the handshake, SRTP and SRTCP are unprotected; what the RTP session sends is
protected. The phone's media loop (phone/media.py) calls this at the seam between its sockets
and the sans-IO RTP session, which only ever sees plain RTP.

With SDES the keys are in the negotiated SDP. With DTLS-SRTP each media component runs its own
handshake (RFC 5764 §4.1): one on the RTP port, and one on the RTCP port unless rtcp-mux puts
RTCP on the RTP port too (RFC 5761). Until a component's keys are there, its packets are neither
sent nor accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from softphone.sdp import NegotiatedSecurity
from softphone.srtp.certificate import DtlsCertificate
from softphone.srtp.context import SrtpContext
from softphone.srtp.dtls import DtlsSrtp, DtlsState

__all__ = ["MediaProtection", "is_rtcp"]

# RFC 7983 §7: the first byte of a datagram on a media port.
DTLS_FIRST: Final = range(20, 64)
RTP_FIRST: Final = range(128, 192)


def is_rtcp(packet: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192-223 occupy the RTP header's marker+PT byte."""
    return len(packet) > 1 and 192 <= packet[1] <= 223


class MediaProtection:
    """SRTP for one call, keyed by SDES or by DTLS-SRTP handshakes.

    ``incoming`` returns the plain packet, or None (a DTLS record consumed, or a packet dropped
    and counted). ``outgoing`` returns the protected packet, or None while there are no keys.
    ``certificate`` is called for DTLS-SRTP only."""

    def __init__(
        self,
        security: NegotiatedSecurity,
        *,
        rtcp_mux: bool,
        certificate: Callable[[], DtlsCertificate],
    ) -> None:
        self.security = security
        self._certificate = certificate
        self._rtcp_mux = rtcp_mux
        # component (False: RTP port, True: RTCP port) -> its context, and its handshake.
        self._contexts: dict[bool, SrtpContext] = {}
        self._dtls: dict[bool, DtlsSrtp] = {}
        self._dtls_source: dict[bool, tuple[str, int]] = {}
        self._retired = _Counts()
        self._outgoing: list[tuple[bytes, bool, tuple[str, int] | None]] = []
        self._key(security, rtcp_mux)

    @property
    def method(self) -> str:
        return self.security.method

    @property
    def suite(self) -> str | None:
        """The SRTP suite in use (DTLS-SRTP: known once the handshake is done)."""
        if self.security.suite is not None:
            return self.security.suite
        context = self._contexts.get(False)
        return context.suite if context is not None else None

    @property
    def dtls_state(self) -> DtlsState | None:
        handshake = self._dtls.get(False)
        return handshake.state if handshake is not None else None

    @property
    def failure(self) -> str | None:
        """Why the media cannot be protected (a failed handshake), else None."""
        return next((h.error for h in self._dtls.values() if h.error is not None), None)

    def _key(self, security: NegotiatedSecurity, rtcp_mux: bool) -> None:
        if security.method == "sdes":
            context = SrtpContext(
                security.suite or "",
                local_key=security.local_key,
                remote_key=security.remote_key,
                remote_mki_length=security.remote_mki_length,
            )
            self._contexts = {False: context, True: context}
            return
        assert security.remote_fingerprint is not None and security.dtls_role is not None
        components = (False,) if rtcp_mux else (False, True)
        for component in components:
            self._dtls[component] = DtlsSrtp(
                self._certificate(),
                role=security.dtls_role,
                remote_fingerprint=security.remote_fingerprint,
            )

    def update(self, security: NegotiatedSecurity, *, rtcp_mux: bool, now: float) -> None:
        """A re-offer was negotiated. What our side sends with carries on wherever it can, so
        the rollover counter never restarts under a key already used (RFC 3711 §3.3.1):

        - SDES, same suite and our key: only the peer's key is replaced (when it changed);
        - DTLS-SRTP, the same peer certificate: the association and its keys stay;
        - anything else: new contexts (and, for DTLS-SRTP, a new handshake)."""
        current = self.security
        if rtcp_mux == self._rtcp_mux and security.method == current.method:
            if (
                security.method == "sdes"
                and security.suite == current.suite
                and security.local_key == current.local_key
            ):
                if (security.remote_key, security.remote_mki_length) != (
                    current.remote_key,
                    current.remote_mki_length,
                ):
                    self._contexts[False].rekey_remote(
                        security.remote_key, remote_mki_length=security.remote_mki_length
                    )
                self.security = security
                return
            if (
                security.method == "dtls-srtp"
                and security.remote_fingerprint == current.remote_fingerprint
            ):
                return
        self.close()
        for context in {id(c): c for c in self._contexts.values()}.values():
            self._retired.add(context)
        self.security, self._rtcp_mux = security, rtcp_mux
        self._contexts, self._dtls, self._dtls_source = {}, {}, {}
        self._key(security, rtcp_mux)
        self.start(now)

    def start(self, now: float) -> None:
        """Begin the DTLS handshakes (a client sends its ClientHello now)."""
        for component, handshake in self._dtls.items():
            handshake.start(now)
            self._take(component, handshake)

    # -- the seam
    def incoming(
        self, data: bytes, addr: tuple[str, int], via_rtcp: bool, now: float
    ) -> bytes | None:
        if not data:
            return None
        first = data[0]
        component = via_rtcp and not self._rtcp_mux
        if first in DTLS_FIRST:
            handshake = self._dtls.get(component)
            if handshake is not None:
                self._dtls_source[component] = addr
                handshake.receive_datagram(data, now)
                self._take(component, handshake)
            return None
        if first not in RTP_FIRST:  # STUN, ZRTP, TURN channels: nothing we speak
            return None
        context = self._contexts.get(component)
        if context is None:
            self._retired.early += 1
            return None
        if via_rtcp or is_rtcp(data):
            return context.unprotect_rtcp(data)
        return context.unprotect_rtp(data)

    def outgoing(self, data: bytes, via_rtcp: bool) -> bytes | None:
        context = self._contexts.get(via_rtcp and not self._rtcp_mux)
        if context is None:
            return None
        if via_rtcp or is_rtcp(data):
            return context.protect_rtcp(data)
        return context.protect_rtp(data)

    def datagrams_to_send(self) -> list[tuple[bytes, bool, tuple[str, int] | None]]:
        """DTLS records: (data, via the RTCP port, where the peer's records came from or None
        for the address in its SDP)."""
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        timers = [t for h in self._dtls.values() if (t := h.get_timer()) is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        for component, handshake in self._dtls.items():
            handshake.handle_timer(now)
            self._take(component, handshake)

    def close(self) -> None:
        for component, handshake in self._dtls.items():
            handshake.close()
            self._take(component, handshake)

    def _take(self, component: bool, handshake: DtlsSrtp) -> None:
        source = self._dtls_source.get(component)
        for record in handshake.datagrams_to_send():
            self._outgoing.append((record, component, source))
        if handshake.keys is not None and component not in self._contexts:
            keys = handshake.keys
            context = SrtpContext(keys.suite, local_key=keys.local_key, remote_key=keys.remote_key)
            self._contexts[component] = context
            if self._rtcp_mux:
                self._contexts[True] = context

    def stats(self) -> dict[str, int]:
        counts = _Counts()
        counts.early = self._retired.early
        for context in {id(c): c for c in self._contexts.values()}.values():
            counts.add(context)
        counts.add_counts(self._retired)
        return counts.as_dict()


class _Counts:
    def __init__(self) -> None:
        self.protected = self.unprotected = self.auth = self.replay = self.malformed = 0
        self.early = 0  # SRTP before the keys (DTLS-SRTP handshake not done)

    def add(self, context: SrtpContext) -> None:
        s = context.stats
        self.protected += s.protected
        self.unprotected += s.unprotected
        self.auth += s.auth_failures
        self.replay += s.replay_drops
        self.malformed += s.malformed

    def add_counts(self, other: _Counts) -> None:
        self.protected += other.protected
        self.unprotected += other.unprotected
        self.auth += other.auth
        self.replay += other.replay
        self.malformed += other.malformed

    def as_dict(self) -> dict[str, int]:
        return {
            "srtp_auth_failures": self.auth,
            "srtp_replay_drops": self.replay,
            "srtp_dropped": self.malformed + self.early,
        }
