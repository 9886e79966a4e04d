"""softphone on the IPv6 loopback: registered to Kamailio's ``[::1]`` UDP listener, calling
baresip (also on ``[::1]``, registered there too) and called by it, with ``c=IN IP6`` media
both ways. Speech is played each way and scored with P.862, as test_audio.py does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lab_support import BaresipFactory, skip_or_fail
from speech_quality import CLEAR_SPEECH, SPEECH, score, speech_at
from test_audio import dec_recording, stats_at_least
from test_softphone_sip import ended, expect, state, wait_log

from softphone import lab
from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

V6 = "::1"
TALK_PACKETS = 300  # ~6 s of 20 ms PCMU packets: enough speech for P.862
PESQ_MIN = CLEAR_SPEECH  # PCMU narrowband, as test_audio.py asks of it over IPv4


@pytest.fixture
def kamailio6(kamailio: lab.Kamailio) -> lab.Kamailio:
    if kamailio.udp6_port is None:
        skip_or_fail("Kamailio could not bind [::1] (no IPv6 loopback on this host)")
    return kamailio


@pytest.fixture
async def alice6(kamailio6: lab.Kamailio, tmp_path: Path) -> AsyncIterator[tuple[Phone, int]]:
    """alice on [::1], started (registering) with the Kamailio log's mark taken just before."""
    hop = SipUri.parse(f"sip:[{V6}]:{kamailio6.udp6_port}")
    acct = Account(
        name="alice",
        uri=SipUri(user="alice", host=lab.DOMAIN),
        password=lab.USERS["alice"],
        registrar=hop,
        proxy=hop,
    )
    phone = Phone(
        Config(accounts=(acct,), codecs=("PCMU",)),
        bind_host=V6,
        sip_port=0,
        rng=random.Random("alice6"),
        dns=StubBackend(),
        audio=FileAudio(SPEECH, tmp_path / "alice-heard.wav"),
    )
    mark = kamailio6.mark()
    await phone.start()
    try:
        yield phone, mark
    finally:
        await phone.stop()


async def _talk(alice: Phone, bob: lab.Baresip, call_id: str, tmp_path: Path) -> None:
    """The call is up: speech both ways, each side's recording scored, addresses all IPv6."""
    await expect(alice, state(call_id, "established"))
    info = alice.call(call_id)
    assert info.media is not None and ":" in (info.media.remote_address or ""), info.media
    await expect(alice, stats_at_least(call_id, "packets_received", TALK_PACKETS), timeout_s=30)
    await alice.hangup(call_id)
    end = await expect(alice, ended(call_id))
    assert isinstance(end, pe.CallEnded) and end.stats is not None
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)
    ours = score(SPEECH, tmp_path / "alice-heard.wav", mode="nb")
    theirs = score(SPEECH, dec_recording(bob), mode="nb")
    assert ours.pesq >= PESQ_MIN, f"softphone heard baresip over IPv6: PESQ {ours}"
    assert theirs.pesq >= PESQ_MIN, f"baresip heard softphone over IPv6: PESQ {theirs}"
    assert end.stats["packets_lost"] == 0


@pytest.mark.parametrize("direction", ["softphone_calls", "baresip_calls"])
async def test_call_over_ipv6_with_speech_both_ways(
    direction: str,
    kamailio6: lab.Kamailio,
    baresip_factory: BaresipFactory,
    alice6: tuple[Phone, int],
    tmp_path: Path,
) -> None:
    alice, mark = alice6
    bob = await asyncio.to_thread(
        baresip_factory,
        auto_answer=direction == "softphone_calls",
        audio=speech_at(8000, tmp_path),
        record=True,
        extra_config="audio_codecs\t\tPCMU\n",
        host=V6,
    )
    await alice.wait_registered(8.0)
    await wait_log(
        kamailio6, r"LAB REGISTERED alice expires=\d+ proto=udp contact=sip:alice@\[::1\]", mark
    )
    if direction == "softphone_calls":
        call_id = await alice.dial(bob.aor)
    else:
        await asyncio.to_thread(bob.dial, f"sip:alice@{lab.DOMAIN}")
        incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall))
        assert isinstance(incoming, pe.IncomingCall)
        call_id = incoming.call_id
        await alice.answer(call_id)
    await _talk(alice, bob, call_id, tmp_path)
