"""The asyncio tasks a phone starts on its own (answering by itself, dialling for a transfer).

Every task is kept in a :class:`TaskSet` until it ends, so none is fire-and-forget: a failure
is logged with the task's name when it happens, and :meth:`TaskSet.close` cancels what is still
running and waits for it, so no task outlives the phone (no "Task was destroyed but it is
pending" when the loop closes). A plain set, not an ``asyncio.TaskGroup``: the phone's lifetime
runs from ``start()`` to ``stop()``, two separate calls, and one failed task must not cancel
the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

logger = logging.getLogger(__name__)


class TaskSet:
    """Tasks started with :meth:`spawn`, until each ends or :meth:`close` ends them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None] | None:
        """Run ``coro`` as a task of this set; after :meth:`close`, ``coro`` is dropped unrun."""
        if self._closed:
            coro.close()
            logger.debug("not starting %s: the phone is stopping", name)
            return None
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    @property
    def pending(self) -> frozenset[asyncio.Task[None]]:
        """The tasks that have not ended yet."""
        return frozenset(t for t in self._tasks if not t.done())

    async def close(self) -> None:
        """Cancel every task still running and wait until each has ended; later spawns are
        refused. Idempotent."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("phone task %s failed", task.get_name(), exc_info=exc)
