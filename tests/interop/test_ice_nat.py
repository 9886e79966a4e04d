"""ICE and TURN across routers, in the NAT lab (softphone/lab/netns.py, coturn.py; fixtures in
conftest.py): the softphone behind router A, baresip behind router B or on the public side,
Kamailio and coturn (STUN and TURN, 203.0.113.30) on the public side.

What each test proves:

- router to router: both behind their own router (endpoint-independent mapping), both doing ICE
  with coturn as STUN server. Neither private address is reachable; the checks find the way
  through both routers (our host socket to baresip's server- or peer-reflexive address), and
  each hears the other.
- random port mapping on both routers: a server-reflexive address is only good for the STUN
  server, so only a relay gets through. With turn_server set we gather a relayed candidate on
  coturn, ICE selects it, and each hears the other.
- random port mapping against a far end without ICE: the relayed address is our default
  candidate (c=/m=), baresip sends there, and we send through the relay: heard both ways.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory
from speech_quality import CLEAR_SPEECH, SPEECH, speech_at
from test_nat import bob_heard, heard, nat_account
from test_softphone_sip import ended, expect, state

from softphone import lab
from softphone.config import Account
from softphone.config_nat import NatTraversal
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio
from softphone.sdp import SessionDescription

pytestmark = pytest.mark.interop

TALK_PACKETS = 250  # 5 s of 20 ms packets: enough speech to score
PCMU = "audio_codecs\t\tPCMU\n"
# A home router's UDP timeout: baresip's RTCP component stays quiet longer than the lab's
# default 6 s, and its router would forget the mapping (test_nat_lab.py says the same).
CALM = {"udp_timeout_s": 30}
# Speech sent before the checks through both routers succeed is lost (baresip waits ~2 s before
# its first check): the recordings start that far into the speech.
ICE_LAG_S = 8.0


def ice_account(kamailio: lab.Kamailio, coturn: lab.Coturn, *, turn: bool) -> Account:
    server = f"{coturn.host}:{coturn.port}"
    return dataclasses.replace(
        nat_account(kamailio),
        stun_server=server,
        nat=NatTraversal(
            turn_server=server if turn else None,
            turn_username="alice" if turn else None,
            turn_password=lab.USERS["alice"] if turn else None,
        ),
    )


async def talk(alice: Any, bob: lab.Baresip, *, bob_calls: bool) -> tuple[str, dict[str, Any]]:
    """One calls the other, they talk ~5 s, alice hangs up; the call's id and last stats.
    (A baresip behind router B calls out: the lab's router B lets no INVITE in.)"""
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    if bob_calls:
        await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
        incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall), timeout_s=8)
        assert isinstance(incoming, pe.IncomingCall)
        call_id = incoming.call_id
    else:
        call_id = await alice.dial(bob.aor)
    await expect(alice, state(call_id, "established"))
    stats = await expect(
        alice,
        lambda e: (
            isinstance(e, pe.CallStats)
            and e.call_id == call_id
            and int(e.stats["packets_received"]) >= TALK_PACKETS
        ),
        timeout_s=25,
    )
    assert isinstance(stats, pe.CallStats)
    await alice.hangup(call_id)
    await expect(alice, ended(call_id))
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)
    return call_id, stats.stats


def our_address(alice: Any, call_id: str) -> str | None:
    """The c= of our offer or answer: our default candidate."""
    ours = alice.call(call_id).local_sdp
    assert isinstance(ours, SessionDescription)
    return ours.media_address(ours.media[0])


@pytest.mark.parametrize(
    "nat_lab", [{"second_router": "endpoint-independent", **CALM}], indirect=True
)
@pytest.mark.parametrize("nat_kamailio", [{"nat_contacts": True}], indirect=True)
async def test_ice_from_router_to_router_heard_both_ways(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    home2_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = home2_baresip_factory(
        audio=speech_at(8000, tmp_path),
        record=True,
        extra_config=PCMU,
        medianat="ice",
        stun_server=nat_coturn.stun_uri(),
    )
    ours = tmp_path / "alice-heard.wav"
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=False), FileAudio(SPEECH, ours), auto_answer=True
    )
    call_id, stats = await talk(alice, bob, bob_calls=True)
    # Our default candidate is server-reflexive: router A's public address.
    assert our_address(alice, call_id) == nat_lab.router_wan
    assert stats["ice"] == "connected", stats
    assert stats["ice_pair"] in ("host/srflx", "host/prflx"), stats
    alice_pesq, bob_pesq = (
        heard(SPEECH, ours, max_lag_s=ICE_LAG_S),
        heard(SPEECH, bob_heard(bob), max_lag_s=ICE_LAG_S),
    )
    print(f"router to router: alice heard {alice_pesq:.2f}, bob {bob_pesq:.2f}; {stats}")
    assert alice_pesq >= CLEAR_SPEECH and bob_pesq >= CLEAR_SPEECH


@pytest.mark.parametrize(
    "nat_lab", [{"mapping": "random", "second_router": "random", **CALM}], indirect=True
)
@pytest.mark.parametrize("nat_kamailio", [{"nat_contacts": True}], indirect=True)
async def test_turn_relay_through_random_mapping_routers_heard_both_ways(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    home2_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = home2_baresip_factory(
        audio=speech_at(8000, tmp_path),
        record=True,
        extra_config=PCMU,
        medianat="ice",
        stun_server=nat_coturn.stun_uri(),
        rtcp_mux=True,  # one component: baresip's checks through relays are slow, one is enough
    )
    ours = tmp_path / "alice-heard.wav"
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=True), FileAudio(SPEECH, ours), auto_answer=True
    )
    call_id, stats = await talk(alice, bob, bob_calls=True)
    assert our_address(alice, call_id) == nat_coturn.host  # the relayed candidate
    assert stats["ice"] == "connected", stats
    assert str(stats["ice_pair"]).startswith("relay/"), stats
    alice_pesq, bob_pesq = (
        heard(SPEECH, ours, max_lag_s=ICE_LAG_S),
        heard(SPEECH, bob_heard(bob), max_lag_s=ICE_LAG_S),
    )
    print(f"random mapping via TURN: alice heard {alice_pesq:.2f}, bob {bob_pesq:.2f}; {stats}")
    assert alice_pesq >= CLEAR_SPEECH and bob_pesq >= CLEAR_SPEECH


@pytest.mark.parametrize("nat_lab", [{"mapping": "random", **CALM}], indirect=True)
async def test_turn_relay_as_default_candidate_for_a_far_end_without_ice(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    nat_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = nat_baresip_factory(
        auto_answer=True, audio=speech_at(8000, tmp_path), record=True, extra_config=PCMU
    )
    ours = tmp_path / "alice-heard.wav"
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=True), FileAudio(SPEECH, ours)
    )
    call_id, stats = await talk(alice, bob, bob_calls=False)
    assert our_address(alice, call_id) == nat_coturn.host
    assert stats["ice"] == "off", stats  # bob answered without ICE: plain RTP via the relay
    alice_pesq, bob_pesq = (
        heard(SPEECH, ours, max_lag_s=ICE_LAG_S),
        heard(SPEECH, bob_heard(bob), max_lag_s=ICE_LAG_S),
    )
    print(f"relay as default: alice heard {alice_pesq:.2f}, bob {bob_pesq:.2f}; {stats}")
    assert alice_pesq >= CLEAR_SPEECH and bob_pesq >= CLEAR_SPEECH
