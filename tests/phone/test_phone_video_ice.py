"""Two Phones on 127.0.0.1 in video calls with ICE (phone/video_ice.py): the m=video is a second
ICE stream with its own credentials and candidates in the offer and the answer, the pictures go
over its selected pair, a re-INVITE that adds video gathers for it and re-offers keep it, a far
end without ICE gets the plain path, and a video whose checks fail (or whose consent expires)
stops while the call goes on."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from phone_support import expect, port_of

from softphone.config import Account, Config, MediaEncryptionName
from softphone.config_nat import NatTraversal
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.sdp import SessionDescription
from softphone.sdp.ice import ice_of
from softphone.sdp.session import MediaDescription
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

Start = Callable[..., Awaitable[Phone]]
PATTERN = VideoSettings(source="pattern", offer=True)


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Start]:
    made: list[Phone] = []

    async def start(
        name: str,
        *,
        ice: bool = True,
        video: VideoSettings = PATTERN,
        encryption: MediaEncryptionName = "srtp-optional",
    ) -> Phone:
        account = Account(
            name=name,
            uri=SipUri(user=name, host="127.0.0.1"),
            nat=NatTraversal(ice=ice),
            media_encryption=encryption,
        )
        phone = Phone(
            Config(accounts=(account,), codecs=("pcmu",)),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(name),
            dns=StubBackend(),
            auto_answer=True,
            audio=NullAudio(),
            video=video,
            data_dir=tmp_path / name,
        )
        await phone.start()
        made.append(phone)
        return phone

    yield start
    for phone in made:
        await phone.stop()


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def stat(phone: Phone, call_id: str, key: str) -> object:
    return (phone.call_stats(call_id) or {}).get(key)


def received(phone: Phone, call_id: str) -> int:
    value = stat(phone, call_id, "video_frames_received")
    return value if isinstance(value, int) else 0


def parsed(sdp: SessionDescription | bytes | None) -> SessionDescription:
    assert sdp is not None
    return sdp if isinstance(sdp, SessionDescription) else SessionDescription.parse(sdp)


def section(sdp: SessionDescription, kind: str) -> MediaDescription:
    m = sdp.first_media(kind)
    assert m is not None, f"no m={kind} in {bytes(sdp)!r}"
    return m


def two_ice_streams(sdp: SessionDescription, video_components: set[int]) -> None:
    """Audio and video each carry ICE of their own (RFC 8839 §5.4), and the video's c=/m= name
    its default candidate, a host candidate on 127.0.0.1 here. An offer has RTCP candidates
    for its video (RFC 5761 §5.1.3); an answer to an offer with rtcp-mux has none."""
    audio, video = section(sdp, "audio"), section(sdp, "video")
    audio_ice, video_ice = ice_of(sdp, audio), ice_of(sdp, video)
    assert audio_ice is not None and video_ice is not None
    assert audio_ice.ufrag != video_ice.ufrag and audio_ice.pwd != video_ice.pwd
    assert {c.component for c in video_ice.candidates} == video_components
    default = next(c for c in video_ice.candidates if c.component == 1)
    assert (sdp.media_address(video), video.port) == (default.address, default.port)
    assert default.type == "host"
    rtcp = [c.port for c in video_ice.candidates if c.component == 2]
    assert video.rtcp_port == (rtcp[0] if rtcp else None)  # a=rtcp: the RTCP default candidate
    audio_ports = {c.port for c in audio_ice.candidates}
    assert default.port not in audio_ports  # the video's own socket


async def call(a: Phone, b: Phone) -> tuple[str, str]:
    call_id = await a.dial(f"sip:{b.accounts[0]}@127.0.0.1:{port_of(b)}")
    await expect(a, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")
    theirs = next(c.call_id for c in b.calls if c.state != "ended")
    return call_id, theirs


@pytest.mark.parametrize("encryption", ["srtp-optional", "dtls-srtp"])
async def test_video_runs_over_its_own_ice_stream(
    make: Start, encryption: MediaEncryptionName
) -> None:
    b = await make("b", encryption=encryption)
    a = await make("a", encryption=encryption)
    ours, theirs = await call(a, b)
    two_ice_streams(parsed(a.call(ours).local_sdp), {1, 2})  # the offer
    two_ice_streams(parsed(a.call(ours).remote_sdp), {1})  # the answer: rtcp-mux
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    for phone, call_id in ((a, ours), (b, theirs)):
        assert stat(phone, call_id, "video_ice") == "connected"
        assert stat(phone, call_id, "video_ice_pair") == "host/host"
        assert stat(phone, call_id, "ice") == "connected"  # the audio's, apart
        method = "sdes" if encryption == "srtp-optional" else "dtls-srtp"
        assert stat(phone, call_id, "video_encryption") == method  # SRTP over the pair
    # The pictures came over the video's selected pair: its agent is what the stream sends on.
    info = a.call(ours)
    assert info.video_ice is not None and a._video.stream(ours)._endpoint is info.video_ice  # type: ignore[union-attr]
    await a.hangup(ours)
    ended = await expect(a, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.stats is not None
    assert ended.stats["video_ice"] == "connected"
    assert info.video_ice is None  # closed with the call


async def test_reinvite_adding_video_gathers_and_later_offers_keep_the_agent(make: Start) -> None:
    quiet = VideoSettings(source="pattern")  # a source, but no video offered
    b = await make("b", video=quiet)
    a = await make("a", video=quiet)
    ours, theirs = await call(a, b)
    first = parsed(a.call(ours).local_sdp)
    assert [m.media for m in first.media] == ["audio"]
    audio_ice = ice_of(first, section(first, "audio"))
    await a.set_video(ours, True)
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    offer = parsed(a.call(ours).local_sdp)
    two_ice_streams(offer, {1, 2})
    two_ice_streams(parsed(a.call(ours).remote_sdp), {1})
    assert ice_of(offer, section(offer, "audio")) == audio_ice  # no audio restart
    video_ice = ice_of(offer, section(offer, "video"))
    assert stat(a, ours, "video_ice") == stat(b, theirs, "video_ice") == "connected"
    # A hold re-offer keeps the video's ufrag, pwd and candidates (RFC 8839 §4.4).
    agent = a.call(ours).video_ice
    await a.hold(ours)
    await until(lambda: a.call(ours).state == "held")
    held = parsed(a.call(ours).local_sdp)
    assert ice_of(held, section(held, "video")) == video_ice
    assert a.call(ours).video_ice is agent
    # Turned off (port 0) the stream is gone; turned on again it is a new one, with new ICE.
    await a.resume(ours)
    await until(lambda: a.call(ours).state == "established")
    await a.set_video(ours, False)
    await until(lambda: a.call(ours).video_ice is None and b.call(theirs).video_ice is None)
    await a.set_video(ours, True)
    before = received(a, ours)
    await until(lambda: received(a, ours) >= before + 10 and received(b, theirs) >= 10)
    again = parsed(a.call(ours).local_sdp)
    two_ice_streams(again, {1, 2})
    renewed = ice_of(again, section(again, "video"))
    assert renewed is not None and video_ice is not None and renewed.ufrag != video_ice.ufrag
    assert stat(a, ours, "video_ice") == stat(b, theirs, "video_ice") == "connected"


async def test_far_end_without_ice_gets_the_plain_video_path(make: Start) -> None:
    b = await make("b", ice=False)
    a = await make("a")
    ours, theirs = await call(a, b)
    assert ice_of(parsed(a.call(ours).local_sdp), section(parsed(a.call(ours).local_sdp), "video"))
    answer = parsed(a.call(ours).remote_sdp)
    assert ice_of(answer, section(answer, "video")) is None
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)
    assert stat(a, ours, "video_ice") == "off" and stat(b, theirs, "video_ice") == "off"


async def test_an_offer_without_video_ice_is_answered_without(make: Start) -> None:
    b = await make("b")
    a = await make("a", ice=False)
    ours, theirs = await call(a, b)
    answer = parsed(a.call(ours).remote_sdp)
    assert ice_of(answer, section(answer, "video")) is None
    assert b.call(theirs).video_ice is None
    await until(lambda: received(a, ours) >= 10 and received(b, theirs) >= 10)


def _dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on return: nothing listens there


async def test_failed_video_checks_stop_the_video_and_the_call_goes_on(make: Start) -> None:
    b = await make("b")
    a = await make("a")
    a._ice.connect_timeout_s = 2.0
    dead = _dead_port()
    video = b._video._ice
    assert video is not None
    real = video.attributes

    def unreachable(info: CallInfo) -> list[tuple[str, str | None]]:
        # Bob's video candidates all name a port nothing listens on, and bob never checks
        # them himself: no video pair can work. His audio is as usual.
        out = []
        for name, value in real(info):
            if name == "candidate" and value is not None:
                fields = value.split()
                fields[5] = str(dead)
                value = " ".join(fields)
            out.append((name, value))
        return out

    video.attributes = unreachable  # type: ignore[method-assign]
    video.start = lambda info: None  # type: ignore[method-assign]
    ours, theirs = await call(a, b)
    notice = await expect(
        a, lambda e: isinstance(e, pe.Notice) and "no video path" in e.text, timeout_s=8
    )
    assert isinstance(notice, pe.Notice) and notice.level == "warning"
    assert "the call goes on without video" in notice.text
    info = a.call(ours)
    assert info.state == "established" and info.video_media is None
    assert a._video.stream(ours) is None and a.video_picture(ours, 320, 240) is None
    assert stat(a, ours, "video_ice") == "failed"
    # The call's audio still flows (over its own ICE pair).
    stats = await expect(
        a,
        lambda e: isinstance(e, pe.CallStats) and int(e.stats["packets_received"]) >= 50,
        timeout_s=10,
    )
    assert isinstance(stats, pe.CallStats) and stats.stats["ice"] == "connected"
    # A later offer turns the video off (port 0, RFC 3264 §8.2) rather than trying again.
    await a.hold(ours)
    await until(lambda: a.call(ours).state == "held")
    assert section(parsed(a.call(ours).local_sdp), "video").port == 0
    assert b.call(theirs).state in ("held", "established")
    # The far end's offer of video is refused while the path is known to fail.
    await a.resume(ours)
    await until(lambda: a.call(ours).state == "established")
    await b.set_video(theirs, True)
    await until(lambda: section(parsed(a.call(ours).remote_sdp), "video").port != 0)  # its offer
    assert section(parsed(a.call(ours).local_sdp), "video").port == 0  # our answer
    assert a.call(ours).video_media is None and stat(a, ours, "video_ice") == "failed"
    # Turned on again here (the C key), the video gathers anew and tries again.
    failed_agent = a.call(ours).video_ice
    video.attributes = real  # type: ignore[method-assign]  # bob's real candidates now
    await a.set_video(ours, True)
    await until(lambda: a.call(ours).video_ice is not failed_agent)
    await until(lambda: a.call(ours).video_media is not None)
    assert stat(a, ours, "video_ice") in ("checking", "connected")
    await a.hangup(ours)
    ended = await expect(a, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.reason != "no media path"


async def test_video_consent_lost_stops_the_video_not_the_call(
    make: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 7675: consent checks every 0.2 s instead of 5 s; six unanswered ones end it.
    monkeypatch.setattr("aioice.ice.CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr("aioice.stun.RETRY_RTO", 0.1)
    b = await make("b")
    a = await make("a")
    ours, theirs = await call(a, b)
    await until(lambda: received(a, ours) >= 5 and stat(a, ours, "video_ice") == "connected")
    video_rtp = b.call(theirs).video_rtp
    assert video_rtp is not None and video_rtp.stun_sink is not None
    answers = video_rtp.stun_sink

    def no_requests(data: bytes, addr: tuple[str, int], via_rtcp: bool) -> None:
        if int.from_bytes(data[:2], "big") & 0x0110:  # RFC 8489 §5: a response's class bits
            answers(data, addr, via_rtcp)

    video_rtp.stun_sink = no_requests  # bob's video stops answering checks; his audio does not
    notice = await expect(
        a, lambda e: isinstance(e, pe.Notice) and "video path lost" in e.text, timeout_s=15
    )
    assert isinstance(notice, pe.Notice) and notice.level == "warning"
    assert a.call(ours).state == "established" and a._video.stream(ours) is None
    assert stat(a, ours, "ice") == "connected"
