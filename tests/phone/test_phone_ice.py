"""Two Phones on 127.0.0.1 calling each other with ICE (RFC 8445, aioice on the calls' own RTP
sockets): media both ways on the selected pair, with SDES and DTLS-SRTP over it; plain RTP
when one side does not do ICE; "no media path" when no pair works."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aioice import stun
from phone_support import expect, port_of
from speech_quality import CLEAR_SPEECH, SPEECH, score

from softphone.config import Account, Config, MediaEncryptionName
from softphone.config_nat import NatTraversal
from softphone.phone import events as pe
from softphone.phone.audio import AudioProvider, FileAudio, NullAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.phone import Phone
from softphone.sdp import SessionDescription
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

Start = Callable[..., Awaitable[Phone]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Start]:
    made: list[Phone] = []

    async def start(
        name: str,
        *,
        ice: bool,
        nat: NatTraversal | None = None,
        encryption: MediaEncryptionName = "srtp-optional",
        audio: AudioProvider | None = None,
        auto_answer: bool = True,
    ) -> Phone:
        account = Account(
            name=name,
            uri=SipUri(user=name, host="127.0.0.1"),
            media_encryption=encryption,
            nat=nat or NatTraversal(ice=ice),
        )
        phone = Phone(
            Config(accounts=(account,), codecs=("opus", "pcmu")),
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random(name),
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


def received_at_least(n: int) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.CallStats) and int(e.stats["packets_received"]) >= n


def candidates(sdp: SessionDescription | bytes | None) -> list[str]:
    assert sdp is not None
    parsed = sdp if isinstance(sdp, SessionDescription) else SessionDescription.parse(sdp)
    return [v or "" for v in parsed.media[0].attribute_all("candidate")]


async def established(phone: Phone) -> None:
    await expect(phone, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established")


@pytest.mark.parametrize("encryption", ["srtp-optional", "dtls-srtp"])
async def test_media_both_ways_over_ice(encryption: MediaEncryptionName, make: Start) -> None:
    bob = await make("bob", ice=True, encryption=encryption)
    alice = await make("alice", ice=True, encryption=encryption)
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await established(alice)
    ours = await expect(alice, received_at_least(100), timeout_s=15)
    theirs = await expect(bob, received_at_least(100), timeout_s=15)
    assert isinstance(ours, pe.CallStats) and isinstance(theirs, pe.CallStats)
    for stats in (ours.stats, theirs.stats):
        assert stats["ice"] == "connected"
        assert stats["ice_pair"] == "host/host"
        assert stats["encryption"] == ("sdes" if encryption == "srtp-optional" else "dtls-srtp")
        assert stats["srtp_auth_failures"] == 0
    info = alice.call(call_id)
    host = [c for c in candidates(info.local_sdp) if "typ host" in c]
    assert len(host) == 2  # RTP and RTCP sockets, components 1 and 2
    assert candidates(info.remote_sdp)  # bob answered with ICE
    await alice.hangup(call_id)
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.stats is not None
    assert ended.stats["ice"] == "connected"


async def test_speech_both_ways_over_ice(make: Start, tmp_path: Path) -> None:
    bob_heard, alice_heard = tmp_path / "bob-heard.wav", tmp_path / "alice-heard.wav"
    bob = await make("bob", ice=True, audio=FileAudio(SPEECH, bob_heard))
    alice = await make("alice", ice=True, audio=FileAudio(SPEECH, alice_heard))
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await established(alice)
    await expect(alice, received_at_least(400), timeout_s=20)
    await expect(bob, received_at_least(400), timeout_s=20)
    await alice.hangup(call_id)
    await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    await expect(bob, lambda e: isinstance(e, pe.CallEnded))
    heard_by_bob = score(SPEECH, bob_heard, mode="wb", seconds=6.0, skip_s=1.0)
    heard_by_alice = score(SPEECH, alice_heard, mode="wb", seconds=6.0, skip_s=1.0)
    assert heard_by_bob.pesq >= CLEAR_SPEECH, f"caller -> callee: {heard_by_bob}"
    assert heard_by_alice.pesq >= CLEAR_SPEECH, f"callee -> caller: {heard_by_alice}"


@pytest.mark.parametrize("ice_side", ["caller", "callee"])
async def test_plain_rtp_when_the_far_end_does_not_do_ice(ice_side: str, make: Start) -> None:
    bob = await make("bob", ice=ice_side == "callee")
    alice = await make("alice", ice=ice_side == "caller")
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await established(alice)
    ours = await expect(alice, received_at_least(100), timeout_s=15)
    theirs = await expect(bob, received_at_least(100), timeout_s=15)
    assert isinstance(ours, pe.CallStats) and isinstance(theirs, pe.CallStats)
    assert ours.stats["ice"] == theirs.stats["ice"] == "off"
    info = alice.call(call_id)
    assert bool(candidates(info.local_sdp)) == (ice_side == "caller")
    assert not candidates(info.remote_sdp)  # bob answers an ICE offer without ICE, or none came
    await alice.hangup(call_id)
    await expect(alice, lambda e: isinstance(e, pe.CallEnded))


def _dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on return: nothing listens there


async def test_no_media_path_ends_the_call(make: Start) -> None:
    bob = await make("bob", ice=True)
    alice = await make("alice", ice=True)
    alice._ice.connect_timeout_s = 2.0
    dead = _dead_port()
    real = bob._ice.attributes

    def unreachable(info: CallInfo) -> list[tuple[str, str | None]]:
        # Bob's candidates all name a port nothing listens on, and bob never checks himself:
        # no pair can work.
        out = []
        for name, value in real(info):
            if name == "candidate" and value is not None:
                fields = value.split()
                fields[5] = str(dead)
                value = " ".join(fields)
            out.append((name, value))
        return out

    bob._sdp._ice = unreachable
    bob._ice.start = lambda info: None  # type: ignore[method-assign]
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await established(alice)
    notice = await expect(
        alice, lambda e: isinstance(e, pe.Notice) and "no media path" in e.text, timeout_s=8
    )
    assert isinstance(notice, pe.Notice) and notice.level == "error"
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded)
    assert ended.reason == "no media path"
    assert ended.stats is not None and ended.stats["ice"] == "failed"
    theirs = await expect(bob, lambda e: isinstance(e, pe.CallEnded))  # our BYE reached bob
    # Nothing went to bob's c=/m= (his real socket) while the checks ran: RFC 8445 §12.1.
    assert isinstance(theirs, pe.CallEnded) and theirs.stats is not None
    assert theirs.stats["packets_received"] == 0
    assert alice.call(call_id).state == "ended"


class RefusingTurnServer(asyncio.DatagramProtocol):
    """A TURN server that refuses every Allocate with 401, as one does for a wrong password
    (RFC 8656 §7.2, RFC 8489 §9.2.4: the realm and nonce come back, the credentials never fit)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.allocations = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = stun.parse_message(data)
        if request.message_method != stun.Method.ALLOCATE or self.transport is None:
            return
        self.allocations += 1
        response = stun.Message(
            message_method=stun.Method.ALLOCATE,
            message_class=stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = (401, "Unauthorized")
        response.attributes["REALM"] = "lab.test"
        response.attributes["NONCE"] = b"abcdefgh"
        self.transport.sendto(bytes(response), addr)


async def test_wrong_turn_credentials_are_said_once_and_calls_go_on(make: Start) -> None:
    loop = asyncio.get_running_loop()
    transport, turn = await loop.create_datagram_endpoint(
        RefusingTurnServer, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        nat = NatTraversal(
            turn_server=f"127.0.0.1:{port}", turn_username="alice", turn_password="wrong"
        )
        bob = await make("bob", ice=True)
        alice = await make("alice", ice=True, nat=nat)
        notices: list[str] = []
        bob_at = f"sip:bob@127.0.0.1:{port_of(bob)}"
        for n in range(2):
            call_id = await alice.dial(bob_at)
            while True:  # the notices that come before the call is up
                event = await expect(
                    alice,
                    lambda e: (
                        isinstance(e, pe.Notice)
                        or (isinstance(e, pe.CallStateChanged) and e.state == "established")
                    ),
                )
                if isinstance(event, pe.Notice):
                    notices.append(event.text)
                    continue
                break
            if n == 0:  # the first call's media flows on the host pair
                stats = await expect(alice, received_at_least(25), timeout_s=15)
                assert isinstance(stats, pe.CallStats)
                assert stats.stats["ice"] == "connected"
                assert stats.stats["ice_pair"] == "host/host"
            assert not any("typ relay" in c for c in candidates(alice.call(call_id).local_sdp))
            await alice.hangup(call_id)
            await expect(alice, lambda e: isinstance(e, pe.CallEnded))
        turn_notices = [n for n in notices if "TURN server" in n]
        assert turn_notices == [
            f"TURN server 127.0.0.1:{port} gave no relay address for alice: check turn_username"
            " and turn_password (or the server does not answer); calls go on without a relay"
        ]
        assert turn.allocations >= 4  # both calls asked (with and without credentials)
    finally:
        transport.close()


async def test_consent_lost_ends_the_call(make: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 7675: consent checks every 0.2 s instead of 5 s; six unanswered ones end it.
    monkeypatch.setattr("aioice.ice.CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr("aioice.stun.RETRY_RTO", 0.1)
    bob = await make("bob", ice=True)
    alice = await make("alice", ice=True)
    call_id = await alice.dial(f"sip:bob@127.0.0.1:{port_of(bob)}")
    await established(alice)
    stats = await expect(alice, received_at_least(1), timeout_s=15)
    assert isinstance(stats, pe.CallStats) and stats.stats["ice"] == "connected"
    info = bob.call(bob.calls[0].call_id)
    assert info.rtp is not None
    # Bob stops answering checks (his sockets still take RTP, and the answers to his own checks:
    # were his consent to expire too, he might hang up first and the call end otherwise).
    answers = info.rtp.stun_sink
    assert answers is not None

    def no_requests(data: bytes, addr: tuple[str, int], via_rtcp: bool) -> None:
        if int.from_bytes(data[:2], "big") & 0x0110:  # RFC 8489 §5: a response's class bits
            answers(data, addr, via_rtcp)

    info.rtp.stun_sink = no_requests
    notice = await expect(
        alice, lambda e: isinstance(e, pe.Notice) and "media path lost" in e.text, timeout_s=15
    )
    assert isinstance(notice, pe.Notice) and notice.level == "error"
    ended = await expect(alice, lambda e: isinstance(e, pe.CallEnded))
    assert isinstance(ended, pe.CallEnded) and ended.reason == "media path lost"
    assert alice.call(call_id).state == "ended"
