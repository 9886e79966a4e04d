"""The contacts screen: browse, search, add/edit/delete, star, and import a vCard file.

:class:`ContactsScreen` is a searchable table (screens/searchable.py): it dismisses with the
primary URI of the contact the user pressed Enter on (the app dials it) or None (Escape); ``m``
opens the conversation with the selected contact (its unread messages show in the ✉ column).
Given ``lamp_of`` (the phone's watched parties), a Status column shows each contact's busy lamp
and presence (widgets/lamps.py), kept up to date by :meth:`ContactsScreen.refresh_lamps`.
:class:`ContactEditor`
is the add/edit modal: it saves through the store, and when the store refuses (``ContactError``)
it shows the message under the form and keeps everything typed. :class:`VCardPrompt` asks for
the path of a ``.vcf`` file to import. sqlite runs through the ``*_async`` methods in workers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Static, TextArea

from softphone.phone.api import ContactPresence
from softphone.phone.book import Book, Contact, Messages, StoreError, read_vcard
from softphone.tui.screens.searchable import WRITE_GROUP, Cell, SearchableTableScreen
from softphone.tui.widgets.lamps import LAMP_WIDTH, lamp_text

__all__ = ["ContactEditor", "ContactsScreen", "VCardPrompt", "split_uris"]

SEARCH_LIMIT: Final = 1000
PROBLEMS_SHOWN: Final = 3
_URI_SEPARATORS: Final = re.compile(r"[\n,;]+")
_CHROME: Final = 4  # the table's side margins and its vertical scrollbar


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def split_uris(text: str) -> tuple[str, ...]:
    """The URIs typed in the editor: one per line or separated by commas, blanks dropped."""
    return tuple(part.strip() for part in _URI_SEPARATORS.split(text) if part.strip())


class ContactEditor(ModalScreen[Contact | None]):
    """Add (``contact=None``) or edit a contact. Dismisses with the stored contact, or None."""

    DEFAULT_CSS = """
    ContactEditor { align: center middle; }
    ContactEditor > Vertical {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        padding: 0 1; border: thick $accent; background: $surface;
    }
    ContactEditor #editor-title { text-style: bold; color: $accent; }
    ContactEditor Label { color: $text-muted; }
    ContactEditor TextArea { height: 4; }
    ContactEditor #editor-error { color: $text-error; height: auto; }
    ContactEditor #editor-buttons { height: auto; width: 100%; }
    ContactEditor #editor-favourite { width: 1fr; }
    ContactEditor Button { margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", show=True),
        Binding("escape", "cancel", "Cancel", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ctrl+s", "save the contact"),
        ("tab / shift+tab", "next / previous field"),
        ("escape", "discard the changes"),
    )

    def __init__(self, book: Book, contact: Contact | None = None) -> None:
        super().__init__()
        self.book = book
        self.contact = contact

    def compose(self) -> ComposeResult:
        contact = self.contact
        with Vertical():
            yield Static("Edit contact" if contact else "New contact", id="editor-title")
            yield Label("Name")
            yield Input(contact.name if contact else "", id="editor-name")
            yield Label("SIP addresses or numbers (one per line, or comma separated)")
            yield TextArea(
                "\n".join(contact.uris) if contact else "",
                id="editor-uris",
                soft_wrap=False,
                show_line_numbers=False,
            )
            yield Label("RTSP camera URL (optional)")
            yield Input(
                (contact.rtsp_url or "") if contact else "",
                placeholder="rtsp://camera.example/stream",
                id="editor-rtsp",
            )
            yield Static("", id="editor-error")
            with Horizontal(id="editor-buttons"):
                yield Checkbox(
                    "Favourite", bool(contact and contact.favourite), id="editor-favourite"
                )
                yield Button("Save", variant="primary", id="editor-save")
                yield Button("Cancel", id="editor-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor-name", Input).focus()

    def typed(self) -> Contact:
        """The contact as the form holds it now (not validated)."""
        return Contact(
            id=self.contact.id if self.contact else None,
            name=self.query_one("#editor-name", Input).value,
            uris=split_uris(self.query_one("#editor-uris", TextArea).text),
            rtsp_url=self.query_one("#editor-rtsp", Input).value.strip() or None,
            favourite=self.query_one("#editor-favourite", Checkbox).value,
        )

    @property
    def error(self) -> str:
        return str(self.query_one("#editor-error", Static).content)

    @on(Button.Pressed, "#editor-save")
    def action_save(self) -> None:
        self._save(self.typed())

    @on(Button.Pressed, "#editor-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @work(exclusive=True, group="contact-save")
    async def _save(self, contact: Contact) -> None:
        try:
            if contact.id is None:
                saved = await self.book.contacts.add_async(contact)
            else:
                saved = await self.book.contacts.update_async(contact)
        except StoreError as exc:  # ContactError included: the form stays as typed
            self.query_one("#editor-error", Static).update(str(exc))
            return
        self.dismiss(saved)


class VCardPrompt(ModalScreen[Path | None]):
    """Asks for a vCard file's path (``~`` expanded); dismisses with it, or None."""

    DEFAULT_CSS = """
    VCardPrompt { align: center middle; }
    VCardPrompt > Vertical {
        width: 72; max-width: 100%; height: auto; padding: 0 1;
        border: thick $accent; background: $surface;
    }
    VCardPrompt Label { margin-bottom: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("enter", "import the file"),
        ("escape", "cancel"),
    )

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Import contacts from a vCard (.vcf) file — path:")
            yield Input(placeholder="~/contacts.vcf", id="vcard-path")

    def on_mount(self) -> None:
        self.query_one("#vcard-path", Input).focus()

    @on(Input.Submitted, "#vcard-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.dismiss(None)
            return
        try:
            self.dismiss(Path(text).expanduser())
        except RuntimeError:  # "~user/..." with no such user: the import says it cannot read it
            self.dismiss(Path(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _add_columns(table: DataTable[Cell], screen_width: int, *, lamps: bool = False) -> None:
    """The columns; name and address share what the star, status, video and unread columns
    leave."""
    fixed = 1 + 5 + 4 + (LAMP_WIDTH + 2 if lamps else 0)
    free = max(40, screen_width - fixed - 2 * 5 - _CHROME)
    name = max(16, free * 2 // 5)
    table.add_column("★", key="star", width=1)
    table.add_column("Name", key="name", width=name)
    if lamps:
        table.add_column("Status", key="lamp", width=LAMP_WIDTH)
    table.add_column("Address", key="uri", width=free - name)
    table.add_column("Video", key="rtsp", width=5)
    table.add_column("✉", key="unread", width=4)


class ContactsScreen(SearchableTableScreen[Contact]):
    """Contacts, favourites first. Dismisses with the URI to call, or None."""

    NAME = "contacts"
    TITLE_TEXT = "Contacts"
    SEARCH_HINT = "/ to search by name or address"
    READ_FAILED = "Cannot read the contacts"
    DELETE_FAILED = "Cannot delete the contact"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("slash", "focus_search", "Find", show=True),
        Binding("a", "add", "Add", show=True),
        Binding("e", "edit", "Edit", show=True),
        Binding("f", "favourite", "Star", show=True),
        Binding("d,delete", "delete", "Del", show=True),
        Binding("i", "import_vcard", "Import", show=True),
        Binding("m", "message", "Message", show=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("enter", "call the selected contact"),
        ("m", "messages with the selected contact (✉: how many are unread)"),
        ("/", "search by name or address"),
        ("a", "add a contact"),
        ("e", "edit the selected contact"),
        ("f", "star / unstar the selected contact"),
        ("d / delete", "delete the selected contact"),
        ("i", "import a vCard (.vcf) file"),
        ("escape", "clear the search, else go back"),
    )

    def __init__(
        self,
        book: Book,
        *,
        phone_domain: str | None = None,
        open_chat: Callable[[Contact], None] | None = None,
        lamp_of: Callable[[str], ContactPresence | None] | None = None,
    ) -> None:
        super().__init__()
        self.book = book
        self.phone_domain = phone_domain
        self.open_chat = open_chat
        self.lamp_of = lamp_of
        self.unread: dict[str, int] = {}  # by party key (the book's)

    @property
    def contacts(self) -> list[Contact]:
        return self.rows

    # -- the rows -----------------------------------------------------------------------------

    def add_columns(self, table: DataTable[Cell], screen_width: int) -> None:
        _add_columns(table, screen_width, lamps=self.lamp_of is not None)

    def cells(self, row: Contact) -> tuple[Cell, ...]:
        uri = row.primary_uri if row.uris else ""
        more = len(row.uris) - 1
        cells: tuple[Cell, ...] = (
            "★" if row.favourite else "",
            Text(row.name, no_wrap=True, overflow="ellipsis"),
            Text(f"{uri} (+{more} more)" if more > 0 else uri, no_wrap=True, overflow="ellipsis"),
            "rtsp" if row.rtsp_url else "",
            f"✉{count}" if (count := self.unread_of(row)) else "",
        )
        if self.lamp_of is None:
            return cells
        return (*cells[:2], self.lamp_cell(row), *cells[2:])

    def lamp_cell(self, row: Contact) -> Text:
        return lamp_text(self.lamp_of(row.primary_uri) if self.lamp_of and row.uris else None)

    def refresh_lamps(self) -> None:
        """A watched party changed: its Status cell shows it (no reload from the book)."""
        if self.lamp_of is None or not self.loaded:
            return
        table = self.table
        for row in self.rows:
            key = self.key(row)
            if key in table.rows:
                table.update_cell(key, "lamp", self.lamp_cell(row))

    def unread_of(self, contact: Contact) -> int:
        """Unread messages from any of the contact's addresses."""
        try:
            keys = Messages.keys_of(contact.uris)
        except StoreError:
            return 0
        return sum(self.unread.get(key, 0) for key in keys)

    def key(self, row: Contact) -> str:
        return str(row.id)

    async def fetch(self, query: str, offset: int) -> list[Contact]:
        try:
            self.unread = await self.book.messages.unread_counts_async()
        except StoreError:
            self.unread = {}  # the contacts themselves may still read
        if query:
            return await self.book.contacts.search_async(query, SEARCH_LIMIT)
        return await self.book.contacts.list_async()

    def empty_text(self, query: str) -> str:
        if query:
            return f"No contacts match “{query}”"
        return "No contacts. Press a to add one or i to import a vCard file."

    def chosen(self, row: Contact) -> str | None:
        return row.primary_uri if row.uris else None

    def delete_question(self, row: Contact) -> str | None:
        return None if row.id is None else f"Delete the contact {row.name}?"

    async def delete(self, row: Contact) -> None:
        assert row.id is not None
        await self.book.contacts.delete_async(row.id)

    # -- actions ------------------------------------------------------------------------------

    def _edited(self, saved: Contact | None) -> None:
        if saved is not None:
            self.notify(f"Saved {saved.name}.")
            self._load(focus=str(saved.id))

    def action_add(self) -> None:
        self.app.push_screen(ContactEditor(self.book), self._edited)

    def action_edit(self) -> None:
        contact = self.selected()
        if contact is not None:
            self.app.push_screen(ContactEditor(self.book, contact), self._edited)

    def action_favourite(self) -> None:
        contact = self.selected()
        if contact is not None:
            self._set_favourite(contact, not contact.favourite)

    @work(exclusive=True, group=WRITE_GROUP)
    async def _set_favourite(self, contact: Contact, favourite: bool) -> None:
        try:
            await self.book.contacts.update_async(replace(contact, favourite=favourite))
        except StoreError as exc:
            self.notify(f"Cannot change {contact.name}: {exc}", severity="error")
            return
        self._load(focus=str(contact.id))

    def action_message(self) -> None:
        contact = self.selected()
        if contact is None or self.open_chat is None:
            return
        if not contact.uris:
            self.notify(f"{contact.name} has no address to write to.", severity="warning")
            return
        self.open_chat(contact)

    def on_screen_resume(self) -> None:
        """Back from a conversation: its messages are read now."""
        if self.loaded:
            self._load()

    def action_import_vcard(self) -> None:
        def done(path: Path | None) -> None:
            if path is not None:
                self._import(path)

        self.app.push_screen(VCardPrompt(), done)

    @work(exclusive=True, group=WRITE_GROUP)
    async def _import(self, path: Path) -> None:
        """Read the file in a thread, skip cards whose addresses are already someone's (the store
        itself would happily store duplicates), store the rest in one transaction."""
        found, problems = await asyncio.to_thread(read_vcard, path, phone_domain=self.phone_domain)
        if not found and any(p.line == 0 for p in problems):
            self.notify("; ".join(str(p) for p in problems), severity="error")
            return
        notes = [str(p) for p in problems]
        fresh: list[Contact] = []
        seen: set[str] = set()
        try:
            for contact in found:
                owners = await asyncio.gather(
                    *(self.book.contacts.find_by_uri_async(u) for u in contact.uris)
                )
                owner = next((o for o in owners if o is not None), None)
                if owner is not None:
                    notes.append(f"{contact.name}: already in contacts as {owner.name}, skipped")
                elif seen.intersection(contact.uris):
                    notes.append(f"{contact.name}: an address repeats an earlier card, skipped")
                else:
                    seen.update(contact.uris)
                    fresh.append(contact)
            stored = await self.book.contacts.add_many_async(fresh) if fresh else []
        except StoreError as exc:
            self.notify(f"Cannot import {path}: {exc}", severity="error")
            return
        summary = f"Imported {_plural(len(stored), 'contact')}, {_plural(len(notes), 'problem')}"
        if notes:
            shown = "\n".join(notes[:PROBLEMS_SHOWN])
            rest = len(notes) - PROBLEMS_SHOWN
            summary += ":\n" + shown + (f"\n… and {rest} more" if rest > 0 else "")
        self.notify(summary, severity="warning" if notes else "information", timeout=10)
        self._load()
