"""TraceScreen: the SIP ladder of a call through a proxy, the full message, refresh (Pilot + snapshots)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from phone_fake import FakePhone
from textual.app import App, ComposeResult
from textual.widgets import Static
from tui_support import until

from softphone.phone.api import TracedMessage
from softphone.phone.errors import PhoneError
from softphone.tui.screens.trace import (
    EMPTY_TEXT,
    LadderView,
    MessageScreen,
    TraceScreen,
    ladder_parties,
    ladder_row,
    message_label,
    redact_for_display,
)

US = "udp:192.0.2.10:5060"
PROXY = "udp:203.0.113.5:5060"
PEER = "udp:198.51.100.7:5062"
T0 = datetime(2026, 3, 4, 14, 5, 9, 250_000, tzinfo=UTC).timestamp()
SECRET = "6629fae49393a05397450978507c4ef1"

AUTH_INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK2\r\n"
    "CSeq: 2 INVITE\r\n"
    'Proxy-Authorization: Digest username="alice", realm="example.com", nonce="abc",\r\n'
    f' uri="sip:bob@example.com", response="{SECRET}", algorithm=MD5\r\n'
    "Content-Length: 0\r\n\r\n"
)


def msg(
    n: int,
    direction: Literal["sent", "received"],
    remote: str,
    first_line: str,
    cseq: str,
    text: str | None = None,
) -> TracedMessage:
    body = (
        text
        or f"{first_line}\r\nCall-ID: c1@192.0.2.10\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    )
    return TracedMessage(
        at=T0 + n * 0.125,
        direction=direction,
        local=US,
        remote=remote,
        first_line=first_line,
        text=body,
    )


TRACE = [
    msg(0, "sent", PROXY, "INVITE sip:bob@example.com SIP/2.0", "1 INVITE"),
    msg(1, "received", PROXY, "SIP/2.0 407 Proxy Authentication Required", "1 INVITE"),
    msg(2, "sent", PROXY, "ACK sip:bob@example.com SIP/2.0", "1 ACK"),
    msg(3, "sent", PROXY, "INVITE sip:bob@example.com SIP/2.0", "2 INVITE", AUTH_INVITE),
    msg(4, "received", PROXY, "SIP/2.0 100 Trying", "2 INVITE"),
    msg(5, "received", PROXY, "SIP/2.0 180 Ringing", "2 INVITE"),
    msg(6, "received", PROXY, "SIP/2.0 200 OK", "2 INVITE"),
    msg(7, "sent", PEER, "ACK sip:bob@198.51.100.7:5062 SIP/2.0", "2 ACK"),
    msg(8, "sent", PEER, "BYE sip:bob@198.51.100.7:5062 SIP/2.0", "3 BYE"),
    msg(9, "received", PEER, "SIP/2.0 200 OK", "3 BYE"),
]


class Host(App[None]):
    def __init__(self, make: Callable[[], TraceScreen]) -> None:
        super().__init__()
        self.make = make
        self.results: list[None] = []

    def compose(self) -> ComposeResult:
        yield Static("host")

    def on_mount(self) -> None:
        self.push_screen(self.make(), self.results.append)


def phone_with(trace: list[TracedMessage]) -> tuple[FakePhone, str]:
    phone = FakePhone()
    call_id = phone.incoming("sip:bob@example.com")
    phone.add_trace(call_id, *trace)
    return phone, call_id


def rows(app: App[Any]) -> list[str]:
    ladder = app.screen.query_one(LadderView)
    return [str(ladder.get_option_at_index(i).prompt) for i in range(ladder.option_count)]


def test_labels_name_the_method_or_status_and_the_answered_method() -> None:
    assert [message_label(m) for m in TRACE] == [
        "INVITE",
        "407 Proxy Authentication Required (INVITE)",
        "ACK",
        "INVITE",
        "100 Trying",
        "180 Ringing",
        "200 OK (INVITE)",
        "ACK",
        "BYE",
        "200 OK (BYE)",
    ]


def test_parties_are_us_then_remotes_in_order_of_appearance() -> None:
    assert ladder_parties(TRACE) == [US, PROXY, PEER]
    assert ladder_parties([]) == []


def test_rows_draw_arrows_from_sender_to_receiver() -> None:
    parties = ladder_parties(TRACE)
    width = 60  # life lines at 10, 30, 50
    invite = ladder_row(TRACE[0], parties, width)
    assert [i for i, c in enumerate(invite) if c == "│"] == [10, 30, 50]
    assert invite.index("INVITE") < invite.index("▶") == 29  # us -> proxy
    ringing = ladder_row(TRACE[5], parties, width)
    assert ringing.index("◀") == 11 < ringing.index("180 Ringing")  # proxy -> us
    bye = ladder_row(TRACE[8], parties, width)
    assert bye.index("▶") == 49 and bye[30] == "┼"  # us -> peer, across the proxy's line
    ok_bye = ladder_row(TRACE[9], parties, width)
    assert ok_bye.index("◀") == 11 and "200 OK (BYE)" in ok_bye
    # a label longer than the hop is cut, and the arrow head survives
    short = ladder_row(TRACE[1], parties, 40)
    assert "…" in short and "◀" in short


def test_redaction_hides_authorization_values_and_digest_responses() -> None:
    shown = redact_for_display(
        AUTH_INVITE + 'X-Note: response="leak"\r\nAuthorization: Basic YWxpY2U6cHc=\r\n'
    )
    assert SECRET not in shown and "leak" not in shown and "YWxpY2U6cHc=" not in shown
    assert "Proxy-Authorization: <redacted>\r\nContent-Length: 0" in shown  # the folded line too
    assert "Authorization: <redacted>" in shown and 'response="<redacted>"' in shown


async def test_ladder_shows_one_row_per_message_with_columns_for_each_party() -> None:
    phone, call_id = phone_with(TRACE)
    app = Host(lambda: TraceScreen(phone, call_id, tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, TraceScreen) and len(rows(app)) == 10,
            what="10 rows",
        )
        shown = rows(app)
        assert shown[0].startswith("14:05:09.250 ") and shown[9].startswith("14:05:10.375 ")
        assert all(row.count("│") + row.count("┼") == 3 for row in shown)
        assert "▶" in shown[0] and "◀" in shown[1] and "180 Ringing" in shown[5]
        header = str(app.screen.query_one("#trace-header", Static).render())
        assert header.index("us") < header.index(PROXY) < header.index(PEER)
        assert str(app.screen.query_one("#trace-us", Static).render()) == f"us: {US}"


async def test_enter_shows_the_full_message_redacted_and_escape_closes_it() -> None:
    phone, call_id = phone_with(TRACE)
    app = Host(lambda: TraceScreen(phone, call_id, tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot, lambda: isinstance(app.screen, TraceScreen) and len(rows(app)) == 10, what="rows"
        )
        await pilot.press("down", "down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen), what="the message modal")
        modal = app.screen
        assert isinstance(modal, MessageScreen)
        text = str(modal.query_one("#message-text", Static).render())
        assert "CSeq: 2 INVITE" in text and SECRET not in text and "<redacted>" in text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, TraceScreen), what="back on the ladder")
        assert app.screen.query_one(LadderView).highlighted == 3
        await pilot.press("escape")
        await until(pilot, lambda: app.results == [None], what="the trace screen dismissed")


async def test_refresh_adds_new_messages_and_keeps_the_selection() -> None:
    phone, call_id = phone_with(TRACE[:4])
    app = Host(lambda: TraceScreen(phone, call_id, tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, TraceScreen) and len(rows(app)) == 4,
            what="4 rows",
        )
        await pilot.press("down", "down")
        phone.add_trace(call_id, *TRACE[4:])
        await until(pilot, lambda: len(rows(app)) == 10, timeout_s=3.0, what="the refresh")
        assert app.screen.query_one(LadderView).highlighted == 2
        assert "200 OK (BYE)" in rows(app)[9]


async def test_empty_trace_says_so_and_then_shows_messages_when_they_come() -> None:
    phone, call_id = phone_with([])
    app = Host(lambda: TraceScreen(phone, call_id, tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, TraceScreen), what="the screen")
        empty = app.screen.query_one("#trace-empty")
        assert empty.display and str(empty.render()) == EMPTY_TEXT
        phone.add_trace(call_id, TRACE[0])
        await until(
            pilot, lambda: len(rows(app)) == 1 and not empty.display, timeout_s=3.0, what="a row"
        )


async def test_a_phone_error_is_a_notification_not_a_traceback() -> None:
    class Broken(FakePhone):
        def sip_flow(self, flow_id: str) -> list[TracedMessage]:
            raise PhoneError("no call with id nope")

    app = Host(lambda: TraceScreen(Broken(), "nope", tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot,
            lambda: any(n.message == "no call with id nope" for n in app._notifications),
            what="a notice",
        )
        assert str(app.screen.query_one("#trace-empty").render()) == EMPTY_TEXT


def test_snapshot_ladder_80x24(snap_compare: Any) -> None:
    phone, call_id = phone_with(TRACE)
    assert snap_compare(Host(lambda: TraceScreen(phone, call_id, tz=UTC)), terminal_size=(80, 24))


def test_snapshot_ladder_160x48(snap_compare: Any) -> None:
    phone, call_id = phone_with(TRACE)
    assert snap_compare(Host(lambda: TraceScreen(phone, call_id, tz=UTC)), terminal_size=(160, 48))
