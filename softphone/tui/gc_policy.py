"""When Python's cyclic garbage collector runs, in the TUI process.

A full (generation 2) collection walks every object the app holds: Textual's widget tree, the
styles, caches. ``softphone bench tui`` measured those pauses at 40-55 ms, several times in ten
seconds with video in the side pane. The collector stops every thread, so the audio pump (on the
phone's own thread) waits too, and the sound card's speaker ring holds ~20 ms: an underrun.

The policy: young generations run as usual (they are short and catch most cycles); objects alive
once the app is up are frozen (never scanned again); full collections run only while no call is
up, at most every :data:`IDLE_COLLECT_S`. The previous settings come back when the app ends.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Final

__all__ = ["IDLE_COLLECT_S", "QuietCollector"]

IDLE_COLLECT_S: Final = 60.0
FULL_THRESHOLD: Final = 1_000_000  # gen-2 threshold: automatic full collections practically never


class QuietCollector:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is not None:
            return
        self._saved = gc.get_threshold()
        young, middle, _ = self._saved
        gc.collect()
        gc.freeze()
        gc.set_threshold(young, middle, FULL_THRESHOLD)

    def collect_if(self, idle: Callable[[], bool]) -> bool:
        """A full collection now when ``idle()`` says no call is up; True when it ran."""
        if self._saved is None or not idle():
            return False
        gc.collect()
        return True

    def stop(self) -> None:
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        gc.unfreeze()
        self._saved = None
