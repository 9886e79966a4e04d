"""Call history, contacts and instant messages for front ends.

The TUI may import only from ``softphone.phone`` (import-linter contract), so the store's records
and errors are re-exported here, beside :class:`Book` (the open database with its tables),
:class:`~softphone.phone.call_log.CallLog` (call_log.py), which writes each call into the
history as it happens, and :class:`~softphone.phone.message_log.MessageLog`, which does the same
for messages, for the TUI and the headless commands alike.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from softphone.store import (
    CallRecord,
    CallResult,
    Contact,
    ContactError,
    Contacts,
    Conversation,
    Database,
    History,
    MessageRecord,
    Messages,
    Recovered,
    StoreError,
    VCardProblem,
    VoicemailRecord,
    Voicemails,
    default_db_path,
    normalise_uri,
    read_vcard,
)

__all__ = [
    "Book",
    "CallRecord",
    "CallResult",
    "Contact",
    "ContactError",
    "Contacts",
    "Conversation",
    "History",
    "MessageRecord",
    "Messages",
    "Recovered",
    "StoreError",
    "VCardProblem",
    "VoicemailRecord",
    "Voicemails",
    "default_db_path",
    "normalise_uri",
    "read_vcard",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Book:
    """The history/contacts/messages database, open. ``recovered`` says when a corrupt file
    was moved aside at opening (tell the user once)."""

    db: Database
    history: History
    contacts: Contacts
    messages: Messages
    voicemails: Voicemails

    @property
    def recovered(self) -> Recovered | None:
        return self.db.recovered

    @property
    def path(self) -> Path:
        return self.db.path

    @classmethod
    def open(cls, path: Path | None = None) -> Book:
        """Open (creating or migrating) the database; raises StoreError when it cannot. Calls
        that a process which has since died left in progress are marked interrupted."""
        db = Database.open(path)
        book = cls(
            db=db,
            history=History(db),
            contacts=Contacts(db),
            messages=Messages(db),
            voicemails=Voicemails(db),
        )
        try:
            if count := book.history.interrupt_orphans():
                logger.info("%d calls left in progress by an ended process: interrupted", count)
            if count := book.voicemails.complete_orphans():
                logger.info("%d voicemails a killed process was recording: completed", count)
        except StoreError as exc:  # the history still opens; the rows wait for the next start
            logger.warning("cannot mark interrupted calls in %s: %s", db.path, exc)
        return book

    @classmethod
    async def open_async(cls, path: Path | None = None) -> Book:
        return await asyncio.to_thread(cls.open, path)

    def close(self) -> None:
        """Close the database. Calls of ours still in progress can no longer be finished:
        they are marked interrupted first."""
        if self.db.closed:
            return
        try:
            self.history.interrupt_own()
        except StoreError as exc:
            logger.warning("cannot mark our calls in progress as interrupted: %s", exc)
        self.db.close()

    async def close_async(self) -> None:
        await asyncio.to_thread(self.close)
