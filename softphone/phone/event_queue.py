"""The read side of a phone's event stream, shared by every PhoneApi implementation (the Phone,
ThreadedPhone, and the scripted phones of the tests and the TUI bench)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from softphone.phone import events as pe

__all__ = ["EventReader"]


class EventReader:
    """``events()``, ``next_event()`` and ``next_event_nowait()`` over ``self._queue``, which the
    class using this sets up in its ``__init__`` and fills (one consumer reads it)."""

    _queue: asyncio.Queue[pe.PhoneEvent]

    async def events(self) -> AsyncIterator[pe.PhoneEvent]:
        while True:
            yield await self._queue.get()

    async def next_event(self) -> pe.PhoneEvent:
        return await self._queue.get()

    def next_event_nowait(self) -> pe.PhoneEvent | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
