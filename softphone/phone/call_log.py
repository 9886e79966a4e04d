"""The history as calls happen: :class:`CallLog` writes a row when a call starts and completes
it when the call ends. The TUI, ``softphone dial`` and ``softphone listen`` all use it, so a call
is in the history whichever front end made or took it, and a call the program could not finish
(it was killed) stays in the history, marked interrupted at the next start (store/history.py).

Writes run in threads (``asyncio.to_thread``) on tasks the log owns; the row of a call is
finished only after the write that started it, whatever order the tasks run in. A failed
write is reported through ``on_error`` in words and the call goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from softphone.phone import events as pe
from softphone.phone.api import CallView
from softphone.phone.errors import PhoneError
from softphone.phone.outcome import Outcome
from softphone.store import CallRecord, CallResult, Direction, History, StoreError

__all__ = ["HISTORY_RESULT", "CallLog", "ended_record", "started_record"]

logger = logging.getLogger(__name__)

# How a call ended (phone/outcome.py, which reads the status by direction: a 486 is the callee
# being busy on our call and our refusal on theirs) in the history's fewer words; the reason
# column keeps the details (which status, which failure).
HISTORY_RESULT: Final[dict[Outcome, CallResult]] = {
    "answered": "answered",
    "busy": "busy",
    "declined": "rejected",
    "not_found": "failed",
    "no_answer": "failed",
    "network": "failed",
    "cancelled": "cancelled",
    "missed": "missed",
    "rejected": "rejected",
    "forwarded": "forwarded",
    "voicemail": "voicemail",
    "failed": "failed",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def started_record(call: CallView, *, now_mono: float, now_wall: datetime) -> CallRecord:
    """The history row of a call that has just begun. ``now_mono`` is the clock
    ``call.started_at`` was taken on (the event loop's), so the start lands on the wall clock
    exactly. The remote party comes apart already (URI, display name): nothing is parsed."""
    started = now_wall - timedelta(seconds=max(0.0, now_mono - call.started_at))
    direction: Direction = "in" if call.direction == "incoming" else "out"
    return CallRecord(
        started_at=started.astimezone(UTC),
        direction=direction,
        remote_uri=call.remote,
        remote_name=call.display_name,
        account=call.account,
        result="in_progress",
    )


def ended_record(started: CallRecord, ended: pe.CallEnded) -> CallRecord:
    """``started`` completed with how the call ended."""
    return CallRecord(
        id=started.id,
        started_at=started.started_at,
        direction=started.direction,
        remote_uri=started.remote_uri,
        remote_name=started.remote_name,
        account=started.account,
        duration_s=round(max(0.0, ended.duration_s), 3),
        result=HISTORY_RESULT[ended.outcome],
        reason=ended.reason,
        recording_path=ended.recording,
    )


class CallLog:
    """Feeds ``history`` from the phone's events (:meth:`observe`). ``mono`` is the clock of
    the calls' ``started_at``; ``on_error`` hears, in words, a write that failed."""

    def __init__(
        self,
        history: History,
        *,
        mono: Callable[[], float],
        on_error: Callable[[str], None],
        wall: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._history = history
        self._mono = mono
        self._wall = wall
        self._on_error = on_error
        self._rows: dict[str, asyncio.Task[CallRecord | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        """No call is open in the history and no write is on its way."""
        return not self._rows and not self._tasks

    def observe(self, event: pe.PhoneEvent, call_of: Callable[[str], CallView]) -> None:
        """Start a row for a new call (ours: ``calling``; theirs: ``IncomingCall``), finish it
        on ``CallEnded``; every other event passes. ``call_of`` is the phone's ``call``."""
        match event:
            case pe.IncomingCall(call_id=call_id):
                self._start(call_id, call_of)
            case pe.CallStateChanged(call_id=call_id, state="calling", direction="outgoing"):
                self._start(call_id, call_of)
            case pe.CallEnded(call_id=call_id):
                self._finish(call_id, call_of, event)
            case _:
                pass

    async def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait, at most ``timeout_s``, until every call this log opened has ended and its row
        is written (a front end quitting: the phone hung up, its CallEnded events are on their
        way). True when it got there."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _spawn(self, work: asyncio.Task[Any]) -> None:
        self._tasks.add(work)
        self._idle.clear()
        work.add_done_callback(self._done)

    def _done(self, work: asyncio.Task[Any]) -> None:
        self._tasks.discard(work)
        if self.idle:
            self._idle.set()

    def _start(self, call_id: str, call_of: Callable[[str], CallView]) -> None:
        if call_id in self._rows:
            return
        try:
            call = call_of(call_id)
        except PhoneError:
            return
        record = started_record(call, now_mono=self._mono(), now_wall=self._wall())
        task = asyncio.get_running_loop().create_task(
            self._write_start(record), name=f"history-start-{call_id}"
        )
        self._rows[call_id] = task
        self._spawn(task)

    async def _write_start(self, record: CallRecord) -> CallRecord | None:
        try:
            return await self._history.start_async(record)
        except StoreError as exc:
            self._on_error(f"the call could not be written to the history: {exc}")
            return None

    def _finish(
        self, call_id: str, call_of: Callable[[str], CallView], ended: pe.CallEnded
    ) -> None:
        started = self._rows.pop(call_id, None)
        if started is None:  # a call that began before this log did: one complete row
            try:
                call = call_of(call_id)
            except PhoneError:
                return
            record = started_record(call, now_mono=self._mono(), now_wall=self._wall())
            self._spawn(
                asyncio.get_running_loop().create_task(
                    self._write_whole(ended_record(record, ended)),
                    name=f"history-add-{call_id}",
                )
            )
            return
        self._spawn(
            asyncio.get_running_loop().create_task(
                self._write_end(started, ended), name=f"history-end-{call_id}"
            )
        )

    async def _write_end(
        self, started: asyncio.Task[CallRecord | None], ended: pe.CallEnded
    ) -> None:
        record = await started
        if record is None or record.id is None:
            return  # the start could not be written (already reported)
        done = ended_record(record, ended)
        try:
            await self._history.finish_async(
                record.id,
                result=done.result,
                duration_s=done.duration_s,
                reason=done.reason,
                recording_path=done.recording_path,
            )
        except StoreError as exc:
            self._on_error(f"the end of the call could not be written to the history: {exc}")

    async def _write_whole(self, record: CallRecord) -> None:
        try:
            await self._history.add_async(record)
        except StoreError as exc:
            self._on_error(f"the call could not be written to the history: {exc}")
