"""Two Phones on 127.0.0.1 calling each other with media encryption: speech both ways under SDES
(RTP/SAVP and best-effort SDES in RTP/AVP) and DTLS-SRTP, scored with P.862; plain against
mandatory SRTP refused with 488 and the reason; forged packets dropped and counted; keys never in
a log or the SIP trace."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from phone_support import expect, port_of
from speech_quality import CLEAR_SPEECH, SPEECH, score

from softphone.config import Account, Config, MediaEncryptionName
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, FileAudio, NullAudio
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone
from softphone.rtp.packet import RtpPacket
from softphone.sdp import LocalSecurity, MediaEncryption
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

PESQ_WB_FLOOR = CLEAR_SPEECH  # Opus wideband on a clean loopback scores ~3.6; broken audio ~1


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[object]:
    made: list[Phone] = []

    async def start(
        name: str,
        encryption: MediaEncryptionName,
        audio: AudioProvider | None = None,
        *,
        auto_answer: bool = False,
    ) -> Phone:
        account = Account(
            name=name, uri=SipUri(user=name, host="127.0.0.1"), media_encryption=encryption
        )
        phone = Phone(
            Config(accounts=(account,), codecs=("opus",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=__import__("random").Random(name),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=audio or NullAudio(),
            data_dir=tmp_path / name,
        )
        await phone.start()
        made.append(phone)
        return phone

    yield start
    for phone in made:
        await phone.stop()


def received_at_least(n: int) -> object:
    return lambda e: isinstance(e, pe.CallStats) and int(e.stats["packets_received"]) >= n


CASES = {
    # (caller's policy, callee's policy) -> what protects the call, and its m= profile
    "sdes-savp": ("srtp", "srtp", "sdes", "RTP/SAVP"),
    "sdes-best-effort": ("srtp-optional", "srtp-optional", "sdes", "RTP/AVP"),
    "dtls-srtp": ("dtls-srtp", "srtp-optional", "dtls-srtp", "UDP/TLS/RTP/SAVP"),
    "plain": ("none", "srtp-optional", "none", "RTP/AVP"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_speech_both_ways_encrypted(case: str, make: object, tmp_path: Path) -> None:
    caller_policy, callee_policy, method, proto = CASES[case]
    start = make  # type: ignore[assignment]
    bob_heard, alice_heard = tmp_path / "bob-heard.wav", tmp_path / "alice-heard.wav"
    bob = await start("bob", callee_policy, FileAudio(SPEECH, bob_heard), auto_answer=True)  # type: ignore[operator]
    alice = await start("alice", caller_policy, FileAudio(SPEECH, alice_heard))  # type: ignore[operator]
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    up = await expect(
        alice, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established"
    )
    assert isinstance(up, pe.CallStateChanged) and up.encryption == method
    stats = await expect(alice, received_at_least(400), timeout_s=20)
    theirs = await expect(bob, received_at_least(400), timeout_s=20)
    assert isinstance(stats, pe.CallStats) and isinstance(theirs, pe.CallStats)
    for s in (stats.stats, theirs.stats):
        assert s["encryption"] == method
        assert (s["srtp_suite"] is None) == (method == "none")
        assert s["srtp_auth_failures"] == s["srtp_replay_drops"] == 0
    if method == "dtls-srtp":  # the handshake chose our first preference
        assert stats.stats["srtp_suite"] == "AEAD_AES_128_GCM"
    elif method == "sdes":
        assert stats.stats["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
    local = alice.call(call_id).local_sdp
    assert local is not None and local.media[0].proto == proto
    assert alice.call(call_id).encryption == method
    await alice.hangup(call_id)
    await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    await expect(bob, lambda e: isinstance(e, pe.CallEnded))

    heard_by_bob = score(SPEECH, bob_heard, mode="wb", seconds=6.0, skip_s=1.0)
    heard_by_alice = score(SPEECH, alice_heard, mode="wb", seconds=6.0, skip_s=1.0)
    print(f"{case}: bob heard PESQ {heard_by_bob.pesq:.2f}, alice heard {heard_by_alice.pesq:.2f}")
    assert heard_by_bob.pesq >= PESQ_WB_FLOOR, f"caller -> callee: {heard_by_bob}"
    assert heard_by_alice.pesq >= PESQ_WB_FLOOR, f"callee -> caller: {heard_by_alice}"


@pytest.mark.parametrize(
    ("caller_policy", "callee_policy", "why"),
    [
        ("none", "srtp", "plain RTP (RTP/AVP) refused: this account requires media encryption"),
        ("none", "dtls-srtp", "plain RTP (RTP/AVP) refused"),
        ("srtp", "none", "requires encrypted media (RTP/SAVP) and media encryption is off"),
        ("dtls-srtp", "none", "(UDP/TLS/RTP/SAVP) and media encryption is off"),
    ],
)
async def test_mismatched_encryption_is_refused_with_488_and_the_reason(
    caller_policy: MediaEncryptionName, callee_policy: MediaEncryptionName, why: str, make: object
) -> None:
    start = make  # type: ignore[assignment]
    bob = await start("bob", callee_policy, auto_answer=True)  # type: ignore[operator]
    alice = await start("alice", caller_policy)  # type: ignore[operator]
    await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded)
    assert ended.status == 488 and why in ended.reason, ended.reason
    notice = await expect(bob, lambda e: isinstance(e, pe.Notice) and "refused the call" in e.text)
    assert isinstance(notice, pe.Notice) and why in notice.text
    # The callee never rang for it.
    bob_ended = await expect(bob, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(bob_ended, pe.CallEnded) and bob_ended.status == 488


async def test_a_plain_re_offer_in_an_encrypted_call_is_refused_with_the_reason(
    make: object,
) -> None:
    """Once encrypted, a re-INVITE to plain RTP is refused (488 + Warning) and the call stays
    encrypted; both sides say why."""
    start = make  # type: ignore[assignment]
    bob = await start("bob", "srtp")  # type: ignore[operator]
    alice = await start("alice", "srtp-optional")  # type: ignore[operator]
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    incoming = await expect(bob, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    # srtp-optional offers SDES inside RTP/AVP: bob (srtp) takes it, encrypted.
    await bob.answer(incoming.call_id)
    up = await expect(
        alice, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established"
    )
    assert isinstance(up, pe.CallStateChanged) and up.encryption == "sdes"
    alice.call(call_id).local_security = LocalSecurity(MediaEncryption.NONE)  # offers plain now
    await alice.hold(call_id)
    failed = await expect(
        alice, lambda e: isinstance(e, pe.Notice) and "hold/resume failed" in e.text
    )
    assert isinstance(failed, pe.Notice) and "plain RTP (RTP/AVP) refused" in failed.text
    refused = await expect(bob, lambda e: isinstance(e, pe.Notice) and "re-offer refused" in e.text)
    assert isinstance(refused, pe.Notice) and "plain RTP" in refused.text
    assert bob.call(incoming.call_id).encryption == "sdes"
    with pytest.raises(PhoneError, match="not ringing"):
        await bob.answer(incoming.call_id)


async def test_forged_packets_are_dropped_counted_and_never_played(make: object) -> None:
    start = make  # type: ignore[assignment]
    bob = await start("bob", "srtp", auto_answer=True)  # type: ignore[operator]
    alice = await start("alice", "srtp")  # type: ignore[operator]
    await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await expect(bob, received_at_least(50), timeout_s=15)
    call = bob.calls[0]
    assert call.rtp is not None
    forged = bytes(
        RtpPacket(payload_type=96, sequence=1, timestamp=0, ssrc=0xBAD, payload=b"\x00" * 80)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(20):
            sock.sendto(forged + b"\x00" * 10, ("127.0.0.1", call.rtp.port))
    stats = await expect(
        bob, lambda e: isinstance(e, pe.CallStats) and int(e.stats["srtp_auth_failures"]) >= 20
    )
    assert isinstance(stats, pe.CallStats)
    streams = bob.rtp_streams(call.call_id)
    received = next(s for s in streams if s.direction == "received")
    assert received.ssrc != 0xBAD  # the forged source never reached the RTP session


async def test_keys_are_never_logged_nor_traced(
    make: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    start = make  # type: ignore[assignment]
    bob = await start("bob", "srtp", auto_answer=True)  # type: ignore[operator]
    alice = await start("alice", "srtp")  # type: ignore[operator]
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await expect(alice, received_at_least(20), timeout_s=15)
    security = alice.call(call_id).local_security
    media = alice.call(call_id).media
    assert security is not None and media is not None and media.security is not None
    secrets = [base64.b64encode(c.key).decode() for c in security.crypto]
    secrets.append(base64.b64encode(media.security.remote_key).decode())
    traced = "\n".join(m.text for f in alice.sip_flows() for m in alice.sip_flow(f.flow_id))
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>" in traced
    assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in traced
        assert secret[:16] not in caplog.text  # not even part of one
    await alice.hangup(call_id)
    await expect(alice, lambda e: isinstance(e, pe.CallEnded))
