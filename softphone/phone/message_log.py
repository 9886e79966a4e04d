"""Messages into the store as they come and go: :class:`MessageLog` writes a row for each message
we receive (unread) and each one we send (``sending``), and records the outcome of ours
(``delivered`` or ``failed``, with the SIP status and reason) by the phone's message id. The
TUI and ``softphone message`` / ``listen`` use it, so a message is kept whichever front end
sent or took it.

Writes run in threads (``asyncio.to_thread``) on tasks the log owns; the outcome of a message
is written only after the write that stored it, whatever order the tasks run in. A failed write
is reported through ``on_error`` in words; the message is not stored at all (the store writes
each row in one transaction), and the phone goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from softphone.phone import events as pe
from softphone.phone.message_text import TEXT_TYPE
from softphone.store import MessageRecord, Messages, StoreError

__all__ = ["MessageLog", "received_record", "sent_record"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def received_record(event: pe.MessageReceived, *, at: datetime) -> MessageRecord:
    """The row of a message for us: its text when it is text/plain, else its bytes."""
    is_text = event.content_type == TEXT_TYPE
    return MessageRecord(
        at=at,
        direction="in",
        peer_uri=event.remote,
        peer_name=event.display_name,
        account=event.account,
        content_type=event.content_type,
        text=event.text if is_text else None,
        body=None if is_text else event.body,
        note=event.note,
        state="received",
        read=False,
        call_id=event.call_id,
    )


def sent_record(event: pe.MessageStatusChanged, *, at: datetime) -> MessageRecord:
    """The row of a message of ours on its way (``sending``)."""
    is_text = event.content_type == TEXT_TYPE
    return MessageRecord(
        at=at,
        direction="out",
        peer_uri=event.remote,
        account=event.account,
        content_type=event.content_type,
        text=event.text if is_text else None,
        body=None if is_text else event.text.encode(),
        state="sending",
        read=True,
        message_id=event.message_id,
        call_id=event.call_id,
    )


class MessageLog:
    """Feeds ``messages`` from the phone's events (:meth:`observe`). ``on_error`` hears, in
    words, a write that failed; ``on_stored`` (optional) each row once written or updated."""

    def __init__(
        self,
        messages: Messages,
        *,
        on_error: Callable[[str], None],
        on_stored: Callable[[MessageRecord], None] | None = None,
        wall: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._messages = messages
        self._on_error = on_error
        self._on_stored = on_stored
        self._wall = wall
        self._rows: dict[str, asyncio.Task[MessageRecord | None]] = {}  # ours, until the outcome
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        """No write is on its way."""
        return not self._tasks

    def observe(self, event: pe.PhoneEvent) -> None:
        """Store a message that came or went; record the outcome of ours. Other events pass."""
        match event:
            case pe.MessageReceived():
                self._spawn(self._add(received_record(event, at=self._wall()), "received"))
            case pe.MessageStatusChanged(message_id=message_id, state="sending"):
                task = self._spawn(self._add(sent_record(event, at=self._wall()), "sent"))
                self._rows[message_id] = task
            case pe.MessageStatusChanged(message_id=message_id):
                self._spawn(self._outcome(self._rows.pop(message_id, None), event))
            case _:
                pass

    async def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait, at most ``timeout_s``, until every write is done (a front end quitting)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _add(self, record: MessageRecord, what: str) -> MessageRecord | None:
        try:
            stored = await self._messages.add_async(record)
        except StoreError as exc:
            self._on_error(f"the message {what} could not be stored: {exc}")
            return None
        self._stored(stored)
        return stored

    async def _outcome(
        self, started: asyncio.Task[MessageRecord | None] | None, event: pe.MessageStatusChanged
    ) -> None:
        if started is not None and await started is None:
            return  # the message itself could not be stored (already reported)
        if event.state == "sending":  # pragma: no cover - observe() sends these to _add
            return
        try:
            updated = await self._messages.set_state_async(
                event.message_id, state=event.state, status=event.status, reason=event.reason
            )
        except StoreError as exc:
            self._on_error(f"the outcome of the message could not be stored: {exc}")
            return
        if updated is not None:
            self._stored(updated)

    def _stored(self, record: MessageRecord) -> None:
        if self._on_stored is not None:
            try:
                self._on_stored(record)
            except Exception:  # a listener's bug must not stop the log
                logger.exception("on_stored failed for message %s", record.id)
