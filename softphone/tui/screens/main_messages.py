"""The main screen's part for instant messages: :class:`Inbox`.

It sees every phone event the main screen gets (:meth:`Inbox.observe`): messages go into the
book as they come and go (phone/message_log.py), the open conversation (screens/chat.py) gets
the ones of its party, and a message for us that is not on screen becomes a line in the messages
area and a notification, during a call too (never a modal: it would take the keys of the call).
The unread count by party lives here, seeded from the book at start; its total shows in the
status bar, and opening a conversation reads it.

Ways into a conversation: ``M`` (the picker: an address, a contact's name, or a recent
conversation), ``R`` (whoever wrote last: the notification says so), ``m`` in the contacts list
and in the history.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from textual.app import App

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, Contact, MessageRecord, StoreError
from softphone.phone.message_log import MessageLog
from softphone.phone.message_text import printable
from softphone.phone.target import TargetError, target_uri
from softphone.phone.text import describe
from softphone.tui.screens.chat import ChatPicker, ChatScreen, ChatTarget, party_key, party_keys
from softphone.tui.widgets.messages_log import Level
from softphone.tui.widgets.status_bar import StatusBar

__all__ = ["Inbox", "InboxHost"]

logger = logging.getLogger(__name__)

NOTICE_TIMEOUT_S = 8.0
SESSION_PARTIES = 50  # without a book: the parties whose messages of this session are kept
SESSION_PER_PARTY = 200


class InboxHost(Protocol):
    """What the inbox needs of the main screen."""

    phone: PhoneApi
    book: Book | None

    @property
    def app(self) -> App[Any]: ...

    @property
    def status(self) -> StatusBar: ...

    def tell(self, text: str, level: Level = "info", *, notify: bool = True) -> None: ...


class Inbox:
    def __init__(
        self, host: InboxHost, *, clock: Callable[[], float], config: Callable[[], Config]
    ) -> None:
        self._host = host
        self._clock = clock
        self._config = config
        self.unread: dict[str, int] = {}  # by party key
        self.chat: ChatScreen | None = None  # the conversation open, if any
        self.last_from: ChatTarget | None = None  # who wrote last (R replies)
        self._session: dict[str, deque[pe.MessageReceived | pe.MessageStatusChanged]] = {}
        self.log: MessageLog | None = None
        if host.book is not None:
            self.log = MessageLog(
                host.book.messages,
                on_error=lambda text: host.tell(text, "warning"),
                on_stored=self._stored,
            )

    @property
    def unread_total(self) -> int:
        return sum(self.unread.values())

    def start(self) -> None:
        """Seed the unread counts from the book."""
        if self._host.book is not None:
            self._host.app.run_worker(self._seed(self._host.book), group="inbox")

    async def _seed(self, book: Book) -> None:
        try:
            counts = await book.messages.unread_counts_async()
        except StoreError as exc:
            self._host.tell(f"messages: {exc}", "warning", notify=False)
            return
        for key, count in counts.items():
            self.unread[key] = self.unread.get(key, 0) + count
        self._show_unread()

    async def settle(self, timeout_s: float = 2.0) -> None:
        """Let the messages just sent or taken reach the book (the app is quitting)."""
        if self.log is not None and not await self.log.settle(timeout_s):
            logger.warning("quitting before every message was written to the book")

    # -- the phone's events -------------------------------------------------------------------

    def observe(self, event: pe.PhoneEvent) -> None:
        if not isinstance(event, (pe.MessageReceived, pe.MessageStatusChanged)):
            return
        if self.log is not None:
            self.log.observe(event)
        if self._host.book is None:
            self._remember(event)
        chat = self.chat
        if chat is not None and chat.concerns(event.remote):
            if self._host.book is None:
                chat.take(event)  # with a book, it reads the book once the message is written
            if chat.is_current:
                return  # on screen already
        if isinstance(event, pe.MessageReceived):
            self._received(event)
        elif event.state == "failed":
            self._host.tell(describe(event), "warning")

    def _received(self, event: pe.MessageReceived) -> None:
        key = party_key(event.remote)
        if self.chat is None or not self.chat.concerns(event.remote):
            self.unread[key] = self.unread.get(key, 0) + 1
        self.last_from = ChatTarget(event.remote, (event.remote,), event.display_name)
        self._show_unread()
        who = event.display_name or event.remote
        where = " (in the call)" if event.call_id is not None else ""
        self._host.tell(describe(event), notify=False)
        self._host.app.notify(
            printable(event.text)[:200],
            title=printable(f"Message from {who}{where} — R replies"),
            timeout=NOTICE_TIMEOUT_S,
        )

    def _stored(self, record: MessageRecord) -> None:
        """A row written or updated: the open conversation of its party reads it (and so
        theirs is read at once)."""
        chat = self.chat
        if chat is not None and chat.concerns(record.peer_uri):
            chat.reload()

    def _remember(self, event: pe.MessageReceived | pe.MessageStatusChanged) -> None:
        """Without a book, the messages of this session, for the conversations opened later."""
        key = party_key(event.remote)
        kept = self._session.pop(key, deque(maxlen=SESSION_PER_PARTY))
        kept.append(event)
        self._session[key] = kept  # the latest party last
        while len(self._session) > SESSION_PARTIES:
            del self._session[next(iter(self._session))]

    def _show_unread(self) -> None:
        self._host.status.show_unread(self.unread_total)

    # -- opening a conversation ---------------------------------------------------------------

    def open(self, party: ChatTarget) -> None:
        """Show the conversation with ``party``; its messages are read now."""
        if self.chat is not None and self.chat.is_attached:
            self.chat.dismiss(None)
        for key in party_keys(party.uris):
            self.unread.pop(key, None)
        self._show_unread()
        settled = self.log.settle if self.log is not None else None
        chat = ChatScreen(
            self._host.phone, self._host.book, party, clock=self._clock, settled=settled
        )
        self.chat = chat
        if self._host.book is None:
            keys = party_keys(party.uris)
            for key, events in self._session.items():
                if key in keys:
                    for event in events:
                        chat.take(event)

        def closed(_: None) -> None:
            if self.chat is chat:
                self.chat = None

        self._host.app.push_screen(chat, closed)

    def open_contact(self, contact: Contact) -> None:
        if contact.uris:
            self.open(ChatTarget(contact.primary_uri, tuple(contact.uris), contact.name))

    def open_text(self, text: str, name: str | None = None) -> None:
        """Write to what was typed or picked: a contact's name, a number, an address."""
        self._host.app.run_worker(self._open_text(text, name), group="inbox")

    async def _open_text(self, text: str, name: str | None) -> None:
        party = await self.resolve(text, name)
        if party is not None:
            self.open(party)

    async def resolve(self, text: str, name: str | None = None) -> ChatTarget | None:
        """The party ``text`` names: a contact by its exact name, else the address it is (a
        number or user on the account's domain), with its contact's name and addresses when it
        has one. None (and a notification) when it names nobody."""
        book = self._host.book
        text = text.strip()
        try:
            if book is not None and "@" not in text and ":" not in text:
                for contact in await book.contacts.search_async(text, limit=5):
                    if contact.name.casefold() == text.casefold() and contact.uris:
                        return ChatTarget(contact.primary_uri, tuple(contact.uris), contact.name)
            accounts = self._config().accounts
            uri = target_uri(text, accounts[0].uri if accounts else None)
            found = None if book is None else await book.contacts.find_by_uri_async(uri)
        except TargetError as exc:
            self._host.app.notify(f"Cannot write to {text!r}: {exc}", severity="error")
            return None
        except StoreError as exc:
            self._host.tell(f"contacts: {exc}", "warning", notify=False)
            found = None
            uri = text
        if found is not None:
            return ChatTarget(uri, (uri, *(u for u in found.uris if u != uri)), found.name)
        return ChatTarget(uri, (uri,), name)

    def pick(self) -> None:
        """``M``: whom to write to (the picker)."""
        preselect = self.last_from.target if self.last_from is not None else None

        def chosen(text: str | None) -> None:
            if text:
                self.open_text(text)

        self._host.app.push_screen(ChatPicker(self._host.book, preselect=preselect), chosen)

    def reply(self) -> None:
        """``R``: the conversation with whoever wrote last (this session), else the latest one
        the book has unread messages in."""
        if self.last_from is not None:
            self.open_text(self.last_from.target, self.last_from.name)
        elif self._host.book is not None:
            self._host.app.run_worker(self._reply_from_book(self._host.book), group="inbox")
        else:
            self._host.app.notify("No message to reply to.", severity="warning")

    async def _reply_from_book(self, book: Book) -> None:
        try:
            recent = await book.messages.conversations_async()
        except StoreError as exc:
            self._host.tell(f"messages: {exc}", "warning")
            return
        unread = next((c for c in recent if c.unread), None)
        if unread is None:
            self._host.app.notify("No message to reply to.", severity="warning")
            return
        await self._open_text(unread.last.peer_uri, unread.last.peer_name)
