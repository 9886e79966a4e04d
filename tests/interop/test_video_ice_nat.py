"""Video calls with ICE across routers, in the NAT lab (softphone/lab/netns.py, coturn.py;
fixtures in conftest.py): the softphone behind router A, baresip (vp8, fakevideo, snapshot and
ice modules) behind router B, Kamailio and coturn (STUN and TURN) on the public side. baresip
calls (router B lets no INVITE in) with audio and video, both streams doing ICE; we answer.

What each test proves (phone/video_ice.py):

- router to router: the m=video's ICE finds its own way through both routers (our host socket
  to baresip's server- or peer-reflexive address), apart from the audio's: we decode baresip's
  fakevideo, and baresip's snapshot module decodes our moving pattern.
- we offer video (``dial --video``) to baresip on the public side: our m=video's ICE (one
  component) against baresip's, which does not multiplex RTCP; pictures both ways.
- random port mapping on both routers: only a relay gets through; the video gathers a relayed
  candidate of its own on coturn, ICE selects it, and the pictures go both ways through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory
from test_ice_nat import CALM, PCMU, ice_account
from test_softphone_sip import expect, state
from video_call_support import STEP_S, baresip_config, both_ways, stat, until

from softphone import lab
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.video import VideoSettings
from softphone.sdp import SessionDescription
from softphone.sdp.ice import ice_of

pytestmark = pytest.mark.interop

PATTERN = VideoSettings(source="pattern")  # answers baresip's video with our test pattern
# The checks through two routers (baresip waits ~2 s before its first) come before any picture.
ICE_S = 15.0


async def video_call(alice: Any, bob: lab.Baresip, tmp_path: Path) -> str:
    """bob calls alice with video; both decode the other's pictures through the routers.
    Returns the call's id (still up)."""
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    await asyncio.to_thread(bob.dial, "sip:alice@" + lab.DOMAIN)
    incoming = await expect(alice, lambda e: isinstance(e, pe.IncomingCall), timeout_s=8)
    assert isinstance(incoming, pe.IncomingCall)
    call_id = incoming.call_id
    await expect(alice, state(call_id, "established"), timeout_s=STEP_S)
    await until(lambda: stat(alice, call_id, "video_ice") == "connected", ICE_S)
    await both_ways(alice, call_id, bob, "vp8", tmp_path)
    return call_id


def our_video(alice: Any, call_id: str) -> tuple[str | None, list[str]]:
    """Our answer's m=video: its c= (our default candidate) and its candidates' types."""
    ours = alice.call(call_id).local_sdp
    assert isinstance(ours, SessionDescription)
    video = ours.first_media("video")
    assert video is not None and video.port != 0
    ice = ice_of(ours, video)
    assert ice is not None
    return ours.media_address(video), [c.type for c in ice.candidates]


async def hang_up(alice: Any, bob: lab.Baresip, call_id: str) -> dict[str, Any]:
    await alice.hangup(call_id)
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded) and e.call_id == call_id)
    assert isinstance(ended, pe.CallEnded) and ended.stats is not None
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)
    return dict(ended.stats)


@pytest.mark.parametrize(
    "nat_lab", [{"second_router": "endpoint-independent", **CALM}], indirect=True
)
@pytest.mark.parametrize("nat_kamailio", [{"nat_contacts": True}], indirect=True)
async def test_video_ice_from_router_to_router_seen_both_ways(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    home2_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = home2_baresip_factory(
        extra_config=PCMU + baresip_config("vp8"),
        medianat="ice",
        stun_server=nat_coturn.stun_uri(),
    )
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=False),
        NullAudio(),
        auto_answer=True,
        video=PATTERN,
    )
    call_id = await video_call(alice, bob, tmp_path)
    address, types = our_video(alice, call_id)
    assert address == nat_lab.router_wan  # the video's default candidate: server-reflexive
    assert "host" in types and "srflx" in types
    assert stat(alice, call_id, "video_ice_pair") in ("host/srflx", "host/prflx")
    assert stat(alice, call_id, "ice") == "connected"  # the audio's agent, apart
    stats = await hang_up(alice, bob, call_id)
    print(f"video router to router: {stats}")
    assert stats["video_ice"] == "connected"


@pytest.mark.parametrize(
    "nat_lab", [{"mapping": "random", "second_router": "random", **CALM}], indirect=True
)
@pytest.mark.parametrize("nat_kamailio", [{"nat_contacts": True}], indirect=True)
async def test_video_over_turn_relay_through_random_mapping_routers(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    home2_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    bob = home2_baresip_factory(
        extra_config=PCMU + baresip_config("vp8"),
        medianat="ice",
        stun_server=nat_coturn.stun_uri(),
        rtcp_mux=True,  # one component per stream: baresip's checks through relays are slow
    )
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=True),
        NullAudio(),
        auto_answer=True,
        video=PATTERN,
    )
    call_id = await video_call(alice, bob, tmp_path)
    address, types = our_video(alice, call_id)
    assert address == nat_coturn.host and "relay" in types  # the video's own relayed candidate
    assert str(stat(alice, call_id, "video_ice_pair")).startswith("relay/")
    stats = await hang_up(alice, bob, call_id)
    print(f"video via TURN: {stats}")
    assert stats["video_ice"] == "connected"


@pytest.mark.parametrize("nat_lab", [CALM], indirect=True)
@pytest.mark.parametrize("nat_kamailio", [{"nat_contacts": True}], indirect=True)
async def test_we_offer_video_with_ice_to_a_far_end_on_the_public_side(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    nat_coturn: lab.Coturn,
    nat_baresip_factory: BaresipFactory,
    home_phone: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Our offer's m=video carries its own ICE (one component, rtcp-mux offered); baresip,
    which does not multiplex here, answers with ICE for it, and the video goes both ways."""
    bob = nat_baresip_factory(
        auto_answer=True,
        extra_config=PCMU + baresip_config("vp8"),
        medianat="ice",
        stun_server=nat_coturn.stun_uri(),
    )
    alice = await home_phone(
        ice_account(nat_kamailio, nat_coturn, turn=False),
        NullAudio(),
        video=VideoSettings(source="pattern", offer=True),
    )
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    call_id = await alice.dial(bob.aor)
    await expect(alice, state(call_id, "established"), timeout_s=STEP_S)
    await until(lambda: stat(alice, call_id, "video_ice") == "connected", ICE_S)
    await both_ways(alice, call_id, bob, "vp8", tmp_path)
    offer = alice.call(call_id).local_sdp
    assert isinstance(offer, SessionDescription)
    video = offer.first_media("video")
    assert video is not None and offer.media_address(video) == nat_lab.router_wan
    answer = SessionDescription.parse(alice.call(call_id).remote_sdp)
    answered = answer.first_media("video")
    assert answered is not None and ice_of(answer, answered) is not None  # baresip's video ICE
    stats = await hang_up(alice, bob, call_id)
    print(f"video offered to the public side: {stats}")
    assert stats["video_ice"] == "connected"
