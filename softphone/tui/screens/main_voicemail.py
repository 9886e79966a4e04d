"""The main screen's part for the answering machine: :class:`LocalVoicemail`.

- The messages it records are stored as they come (phone/voicemail_log.py), from the phone's
  events the main screen hands to :meth:`LocalVoicemail.observe`.
- The unheard ones are counted into the status bar's message-waiting indicator, beside what the
  provider's voicemail box says (MWI, RFC 3842), with ``(w)``: the key that opens the list
  (screens/voicemail.py), also "Voicemail" in the command palette.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from textual.app import App

from softphone.phone import events as pe
from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, StoreError
from softphone.phone.voicemail_log import VoicemailLog
from softphone.tui.widgets.messages_log import Level
from softphone.tui.widgets.status_bar import StatusBar

__all__ = ["LocalVoicemail", "VoicemailHost"]

logger = logging.getLogger(__name__)


class VoicemailHost(Protocol):
    phone: PhoneApi
    book: Book | None

    @property
    def app(self) -> App[Any]: ...

    @property
    def status(self) -> StatusBar: ...

    def tell(self, text: str, level: Level = "info", *, notify: bool = True) -> None: ...


class LocalVoicemail:
    def __init__(self, host: VoicemailHost) -> None:
        self._host = host
        self.log: VoicemailLog | None = None

    def start(self) -> None:
        """The screen is up: store what the machine records, show the unheard count."""
        book = self._host.book
        if book is None:
            return
        self.log = VoicemailLog(
            book.voicemails,
            on_error=lambda text: self._host.tell(text, "warning"),
            on_change=self.refresh,
        )
        self.refresh()

    def observe(self, event: pe.PhoneEvent) -> None:
        if self.log is not None:
            self.log.observe(event)
        if isinstance(event, pe.VoicemailRecorded):
            self._host.tell(f"new voicemail: {event.duration_s:.0f} s (w lists them)")

    def refresh(self) -> None:
        """Count the unheard messages again (in a worker) into the status bar."""
        book = self._host.book
        if book is not None:
            # not exclusive: a coroutine cancelled before it starts warns; two counts are harmless
            self._host.app.run_worker(self._count(book), group="voicemail-count")

    async def _count(self, book: Book) -> None:
        import asyncio

        try:
            unheard = await asyncio.to_thread(book.voicemails.unheard)
        except StoreError as exc:
            logger.warning("cannot count the voicemail: %s", exc)
            return
        self._host.status.show_local_voicemail(sum(unheard.values()))

    def open(self, call_back: Callable[[str | None], None]) -> None:
        book = self._host.book
        if book is None:
            self._host.app.notify("The voicemail is not available.", severity="warning")
            return
        from softphone.tui.screens.voicemail import VoicemailScreen

        screen = VoicemailScreen(book, self._host.phone, on_change=self.refresh)
        self._host.app.push_screen(screen, call_back)

    async def settle(self, timeout_s: float) -> None:
        if self.log is not None and not await self.log.settle(timeout_s):
            logger.warning("quitting before every voicemail was stored")
