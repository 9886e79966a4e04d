"""baresip calls softphone's TLS listener directly (no registrar): softphone presents the
self-signed certificate it made on first use, baresip trusts that certificate file, and the
call completes (INVITE, ACK and BYE over TLS) with audio flowing both ways. baresip 1.0 dials
``sip:...;transport=tls`` (its dial command turns a ``sips:`` URI into ``sip:sips:...``); SIPS
end to end is tested phone to phone in tests/phone/test_phone_tls.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lab_support import BaresipFactory
from test_audio import stats_at_least
from test_softphone_sip import ended, expect, state

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.transport.tls import LISTENER_CERTIFICATE

pytestmark = pytest.mark.interop

AUDIO_PACKETS = 100  # 2 s of 20 ms packets each way


@pytest.fixture
async def listening(tmp_path: Path) -> AsyncIterator[tuple[Phone, int]]:
    """A peer-to-peer phone on 127.0.0.1 answering by itself, and its TLS port."""
    account = Account(name="alice", uri=SipUri(user="alice", host="127.0.0.1"), transport="tls")
    phone = Phone(
        Config(accounts=(account,), codecs=("PCMU",)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(7),
        dns=StubBackend(),
        auto_answer=True,
        audio=NullAudio(),
        data_dir=tmp_path / "data",
    )
    try:
        await phone.start()
        port = None
        while (event := phone.next_event_nowait()) is not None:
            if isinstance(event, pe.Listening) and event.transport == "tls":
                port = event.port
        assert port is not None, "no TLS listener"
        yield phone, port
    finally:
        await phone.stop()


async def test_baresip_calls_our_tls_listener_and_the_call_completes(
    listening: tuple[Phone, int],
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    phone, port = listening
    certificate = tmp_path / "data" / LISTENER_CERTIFICATE
    bob = await asyncio.to_thread(
        baresip_factory,
        "bob",
        "tls",
        kamailio=None,  # type: ignore[arg-type]
        extra_config=f"sip_cafile\t\t{certificate}\naudio_codecs\t\tPCMU\n",
    )
    target = f"sip:alice@127.0.0.1:{port};transport=tls"
    peer_mark = bob.mark()
    await asyncio.to_thread(bob.dial, target)
    incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    call_id = incoming.call_id
    await expect(phone, state(call_id, "established"))
    await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", 8.0, None, peer_mark)
    stats = await expect(
        phone, stats_at_least(call_id, "packets_received", AUDIO_PACKETS), timeout_s=15
    )
    assert isinstance(stats, pe.CallStats) and int(stats.stats["packets_sent"]) >= AUDIO_PACKETS
    await asyncio.to_thread(bob.hangup)
    end = await expect(phone, ended(call_id))
    assert isinstance(end, pe.CallEnded) and end.answered and end.reason == "remote hung up"
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0, None, peer_mark)

    flow = phone.sip_flow(call_id)
    received = [m.first_line.split()[0] for m in flow if m.direction == "received"]
    assert received[0] == "INVITE" and "ACK" in received and "BYE" in received
    assert all(m.remote.startswith("tls:") for m in flow)
    answer = next(m for m in flow if m.direction == "sent" and m.first_line.endswith("200 OK"))
    assert f"Contact: <sip:alice@127.0.0.1:{port};transport=tls>" in answer.text
