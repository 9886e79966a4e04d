"""Voicemail in the store as the answering machine records it: :class:`VoicemailLog` stores a
message when its recording starts (``VoicemailStarted``) and completes it with its length
(``VoicemailRecorded``), for the TUI and ``softphone listen`` alike, as call_log.py does for
calls. A message whose process is killed meanwhile is completed from its WAV file at the next
opening of the store (store/voicemail.py).

:func:`delete_message` removes a message and its file, for the TUI's voicemail screen and
``softphone voicemail delete``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from softphone.phone import events as pe
from softphone.store import StoreError, VoicemailRecord, Voicemails

__all__ = ["VoicemailLog", "delete_message"]

logger = logging.getLogger(__name__)


def delete_message(voicemails: Voicemails, record_id: int) -> VoicemailRecord | None:
    """Remove message ``record_id`` and its file (a file already gone is no error); None when
    there is no such message. Raises StoreError, or OSError when the file cannot go."""
    record = voicemails.delete(record_id)
    if record is not None:
        Path(record.path).unlink(missing_ok=True)
    return record


class VoicemailLog:
    """Feeds ``voicemails`` from the phone's events; ``on_error`` hears a failed write in words,
    ``on_change`` is told when a message was stored or completed (the unheard count moved)."""

    def __init__(
        self,
        voicemails: Voicemails,
        *,
        on_error: Callable[[str], None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._voicemails = voicemails
        self._on_error = on_error
        self._on_change = on_change
        self._rows: dict[str, asyncio.Task[VoicemailRecord | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def observe(self, event: pe.PhoneEvent) -> None:
        loop = asyncio.get_running_loop()
        match event:
            case pe.VoicemailStarted(call_id=call_id):
                record = VoicemailRecord(
                    received_at=datetime.fromtimestamp(event.received_at, UTC),
                    account=event.account,
                    caller_uri=event.caller,
                    caller_name=event.caller_name,
                    path=event.path,
                )
                task = loop.create_task(self._start(record), name=f"voicemail-start-{call_id}")
                self._rows[call_id] = task
                self._keep(task)
            case pe.VoicemailRecorded(call_id=call_id, duration_s=duration):
                started = self._rows.pop(call_id, None)
                if started is not None:
                    self._keep(loop.create_task(self._finish(started, duration)))
            case _:
                pass

    async def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait (at most ``timeout_s``) for the writes on their way; True when all are done."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            return False
        return True

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, record: VoicemailRecord) -> VoicemailRecord | None:
        try:
            stored = await self._voicemails.start_async(record)
        except StoreError as exc:
            self._on_error(f"the voicemail could not be stored: {exc}")
            return None
        self._on_change()
        return stored

    async def _finish(
        self, started: asyncio.Task[VoicemailRecord | None], duration_s: float
    ) -> None:
        record = await started
        if record is None or record.id is None:
            return
        try:
            await self._voicemails.finish_async(record.id, duration_s=duration_s)
        except StoreError as exc:
            self._on_error(f"the voicemail's length could not be stored: {exc}")
            return
        self._on_change()
