"""Reliable provisional responses (RFC 3262), session timers (RFC 4028) and UPDATE (RFC 3311)
against SIPp playing a PBX that requires them, on 127.0.0.1.

The session interval is RFC 4028's smallest, 90 s, in real deployments; here the phone's
``TimerConfig(min_se=...)`` is lowered (as T1 may be on a private network) and SIPp asks for a
4 s session, so a refresh comes after 2 s and an unrefreshed session ends after 4 - 4/3 s,
instead of 45 s and 60 s. What is walked is the same code; tests/sip/test_session_timer.py walks
the 1800 s default by argument."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lab_support import dump, peers_required

from softphone.config import Account, Config
from softphone.lab.process import free_port_pair
from softphone.lab.sipp import Sipp
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.text import ended_line
from softphone.sip.timers import TimerConfig
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend

pytestmark = pytest.mark.interop

SESSION_S = 4  # SIPp's Session-Expires: a refresh at 2 s, the end at 4 - min(32, 4/3) s
STEP_S = 10.0


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Phone]:
    account = Account(name="alice", uri=SipUri(user="alice", host="127.0.0.1"))
    phone = Phone(
        Config(accounts=(account,)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(7),
        dns=StubBackend(),
        auto_answer=True,
        audio=NullAudio(),
        data_dir=tmp_path / "data",
        timers=TimerConfig(min_se=2),  # the lab's floor: see the module docstring
    )
    await phone.start()
    yield phone
    await phone.stop()


async def expect(
    phone: Phone, predicate: Callable[[pe.PhoneEvent], bool], seen: list[pe.PhoneEvent]
) -> pe.PhoneEvent:
    async with asyncio.timeout(STEP_S):
        while True:
            event = await phone.next_event()
            seen.append(event)
            if predicate(event):
                return event


async def sip_port(phone: Phone, seen: list[pe.PhoneEvent]) -> int:
    event = await expect(
        phone, lambda e: isinstance(e, pe.Listening) and e.transport == "udp", seen
    )
    assert isinstance(event, pe.Listening)
    return event.port


async def finished(sipp: Sipp) -> Any:
    result = await asyncio.to_thread(sipp.wait, STEP_S + SESSION_S)
    if result.exit_code != 0:
        dump("sipp log", (sipp.workdir / "sipp.log").read_text(errors="replace").splitlines())
        for errors in sipp.workdir.glob("*_errors.log"):
            dump(errors.name, errors.read_text(errors="replace").splitlines())
    return result


async def test_a_pbx_requiring_prack_and_timers_answers_our_call_and_gets_our_refresh(
    tmp_path: Path, phone: Phone
) -> None:
    """(a) SIPp answers with a reliable 183 + SDP, wants our PRACK, then 200 with
    Session-Expires: 4;refresher=uac: we refresh with UPDATE at 2 s; SIPp then hangs up."""
    sipp = Sipp(tmp_path / "sipp", "prack_uas", None, rate=1, calls=1, session_expires=SESSION_S)
    sipp.local_port = free_port_pair()
    with peers_required():
        sipp.start()
    seen: list[pe.PhoneEvent] = []
    try:
        call_id = await phone.dial(f"sip:pbx@127.0.0.1:{sipp.local_port}")
        ended = await expect(
            phone, lambda e: isinstance(e, pe.CallEnded) and e.call_id == call_id, seen
        )
        result = await finished(sipp)
    finally:
        sipp.stop()
    assert isinstance(ended, pe.CallEnded)
    # SIPp's checks passed: Supported 100rel+timer, RAck "1 <CSeq> INVITE", UPDATE with
    # Session-Expires before the session expired; then its BYE ended the call.
    assert result.exit_code == 0 and result.successful == 1
    assert ended.reason == "remote hung up" and ended.answered
    states = [e.state for e in seen if isinstance(e, pe.CallStateChanged)]
    assert states == ["calling", "early", "established", "ended"]  # the 183 was early media
    (established,) = [
        e for e in seen if isinstance(e, pe.CallStateChanged) and e.state == "established"
    ]
    assert established.session_expires_s == SESSION_S  # what `call_state` JSON says


async def test_a_pbx_requiring_prack_gets_reliable_ringing_and_a_silent_one_is_hung_up_on(
    tmp_path: Path, phone: Phone
) -> None:
    """(b) SIPp calls with Require: 100rel and Session-Expires: 4;refresher=uac: our 180 is
    reliable, SIPp PRACKs it, our 200 waits for that and carries Session-Expires + Require:
    timer. (c) SIPp then never refreshes: we send BYE before the session expires and the call
    ends as "session expired"."""
    seen: list[pe.PhoneEvent] = []
    sipp = Sipp(
        tmp_path / "sipp",
        "prack_uac",
        ("127.0.0.1", await sip_port(phone, seen)),
        rate=1,
        calls=1,
        service="alice",
        session_expires=SESSION_S,
    )
    with peers_required():
        sipp.start()
    try:
        incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall), seen)
        assert isinstance(incoming, pe.IncomingCall)
        established = await expect(
            phone,
            lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established",
            seen,
        )
        assert isinstance(established, pe.CallStateChanged)
        assert established.session_expires_s == SESSION_S
        loop = asyncio.get_running_loop()
        established_at = loop.time()
        ended = await expect(
            phone, lambda e: isinstance(e, pe.CallEnded) and e.call_id == incoming.call_id, seen
        )
        lasted_s = loop.time() - established_at
        result = await finished(sipp)
    finally:
        sipp.stop()
    assert isinstance(ended, pe.CallEnded)
    assert result.exit_code == 0 and result.successful == 1
    assert ended.reason.startswith("session expired"), ended.reason
    assert ended.answered and ended.outcome == "answered"
    # what the TUI and the CLI show
    assert ended_line(ended).endswith(
        f"s: session expired: no session refresh within {SESSION_S} s"
    )
    # §10: BYE min(32, SE/3) before expiry: 4 - 4/3 s after the 2xx, not at once, not late
    assert SESSION_S / 2 < lasted_s < SESSION_S, lasted_s
