"""The dial bar: an Input for a SIP URI, a number or a contact name, completed from the book.

Completion is Textual's inline suggestion (the rest of the text greyed; → accepts it), fed by
:class:`BookSuggester`, which asks contacts first (names, then URIs) and history second, through
the ``*_async`` methods (sqlite runs in a thread). Escape posts :class:`DialBar.Left`; the screen
moves focus to the calls list. While what is typed is a contact's (the one suggested), that
contact's busy lamp shows under the bar (widgets/lamps.py), and follows it as it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from softphone.phone.api import ContactPresence
from softphone.phone.book import Book, StoreError
from softphone.tui.widgets.lamps import lamp_text

__all__ = ["BookSuggester", "DialBar"]


class BookSuggester(Suggester):
    """Suggests a contact name or URI, or a URI from history, that starts with what is typed."""

    def __init__(
        self, book: Book | None, on_match: Callable[[str | None, str | None], None] | None = None
    ) -> None:
        super().__init__(use_cache=False, case_sensitive=False)
        self.book = book
        self.on_match = on_match  # (contact name, its first address) of each suggestion

    def _matched(self, name: str | None, uri: str | None) -> None:
        if self.on_match is not None:
            self.on_match(name, uri)

    async def get_suggestion(self, value: str) -> str | None:
        text = value.strip()
        self._matched(None, None)
        if self.book is None or len(text) < 2:
            return None
        needle = text.casefold()
        try:
            for contact in await self.book.contacts.search_async(text, limit=5):
                first = contact.primary_uri if contact.uris else None
                if contact.name.casefold().startswith(needle):
                    self._matched(contact.name, first)
                    return value + contact.name[len(value) :]
                for uri in contact.uris:
                    for form in (uri, uri.partition(":")[2]):
                        if form.casefold().startswith(needle):
                            self._matched(contact.name, first)
                            return value + form[len(value) :]
            for record in await self.book.history.search_async(text, limit=5):
                if record.remote_uri is None:
                    continue  # an old row with no readable address
                for form in (record.remote_uri, record.remote_uri.partition(":")[2]):
                    if form.casefold().startswith(needle):
                        return value + form[len(value) :]
        except StoreError:
            return None
        return None


class DialBar(Input):
    """Where calls start. Enter submits (``Input.Submitted``); Escape posts :class:`Left`."""

    DEFAULT_CSS = """
    DialBar { margin: 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Leave dial bar", show=True),
    ]

    class Left(Message):
        """The user left the dial bar with Escape."""

    def __init__(
        self,
        book: Book | None,
        *,
        lamp_of: Callable[[str], ContactPresence | None] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(
            placeholder="Call: sip:bob@example.com, a number or a contact name  (Enter calls)",
            suggester=BookSuggester(book, self._matched),
            id=id,
        )
        self._lamp_of = lamp_of
        self.match: tuple[str, str] | None = None  # the contact suggested: (name, address)
        self.lamp = Text("")

    def _matched(self, name: str | None, uri: str | None) -> None:
        self.match = (name, uri) if name is not None and uri is not None else None
        self.refresh_lamp()

    def refresh_lamp(self) -> None:
        """Show the suggested contact's lamp (nothing for one not watched, or no contact)."""
        lamp = Text("")
        if self.match is not None and self._lamp_of is not None:
            lamp = lamp_text(self._lamp_of(self.match[1]))
            if lamp.plain:
                lamp.append(f" {self.match[0]}")
        if lamp.plain != self.lamp.plain:
            self.lamp = lamp
            self.border_subtitle = lamp

    def action_leave(self) -> None:
        self.post_message(self.Left())
