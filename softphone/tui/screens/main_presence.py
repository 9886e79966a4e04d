"""The main screen's part for presence: :class:`PresenceWatch`.

- Every contact with an address is watched (``PhoneApi.watch`` of its first address) once the
  phone has started, and again after the contacts screen closes (contacts added, edited or
  deleted are watched or no longer watched).
- Its lamp shows in the contacts list and beside the dial bar while what is typed is that
  contact (widgets/lamps.py: a coloured dot and a word).
- Our own presence and the voicemail waiting show in the status bar; ``P`` (or "Presence" in
  the command palette) opens screens/presence.py to choose it.

It sees every phone event the main screen gets (:meth:`PresenceWatch.observe`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from textual.app import App

from softphone.phone import events as pe
from softphone.phone.api import ContactPresence, PhoneApi
from softphone.phone.book import Book, StoreError
from softphone.phone.errors import PhoneError
from softphone.tui.screens.presence import PresenceChoiceMade, PresenceScreen
from softphone.tui.widgets.dial_bar import DialBar
from softphone.tui.widgets.messages_log import Level
from softphone.tui.widgets.status_bar import StatusBar

__all__ = ["PresenceHost", "PresenceWatch"]

logger = logging.getLogger(__name__)


class PresenceHost(Protocol):
    """What the presence part needs of the main screen."""

    phone: PhoneApi
    book: Book | None

    @property
    def app(self) -> App[Any]: ...

    @property
    def status(self) -> StatusBar: ...

    @property
    def dial_bar(self) -> DialBar: ...

    def tell(self, text: str, level: Level = "info", *, notify: bool = True) -> None: ...


class PresenceWatch:
    def __init__(self, host: PresenceHost) -> None:
        self._host = host
        self.watching: set[str] = set()  # the URIs given to watch()
        self.contacts_screen: Any = None  # the contacts screen while it is open

    def lamp_of(self, uri: str) -> ContactPresence | None:
        """What the phone knows of a watched ``uri``; None when it is not watched."""
        try:
            return self._host.phone.watched.get(uri)
        except PhoneError:
            return None

    def start(self) -> None:
        """The phone started: show our presence, watch the contacts."""
        self._show_own()
        self.resync()

    def resync(self) -> None:
        """Watch every contact's address, and no longer the ones gone from the contacts."""
        book = self._host.book
        if book is not None:
            self._host.app.run_worker(self._resync(book), group="presence", exclusive=True)

    async def _resync(self, book: Book) -> None:
        try:
            contacts = await book.contacts.list_async()
        except StoreError as exc:
            self._host.tell(f"contacts: {exc}", "warning", notify=False)
            return
        wanted = {c.primary_uri for c in contacts if c.uris}
        phone = self._host.phone
        for uri in sorted(self.watching - wanted):
            phone.unwatch(uri)
        for uri in sorted(wanted - self.watching):
            try:
                phone.watch(uri)
            except PhoneError as exc:  # a number the account's domain cannot make an address of
                logger.info("not watching %s: %s", uri, exc)
                continue
        self.watching = wanted & set(phone.watched)

    def observe(self, event: pe.PhoneEvent) -> None:
        match event:
            case pe.PresenceChanged():
                self._host.dial_bar.refresh_lamp()
                screen = self.contacts_screen
                if screen is not None:
                    screen.refresh_lamps()
            case pe.OwnPresenceChanged() | pe.Registered() | pe.Unregistered():
                self._show_own()
            case pe.MessageWaiting():
                self._host.status.show_voicemail(self._host.phone.voicemail)
                if event.new:
                    self._host.tell(
                        f"voicemail: {event.new} new message{'s' if event.new > 1 else ''}"
                        f" for {event.account}",
                        notify=False,
                    )

    def _show_own(self) -> None:
        self._host.status.show_presence(self._host.phone.presence)

    def choose(self) -> None:
        """Open the presence screen; what is chosen is set on the phone."""
        self._host.app.push_screen(PresenceScreen(self._host.phone.presence), self._chosen)

    def _chosen(self, choice: PresenceChoiceMade | None) -> None:
        if choice is None:
            return
        state, note = choice
        try:
            self._host.phone.set_presence(state, note)
        except PhoneError as exc:
            self._host.tell(f"presence: {exc}", "error")
