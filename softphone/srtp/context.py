"""SRTP and SRTCP protection for one stream pair (RFC 3711), through libsrtp (pylibsrtp).

libsrtp 2 is the reference implementation: AES counter mode, HMAC-SHA1 and AES-GCM, the key
derivation, the rollover counter and the replay window are its business, not ours. An
:class:`SrtpContext` holds two libsrtp sessions, one keyed with our master key for what we send
and one with the peer's for what we receive, and counts what it had to drop.

Received packets that fail authentication or the replay check are dropped and counted, never
returned: they must not be played, and they must not move the RTP session's latch either.

An MKI (RFC 3711 §3.1) the peer announced in SDES is stripped before libsrtp sees the packet:
the authentication tag does not cover it (§4.2), and pylibsrtp does not take MKIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pylibsrtp

__all__ = ["PROFILES", "SrtpContext", "SrtpError", "SrtpStats"]

# SDES suite names (RFC 4568 §6.2, RFC 7714 §12) and DTLS-SRTP profile names (RFC 5764 §4.1.2,
# RFC 7714 §14.2) -> libsrtp's profile, the RTP and RTCP tag lengths that follow an MKI.
# SRTCP keeps an 80-bit tag with the _32 suite (RFC 3711 §5.2, RFC 4568 §6.2.2). With AES-GCM
# the tag is part of the ciphertext and the MKI comes last (RFC 7714 §8.1, §9.1).
PROFILES: Final[dict[str, tuple[int, int, int]]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 10, 10),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 4, 10),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 0, 0),
}
REPLAY_WINDOW: Final = 1024  # packets; RFC 3711 §3.3.2 asks for at least 64 (libsrtp: 128)


class SrtpError(Exception):
    """Keys or a suite libsrtp cannot use (our misuse, or a peer's key of the wrong size)."""


@dataclass(slots=True)
class SrtpStats:
    """What the context did. ``auth_failures``/``replay_drops``: received packets dropped."""

    protected: int = 0
    unprotected: int = 0
    auth_failures: int = 0
    replay_drops: int = 0
    malformed: int = 0  # too short for the MKI and tag, too long for libsrtp, or other failures


def _session(suite: str, key: bytes, ssrc_type: int) -> pylibsrtp.Session:
    profile = PROFILES[suite][0]
    try:
        policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    except (ValueError, TypeError) as exc:
        raise SrtpError(f"{suite}: {exc}") from None
    policy.window_size = REPLAY_WINDOW
    return pylibsrtp.Session(policy)


class SrtpContext:
    """Protect what we send with ``local_key``, unprotect what we receive with ``remote_key``.

    Keys are master key ‖ master salt, as SDES carries them and DTLS-SRTP exports them."""

    def __init__(
        self, suite: str, *, local_key: bytes, remote_key: bytes, remote_mki_length: int = 0
    ) -> None:
        if suite not in PROFILES:
            raise SrtpError(f"SRTP suite {suite} is not supported")
        self.suite = suite
        self._tx = _session(suite, local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _session(suite, remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        _, self._rtp_tag, self._rtcp_tag = PROFILES[suite]
        self._mki = remote_mki_length
        self.stats = SrtpStats()

    def rekey_remote(self, remote_key: bytes, *, remote_mki_length: int = 0) -> None:
        """The peer changed its key (a re-offer): a new inbound session. Ours carries on, so
        no packet index is ever protected twice under our key (RFC 3711 §3.3.1, §9.1)."""
        self._rx = _session(self.suite, remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._mki = remote_mki_length

    def protect_rtp(self, packet: bytes) -> bytes:
        protected = self._tx.protect(packet)
        self.stats.protected += 1
        return protected

    def protect_rtcp(self, packet: bytes) -> bytes:
        protected = self._tx.protect_rtcp(packet)
        self.stats.protected += 1
        return protected

    def unprotect_rtp(self, packet: bytes) -> bytes | None:
        """The plain RTP packet, or None when it is dropped (counted in ``stats``)."""
        return self._unprotect(packet, rtcp=False)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        return self._unprotect(packet, rtcp=True)

    def _strip_mki(self, packet: bytes, tag: int) -> bytes | None:
        if not self._mki:
            return packet
        if len(packet) < 12 + self._mki + tag:
            return None
        end = len(packet) - tag
        return packet[: end - self._mki] + packet[end:]

    def _unprotect(self, packet: bytes, *, rtcp: bool) -> bytes | None:
        stripped = self._strip_mki(packet, self._rtcp_tag if rtcp else self._rtp_tag)
        if stripped is None:
            self.stats.malformed += 1
            return None
        try:
            plain = self._rx.unprotect_rtcp(stripped) if rtcp else self._rx.unprotect(stripped)
        except pylibsrtp.Error as exc:
            text = str(exc)
            if "authentication" in text:
                self.stats.auth_failures += 1
            elif "replay" in text:
                self.stats.replay_drops += 1
            else:
                self.stats.malformed += 1
            return None
        except ValueError:  # longer than libsrtp's buffer: not a packet we sent for
            self.stats.malformed += 1
            return None
        self.stats.unprotected += 1
        return plain
