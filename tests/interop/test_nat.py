"""Calls from behind a home router: the softphone in a private network (192.168.1.100) behind an
nftables masquerade router, Kamailio and baresip on a documentation "internet" (203.0.113.0/24),
all in network namespaces (softphone/lab/netns.py; fixtures in conftest.py).

What each test proves, and what it showed before the fix:

- calling out: speech both ways. baresip sends RTP only to the SDP address (it does not latch),
  so an SDP naming the private address gave one-way audio: the router dropped baresip's RTP.
- called right after registering, and again after idling past the router's UDP timeout: the
  INVITE reaches us (keep-alives at the registrar's Flow-Timer hold the mapping open), and the
  registrar holds one binding for us.
- registered over TLS: a call to us completes; the ACK and the BYE come over our connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory
from speech_quality import CLEAR_SPEECH, SPEECH, read_wav, score, speech_at
from test_softphone_sip import ended, expect, state

from softphone import lab
from softphone.config import Account
from softphone.config_nat import NatTraversal
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio, NullAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri

pytestmark = pytest.mark.interop

TALK_PACKETS = 250  # 5 s of 20 ms packets: enough speech to score
# The far end's RTP that may come before ours opens the router's mapping: baresip sends as it
# answers, and our first packet follows our own answer handling and the audio engine's start,
# which a loaded machine delays (11 packets seen in CI). 500 ms of it; a mapping that failed
# would drop the whole call's (TALK_PACKETS and more).
EARLY_PACKETS = 25
PESQ_MIN = CLEAR_SPEECH  # PCMU narrowband; loss-free speech through G.711 scores ~4


def nat_account(
    kamailio: lab.Kamailio,
    transport: lab.Transport = "udp",
    *,
    stun: bool = False,
    ice: bool | None = None,
) -> Account:
    # By name over TLS: the lab's certificate names lab.test (the stub DNS says where it is).
    host = lab.DOMAIN if transport == "tls" else kamailio.host
    hop = SipUri.parse(f"sip:{host}:{kamailio.port_for(transport)};transport={transport}")
    return Account(
        name="alice",
        uri=SipUri(user="alice", host=lab.DOMAIN),
        password=lab.USERS["alice"],
        registrar=hop,
        proxy=hop,
        transport=transport,
        tls_ca_file=kamailio.ca_file if transport == "tls" else None,  # type: ignore[arg-type]
        stun_server=f"{kamailio.host}:{kamailio.udp_port}" if stun else None,
        nat=NatTraversal(ice=ice),
    )


def heard(reference: Path, recording: Path, *, max_lag_s: float = 3.0) -> float:
    """P.862 narrowband of what was heard; 0 for silence (nothing came through). ``max_lag_s``:
    how far into the reference the recording may start (speech before ICE completed is lost)."""
    data, _ = read_wav(recording)
    if len(data) == 0 or float((data**2).mean()) ** 0.5 < 1e-3:
        return 0.0
    return score(reference, recording, mode="nb", seconds=3.5, max_lag_s=max_lag_s).pesq


def bob_heard(bob: lab.Baresip) -> Path:
    decoded = [p for p in bob.recordings() if p.name.endswith("-dec.wav")]
    assert decoded, f"baresip recorded nothing: {bob.recordings()}"
    return max(decoded, key=lambda p: p.stat().st_size)


def sent_at_least(call_id: str, packets: int) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: (
        isinstance(e, pe.CallStats)
        and e.call_id == call_id
        and int(e.stats["packets_sent"]) >= packets
    )


# Where the c= address came from: plain STUN (ice = false), ICE's server-reflexive default
# candidate (STUN set, ice on by default; baresip answers without ICE, so plain RTP from it), or
# the registrar's Via received/rport.
@pytest.mark.parametrize("learned_from", ["stun", "ice-srflx", "registrar"])
async def test_calling_out_from_behind_the_router_is_heard_both_ways(
    learned_from: str,
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = nat_baresip_factory(
        auto_answer=True,
        audio=speech_at(8000, tmp_path),
        record=True,
        extra_config="audio_codecs\t\tPCMU\n",
    )
    ours = tmp_path / "alice-heard.wav"
    acct = nat_account(
        nat_kamailio,
        stun=learned_from != "registrar",
        ice=None if learned_from == "ice-srflx" else False,
    )
    alice = await home_phone(acct, FileAudio(SPEECH, ours))
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    dropped = nat_lab.dropped()
    call_id = await alice.dial(bob.aor)
    await expect(alice, state(call_id, "established"))
    public = alice.call(call_id).media_address
    assert public is not None and public.source == learned_from
    assert public.host == nat_lab.router_wan
    await expect(alice, sent_at_least(call_id, TALK_PACKETS), timeout_s=20)
    await alice.hangup(call_id)
    end = await expect(alice, ended(call_id))
    assert isinstance(end, pe.CallEnded)
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)

    alice_pesq, bob_pesq = heard(SPEECH, ours), heard(SPEECH, bob_heard(bob))
    dropped_now = nat_lab.dropped() - dropped
    print(
        f"calling out ({learned_from}): alice heard PESQ {alice_pesq:.2f}, bob heard {bob_pesq:.2f}; "
        f"router dropped {dropped_now}; {end.stats}"
    )
    assert alice_pesq >= PESQ_MIN, f"one-way audio: the router dropped {dropped_now} packets"
    assert bob_pesq >= PESQ_MIN
    # baresip starts sending as it answers: its first packets reach the router before ours
    # opened the way, and are dropped there. Not more than those.
    assert dropped_now <= EARLY_PACKETS


def router_has_probe(nat_lab: lab.NatLab, port: int) -> bool:
    return any(f"sport={port} dport=9 " in line for line in nat_lab.udp_mappings())


async def idle_past_the_routers_udp_timeout(nat_lab: lab.NatLab) -> None:
    """Wait until the router forgot a UDP mapping made now and never used again: whatever was
    idle that long is forgotten too. (This thread is in the home namespace.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        probe.sendto(b"probe", (nat_lab.registrar_host, 9))  # discard: nobody answers
        port = probe.getsockname()[1]
        async with asyncio.timeout(nat_lab.udp_timeout_s + 10):
            assert router_has_probe(nat_lab, port)
            while router_has_probe(nat_lab, port):
                await asyncio.sleep(0.25)  # polling the router's table, not waiting a time


async def bob_calls(alice: Phone, bob: lab.Baresip) -> str:
    since = bob.mark()
    await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
    incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall), timeout_s=8)
    assert isinstance(incoming, pe.IncomingCall)
    await expect(alice, state(incoming.call_id, "established"))
    await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", 8.0, None, since)
    return incoming.call_id


async def test_called_after_registering_and_after_idling_past_the_routers_udp_timeout(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = nat_baresip_factory(
        audio=speech_at(8000, tmp_path), record=True, extra_config="audio_codecs\t\tPCMU\n"
    )
    ours = tmp_path / "alice-heard.wav"
    mark = nat_kamailio.mark()
    alice = await home_phone(
        nat_account(nat_kamailio, stun=True), FileAudio(SPEECH, ours), auto_answer=True
    )
    assert (await alice.wait_registered(8.0)) == {"alice": True}

    first = await bob_calls(alice, bob)  # right after registering
    await expect(alice, sent_at_least(first, 50))
    since = bob.mark()
    await alice.hangup(first)
    await expect(alice, ended(first))
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0, None, since)

    await idle_past_the_routers_udp_timeout(nat_lab)
    dropped = nat_lab.dropped()
    second = await bob_calls(alice, bob)  # the INVITE still finds its way in
    await expect(alice, sent_at_least(second, TALK_PACKETS), timeout_s=20)
    since = bob.mark()
    await alice.hangup(second)
    await expect(alice, ended(second))
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0, None, since)

    alice_pesq = heard(SPEECH, ours.with_name("alice-heard-2.wav"))
    bob_pesq = heard(SPEECH, bob_heard(bob))
    dropped_now = nat_lab.dropped() - dropped
    print(f"called after idling: alice heard {alice_pesq:.2f}, bob heard {bob_pesq:.2f}")
    assert alice_pesq >= PESQ_MIN and bob_pesq >= PESQ_MIN
    assert dropped_now <= EARLY_PACKETS
    bindings = [line for line in nat_kamailio.lines()[mark:] if "LAB BINDINGS alice" in line]
    assert bindings and all(" count=1 " in line for line in bindings), bindings


async def test_registered_over_tls_a_call_to_us_completes_over_our_connection(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
) -> None:
    bob = nat_baresip_factory()
    mark = nat_kamailio.mark()
    alice = await home_phone(nat_account(nat_kamailio, "tls"), NullAudio(), auto_answer=True)
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    dropped = nat_lab.dropped()
    call_id = await bob_calls(alice, bob)  # established: the ACK came
    since = bob.mark()
    await asyncio.to_thread(bob.hangup)
    end = await expect(alice, ended(call_id))  # the BYE came
    assert isinstance(end, pe.CallEnded) and end.reason == "remote hung up", end
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0, None, since)
    lines = [line for line in nat_kamailio.lines()[mark:] if "LAB REQUEST" in line]
    assert any("ACK bob->alice" in line for line in lines)
    assert any("BYE bob->alice" in line for line in lines)
    # Nothing but the far end's first RTP (before ours opened the way) was dropped: no request
    # tried to reach us around our connection.
    assert nat_lab.dropped() - dropped <= EARLY_PACKETS
