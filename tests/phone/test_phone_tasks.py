"""The tasks a Phone starts by itself (answering by itself, dialling the target of a REFER) end
with ``stop()``: cancelled and waited for, never left pending when the loop closes."""

from __future__ import annotations

import asyncio
import gc
import logging
import random

import pytest
from phone_support import expect, port_of, started

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.transport.resolver import NaptrRecord, SrvRecord, StubBackend


class StalledDns(StubBackend):
    """A DNS server that never answers: ``asked`` is set by the first query, which then waits
    until it is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()

    async def _stall(self) -> None:
        self.asked.set()
        await asyncio.Event().wait()

    async def naptr(self, name: str) -> list[NaptrRecord]:
        await self._stall()
        return []

    async def srv(self, name: str) -> list[SrvRecord]:
        await self._stall()
        return []

    async def a(self, name: str) -> list[str]:
        await self._stall()
        return []

    async def aaaa(self, name: str) -> list[str]:
        await self._stall()
        return []


def tasks_since(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """The tasks started after ``before`` was taken (the test's own left out)."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() - before if t is not current}


async def transfer_into_a_stalled_dial(
    dns: StalledDns,
) -> tuple[Phone, Phone, set[asyncio.Task[object]]]:
    """transferor calls transferee and transfers it (REFER) to a name whose look-up never
    ends: the transferee's transfer dial waits in DNS. Returns the phones and the tasks started
    since the REFER went out."""
    transferee = Phone(
        Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random("stalled"),
        dns=dns,
        auto_answer=True,
        audio=NullAudio(),
    )
    await transferee.start()
    transferor = await started(seed="transferor")
    call_id = await transferor.dial(f"sip:softphone@127.0.0.1:{port_of(transferee)}")
    await expect(
        transferor, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established"
    )
    before = asyncio.all_tasks()
    await transferor.transfer(call_id, "sip:carol@stalled.test")
    async with asyncio.timeout(10):
        await dns.asked.wait()
    return transferee, transferor, tasks_since(before)


async def test_stop_cancels_a_transfer_dial_and_waits_for_it() -> None:
    transferee, transferor, started_since = await transfer_into_a_stalled_dial(StalledDns())
    try:
        dialling = [t for t in started_since if not t.done()]
        assert len(dialling) == 1  # the transfer dial, waiting for DNS
        await transferee.stop()
        assert dialling[0].cancelled()
    finally:
        await transferee.stop()
        await transferor.stop()


async def test_stop_while_an_auto_answer_is_due_cancels_it() -> None:
    callee = await started(seed="auto-callee", auto_answer=True)
    caller = await started(seed="auto-caller")
    try:
        target = f"sip:softphone@127.0.0.1:{port_of(callee)}"
        before = asyncio.all_tasks()
        await caller.dial(target)
        await expect(callee, lambda e: isinstance(e, pe.IncomingCall))
        answering = [t for t in tasks_since(before) if not t.done()]
        assert len(answering) == 1  # started with the IncomingCall; it has not run yet
        await callee.stop()
        assert answering[0].cancelled()
        end = await expect(caller, lambda e: isinstance(e, pe.CallEnded))
        assert isinstance(end, pe.CallEnded) and not end.answered
    finally:
        await callee.stop()
        await caller.stop()


def test_a_stopped_phone_leaves_no_task_for_the_loop_to_destroy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On a loop of its own, closed right after the phones stop: no task is left pending (the
    loop would report "Task was destroyed but it is pending" when it is collected)."""

    async def scenario() -> set[asyncio.Task[object]]:
        transferee, transferor, _ = await transfer_into_a_stalled_dial(StalledDns())
        await transferee.stop()
        await transferor.stop()
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            left = loop.run_until_complete(scenario())
    finally:
        loop.close()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert left == set()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]


async def test_ended_calls_are_swept_from_the_user_agent_once_a_second_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sweep looks at every call the user agent holds (ended ones linger while their
    # transactions do): at every call's end it was quadratic in the call rate.
    phone = await started(seed="sweeper")
    try:
        assert phone._running is not None
        swept: list[float] = []
        ua = phone._running.ua
        monkeypatch.setattr(ua, "forget_ended_calls", lambda: swept.append(clock[0]))
        clock = [1000.0]
        monkeypatch.setattr(phone, "_now", lambda: clock[0])
        for step in range(30):  # 30 calls ending within 3 s
            clock[0] = 1000.0 + step * 0.1
            phone._forget_ended_calls()
        assert swept == pytest.approx([1000.0, 1001.0, 1002.0])
    finally:
        await phone.stop()
