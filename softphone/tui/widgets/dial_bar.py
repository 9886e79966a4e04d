"""The dial bar: an Input for a SIP URI, a number or a contact name, completed from the book.

Completion is Textual's inline suggestion (the rest of the text greyed; → accepts it), fed by
:class:`BookSuggester`, which asks contacts first (names, then URIs) and history second, through
the ``*_async`` methods (sqlite runs in a thread). Escape posts :class:`DialBar.Left`; the screen
moves focus to the calls list.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

from softphone.phone.book import Book, StoreError

__all__ = ["BookSuggester", "DialBar"]


class BookSuggester(Suggester):
    """Suggests a contact name or URI, or a URI from history, that starts with what is typed."""

    def __init__(self, book: Book | None) -> None:
        super().__init__(use_cache=False, case_sensitive=False)
        self.book = book

    async def get_suggestion(self, value: str) -> str | None:
        text = value.strip()
        if self.book is None or len(text) < 2:
            return None
        needle = text.casefold()
        try:
            for contact in await self.book.contacts.search_async(text, limit=5):
                if contact.name.casefold().startswith(needle):
                    return value + contact.name[len(value) :]
                for uri in contact.uris:
                    for form in (uri, uri.partition(":")[2]):
                        if form.casefold().startswith(needle):
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

    def __init__(self, book: Book | None, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="Call: sip:bob@example.com, a number or a contact name  (Enter calls)",
            suggester=BookSuggester(book),
            id=id,
        )

    def action_leave(self) -> None:
        self.post_message(self.Left())
