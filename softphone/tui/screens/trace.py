"""The SIP ladder of one flow (like sngrep's call flow), with the full message on Enter, and for a
call its RTP streams beneath.

:class:`TraceScreen` is a ``Screen[None]``. It reads ``phone.sip_flow(flow_id)`` (a call's flow
id is its call id) when it opens and every :data:`REFRESH_S` seconds after, appending new
messages and keeping the selection; for a call, ``phone.rtp_streams(call_id)`` too, so the
packet counts move while the call is up.
Columns are the parties: us (``TracedMessage.local``) first, then each distinct remote address
in order of appearance (a proxy, or the peer when messages went direct). Each row is one
message: its local time, then an arrow from sender to receiver labelled with the method, or the
status and reason of a response ("180 Ringing", "200 OK (INVITE)": a final response names the
CSeq method it answers, RFC 3261 §20.16).

The phone redacts credentials before it stores a message; as defence in depth the text is
redacted again here before it is shown (:func:`redact_for_display`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import ClassVar, Final

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from softphone.phone.api import FlowSummary, PhoneApi, TracedMessage
from softphone.phone.errors import PhoneError
from softphone.tui.widgets.rtp_streams import RtpStreamsView

__all__ = [
    "EMPTY_TEXT",
    "LadderView",
    "MessageScreen",
    "TraceScreen",
    "ladder_header",
    "ladder_parties",
    "ladder_row",
    "message_label",
    "redact_for_display",
]

REFRESH_S: Final = 0.5
EMPTY_TEXT: Final = "No SIP messages for this call"
REDACTED: Final = "<redacted>"
TIME_WIDTH: Final = 12  # "HH:MM:SS.mmm"
MIN_LADDER_WIDTH: Final = 20

# RFC 3261 §20.7 / §20.28: the whole value of Authorization and Proxy-Authorization, including
# continuation lines (§7.3.1: a header line may be folded onto lines starting with SP/HT).
_AUTH_HEADER: Final = re.compile(
    r"^((?:proxy-)?authorization[ \t]*:)[^\r\n]*(?:\r?\n[ \t]+[^\r\n]*)*",
    re.IGNORECASE | re.MULTILINE,
)
# RFC 2617 §3.2.2 / RFC 3261 §22.4: the digest response, wherever it appears.
_DIGEST_RESPONSE: Final = re.compile(r'\bresponse[ \t]*=[ \t]*("[^"\r\n]*"|[^,\s]+)', re.IGNORECASE)
# RFC 4568 §9.1: the SRTP key and salt of an a=crypto line.
_SDES_KEY: Final = re.compile(r"(inline:)[^\s|;]+", re.IGNORECASE)
# RFC 3261 §20.16: CSeq: 1 INVITE (no compact form).
_CSEQ: Final = re.compile(r"^cseq[ \t]*:[ \t]*\d+[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


def redact_for_display(text: str) -> str:
    """Hide every Authorization/Proxy-Authorization value, every ``response=`` value and every
    SDES key (``a=crypto ... inline:<key>``)."""
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SDES_KEY.sub(rf"\1{REDACTED}", text)
    return _DIGEST_RESPONSE.sub(f'response="{REDACTED}"', text)


def message_label(message: TracedMessage) -> str:
    """The method of a request; ``"180 Ringing"`` or ``"200 OK (INVITE)"`` for a response
    (RFC 3261 §7.2 Status-Line: ``SIP/2.0 code reason``)."""
    first = message.first_line.strip()
    if not first.upper().startswith("SIP/"):
        return first.split(" ", 1)[0] if first else "?"
    parts = first.split(" ", 2)
    status = parts[1] if len(parts) > 1 else "?"
    reason = parts[2] if len(parts) > 2 else ""
    label = f"{status} {reason}".strip()
    cseq = _CSEQ.search(message.text)
    if cseq is not None and status.isdigit() and int(status) >= 200:
        label += f" ({cseq.group(1)})"
    return label


def ladder_parties(messages: Sequence[TracedMessage]) -> list[str]:
    """Us first, then each distinct remote address in order of appearance."""
    if not messages:
        return []
    parties = [messages[0].local]
    for message in messages:
        if message.remote not in parties:
            parties.append(message.remote)
    return parties


def _positions(count: int, width: int) -> list[int]:
    """The column of each party's life line: the middle of ``count`` equal slots."""
    return [int((i + 0.5) * width / count) for i in range(count)]


def _fit(text: str, room: int) -> str:
    if room <= 0:
        return ""
    return text if len(text) <= room else text[: room - 1] + "…"


def format_time(at: float, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS.mmm`` of a wall-clock time, in ``tz`` (None: the local time zone)."""
    moment = datetime.fromtimestamp(at, tz)
    return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def ladder_header(parties: Sequence[str], width: int) -> str:
    """``us`` and the remote addresses centred over their life lines, ``width`` wide."""
    line = [" "] * width
    if not parties:
        return ""
    slot = width // len(parties)
    for index, (party, x) in enumerate(zip(parties, _positions(len(parties), width), strict=True)):
        name = _fit("us" if index == 0 else party, max(1, slot - 1))
        start = max(0, min(width - len(name), x - len(name) // 2))
        line[start : start + len(name)] = list(name)
    return "".join(line).rstrip()


def ladder_row(message: TracedMessage, parties: Sequence[str], width: int) -> str:
    """One message as life lines plus an arrow (``─── INVITE ──▶``), ``width`` wide."""
    positions = _positions(len(parties), width)
    line = [" "] * width
    for x in positions:
        line[x] = "│"
    us = positions[0]
    them = positions[parties.index(message.remote)] if message.remote in parties else positions[-1]
    start, end = (us, them) if message.direction == "sent" else (them, us)
    low, high = min(start, end), max(start, end)
    for x in range(low + 1, high):
        line[x] = "┼" if x in positions else "─"
    if end > start:
        line[end - 1] = "▶"
    elif end < start:
        line[end + 1] = "◀"
    # The label sits in the hop next to the sender, so a crossed life line stays visible.
    step = [x for x in positions if low < x < high]
    seg_low, seg_high = (
        (start, min(step, default=end)) if end > start else (max(step, default=end), start)
    )
    label = _fit(message_label(message), seg_high - seg_low - 5)
    if label:
        text = f" {label} "
        begin = seg_low + 1 + (seg_high - seg_low - 1 - len(text)) // 2
        line[begin : begin + len(text)] = list(text)
    return "".join(line).rstrip()


class LadderView(OptionList):
    """The rows of the ladder; re-renders them to its width when resized."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Select", show=True, key_display="↑↓"),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("enter", "select", "Full message", show=True),
    ]

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id, markup=False, compact=True)
        self.tz = tz
        self.messages: list[TracedMessage] = []
        self.parties: list[str] = []
        self._width = 0

    @property
    def ladder_width(self) -> int:
        usable = self.scrollable_content_region.width or self.app.size.width - 4
        return max(MIN_LADDER_WIDTH, usable - TIME_WIDTH - 1)

    def show(self, messages: Sequence[TracedMessage]) -> None:
        """Show ``messages``: append when they extend what is shown, else rebuild (the
        highlighted row index is kept either way)."""
        messages = list(messages)
        parties = ladder_parties(messages)
        width = self.ladder_width
        old = self.messages
        if (
            parties == self.parties
            and width == self._width
            and len(messages) >= len(old)
            and messages[: len(old)] == old
        ):
            self.add_options(self._option(m) for m in messages[len(old) :])
            self.messages = messages
            if self.highlighted is None and messages:
                self.highlighted = 0
            return
        keep = self.highlighted
        self.messages, self.parties, self._width = messages, parties, width
        self.clear_options()
        self.add_options(self._option(m) for m in messages)
        if messages:
            self.highlighted = min(keep if keep is not None else 0, len(messages) - 1)

    def header(self) -> str:
        return " " * (TIME_WIDTH + 1) + ladder_header(self.parties, self.ladder_width)

    def _option(self, message: TracedMessage) -> Option:
        row = Text(format_time(message.at, self.tz), style=Style(dim=True))
        row.append(" " + ladder_row(message, self.parties, self.ladder_width))
        return Option(row)

    def on_resize(self, event: Resize) -> None:
        if self.ladder_width != self._width:
            self.show(self.messages)
            self.screen.query_one("#trace-header", Static).update(Text(self.header()))


class MessageScreen(ModalScreen[None]):
    """One whole SIP message (credentials redacted) in a scrollable box; Escape closes it."""

    DEFAULT_CSS = """
    MessageScreen { align: center middle; }
    MessageScreen #message-box {
        width: 95%;
        height: 90%;
        border: thick $accent;
        background: $surface;
    }
    MessageScreen #message-title { text-style: bold; padding: 0 1; width: 1fr; }
    MessageScreen #message-scroll { height: 1fr; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", show=True)]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("↑/↓ PgUp/PgDn", "scroll the message"),
        ("Escape", "close"),
    )

    def __init__(self, message: TracedMessage, *, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.message = message
        self.tz = tz
        self.shown_text = redact_for_display(message.text)

    def compose(self) -> ComposeResult:
        m = self.message
        arrow = "→" if m.direction == "sent" else "←"
        title = f"{format_time(m.at, self.tz)}  {m.direction} {arrow} {m.remote}"
        with Vertical(id="message-box"):
            yield Label(Text(title), id="message-title")
            with VerticalScroll(id="message-scroll"):
                yield Static(Text(self.shown_text.replace("\r\n", "\n")), id="message-text")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one("#message-scroll", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)


class TraceScreen(Screen[None]):
    """The SIP ladder of ``flow_id``: a call's (its call id) unless ``flow`` says it is another
    kind of flow. ``tz`` fixes the time zone of the clock column (tests)."""

    DEFAULT_CSS = """
    TraceScreen #trace-title { text-style: bold; padding: 0 1; width: 1fr; }
    TraceScreen #trace-header { color: $text-accent; text-style: bold; height: 1; }
    TraceScreen LadderView { height: 1fr; scrollbar-gutter: stable; }
    TraceScreen #trace-us { color: $text-muted; padding: 0 1; width: 1fr; }
    TraceScreen #trace-empty { color: $text-muted; padding: 1 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back", show=True)]
    KEYS_HELP: ClassVar[tuple[tuple[str, str], ...]] = (
        ("↑/↓", "select a message"),
        ("Enter", "show the whole message (passwords redacted)"),
        ("Escape", "back"),
    )

    def __init__(
        self,
        phone: PhoneApi,
        flow_id: str,
        *,
        flow: FlowSummary | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        super().__init__()
        self.phone = phone
        self.flow_id = flow_id
        self.flow = flow
        self.is_call = flow is None or flow.is_call
        self.tz = tz
        self._timer: Timer | None = None
        self._failed = False

    @property
    def call_id(self) -> str:
        return self.flow_id

    def title_text(self) -> str:
        flow = self.flow
        if flow is None:
            return f"SIP trace of call {self.flow_id}"
        kept = len(self.ladder.messages) if self.is_mounted else 0
        count = f"{flow.message_count} messages"
        if kept < flow.message_count and self.is_mounted:
            count += f", the last {kept} kept"
        return f"SIP flow {flow.method} {flow.from_uri} → {flow.to_uri} · {count}"

    def compose(self) -> ComposeResult:
        yield Label(Text(self.title_text()), id="trace-title")
        yield Label("", id="trace-us")
        yield Static("", id="trace-header")
        yield LadderView(tz=self.tz, id="trace-ladder")
        yield Label(EMPTY_TEXT, id="trace-empty")
        yield RtpStreamsView(id="trace-streams")
        yield Footer()

    @property
    def ladder(self) -> LadderView:
        return self.query_one("#trace-ladder", LadderView)

    @property
    def streams(self) -> RtpStreamsView:
        return self.query_one("#trace-streams", RtpStreamsView)

    def on_mount(self) -> None:
        self.refresh_trace()
        self.ladder.focus()
        self._timer = self.set_interval(REFRESH_S, self.refresh_trace)

    def refresh_trace(self) -> None:
        """Re-read the flow's trace (and a call's streams) and show what is new."""
        try:
            messages = self.phone.sip_flow(self.flow_id)
        except PhoneError as exc:
            if not self._failed:  # once, not every half second
                self._failed = True
                self.notify(str(exc), severity="error")
            messages = []
        ladder = self.ladder
        ladder.show(messages)
        if messages and not ladder.display:
            ladder.display = True
            ladder.focus()
        elif not messages:
            ladder.display = False
        self.query_one("#trace-empty", Label).display = not messages
        self.query_one("#trace-header", Static).update(Text(ladder.header() if messages else ""))
        us = f"us: {messages[0].local}" if messages else ""
        if self.flow is not None:
            us = f"Call-ID {self.flow_id}" + (f" · {us}" if us else "")
        self.query_one("#trace-us", Label).update(Text(us))
        if self.flow is not None:
            try:
                fresh = next((f for f in self.phone.sip_flows() if f.flow_id == self.flow_id), None)
            except PhoneError:
                fresh = None
            self.flow = fresh or self.flow  # a flow dropped meanwhile keeps its last summary
            self.query_one("#trace-title", Label).update(Text(self.title_text()))
        if self.is_call:
            try:
                streams = self.phone.rtp_streams(self.flow_id)
            except PhoneError:
                # The phone no longer keeps this call (or never had it): the ladder stands alone.
                streams = []
            self.streams.show(streams)

    @on(OptionList.OptionSelected, "#trace-ladder")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        messages = self.ladder.messages
        if 0 <= event.option_index < len(messages):
            self.app.push_screen(MessageScreen(messages[event.option_index], tz=self.tz))

    def action_back(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.dismiss(None)
