"""The headless commands wait with tasks of their own (the next phone event, the player's run);
none outlives the wait that started it, on any path out, cancellation included."""

from __future__ import annotations

import argparse
import asyncio
import io

from fake_camera import FakeCamera

from softphone.cli import _next
from softphone.cli_play import _play_headless
from softphone.phone import events as pe
from softphone.phone.player import Player, PlayerOptions
from softphone.report import Reporter


def ours(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Tasks started since ``before`` that are still running, the camera's own left out."""
    current = asyncio.current_task()
    return {
        t
        for t in asyncio.all_tasks() - before
        if t is not current and not t.done() and "FakeCamera" not in repr(t.get_coro())
    }


class Seen(Reporter):
    """A Reporter that also notes every event, and when the stream plays."""

    def __init__(self) -> None:
        super().__init__(as_json=False, out=io.StringIO(), err=io.StringIO())
        self.events: list[pe.PhoneEvent] = []
        self.playing = asyncio.Event()

    def event(self, event: pe.PhoneEvent) -> None:
        super().event(event)
        self.events.append(event)
        if isinstance(event, pe.StreamPlaying):
            self.playing.set()


async def test_cancelling_headless_play_ends_the_players_run() -> None:
    async with FakeCamera() as camera:
        player = Player(camera.url("/cam"), options=PlayerOptions(transport="tcp"))
        reporter = Seen()
        before = asyncio.all_tasks()
        command = asyncio.create_task(
            _play_headless(player, argparse.Namespace(duration=None), reporter)
        )
        async with asyncio.timeout(10):
            await reporter.playing.wait()
        assert ours(before)  # the command, the player's run and the event getter
        command.cancel()
        await asyncio.wait({command})
        assert command.cancelled() and ours(before) == set()
        assert any(r.startswith("TEARDOWN ") for r in camera.requests)  # stopped, not cut


class QuietPhone:
    """Stands in for the Phone in ``_next``: events only when the test puts them."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()

    async def next_event(self) -> pe.PhoneEvent:
        return await self.queue.get()


async def test_waiting_for_the_next_event_leaves_no_task_on_any_way_out() -> None:
    phone, stop = QuietPhone(), asyncio.Event()
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    notice = pe.Notice(level="info", text="hello")
    phone.queue.put_nowait(notice)
    assert await _next(phone, stop, None) == notice  # type: ignore[arg-type]
    assert await _next(phone, stop, loop.time()) is None  # type: ignore[arg-type]  # deadline
    stop.set()
    assert await _next(phone, stop, None) is None  # type: ignore[arg-type]
    stop.clear()
    waiting = asyncio.create_task(_next(phone, stop, None))  # type: ignore[arg-type]
    async with asyncio.timeout(1):
        while len(ours(before)) < 3:  # itself, the event getter and the stop waiter
            await one_turn()
    waiting.cancel()
    await asyncio.wait({waiting})
    assert waiting.cancelled() and ours(before) == set()


async def one_turn() -> None:
    """Let every task that is ready run once."""
    turn = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turn.set_result, None)
    await turn
