"""The phone on a thread of its own: :class:`ThreadedPhone` runs a :class:`PhoneApi` (the real
Phone) on a private event loop and offers the same API to the UI's loop.

Why: the audio engine's pump is a 5 ms ``call_at`` on the phone's loop, and the sound card's
speaker ring holds only ~20 ms. On the UI's loop, a screen refresh with video in the side pane
can hold the loop for longer than that (``softphone bench tui`` measured ticks up to 45 ms late),
which is an audible underrun on a real card. On its own loop the pump waits at most for the GIL
(a 5 ms switch interval), never for the UI.

Every call crosses threads: coroutines with ``run_coroutine_threadsafe``; plain methods run on
the phone's loop too (so nothing reads a call while the phone changes it) and the UI waits for
their result (microseconds; the phone's loop is idle between packets). Events are forwarded to
a queue on the UI's loop. Exceptions (PhoneError) come back to the caller unchanged.

Only immutable things cross back: what a plain method returns is built on the phone's thread
and never touched by it again. Calls come as frozen :class:`~softphone.phone.api.CallSnapshot`
copies (the phone's ``CallInfo`` goes on changing), the registrations as a read-only mapping
of frozen records, statistics, traces, flows and streams as fresh lists of frozen records, the
presence records (our own, the watched parties', the voicemail boxes) frozen or in read-only
mappings of frozen records. Events are frozen already.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from softphone.config import Account
from softphone.phone import events as pe
from softphone.phone.api import (
    CallSnapshot,
    ContactPresence,
    FlowSummary,
    OwnPresence,
    PhoneApi,
    Registration,
    StreamSummary,
    TracedMessage,
    Voicemail,
)
from softphone.phone.errors import PhoneError
from softphone.phone.event_queue import EventReader

__all__ = ["ThreadedPhone"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
SYNC_TIMEOUT_S = 5.0  # a plain method that takes longer means the phone's loop is stuck


class ThreadedPhone(EventReader):
    """``ThreadedPhone(phone)``: the same PhoneApi, with ``phone`` living on its own thread from
    ``start()`` to ``stop()``. Before ``start()`` and after ``stop()`` calls go straight through."""

    def __init__(self, phone: PhoneApi, *, name: str = "phone") -> None:
        self.inner = phone
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._forwarder: asyncio.Task[None] | None = None  # on the phone's loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The phone's own event loop from ``start()`` to ``stop()``; None outside that time."""
        return self._loop

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._loop is None:
            self._start_thread()
        ui_loop = asyncio.get_running_loop()
        await self._run(self.inner.start())
        await self._run(self._start_forwarding(ui_loop))

    async def stop(self) -> None:
        """Hang up every call, unregister, close sockets; then end the phone's thread."""
        if self._loop is None:
            await self.inner.stop()
            return
        try:
            await self._run(self.inner.stop())
        finally:
            await self._run(self._stop_forwarding())
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                await asyncio.to_thread(thread.join, SYNC_TIMEOUT_S)

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _close_loop(loop)

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._loop = loop
        self._thread.start()
        if not ready.wait(SYNC_TIMEOUT_S):
            raise PhoneError("the phone's thread did not start")

    async def _start_forwarding(self, ui_loop: asyncio.AbstractEventLoop) -> None:
        """On the phone's loop: a task that hands every event over to the UI's loop."""
        if self._forwarder is None:
            self._forwarder = asyncio.get_running_loop().create_task(
                self._forward(ui_loop), name=f"{self._name}-events"
            )

    async def _stop_forwarding(self) -> None:
        """On the phone's loop: cancel the forwarding task and wait until it has ended."""
        task, self._forwarder = self._forwarder, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    async def _forward(self, ui_loop: asyncio.AbstractEventLoop) -> None:
        async for event in self.inner.events():
            ui_loop.call_soon_threadsafe(self._queue.put_nowait, event)

    # ------------------------------------------------------------------ crossing threads
    async def _run(self, coro: Awaitable[T]) -> T:
        if self._loop is None:
            return await coro
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop)
        return await asyncio.wrap_future(future)

    def _sync(self, fn: Callable[..., T], *args: Any) -> T:
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return fn(*args)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller's thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(call)
        try:
            return done.result(timeout=SYNC_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise PhoneError("the phone did not answer in time (its thread is stuck)") from None

    # ------------------------------------------------------------------ PhoneApi
    @property
    def accounts(self) -> list[str]:
        return self._sync(lambda: list(self.inner.accounts))

    @property
    def registrations(self) -> Mapping[str, Registration]:
        return self._sync(lambda: MappingProxyType(dict(self.inner.registrations)))

    @property
    def calls(self) -> tuple[CallSnapshot, ...]:
        return self._sync(lambda: tuple(CallSnapshot.of(c) for c in self.inner.calls))

    def call(self, call_id: str) -> CallSnapshot:
        return self._sync(lambda: CallSnapshot.of(self.inner.call(call_id)))

    def call_stats(self, call_id: str) -> dict[str, object] | None:
        def copy() -> dict[str, object] | None:
            stats = self.inner.call_stats(call_id)
            return None if stats is None else dict(stats)

        return self._sync(copy)

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        await self._run(self.inner.apply_accounts(tuple(accounts)))  # frozen records cross

    async def dial(self, target: str, *, account: str | None = None) -> str:
        return await self._run(self.inner.dial(target, account=account))

    async def answer(self, call_id: str) -> None:
        await self._run(self.inner.answer(call_id))

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        await self._run(self.inner.reject(call_id, status=status))

    async def hangup(self, call_id: str) -> None:
        await self._run(self.inner.hangup(call_id))

    async def hold(self, call_id: str) -> None:
        await self._run(self.inner.hold(call_id))

    async def resume(self, call_id: str) -> None:
        await self._run(self.inner.resume(call_id))

    async def transfer(self, call_id: str, target: str) -> None:
        await self._run(self.inner.transfer(call_id, target))

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        await self._run(self.inner.attended_transfer(call_id, other_call_id))

    async def join(self, call_id: str, other_call_id: str) -> None:
        await self._run(self.inner.join(call_id, other_call_id))

    async def split(self, call_id: str) -> None:
        await self._run(self.inner.split(call_id))

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        return await self._run(self.inner.send_dtmf(call_id, digits))

    async def send_message(
        self,
        target: str,
        text: str,
        *,
        account: str | None = None,
        content_type: str = "text/plain",
    ) -> str:
        return await self._run(
            self.inner.send_message(target, text, account=account, content_type=content_type)
        )

    def mute(self, call_id: str, muted: bool) -> None:
        self._sync(self.inner.mute, call_id, muted)

    def record(self, call_id: str, on: bool) -> Path | None:
        return self._sync(self.inner.record, call_id, on)

    @property
    def echo_cancellation(self) -> bool:
        return self._sync(lambda: self.inner.echo_cancellation)

    def set_echo_cancellation(self, on: bool) -> None:
        self._sync(self.inner.set_echo_cancellation, on)

    def silence(self, call_id: str) -> None:
        self._sync(self.inner.silence, call_id)

    async def set_video(self, call_id: str, on: bool) -> None:
        await self._run(self.inner.set_video(call_id, on))

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        return self._sync(self.inner.video_picture, call_id, width, height)  # a fresh array

    def levels(self, call_id: str) -> tuple[float, float] | None:
        return self._sync(self.inner.levels, call_id)

    def sip_flows(self) -> list[FlowSummary]:
        return self._sync(lambda: list(self.inner.sip_flows()))

    def sip_flow(self, flow_id: str) -> list[TracedMessage]:
        return self._sync(lambda: list(self.inner.sip_flow(flow_id)))

    def rtp_streams(self, call_id: str) -> list[StreamSummary]:
        return self._sync(lambda: list(self.inner.rtp_streams(call_id)))

    async def play_file(self, path: Path) -> None:
        await self._run(self.inner.play_file(path))

    def stop_playback(self) -> None:
        self._sync(self.inner.stop_playback)

    def set_presence(self, state: str, note: str | None = None) -> None:
        self._sync(self.inner.set_presence, state, note)

    @property
    def presence(self) -> OwnPresence:
        return self._sync(lambda: self.inner.presence)  # frozen

    def watch(self, uri: str) -> None:
        self._sync(self.inner.watch, uri)

    def unwatch(self, uri: str) -> None:
        self._sync(self.inner.unwatch, uri)

    @property
    def watched(self) -> Mapping[str, ContactPresence]:
        return self._sync(lambda: MappingProxyType(dict(self.inner.watched)))

    @property
    def voicemail(self) -> Mapping[str, Voicemail]:
        return self._sync(lambda: MappingProxyType(dict(self.inner.voicemail)))

    def config_warning(self) -> str | None:
        return self._sync(self.inner.config_warning)

    def protect_config(self) -> None:
        self._sync(self.inner.protect_config)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the phone's loop and close it (the thread is ending)."""
    with contextlib.suppress(Exception):
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
