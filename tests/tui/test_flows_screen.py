"""FlowsScreen (every SIP flow, newest first) and the RTP streams under a call's ladder: Pilot
tests against FakePhone, whose flows come from the phone's own trace fed whole SIP messages,
the pure formatting, and snapshots at 80x24 and 160x48."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC
from typing import Any

from phone_fake import FakePhone
from textual.widgets import Label
from tui_support import Host, until

from softphone.config import Config
from softphone.phone.api import FlowSummary, StreamSummary
from softphone.phone.errors import PhoneError
from softphone.tui.app import make_app
from softphone.tui.screens.flows import FlowsScreen, flow_cells, matches
from softphone.tui.screens.main_actions import MAIN_HELP, help_sections
from softphone.tui.screens.trace import LadderView, MessageScreen, TraceScreen
from softphone.tui.widgets.rtp_streams import WIDE, stream_lines

US = "udp:192.0.2.10:5060"
PROXY = "udp:203.0.113.5:5060"
ALICE = '"Alice" <sip:alice@example.com>;tag=a1'
SECRET = "6629fae49393a05397450978507c4ef1"


def message(first_line: str, call_id: str, cseq: str, *, frm: str = ALICE, to: str = "") -> str:
    to = to or "<sip:bob@example.com>"
    return (
        f"{first_line}\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{cseq.split()[0]}\n"
        f"From: {frm}\nTo: {to}\nCall-ID: {call_id}\nCSeq: {cseq}\nContent-Length: 0\n\n"
    )


def at(phone: FakePhone, seconds: float) -> None:
    """Move the fake's clock (its wall clock follows: the flows' times)."""
    phone.now = seconds


def registration(phone: FakePhone, cseq: int) -> None:
    me = "<sip:alice@example.com>"
    auth = (
        f'Authorization: Digest username="alice", realm="example.com", nonce="n",'
        f' uri="sip:example.com", response="{SECRET}"\n'
    )
    phone.add_sip(
        "sent",
        message("REGISTER sip:example.com SIP/2.0", "reg-a", f"{cseq} REGISTER", to=me),
        remote=PROXY,
        local=US,
    )
    phone.add_sip(
        "received",
        message("SIP/2.0 401 Unauthorized", "reg-a", f"{cseq} REGISTER", to=me),
        remote=PROXY,
        local=US,
    )
    with_auth = message("REGISTER sip:example.com SIP/2.0", "reg-a", f"{cseq + 1} REGISTER", to=me)
    phone.add_sip(
        "sent", with_auth.replace("Content-Length", auth + "Content-Length"), remote=PROXY, local=US
    )
    phone.add_sip(
        "received",
        message("SIP/2.0 200 OK", "reg-a", f"{cseq + 1} REGISTER", to=me),
        remote=PROXY,
        local=US,
    )


STREAMS = (
    StreamSummary(
        direction="sent",
        ssrc=0x1A2B3C4D,
        local="192.0.2.10:40000",
        remote="198.51.100.7:50000",
        codec="opus",
        payload_type=111,
        clock_rate=48000,
        packets=1500,
        lost=3,
        loss_percent=0.2,
        jitter_ms=2.5,
        jitter_buffer_ms=None,
    ),
    StreamSummary(
        direction="received",
        ssrc=0x5E6F7A8B,
        local="192.0.2.10:40000",
        remote="198.51.100.7:50000",
        codec="opus",
        payload_type=111,
        clock_rate=48000,
        packets=1490,
        lost=10,
        loss_percent=0.67,
        jitter_ms=4.25,
        jitter_buffer_ms=42.0,
    ),
)


async def scenario(phone: FakePhone) -> str:
    """A registration (and a refresh), an OPTIONS ping, a call up, a busy call, a MESSAGE and a
    NOTIFY, a few seconds apart. Returns the call's id (its flow id)."""
    await phone.start()
    at(phone, 0.0)
    registration(phone, 1)
    at(phone, 12.0)
    ping = "ping-1@203.0.113.5"
    frm = "<sip:ping@example.com>;tag=p"
    phone.add_sip(
        "received",
        message("OPTIONS sip:alice@192.0.2.10:5060 SIP/2.0", ping, "1 OPTIONS", frm=frm),
        remote=PROXY,
        local=US,
    )
    phone.add_sip(
        "sent", message("SIP/2.0 200 OK", ping, "1 OPTIONS", frm=frm), remote=PROXY, local=US
    )
    at(phone, 30.0)
    phone.autoplay = True
    call_id = await phone.dial("sip:bob@example.com")
    invite = "INVITE sip:bob@example.com SIP/2.0"
    for direction, line, cseq in (
        ("sent", invite, "1 INVITE"),
        ("received", "SIP/2.0 100 Trying", "1 INVITE"),
        ("received", "SIP/2.0 180 Ringing", "1 INVITE"),
        ("received", "SIP/2.0 200 OK", "1 INVITE"),
        ("sent", "ACK sip:bob@198.51.100.7:5062 SIP/2.0", "1 ACK"),
    ):
        phone.add_sip(direction, message(line, call_id, cseq), remote=PROXY, local=US)  # type: ignore[arg-type]
    phone.set_streams(call_id, *STREAMS)
    at(phone, 45.0)
    busy = "busy-1@192.0.2.10"
    phone.add_sip(
        "sent",
        message(
            "INVITE sip:carol@example.com SIP/2.0", busy, "1 INVITE", to="<sip:carol@example.com>"
        ),
        remote=PROXY,
        local=US,
    )
    phone.add_sip(
        "received",
        message("SIP/2.0 486 Busy Here", busy, "1 INVITE", to="<sip:carol@example.com>"),
        remote=PROXY,
        local=US,
    )
    at(phone, 50.0)
    chat = "msg-1@203.0.113.5"
    phone.add_sip(
        "received",
        message(
            "MESSAGE sip:alice@example.com SIP/2.0",
            chat,
            "5 MESSAGE",
            frm="<sip:dave@example.org>;tag=d",
        ),
        remote=PROXY,
        local=US,
    )
    phone.add_sip(
        "sent",
        message(
            "SIP/2.0 405 Method Not Allowed", chat, "5 MESSAGE", frm="<sip:dave@example.org>;tag=d"
        ),
        remote=PROXY,
        local=US,
    )
    at(phone, 55.0)
    mwi = "mwi-1@203.0.113.5"
    phone.add_sip(
        "received",
        message(
            "NOTIFY sip:alice@192.0.2.10:5060 SIP/2.0",
            mwi,
            "1 NOTIFY",
            frm="<sip:voicemail@example.com>;tag=v",
        ),
        remote=PROXY,
        local=US,
    )
    at(phone, 60.0)
    registration(phone, 3)  # the refresh joins the first registration's flow
    return call_id


def rows(screen: FlowsScreen) -> list[list[str]]:
    table = screen.table
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def flows_app(phone: FakePhone) -> Host:
    return Host(lambda: FlowsScreen(phone, tz=UTC))


async def test_the_list_shows_every_flow_newest_first_with_counts_and_states() -> None:
    phone = FakePhone()
    call_id = await scenario(phone)
    app = flows_app(phone)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, FlowsScreen) and app.screen.table.row_count == 6,
            what="6 flows",
        )
        screen = app.screen
        assert isinstance(screen, FlowsScreen)
        assert rows(screen) == [
            ["14:14:15", "NOTIFY", "voicemail@example.com", "bob@example.com", "1", "-"],
            [
                "14:14:10",
                "MESSAGE",
                "dave@example.org",
                "bob@example.com",
                "2",
                "405 Method Not Allowed",
            ],
            ["14:14:05", "INVITE", "alice@example.com", "carol@example.com", "2", "BUSY"],
            ["14:13:52", "INVITE", "alice@example.com", "bob@example.com", "5", "IN CALL"],
            ["14:13:32", "OPTIONS", "ping@example.com", "bob@example.com", "2", "200 OK"],
            ["14:13:20", "REGISTER", "alice@example.com", "alice@example.com", "8", "200 OK"],
        ]
        assert str(screen.query_one("#flows-title", Label).render()) == "SIP flows · 6"
        assert screen.shown[3].flow_id == call_id


def title(screen: FlowsScreen) -> str:
    return str(screen.query_one("#flows-title", Label).render())


async def test_search_words_and_the_method_filter_narrow_the_list() -> None:
    phone = FakePhone()
    await scenario(phone)
    app = flows_app(phone)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, FlowsScreen) and app.screen.table.row_count == 6,
            what="6 flows",
        )
        screen = app.screen
        assert isinstance(screen, FlowsScreen)
        await pilot.press("slash", *"busy")
        await until(pilot, lambda: screen.table.row_count == 1, what="one match")
        assert rows(screen)[0][1:] == [
            "INVITE",
            "alice@example.com",
            "carol@example.com",
            "2",
            "BUSY",
        ]
        assert title(screen) == "SIP flows · 1 of 6"
        await pilot.press("enter")
        assert screen.focused is screen.table
        await pilot.press("escape")  # clears the search, stays
        await until(pilot, lambda: screen.table.row_count == 6, what="the search cleared")
        assert screen.search.value == "" and app.screen is screen
        seen = []
        for _ in range(5):
            await pilot.press("f")
            seen.append((screen.method, sorted(r[1] for r in rows(screen))))
        assert seen == [
            ("INVITE", ["INVITE", "INVITE"]),
            ("REGISTER", ["REGISTER"]),
            ("OPTIONS", ["OPTIONS"]),
            ("other", ["MESSAGE", "NOTIFY"]),
            ("all", ["INVITE", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "REGISTER"]),
        ]
        await pilot.press("f", "f", "f", "f")  # "other", then every word must match
        await pilot.press("slash", *"example.org 405")
        await until(pilot, lambda: screen.table.row_count == 1, what="the MESSAGE")
        assert (
            rows(screen)[0][1] == "MESSAGE"
            and title(screen) == "SIP flows · 1 of 6 · method: other"
        )
        await pilot.press(*" nothing-like-this")
        await until(pilot, lambda: screen.table.row_count == 0, what="no match")
        empty = screen.query_one("#flows-empty")
        assert empty.display and "No flow matches" in str(empty.render())
        await pilot.press("escape", "escape")  # clear, then back
        await until(pilot, lambda: app.results == [None], what="the list dismissed")


async def test_enter_opens_a_flows_ladder_and_a_calls_streams_which_refresh() -> None:
    phone = FakePhone()
    call_id = await scenario(phone)
    app = flows_app(phone)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, FlowsScreen) and app.screen.table.row_count == 6,
            what="6 flows",
        )
        flows = app.screen
        assert isinstance(flows, FlowsScreen)
        await pilot.press("end", "enter")  # the registration, oldest
        await until(pilot, lambda: isinstance(app.screen, TraceScreen), what="the ladder")
        ladder = app.screen
        assert isinstance(ladder, TraceScreen) and ladder.flow_id == "reg-a"
        await until(pilot, lambda: ladder.ladder.option_count == 8, what="8 messages")
        heading = str(ladder.query_one("#trace-title", Label).render())
        assert heading.startswith("SIP flow REGISTER sip:alice@example.com → sip:alice@example.com")
        assert "8 messages" in heading and not ladder.streams.display  # no streams for a REGISTER
        await pilot.press("down", "down", "enter")  # the REGISTER with credentials
        await until(pilot, lambda: isinstance(app.screen, MessageScreen), what="the message")
        shown = str(app.screen.query_one("#message-text").render())
        assert "Authorization: <redacted>" in shown and SECRET not in shown
        await pilot.press("escape", "escape")
        await until(pilot, lambda: app.screen is flows, what="back to the list")
        await pilot.press("home", "down", "down", "down", "enter")  # the call
        await until(pilot, lambda: isinstance(app.screen, TraceScreen), what="the call's ladder")
        ladder = app.screen
        assert isinstance(ladder, TraceScreen) and ladder.flow_id == call_id
        await until(pilot, lambda: ladder.streams.display, what="the streams")
        text = str(ladder.streams.render())
        assert "0x1a2b3c4d" in text and "0x5e6f7a8b" in text and "42.0 ms" in text
        assert " 1500 " in text and "opus/111" in text
        phone.set_streams(call_id, replace(STREAMS[0], packets=1750), STREAMS[1])
        await until(
            pilot, lambda: " 1750 " in str(ladder.streams.render()), timeout_s=3.0, what="refreshed"
        )
        assert ladder.ladder.option_count == 5


async def test_a_new_flow_keeps_the_cursor_on_the_flow_it_was_on() -> None:
    phone = FakePhone()
    await scenario(phone)
    app = flows_app(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, FlowsScreen) and app.screen.table.row_count == 6,
            what="6 flows",
        )
        screen = app.screen
        assert isinstance(screen, FlowsScreen)
        await pilot.press("down", "down", "down", "down")
        selected = screen.selected()
        assert selected is not None and selected.method == "OPTIONS"
        at(phone, 90.0)
        phone.add_sip("received", message("INFO sip:alice@192.0.2.10 SIP/2.0", "info-1", "1 INFO"))
        await until(pilot, lambda: screen.table.row_count == 7, timeout_s=3.0, what="the new flow")
        assert rows(screen)[0][1] == "INFO" and screen.table.cursor_row == 5
        assert screen.selected() == next(f for f in phone.sip_flows() if f.method == "OPTIONS")


async def test_a_phone_error_is_a_notification_and_an_empty_list_says_so() -> None:
    class Broken(FakePhone):
        def sip_flows(self) -> list[FlowSummary]:
            raise PhoneError("the phone did not answer in time (its thread is stuck)")

    app = Host(lambda: FlowsScreen(Broken(), tz=UTC))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot,
            lambda: any("did not answer" in n.message for n in app._notifications),
            what="a notice",
        )
        screen = app.screen
        assert isinstance(screen, FlowsScreen) and screen.table.row_count == 0
        assert "No SIP messages yet" in str(screen.query_one("#flows-empty").render())


async def test_L_and_the_palette_open_the_list_from_the_main_screen() -> None:
    phone = FakePhone()
    await scenario(phone)
    app = make_app(Config(), phone, clock=lambda: 1_790_000_000.0, mono_clock=lambda: phone.now)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen is app.main, what="the main screen")
        await pilot.press("escape", "L")
        await until(pilot, lambda: isinstance(app.screen, FlowsScreen), what="the list by L")
        await until(pilot, lambda: app.screen.table.row_count == 6, what="its rows")  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="back")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen is not app.main, what="palette")
        await pilot.press(*"SIP flows", "enter")
        await until(
            pilot, lambda: isinstance(app.screen, FlowsScreen), what="the list by the palette"
        )
    assert (
        "L",
        "every SIP flow seen: calls, registrations, OPTIONS, ... (Enter: its ladder)",
    ) in MAIN_HELP
    assert ("SIP flows", FlowsScreen.KEYS_HELP) in help_sections()


def summary(**fields: Any) -> FlowSummary:
    base: dict[str, Any] = {
        "flow_id": "abc@host",
        "method": "SUBSCRIBE",
        "started_at": 0.0,
        "last_at": 1.0,
        "from_uri": "sips:alice@example.com",
        "to_uri": "tel:+4930123",
        "remote": "tls:203.0.113.5:5061",
        "message_count": 3,
        "call_state": None,
        "last_status": "489 Bad Event",
    }
    return FlowSummary(**{**base, **fields})


def test_matching_is_every_word_in_any_column_and_the_method_filter() -> None:
    flow = summary()
    assert matches(flow, "all", "SUBSCRIBE 489 tls:203.0.113.5 abc@host")
    assert not matches(flow, "all", "subscribe 200")
    assert matches(flow, "other", "") and not matches(flow, "REGISTER", "")
    assert not matches(summary(method="OPTIONS"), "other", "")
    cells = [str(c) for c in flow_cells(flow, (10, 13), UTC)]
    assert cells == ["00:00:00", "SUBSCRIBE", "sips:alic…", "tel:+4930…", "3", "489 Bad Event"]


def test_stream_lines_one_line_each_when_wide_two_when_narrow() -> None:
    wide = stream_lines(STREAMS, WIDE)
    assert len(wide) == 3 and wide[0].startswith("RTP") and all(len(line) <= WIDE for line in wide)
    assert "▶ sent" in wide[1] and "192.0.2.10:40000 → 198.51.100.7:50000" in wide[1]
    assert "◀ received" in wide[2] and "198.51.100.7:50000 → 192.0.2.10:40000" in wide[2]
    assert wide[2].rstrip().endswith("42.0 ms") and wide[1].rstrip().endswith("-")
    narrow = stream_lines(STREAMS, 78)
    assert len(narrow) == 4 and all(len(line) <= 78 for line in narrow)
    assert narrow[1].split() == "packets 1500 lost 3 (0.2 %) jitter 2.5 ms".split()
    assert narrow[3].split()[-3:] == ["buffer", "42.0", "ms"]
    quiet = stream_lines(
        [
            StreamSummary(
                **{**_fields(STREAMS[1]), "ssrc": None, "lost": None, "loss_percent": None}
            )
        ],
        78,
    )
    assert quiet[0].split()[:3] == ["◀", "received", "-"] and "lost - (-)" in quiet[1]
    assert stream_lines([], 200) == []


def _fields(stream: StreamSummary) -> dict[str, Any]:
    return asdict(stream)


def test_snapshot_flows_80x24(snap_compare: Any) -> None:
    phone = FakePhone()

    async def run_before(pilot: Any) -> None:
        await scenario(phone)
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, FlowsScreen) and pilot.app.screen.table.row_count == 6
            ),
            what="rows",
        )

    assert snap_compare(flows_app(phone), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_flows_160x48(snap_compare: Any) -> None:
    phone = FakePhone()

    async def run_before(pilot: Any) -> None:
        await scenario(phone)
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, FlowsScreen) and pilot.app.screen.table.row_count == 6
            ),
            what="rows",
        )

    assert snap_compare(flows_app(phone), terminal_size=(160, 48), run_before=run_before)


def call_ladder(phone: FakePhone) -> tuple[Host, Any]:
    """The call's ladder with its streams, opened from the list."""

    async def run_before(pilot: Any) -> None:
        await scenario(phone)
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, FlowsScreen) and pilot.app.screen.table.row_count == 6
            ),
            what="rows",
        )
        await pilot.press("down", "down", "down", "enter")
        await until(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, TraceScreen)
                and pilot.app.screen.streams.display
                and pilot.app.screen.query_one(LadderView).option_count == 5
            ),
            what="the call's ladder",
        )

    return flows_app(phone), run_before


def test_snapshot_call_ladder_with_streams_80x24(snap_compare: Any) -> None:
    app, run_before = call_ladder(FakePhone())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_call_ladder_with_streams_160x48(snap_compare: Any) -> None:
    app, run_before = call_ladder(FakePhone())
    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)
