"""Instant messages with one party: :class:`ChatScreen` (the conversation and an input line) and
:class:`ChatPicker` (whom to write to: an address, a contact's name, or a recent conversation).

The conversation is what the book keeps of it (loaded once, in a worker) followed by what the
phone publishes while the screen is open: the main screen hands it every message event that
concerns its party (:meth:`ChatScreen.concerns`, :meth:`ChatScreen.take`). Ours show their
delivery state as it changes (``sending…``, ``delivered ✓``, ``failed: 404 Not Found``);
a body that is not text shows as an attachment line (``[image/png, 2.3 kB]``). Enter sends what
is typed through ``PhoneApi.send_message``; a refusal before anything went (an empty text, an
address that is not one) is a line in the conversation and a notification. Text from the network
is shown without markup and with control characters replaced.

A party is a :class:`ChatTarget`: the address messages go to, every address it is recognised by
(a contact's), and a name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar, Final, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from softphone.phone import events as pe
from softphone.phone.api import PhoneApi
from softphone.phone.book import Book, Conversation, MessageRecord, Messages, StoreError
from softphone.phone.errors import PhoneError
from softphone.phone.message_text import attachment_line, printable
from softphone.tui.widgets.dial_bar import BookSuggester

__all__ = ["ChatLine", "ChatPicker", "ChatScreen", "ChatTarget", "party_key", "party_keys"]

CONVERSATION_LIMIT: Final = 200  # messages loaded from the book when the screen opens
RECENT_LIMIT: Final = 20  # conversations offered by the picker


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """A party to write to: ``target`` is where messages go, ``uris`` every address it is
    recognised by (``target`` among them), ``name`` how to call it (a contact's name)."""

    target: str
    uris: tuple[str, ...]
    name: str | None = None

    @property
    def title(self) -> str:
        return f"{self.name} <{self.target}>" if self.name else self.target


def party_keys(uris: Iterable[str]) -> frozenset[str]:
    """The keys events are matched by (the book's, also without a book); an address that is
    not one matches only itself."""
    keys: set[str] = set()
    for uri in uris:
        try:
            keys.update(Messages.keys_of([uri]))
        except StoreError:
            keys.add(uri)
    return frozenset(keys)


def party_key(uri: str) -> str:
    """The key the book counts a party's unread messages by (its best)."""
    try:
        return Messages.keys_of([uri])[0]
    except StoreError:
        return uri


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One message as the conversation shows it. ``at`` is the wall clock (time.time())."""

    at: float
    direction: Literal["in", "out"]
    text: str
    state: str = ""  # ours: "sending", "delivered", "failed"; theirs: ""
    status: int = 0
    reason: str = ""
    note: str | None = None
    message_id: str | None = None
    in_call: bool = False

    @property
    def state_text(self) -> str:
        match self.state:
            case "sending":
                return "sending…"
            case "delivered":
                return "delivered ✓"
            case "failed":
                why = " ".join(part for part in (str(self.status or ""), self.reason) if part)
                return f"failed: {why}" if why else "failed"
        return ""

    def plain(self, name: str) -> str:
        """The line as text: ``14:05 me: hello  delivered ✓``."""
        stamp = datetime.fromtimestamp(self.at).strftime("%H:%M")
        who = "me" if self.direction == "out" else name
        tail = f"  {self.state_text}" if self.state_text else ""
        note = f"  ({self.note})" if self.note else ""
        call = " (in the call)" if self.in_call else ""
        return printable(f"{stamp} {who}{call}: {self.text}{tail}{note}")


def line_of_record(record: MessageRecord) -> ChatLine:
    text = record.text
    if text is None:
        text = attachment_line(record.content_type, len(record.body or b""))
    return ChatLine(
        at=record.at.timestamp(),
        direction=record.direction,
        text=text,
        state="" if record.direction == "in" else record.state,
        status=record.status,
        reason=record.reason,
        note=record.note,
        message_id=record.message_id,
        in_call=record.call_id is not None,
    )


class ChatScreen(Screen[None]):
    """The conversation with ``party``. The main screen passes it the phone's message events."""

    DEFAULT_CSS = """
    ChatScreen { layout: vertical; }
    ChatScreen #chat-title { height: 1; padding: 0 1; text-style: bold; color: $accent; }
    ChatScreen #chat-log { height: 1fr; margin: 0 1; border: round $primary-muted; }
    ChatScreen #chat-body { width: 1fr; }
    ChatScreen #chat-input { margin: 0 1; }
    ChatScreen #chat-hint { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=True),
        Binding("pageup", "older", "Older", show=True, priority=True),
        Binding("pagedown", "newer", "Newer", show=True, priority=True),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Enter", "send what is typed"),
        ("PgUp / PgDn", "scroll the conversation"),
        ("Escape", "back"),
    )

    def __init__(
        self,
        phone: PhoneApi,
        book: Book | None,
        party: ChatTarget,
        *,
        clock: Callable[[], float],
        settled: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """With a ``book``, the conversation is what the book keeps, read again whenever a
        message of this party is written (:meth:`reload`); ``settled`` waits until the messages
        on their way to the book are written. Without one, it is what :meth:`take` is given."""
        super().__init__()
        self.phone = phone
        self.book = book
        self.party = party
        self.keys = party_keys(party.uris)
        self._clock = clock
        self._settled = settled
        self.lines: list[ChatLine] = []
        self.refused: list[ChatLine] = []  # ours the phone refused: never sent, never kept
        self.loaded = book is None  # the book's part of the conversation is in

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Messages with {self.party.title}"), id="chat-title")
        with VerticalScroll(id="chat-log"):
            yield Static("", id="chat-body")
        yield Input(placeholder=f"Message to {self.party.target}", id="chat-input")
        yield Label("Enter: send   PgUp/PgDn: scroll   Escape: back", id="chat-hint")
        yield Footer()

    @property
    def shown(self) -> list[str]:
        """The conversation as it reads on screen, one plain line per message."""
        name = self.party.name or self.party.target
        return [line.plain(name) for line in self.lines]

    @property
    def input(self) -> Input:
        return self.query_one("#chat-input", Input)

    def on_mount(self) -> None:
        self.input.focus()
        self._show_lines()
        self.reload()

    def reload(self) -> None:
        """Read the conversation from the book again (a message of this party was written);
        what is shown is read now."""
        if self.book is not None:
            self._load(self.book)

    @work(exclusive=True, group="chat-load")
    async def _load(self, book: Book) -> None:
        if self._settled is not None:
            await self._settled()
        try:
            records = await book.messages.conversation_async(self.party.uris, CONVERSATION_LIMIT)
            await book.messages.mark_read_async(self.party.uris)
        except StoreError as exc:
            self.notify(f"Cannot read the messages: {exc}", severity="error")
            return
        self.lines = sorted(
            [line_of_record(r) for r in records] + self.refused, key=lambda line: line.at
        )
        self.loaded = True
        self._show_lines()

    # -- what the phone says ------------------------------------------------------------------

    def concerns(self, remote: str) -> bool:
        """Whether a message with ``remote`` belongs to this conversation."""
        return bool(party_keys([remote]) & self.keys)

    def take(self, event: pe.MessageReceived | pe.MessageStatusChanged) -> None:
        """A message event for this party, without a book: a new line, or the new state of
        one of ours."""
        if isinstance(event, pe.MessageReceived):
            line = ChatLine(
                at=self._clock(),
                direction="in",
                text=event.text,
                note=event.note,
                in_call=event.call_id is not None,
            )
            self.lines.append(line)
        else:
            self._ours(event)
        self._show_lines()

    def _ours(self, event: pe.MessageStatusChanged) -> None:
        for i, line in enumerate(self.lines):
            if line.message_id == event.message_id:
                self.lines[i] = replace(
                    line, state=event.state, status=event.status, reason=event.reason
                )
                return
        self.lines.append(
            ChatLine(
                at=self._clock(),
                direction="out",
                text=event.text
                if event.content_type == "text/plain"
                else attachment_line(event.content_type, len(event.text.encode())),
                state=event.state,
                status=event.status,
                reason=event.reason,
                message_id=event.message_id,
                in_call=event.call_id is not None,
            )
        )

    def _show_lines(self) -> None:
        if not self.is_mounted:
            return  # on_mount shows what was taken before
        body = Text()
        name = self.party.name or self.party.target
        for i, line in enumerate(self.lines):
            if i:
                body.append("\n")
            style = "" if line.direction == "out" else "bold"
            if line.state == "failed":
                style = "bold red"
            body.append(line.plain(name), style=style)
        if not self.lines:
            body = Text("No messages yet. Type one below." if self.loaded else "Loading…")
        self.query_one("#chat-body", Static).update(body)
        self.query_one("#chat-log", VerticalScroll).scroll_end(animate=False)

    # -- sending ------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if not text.strip():
            return
        self.input.value = ""
        self._send(text)

    @work(group="chat-send")
    async def _send(self, text: str) -> None:
        try:
            await self.phone.send_message(self.party.target, text)
        except PhoneError as exc:
            line = ChatLine(
                at=self._clock(), direction="out", text=text, state="failed", reason=str(exc)
            )
            self.refused.append(line)
            self.lines.append(line)
            self._show_lines()
            self.notify(f"Cannot send the message: {exc}", severity="error")
            if not self.input.value:
                self.input.value = text  # to correct it

    # -- keys ---------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss(None)

    def action_older(self) -> None:
        self.query_one("#chat-log", VerticalScroll).scroll_page_up()

    def action_newer(self) -> None:
        self.query_one("#chat-log", VerticalScroll).scroll_page_down()


class ChatPicker(ModalScreen[str | None]):
    """Whom to write to: what is typed (an address, a number, a contact's name; completed from
    the book) or a recent conversation from the list. Dismisses with that text, or None."""

    DEFAULT_CSS = """
    ChatPicker { align: center middle; }
    ChatPicker #picker-box {
        width: 76; max-width: 95%; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 1 2;
    }
    ChatPicker #picker-title { text-style: bold; margin-bottom: 1; }
    ChatPicker #picker-recent { height: auto; max-height: 12; margin-top: 1; }
    ChatPicker #picker-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=True),
        Binding("down", "to_list", "Recent", show=False),
    ]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("Enter", "write to what is typed (an address, a number or a contact's name)"),
        ("↓ then Enter", "write to a recent conversation"),
        ("→", "accept the suggestion from contacts and history"),
        ("Escape", "cancel"),
    )

    def __init__(self, book: Book | None, *, preselect: str | None = None) -> None:
        super().__init__()
        self.book = book
        self.preselect = preselect
        self.recent: list[Conversation] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Label("Write a message to", id="picker-title")
            yield Input(
                placeholder="sip:bob@example.com, a number or a contact name",
                suggester=BookSuggester(self.book),
                id="picker-input",
            )
            yield OptionList(id="picker-recent")
            yield Label("Enter: write   ↓: recent conversations   Escape: cancel", id="picker-hint")

    def on_mount(self) -> None:
        self.query_one("#picker-input", Input).focus()
        self.query_one("#picker-recent", OptionList).display = False
        if self.book is not None:
            self._load_recent(self.book)

    @work(exclusive=True, group="picker-load")
    async def _load_recent(self, book: Book) -> None:
        try:
            self.recent = await book.messages.conversations_async(RECENT_LIMIT)
        except StoreError:
            return
        options = self.query_one("#picker-recent", OptionList)
        options.clear_options()
        for conversation in self.recent:
            last = conversation.last
            who = last.peer_name or last.peer_uri
            unread = f" ({conversation.unread} unread)" if conversation.unread else ""
            preview = (
                last.text
                if last.text is not None
                else attachment_line(last.content_type, len(last.body or b""))
            )
            label = printable(f"{who}{unread}: {preview}")[:120]
            options.add_option(Option(Text(label), id=last.peer_uri))
        options.display = bool(self.recent)
        if self.preselect is not None and self.recent:
            uris = [c.last.peer_uri for c in self.recent]
            if self.preselect in uris:
                options.highlighted = uris.index(self.preselect)

    def action_to_list(self) -> None:
        options = self.query_one("#picker-recent", OptionList)
        if options.display and options.option_count:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    @on(Input.Submitted, "#picker-input")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    @on(OptionList.OptionSelected, "#picker-recent")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
