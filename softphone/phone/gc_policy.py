"""When Python's cyclic garbage collector runs, in a process that takes calls: the TUI and
``softphone listen``.

A full (generation 2) collection walks every object the process holds. In the TUI that is
Textual's widget tree, styles and caches: ``softphone bench tui`` measured those pauses at
40-55 ms, several times in ten seconds with video in the side pane. In ``listen`` under load it is
the calls: at 80 calls a second, the finished transactions and calls kept for their 32 s
(RFC 3261 Timers J and L) are some 100,000 objects, and each full collection took 20-80 ms of
CPU every few seconds, during which no INVITE was answered and no audio was pumped. What they
walk is almost never garbage: a call's objects are freed by reference counting when the call is
forgotten (those collections found 0-20 objects to free).

The policy: young generations run as usual (they are short and catch most cycles); objects alive
once the process is up are frozen (never scanned again); full collections run while no call is
up, checked every :data:`IDLE_COLLECT_S`, and at the latest every :data:`BUSY_COLLECT_S` even
with calls up, so that a phone that is never idle still frees the rare cycle. The previous
settings come back when :meth:`QuietCollector.stop` is called.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Final

__all__ = ["BUSY_COLLECT_S", "IDLE_COLLECT_S", "QuietCollector"]

IDLE_COLLECT_S: Final = 60.0
BUSY_COLLECT_S: Final = 600.0
FULL_THRESHOLD: Final = 1_000_000  # gen-2 threshold: automatic full collections practically never


class QuietCollector:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._last_full: float | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self, now: float = 0.0) -> None:
        if self._saved is not None:
            return
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.collect()
        gc.freeze()
        gc.set_threshold(young, middle, FULL_THRESHOLD)
        self._last_full = now

    def collect_if(self, idle: Callable[[], bool], now: float = 0.0) -> bool:
        """A full collection now when ``idle()`` says no call is up, or when the last one was
        :data:`BUSY_COLLECT_S` ago; True when it ran."""
        if self._saved is None:
            return False
        overdue = self._last_full is not None and now - self._last_full >= BUSY_COLLECT_S
        if not overdue and not idle():
            return False
        gc.collect()
        self._last_full = now
        return True

    def stop(self) -> None:
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        gc.unfreeze()
        self._saved = None
