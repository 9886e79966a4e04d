"""A provider's media relay: Kamailio anchors every call's media in rtpengine (its ``rtpengine``
module; rtpengine in userspace on the lab's relay host, 203.0.113.40), and we call baresip on
the public side from behind the home router (softphone/lab/netns.py, rtpengine.py).

What the test proves: speech both ways on the recordings, and that it went through rtpengine,
not around it: rtpengine's own account of the call (ng ``query``) has both parties' streams,
ours seen at the router's public address and bob's at his, each carrying the call's packets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory, dump, peers_required
from speech_quality import SPEECH, speech_at
from test_nat import (
    EARLY_PACKETS,
    PESQ_MIN,
    TALK_PACKETS,
    bob_heard,
    heard,
    nat_account,
    sent_at_least,
)
from test_softphone_sip import ended, expect, state

from softphone import lab
from softphone.lab.rtpengine import Bencoded, RtpEngine
from softphone.phone import events as pe
from softphone.phone.audio import FileAudio

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def rtpengine(
    request: pytest.FixtureRequest, nat_lab: lab.NatLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RtpEngine]:
    engine = RtpEngine(
        tmp_path_factory.mktemp("rtpengine"), host=nat_lab.rtpengine_host, netns=nat_lab.relay
    )
    with peers_required():
        engine.start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def nat_kamailio(
    nat_lab: lab.NatLab,
    rtpengine: RtpEngine,
    tmp_path_factory: pytest.TempPathFactory,
    lab_pki: lab.LabPki,
) -> Iterator[lab.Kamailio]:
    """conftest's nat_kamailio, anchoring media in ``rtpengine`` (the baresip factory and the
    phones of this module use this one)."""
    proxy = lab.Kamailio(
        tmp_path_factory.mktemp("kamailio-rtpengine"),
        lab_pki,
        host=nat_lab.registrar_host,
        netns=nat_lab.wan,
        flow_timer_s=4,
        nat_aliases=False,
        rtpengine=rtpengine.ng_socket,
    )
    with peers_required():
        proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def streams(call: dict[str, Bencoded]) -> list[tuple[str, int]]:
    """(address the stream was seen at, packets it sent to rtpengine) for each RTP stream of
    each party in an ng ``query`` answer."""
    found: list[tuple[str, int]] = []
    tags = call.get("tags")
    assert isinstance(tags, dict), call
    for party in tags.values():
        assert isinstance(party, dict)
        for media in party.get("medias", []):  # type: ignore[union-attr]
            assert isinstance(media, dict)
            rtp = media.get("streams", [])[0]  # type: ignore[index]
            assert isinstance(rtp, dict)
            endpoint, stats = rtp.get("endpoint"), rtp.get("stats")
            assert isinstance(endpoint, dict) and isinstance(stats, dict), rtp
            found.append((str(endpoint.get("address")), int(str(stats.get("packets")))))
    return found


async def test_calling_out_through_the_providers_media_relay_is_heard_both_ways(
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    rtpengine: RtpEngine,
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
    alice = await home_phone(nat_account(nat_kamailio, stun=True), FileAudio(SPEECH, ours))
    assert (await alice.wait_registered(8.0)) == {"alice": True}
    mark, dropped = nat_kamailio.mark(), nat_lab.dropped()
    call_id = await alice.dial(bob.aor)
    await expect(alice, state(call_id, "established"))
    await expect(alice, sent_at_least(call_id, TALK_PACKETS), timeout_s=20)
    listing = await asyncio.to_thread(rtpengine.ng, {"command": "list"})
    calls = listing.get("calls")
    assert isinstance(calls, list) and len(calls) == 1, listing
    anchored = await asyncio.to_thread(rtpengine.query, str(calls[0]))
    await alice.hangup(call_id)
    end = await expect(alice, ended(call_id))
    assert isinstance(end, pe.CallEnded)
    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 8.0)

    alice_pesq, bob_pesq = heard(SPEECH, ours), heard(SPEECH, bob_heard(bob))
    seen = streams(anchored)
    print(f"alice heard {alice_pesq:.2f}, bob heard {bob_pesq:.2f}; rtpengine saw {seen}")
    lab_lines = [line for line in nat_kamailio.lines()[mark:] if "LAB RTPENGINE" in line]
    if not (alice_pesq >= PESQ_MIN and bob_pesq >= PESQ_MIN):
        dump("rtpengine", rtpengine.lines())
    assert any("RTPENGINE OFFER INVITE" in line for line in lab_lines), lab_lines
    assert any("RTPENGINE ANSWER 200 INVITE" in line for line in lab_lines), lab_lines
    by_address = dict(seen)
    assert set(by_address) == {nat_lab.router_wan, nat_lab.far_host}, seen
    # Each party's RTP reached rtpengine: most of what we had sent by then, and bob's too.
    assert by_address[nat_lab.router_wan] >= TALK_PACKETS - EARLY_PACKETS
    assert by_address[nat_lab.far_host] >= TALK_PACKETS - EARLY_PACKETS
    assert alice_pesq >= PESQ_MIN and bob_pesq >= PESQ_MIN
    assert nat_lab.dropped() - dropped <= EARLY_PACKETS
