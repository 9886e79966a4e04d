"""Encrypted calls with a real phone: softphone <-> Kamailio <-> baresip 1.0.0, on 127.0.0.1.

SDES (baresip ``mediaenc=srtp-mand``: RTP/SAVP with a=crypto) and DTLS-SRTP (baresip's
``dtls_srtp`` module) in both directions, with speech both ways scored with P.862 on the
recordings, as tests/interop/test_audio.py does for plain calls; and a plain baresip calling an
account that requires SRTP, refused with 488 and the reason.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory
from speech_quality import CLEAR_SPEECH, SPEECH, score, speech_at
from test_audio import TALK_PACKETS, dec_recording, stats_at_least
from test_softphone_sip import account, ended, expect, state

from softphone import lab
from softphone.config import Account, Config, MediaEncryptionName
from softphone.lab.baresip import MediaEnc
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, FileAudio, NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

PESQ_MIN = CLEAR_SPEECH  # Opus, wideband, both ways: the bar plain calls meet in test_audio.py


@pytest.fixture
async def secure_phone(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    phones: list[Phone] = []

    async def make(
        acct: Account,
        audio: AudioProvider,
        encryption: MediaEncryptionName,
        *,
        auto_answer: bool = False,
    ) -> Phone:
        config = Config(
            accounts=(
                Account(
                    name=acct.name,
                    uri=acct.uri,
                    password=acct.password,
                    registrar=acct.registrar,
                    proxy=acct.proxy,
                    transport=acct.transport,
                    media_encryption=encryption,
                ),
            ),
            codecs=("opus",),
        )
        phone = Phone(
            config,
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(len(phones)),
            dns=StubBackend(),
            auto_answer=auto_answer,
            audio=audio,
            data_dir=tmp_path / f"data{len(phones)}",
        )
        await phone.start()
        phones.append(phone)
        return phone

    yield make
    for phone in phones:
        await phone.stop()


MODES: dict[str, tuple[MediaEncryptionName, MediaEnc, str, bool]] = {
    # ours, baresip's, what protects the call, rtcp-mux on baresip's side
    "sdes": ("srtp", "srtp-mand", "sdes", False),
    "dtls-srtp": ("dtls-srtp", "dtls_srtp", "dtls-srtp", True),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("direction", ["softphone_calls", "baresip_calls"])
async def test_encrypted_speech_both_ways(
    mode: str,
    direction: str,
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    secure_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    ours, theirs, method, mux = MODES[mode]
    bob = baresip_factory(
        auto_answer=direction == "softphone_calls",
        audio=speech_at(48000, tmp_path),
        record=True,
        extra_config="audio_codecs\t\topus/48000/1\n",
        mediaenc=theirs,
        rtcp_mux=mux,
    )
    heard = tmp_path / "alice-heard.wav"
    alice = await secure_phone(
        account(kamailio),
        FileAudio(SPEECH, heard),
        ours,
        auto_answer=direction == "baresip_calls",
    )
    await alice.wait_registered(8.0)
    if direction == "softphone_calls":
        call_id = await alice.dial(bob.aor)
    else:
        await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
        incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall))
        assert isinstance(incoming, pe.IncomingCall)
        call_id = incoming.call_id
    up = await expect(alice, state(call_id, "established"))
    assert isinstance(up, pe.CallStateChanged) and up.encryption == method
    event = await expect(
        alice, stats_at_least(call_id, "packets_received", TALK_PACKETS), timeout_s=30
    )
    assert isinstance(event, pe.CallStats)
    assert event.stats["encryption"] == method and event.stats["srtp_suite"]
    assert event.stats["srtp_auth_failures"] == 0 and event.stats["srtp_replay_drops"] == 0
    remote = alice.call(call_id).remote_sdp or b""
    if mode == "sdes":
        assert b"RTP/SAVP" in remote and b"a=crypto:" in remote
    else:
        assert b"UDP/TLS/RTP/SAVP" in remote and b"a=fingerprint:" in remote
    await alice.hangup(call_id)
    end = await expect(alice, ended(call_id))
    assert isinstance(end, pe.CallEnded) and end.stats is not None
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)

    ours_heard = score(SPEECH, heard, mode="wb")  # what softphone heard from baresip
    theirs_heard = score(SPEECH, dec_recording(bob), mode="wb")  # what baresip heard from us
    print(
        f"{mode} {direction}: softphone heard PESQ {ours_heard.pesq:.2f}, "
        f"baresip heard {theirs_heard.pesq:.2f}; suite {end.stats['srtp_suite']}"
    )
    assert ours_heard.pesq >= PESQ_MIN, f"softphone's playout of SRTP: PESQ {ours_heard}"
    assert theirs_heard.pesq >= PESQ_MIN, f"softphone's SRTP sending: PESQ {theirs_heard}"
    assert end.stats["packets_lost"] == 0


async def test_plain_baresip_calling_an_srtp_account_gets_488_with_the_reason(
    kamailio: lab.Kamailio,
    baresip_factory: BaresipFactory,
    secure_phone: Callable[..., Any],
) -> None:
    bob = baresip_factory()
    alice = await secure_phone(account(kamailio), NullAudio(), "srtp", auto_answer=True)
    await alice.wait_registered(8.0)
    since = bob.mark()
    await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
    notice = await expect(
        alice, lambda e: isinstance(e, pe.Notice) and "refused the call" in e.text
    )
    assert isinstance(notice, pe.Notice)
    assert "plain RTP (RTP/AVP) refused: this account requires media encryption" in notice.text
    closed = await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0, None, since)
    assert "488" in str(closed.get("param", ""))
    # The 488 on the wire carries the reason (RFC 3261 §20.43), as our SIP trace shows.
    sent = [
        m.text
        for f in alice.sip_flows()
        for m in alice.sip_flow(f.flow_id)
        if m.first_line.startswith("SIP/2.0 488")
    ]
    assert sent and 'Warning: 302 softphone "plain RTP (RTP/AVP) refused' in sent[0]
