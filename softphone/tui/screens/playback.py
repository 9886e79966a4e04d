"""One file at a time through the phone's speaker, for the screens that list recordings (the
call history's recordings, the answering machine's messages): ``p`` plays the selected one, a
second ``p`` (or ``x``) stops it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from softphone.phone.api import PhoneApi
from softphone.phone.errors import PhoneError

Notify = Callable[..., Any]  # Screen.notify


class Playback:
    def __init__(self, phone: PhoneApi, notify: Notify) -> None:
        self._phone = phone
        self._notify = notify
        self.playing: Path | None = None

    async def present(self, path: Path, gone: str) -> bool:
        """Whether ``path`` is there to play; says ``gone`` when it is not."""
        if await asyncio.to_thread(path.is_file):
            return True
        self._notify(gone, severity="error")
        return False

    async def play(self, path: Path, started: str) -> None:
        """Play ``path`` to its end (or until :meth:`stop`); problems are notified."""
        self.playing = path
        self._notify(started)
        try:
            await self._phone.play_file(path)
        except PhoneError as exc:
            self._notify(str(exc), severity="error")
        finally:
            if self.playing == path:
                self.playing = None

    def stop(self) -> None:
        self.playing = None
        try:
            self._phone.stop_playback()
        except PhoneError as exc:
            self._notify(str(exc), severity="error")
