"""ICE (RFC 8445) with a real phone: softphone <-> Kamailio <-> baresip 1.0.0 with its ``ice``
module, on 127.0.0.1: a call each way, checks run by both sides, speech both ways scored with
P.862 on the recordings (as tests/interop/test_audio.py does), and plain RTP against a baresip
without ICE.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import dump, peers_required
from speech_quality import CLEAR_SPEECH, SPEECH, score, speech_at
from test_audio import TALK_PACKETS, dec_recording, stats_at_least
from test_softphone_sip import account, ended, expect, state

from softphone import lab
from softphone.config import Account, Config
from softphone.config_nat import NatTraversal
from softphone.lab.baresip import MediaNat
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop


@pytest.fixture
def ice_baresip(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kamailio: lab.Kamailio
) -> Iterator[Callable[..., lab.Baresip]]:
    started: list[lab.Baresip] = []

    def make(*, medianat: MediaNat | None, auto_answer: bool, audio: Path) -> lab.Baresip:
        phone = lab.Baresip(
            tmp_path_factory.mktemp("baresip-ice"),
            kamailio=kamailio,
            auto_answer=auto_answer,
            audio=audio,
            record=True,
            extra_config="audio_codecs\t\topus/48000/1\n",
            medianat=medianat,
            # The lab's Kamailio answers STUN on its UDP port (kamailio.cfg.tmpl).
            stun_server=f"stun:127.0.0.1:{kamailio.udp_port}" if medianat else None,
        )
        started.append(phone)
        with peers_required():
            return phone.start()

    yield make
    failed = getattr(request.node, "rep_call", None)
    for phone in started:
        if failed is not None and failed.failed:
            dump(f"baresip {phone.user} (ice)", phone.lines())
        phone.stop()


async def ice_phone(acct: Account, heard: Path, data_dir: Path, *, auto_answer: bool) -> Phone:
    config = Config(
        accounts=(
            Account(
                name=acct.name,
                uri=acct.uri,
                password=acct.password,
                registrar=acct.registrar,
                proxy=acct.proxy,
                transport=acct.transport,
                nat=NatTraversal(ice=True),
            ),
        ),
        codecs=("opus",),
    )
    phone = Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(1),
        dns=StubBackend(),
        auto_answer=auto_answer,
        audio=FileAudio(SPEECH, heard),
        data_dir=data_dir,
    )
    await phone.start()
    return phone


async def talk(
    kamailio: lab.Kamailio,
    bob: lab.Baresip,
    alice: Phone,
    *,
    we_call: bool,
) -> tuple[str, dict[str, Any]]:
    await alice.wait_registered(8.0)
    if we_call:
        call_id = await alice.dial(bob.aor)
    else:
        await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
        incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall))
        assert isinstance(incoming, pe.IncomingCall)
        call_id = incoming.call_id
    await expect(alice, state(call_id, "established"))
    event = await expect(
        alice, stats_at_least(call_id, "packets_received", TALK_PACKETS), timeout_s=30
    )
    assert isinstance(event, pe.CallStats)
    await alice.hangup(call_id)
    end = await expect(alice, ended(call_id))
    assert isinstance(end, pe.CallEnded)
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)
    return call_id, event.stats


@pytest.mark.parametrize("direction", ["softphone_calls", "baresip_calls"])
async def test_ice_speech_both_ways_with_baresip(
    direction: str,
    kamailio: lab.Kamailio,
    ice_baresip: Callable[..., lab.Baresip],
    tmp_path: Path,
) -> None:
    we_call = direction == "softphone_calls"
    bob = ice_baresip(medianat="ice", auto_answer=we_call, audio=speech_at(48000, tmp_path))
    heard = tmp_path / "alice-heard.wav"
    alice = await ice_phone(account(kamailio), heard, tmp_path / "data", auto_answer=not we_call)
    try:
        call_id, stats = await talk(kamailio, bob, alice, we_call=we_call)
        remote = alice.call(call_id).remote_sdp or b""
        assert b"a=candidate:" in remote and b"a=ice-ufrag:" in remote  # baresip did ICE
        # baresip's ice module offers the host's other interfaces, not the 127.0.0.1 it listens
        # on; what reaches us is 127.0.0.1, its server-reflexive candidate (Kamailio's STUN
        # sees it there) or, as its checks come, a peer-reflexive one (RFC 8445 §7.3.1.3).
        assert stats["ice"] == "connected"
        assert stats["ice_pair"] in ("host/host", "host/srflx", "host/prflx")
    finally:
        await alice.stop()
    ours_heard = score(SPEECH, heard, mode="wb")
    theirs_heard = score(SPEECH, dec_recording(bob), mode="wb")
    print(
        f"ICE {direction}: softphone heard {ours_heard.pesq:.2f}, baresip {theirs_heard.pesq:.2f}"
    )
    assert ours_heard.pesq >= CLEAR_SPEECH, f"baresip -> softphone over ICE: {ours_heard}"
    assert theirs_heard.pesq >= CLEAR_SPEECH, f"softphone -> baresip over ICE: {theirs_heard}"


async def test_plain_rtp_with_a_baresip_without_ice(
    kamailio: lab.Kamailio, ice_baresip: Callable[..., lab.Baresip], tmp_path: Path
) -> None:
    bob = ice_baresip(medianat=None, auto_answer=True, audio=speech_at(48000, tmp_path))
    heard = tmp_path / "alice-heard.wav"
    alice = await ice_phone(account(kamailio), heard, tmp_path / "data", auto_answer=False)
    try:
        call_id, stats = await talk(kamailio, bob, alice, we_call=True)
        assert b"a=candidate:" not in (alice.call(call_id).remote_sdp or b"")
        assert stats["ice"] == "off"
    finally:
        await alice.stop()
    assert score(SPEECH, heard, mode="wb").pesq >= CLEAR_SPEECH
    assert score(SPEECH, dec_recording(bob), mode="wb").pesq >= CLEAR_SPEECH
