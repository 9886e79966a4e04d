"""SRTP/SRTCP protect and unprotect through libsrtp, for every suite; tampered and replayed
packets are dropped and counted, never returned."""

from __future__ import annotations

import pytest

from softphone.rtp.packet import RtcpReceiverReport, RtpPacket
from softphone.sdp.crypto import SUITES
from softphone.srtp import SrtpContext, SrtpError, is_rtcp


def key(suite: str, seed: int) -> bytes:
    return bytes((seed * 7 + i) % 256 for i in range(SUITES[suite].key_salt_length))


def pair(suite: str, *, mki: int = 0) -> tuple[SrtpContext, SrtpContext]:
    alice = SrtpContext(suite, local_key=key(suite, 1), remote_key=key(suite, 2))
    bob = SrtpContext(
        suite, local_key=key(suite, 2), remote_key=key(suite, 1), remote_mki_length=mki
    )
    return alice, bob


def rtp(sequence: int, payload: bytes = b"\x55" * 160) -> bytes:
    return bytes(
        RtpPacket(
            payload_type=0,
            sequence=sequence,
            timestamp=sequence * 160,
            ssrc=0x1234,
            payload=payload,
        )
    )


RTCP = bytes(RtcpReceiverReport(ssrc=0x1234, reports=()))


@pytest.mark.parametrize("suite", list(SUITES))
def test_round_trip_both_ways_rtp_and_rtcp(suite: str) -> None:
    alice, bob = pair(suite)
    for seq in range(1, 50):
        sent = alice.protect_rtp(rtp(seq))
        assert sent[:12] == rtp(seq)[:12]  # the header stays readable (RFC 3711 §3.1)
        assert rtp(seq)[12:] not in sent  # the payload does not
        assert bob.unprotect_rtp(sent) == rtp(seq)
        assert alice.unprotect_rtp(bob.protect_rtp(rtp(seq))) == rtp(seq)
    assert is_rtcp(alice.protect_rtcp(RTCP))
    assert bob.unprotect_rtcp(alice.protect_rtcp(RTCP)) == RTCP
    assert bob.stats.unprotected == 50 and bob.stats.auth_failures == 0


def test_tag_lengths_per_suite() -> None:
    sizes = {}
    for suite in SUITES:
        alice, _ = pair(suite)
        sizes[suite] = (len(alice.protect_rtp(rtp(1))) - len(rtp(1)),)
        sizes[suite] += (len(alice.protect_rtcp(RTCP)) - len(RTCP),)
    # RFC 3711 §4.2 / RFC 4568 §6.2: 80- and 32-bit tags; SRTCP adds its 4-byte index and keeps
    # an 80-bit tag even with _32 (§6.2.2); RFC 7714: a 16-byte GCM tag.
    assert sizes == {
        "AES_CM_128_HMAC_SHA1_80": (10, 14),
        "AES_CM_128_HMAC_SHA1_32": (4, 14),
        "AEAD_AES_128_GCM": (16, 20),
    }


@pytest.mark.parametrize("suite", list(SUITES))
@pytest.mark.parametrize("where", [0, 5, 12, 40, -1])
def test_tampered_packets_are_dropped_and_counted(suite: str, where: int) -> None:
    alice, bob = pair(suite)
    sent = bytearray(alice.protect_rtp(rtp(1)))
    sent[where] ^= 0x01
    assert bob.unprotect_rtp(bytes(sent)) is None
    assert bob.stats.auth_failures == 1 and bob.stats.unprotected == 0
    # The genuine packet still goes through afterwards.
    assert bob.unprotect_rtp(alice.protect_rtp(rtp(2))) == rtp(2)


@pytest.mark.parametrize("suite", list(SUITES))
def test_replayed_packets_are_dropped_and_counted(suite: str) -> None:
    alice, bob = pair(suite)
    first = alice.protect_rtp(rtp(1))
    assert bob.unprotect_rtp(first) == rtp(1)
    assert bob.unprotect_rtp(first) is None
    rtcp = alice.protect_rtcp(RTCP)
    assert bob.unprotect_rtcp(rtcp) == RTCP
    assert bob.unprotect_rtcp(rtcp) is None
    assert bob.stats.replay_drops == 2


def test_wrong_key_fails_authentication() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    alice = SrtpContext(suite, local_key=key(suite, 1), remote_key=key(suite, 2))
    mallory = SrtpContext(suite, local_key=key(suite, 3), remote_key=key(suite, 1))
    assert alice.unprotect_rtp(mallory.protect_rtp(rtp(1))) is None
    assert alice.stats.auth_failures == 1


def test_sequence_wrap_keeps_working() -> None:
    """The rollover counter (RFC 3711 §3.3.1) follows a 16-bit sequence wrap."""
    alice, bob = pair("AES_CM_128_HMAC_SHA1_80")
    for seq in [*range(65530, 65536), *range(0, 6)]:
        assert bob.unprotect_rtp(alice.protect_rtp(rtp(seq))) == rtp(seq)


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_mki_is_stripped_before_the_tag(suite: str) -> None:
    alice, bob = pair(suite, mki=4)
    tag = 10 if suite.endswith("_80") else 4
    sent = alice.protect_rtp(rtp(1))
    with_mki = sent[:-tag] + b"\x00\x00\x00\x01" + sent[-tag:]  # RFC 3711 §3.1: MKI, then tag
    assert bob.unprotect_rtp(with_mki) == rtp(1)
    rtcp = alice.protect_rtcp(RTCP)
    assert bob.unprotect_rtcp(rtcp[:-10] + b"\x00\x00\x00\x01" + rtcp[-10:]) == RTCP


def test_bad_keys_and_suites_are_refused() -> None:
    with pytest.raises(SrtpError, match="not supported"):
        SrtpContext("F8_128_HMAC_SHA1_80", local_key=b"x" * 30, remote_key=b"x" * 30)
    with pytest.raises(SrtpError):
        SrtpContext("AES_CM_128_HMAC_SHA1_80", local_key=b"x" * 29, remote_key=b"x" * 30)


def test_garbage_and_oversize_packets_are_counted() -> None:
    _, bob = pair("AES_CM_128_HMAC_SHA1_80")
    assert bob.unprotect_rtp(b"\x80\x00\x00") is None
    assert bob.unprotect_rtp(rtp(1, payload=b"\x00" * 2000)) is None
    assert bob.stats.auth_failures + bob.stats.malformed == 2
