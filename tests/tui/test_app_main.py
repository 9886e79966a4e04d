"""Pilot tests of the main screen against FakePhone: dialling, incoming calls and call waiting,
the keys on a call, the status bar, the side pane, the quality panel, the command palette, help
and quit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from phone_fake import FakePhone
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import until

from softphone.config import Config, load_config
from softphone.phone import events as pe
from softphone.phone.book import Book, Contact
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.incoming import IncomingScreen
from softphone.tui.screens.main import MainScreen
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.screens.settings import AccountForm, SettingsScreen

WALL = 1_790_000_000.0


class FakePlayer:
    """Stands in for softphone.phone.player.Player: pushes one picture per run() step."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.on_picture: Callable[[np.ndarray], None] | None = None
        self.on_state: Callable[[], None] | None = None
        self.events: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self.box: tuple[int, int] | None = None
        self.decoding = True
        self.stopped = False

    @property
    def title(self) -> str:
        return self.url

    @property
    def plain_url(self) -> str:
        return self.url

    @property
    def camera_name(self) -> str:
        return "cam"

    def set_video_box(self, width_px: int, height_px: int) -> None:
        self.box = (width_px, height_px)

    def set_video_decoding(self, enabled: bool) -> None:
        self.decoding = enabled

    def overlay(self) -> str:
        return f"H264 64x36 · {self.url}"

    async def run(self, stop: asyncio.Event, *, duration_s: float | None = None) -> int:
        rgb = np.full((36, 64, 3), 200, np.uint8)
        while not stop.is_set():
            if self.on_picture is not None:
                self.on_picture(rgb)
            try:
                async with asyncio.timeout(0.04):
                    await stop.wait()
            except TimeoutError:
                pass
        self.stopped = True
        return 0


def build(phone: FakePhone, **kwargs: object) -> tuple[SoftphoneApp, list[FakePlayer]]:
    players: list[FakePlayer] = []

    def factory(url: str, config: Config, login: tuple[str, str] | None) -> FakePlayer:
        players.append(FakePlayer(url))
        return players[-1]

    app = make_app(
        Config(),
        phone,
        clock=lambda: WALL,
        mono_clock=lambda: phone.now,
        player_factory=factory,
        **kwargs,
    )  # type: ignore[arg-type]
    return app, players


def main(app: SoftphoneApp) -> MainScreen:
    return app.main


async def established(pilot: Pilot[Any], app: SoftphoneApp, phone: FakePhone) -> str:
    """Dial bob through the dial bar and let the fake answer."""
    await pilot.press(*"sip:bob@example.test", "enter")
    await until(pilot, lambda: phone.dialled == ["sip:bob@example.test"], what="dial")
    phone.settle()
    call_id = phone.calls[0].call_id
    await until(pilot, lambda: "established" in _rows(app), what="established row")
    return str(call_id)


def _rows(app: SoftphoneApp) -> str:
    table = app.main.calls_table
    return " | ".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


async def test_typing_a_uri_and_enter_dials_and_shows_the_call() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.focused, Input) and app.focused.id == "dial"
        await pilot.press(*"sip:bob@example.test", "enter")
        await until(pilot, lambda: phone.dialled == ["sip:bob@example.test"], what="dial")
        await until(pilot, lambda: "calling" in _rows(app), what="calling row")
        phone.settle()
        await until(pilot, lambda: "established" in _rows(app), what="established")
        assert "→" in _rows(app) and "opus" in _rows(app)
        assert app.main.dial_bar.value == ""


async def test_a_contact_name_dials_its_primary_uri(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    book.contacts.add(Contact(name="Carol Jones", uris=("sip:carol@example.test", "sip:c2@x.test")))
    phone = FakePhone()
    app, _ = build(phone, book=book)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"Carol Jones", "enter")
        await until(pilot, lambda: phone.dialled == ["sip:carol@example.test"], what="dial carol")
        await until(pilot, lambda: "Carol Jones" in _rows(app), what="name in the calls list")
    book.close()


async def test_dial_failure_is_a_message_not_a_traceback() -> None:
    phone = FakePhone()
    phone.fail_next("dial", "no route to example.test")
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"sip:x@example.test", "enter")
        await until(
            pilot, lambda: any("no route" in t for t in main(app).messages.texts), what="error line"
        )
        assert isinstance(app.focused, Input)


async def test_incoming_call_answered_from_the_modal() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: phone.started, what="start")
        call_id = phone.incoming("sip:dave@example.test", display_name="Dave")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="modal")
        assert app.screen.caller == "Dave"  # type: ignore[attr-defined]
        await pilot.press("a")
        await until(pilot, lambda: phone.made("answer") == [{"call_id": call_id}], what="answer")
        phone.settle()
        await until(pilot, lambda: "established" in _rows(app), what="established")
        assert app.screen is app.main


async def test_incoming_call_rejected_from_the_modal_and_silenced() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: phone.started, what="start")
        call_id = phone.incoming("sip:eve@example.test")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="modal")
        await pilot.press("s")
        await until(pilot, lambda: phone.made("silence") == [{"call_id": call_id}], what="silence")
        assert phone.calls[0].silenced and isinstance(app.screen, IncomingScreen)
        await pilot.press("h")
        await until(pilot, lambda: phone.made("reject") != [], what="reject")
        assert phone.made("reject")[0]["call_id"] == call_id
        await until(pilot, lambda: app.main.calls_table.row_count == 0, what="row gone")


async def test_modal_goes_away_when_the_caller_cancels() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: phone.started, what="start")
        call_id = phone.incoming("sip:eve@example.test")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="modal")
        phone.remote_hangup(call_id)
        await until(pilot, lambda: app.screen is app.main, what="modal dismissed")


async def test_second_incoming_call_is_call_waiting_not_a_modal() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        phone.incoming("sip:frank@example.test")
        await until(pilot, lambda: "waiting" in _rows(app), what="waiting flag")
        assert app.screen is app.main
        assert any("call waiting" in t for t in main(app).messages.texts)


async def test_hold_resume_mute_record_and_dtmf_keys() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = await established(pilot, app, phone)
        assert not isinstance(app.focused, Input)  # a dial moves focus to the calls list
        await pilot.press("H")
        await until(pilot, lambda: phone.made("hold") == [{"call_id": call_id}], what="hold")
        phone.settle()
        await until(pilot, lambda: "held" in _rows(app), what="held")
        await pilot.press("o")
        await until(pilot, lambda: phone.made("resume") == [{"call_id": call_id}], what="resume")
        phone.settle()
        await until(pilot, lambda: "established" in _rows(app), what="resumed")
        await pilot.press("m")
        await until(pilot, lambda: "muted" in _rows(app), what="muted flag")
        await pilot.press("m")
        await until(pilot, lambda: "muted" not in _rows(app), what="unmuted")
        await pilot.press("r")
        await until(pilot, lambda: " rec" in _rows(app), what="rec flag")
        await pilot.press("r")
        await until(pilot, lambda: " rec" not in _rows(app), what="rec off")
        await pilot.press("1", "2", "asterisk", "number_sign")
        await until(pilot, lambda: phone.calls[0].dtmf_sent == "12*#", what="DTMF")
        # Each digit shows as it goes out, with how it went (the far end's come as "received").
        sent = [t for t in main(app).messages.texts if t.startswith("DTMF")]
        await until(
            pilot,
            lambda: (
                [t for t in main(app).messages.texts if t.startswith("DTMF")]
                == [f"DTMF {d} sent (rtp)" for d in "12*#"]
            ),
            what=f"the digits in the messages (so far {sent})",
        )


async def test_digits_in_the_dial_bar_are_typed_not_sent_as_dtmf() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        await pilot.press("d", "1", "2")
        await until(pilot, lambda: app.main.dial_bar.value == "12", what="typed")
        assert phone.made("send_dtmf") == []


async def test_transfer_prompt_sends_the_target() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        call_id = await established(pilot, app, phone)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        await pilot.press(*"sip:carol@example.test", "enter")
        await until(pilot, lambda: phone.made("transfer") != [], what="transfer")
        assert phone.made("transfer") == [{"call_id": call_id, "target": "sip:carol@example.test"}]
        phone.settle()
        await until(
            pilot,
            lambda: any("transfer: 200" in t for t in main(app).messages.texts),
            what="transfer progress",
        )


async def test_transfer_with_two_calls_offers_the_attended_transfer() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        to_bob = await established(pilot, app, phone)
        await pilot.press("escape")
        await pilot.press("d", *"sip:carol@example.test", "enter")
        await until(pilot, lambda: len(phone.dialled) == 2, what="second dial")
        phone.settle()
        to_carol = str(phone.calls[1].call_id)
        await until(pilot, lambda: _rows(app).count("established") == 2, what="two calls up")
        app.main.calls_table.focus()
        app.main.calls_table.select_call(to_bob)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="question")
        assert "sip:carol@example.test" in app.screen.question
        await pilot.press("y")
        await until(pilot, lambda: phone.made("attended_transfer") != [], what="transfer")
        assert phone.made("attended_transfer") == [{"call_id": to_bob, "other_call_id": to_carol}]
        assert phone.made("transfer") == []
        phone.settle()
        await until(
            pilot,
            lambda: all(c.state == "ended" for c in phone.calls),
            what="both calls left",
        )


async def test_transfer_with_two_calls_can_still_go_blind() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        to_bob = await established(pilot, app, phone)
        await pilot.press("escape")
        await pilot.press("d", *"sip:carol@example.test", "enter")
        await until(pilot, lambda: len(phone.dialled) == 2, what="second dial")
        phone.settle()
        await until(pilot, lambda: _rows(app).count("established") == 2, what="two calls up")
        app.main.calls_table.focus()
        app.main.calls_table.select_call(to_bob)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="question")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        await pilot.press(*"sip:dave@example.test", "enter")
        await until(pilot, lambda: phone.made("transfer") != [], what="blind transfer")
        assert phone.made("transfer") == [{"call_id": to_bob, "target": "sip:dave@example.test"}]
        assert phone.made("attended_transfer") == []


def results(book: Book) -> list[str]:
    return [r.result for r in book.history.list()]


async def test_a_call_is_in_the_history_while_on_and_completed_at_hangup(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    phone = FakePhone()
    app, _ = build(phone, book=book)
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        await until(pilot, lambda: results(book) == ["in_progress"], what="row in progress")
        await pilot.press("h")
        await until(pilot, lambda: phone.made("hangup") != [], what="hangup")
        phone.settle()
        await until(pilot, lambda: results(book) == ["answered"], what="row completed")
        record = book.history.list()[0]
        assert record.remote_uri == "sip:bob@example.test" and record.direction == "out"
        assert record.duration_s == 1.0  # the fake's clock: answered at step 2, hung up at 3
    book.close()


async def test_quitting_during_a_call_completes_its_history_row(tmp_path: Path) -> None:
    """q hangs up (phone.stop) and the app waits for the ended call to reach the history,
    rather than leaving it to be marked interrupted."""
    book = Book.open(tmp_path / "t.db")
    phone = FakePhone()
    app, _ = build(phone, book=book)
    at_exit: list[list[str]] = []
    leave = app.exit

    def watched_exit(*args: Any, **kwargs: Any) -> None:
        at_exit.append(results(book))
        leave(*args, **kwargs)

    app.exit = watched_exit  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        await until(pilot, lambda: results(book) == ["in_progress"], what="row in progress")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app to end")
    assert at_exit[0] == ["answered"]  # written before the app began to leave
    book.close()


async def test_notice_lands_in_the_messages_area_and_dial_bar_keeps_focus() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        phone.emit(pe.Notice(level="warning", text="no audio input device"))
        await until(
            pilot, lambda: "no audio input device" in main(app).messages.texts, what="notice"
        )
        assert isinstance(app.focused, Input) and app.screen is app.main


async def test_registration_states_in_the_status_bar() -> None:
    phone = FakePhone(
        accounts={"alice": "sip:alice@example.test", "home": "sip:me@home.test"},
        registrars=["alice"],
    )
    app, _ = build(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        status = main(app).status
        await until(pilot, lambda: "alice: registering" in status.text, what="registering")
        assert "home: local (no registrar)" in status.text
        phone.settle()
        await until(pilot, lambda: "alice: registered until" in status.text, what="registered")
        assert "(udp)" in status.text
        phone.fail_registration("alice", 403, retry_in_s=30)
        await until(pilot, lambda: "alice: failed:" in status.text, what="failed")
        assert "retry in 30 s" in status.text
        assert any("registration of alice failed" in t for t in main(app).messages.texts)


async def test_a_silent_registrar_is_explained_in_the_status_bar() -> None:
    phone = FakePhone(accounts={"alice": "sip:alice@example.test"}, registrars=["alice"])
    app, _ = build(phone)
    async with app.run_test(size=(140, 30)) as pilot:
        status = main(app).status
        await until(pilot, lambda: "alice: registering" in status.text, what="registering")
        phone.registrar_silent("alice", "127.0.0.1:5070")
        await until(
            pilot,
            lambda: (
                "alice: registering to 127.0.0.1:5070 over udp: no answer yet (retrying)"
                in status.text
            ),
            what="the silent registrar",
        )
        assert (
            "registering alice to 127.0.0.1:5070 over udp: no answer yet (retrying; gives up"
            " in 30 s)" in main(app).messages.texts
        )
        reason = "no answer from 127.0.0.1:5070 over udp in 32 s"
        phone.fail_registration("alice", 0, reason, retry_in_s=30)
        await until(
            pilot,
            lambda: f"alice: failed: {reason} (retry in 30 s)" in status.text,
            what="the failure",
        )


async def test_side_pane_plays_a_stream_from_the_prompt() -> None:
    phone = FakePhone()
    app, players = build(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("escape", "v")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        await pilot.press(*"rtsp://cam.test/s", "enter")
        await until(pilot, lambda: main(app).side.video.frames_shown > 0, what="a picture")
        assert players[0].url == "rtsp://cam.test/s" and players[0].box is not None
        await pilot.press("V")
        await until(pilot, lambda: not main(app).side.display, what="pane hidden")


async def test_pane_collapses_at_80_columns_and_replaces_quality_when_toggled() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = main(app)
        await until(pilot, lambda: screen.narrow, what="narrow")
        assert not screen.side.display and screen.quality.display
        await pilot.press("escape", "V")
        await until(pilot, lambda: screen.side.display, what="pane shown")
        assert not screen.quality.display


async def test_door_station_contact_opens_its_stream_on_incoming_call(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    book.contacts.add(
        Contact(
            name="Front door", uris=("sip:door@example.test",), rtsp_url="rtsp://door.test/live"
        )
    )
    phone = FakePhone()
    app, players = build(phone, book=book)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: phone.started, what="start")
        phone.incoming("sip:door@example.test")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="modal")
        assert app.screen.caller == "Front door"  # type: ignore[attr-defined]
        assert [p.url for p in players] == ["rtsp://door.test/live"]
    book.close()


async def test_a_call_to_a_contacts_number_shows_the_contact(tmp_path: Path) -> None:
    """The dial bar makes sip:<digits>@<domain> of a typed number; the contact holds it as a
    tel: URI with separators. The calls list names the contact all the same."""
    book = Book.open(tmp_path / "t.db")
    book.contacts.add(Contact(name="Mum", uris=("tel:+49 30 1234-5678",)))
    phone = FakePhone()
    app, _ = build(phone, book=book)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(*"0049 30 12345678", "enter")
        await until(pilot, lambda: phone.dialled == ["0049 30 12345678"], what="dial")
        await until(pilot, lambda: "Mum" in _rows(app), what="the contact's name in the row")
    book.close()


async def test_quality_panel_and_level_meters_follow_the_selected_call() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(120, 40)) as pilot:
        call_id = await established(pilot, app, phone)
        phone.set_levels(call_id, -12.0, -20.0)
        phone.emit_stats(call_id, jitter_ms=4.5, loss_percent=1.0, rtt_ms=40.0, mos=4.1)
        quality = main(app).quality
        await until(pilot, lambda: quality.levels_shown == (-12.0, -20.0), what="levels")
        notes = main(app).notes
        await until(
            pilot,
            lambda: list(notes.quality[call_id].series["jitter_ms"])[-1:] == [4.5],
            what="first stats",
        )
        phone.emit_stats(call_id, jitter_ms=6.0, loss_percent=2.0, rtt_ms=42.0, mos=3.9)
        history = notes.quality[call_id]
        await until(
            pilot,
            lambda: list(history.series["jitter_ms"])[-2:] == [4.5, 6.0],
            what="jitter series",
        )


async def test_stats_of_one_call_coalesce_in_the_queue() -> None:
    from softphone.tui.messages import PhoneEventReceived

    first = PhoneEventReceived(pe.CallStats(call_id="c1", stats={"jitter_ms": 1.0}))
    newer = PhoneEventReceived(pe.CallStats(call_id="c1", stats={"jitter_ms": 2.0}))
    other = PhoneEventReceived(pe.CallStats(call_id="c2", stats={}))
    notice = PhoneEventReceived(pe.Notice(level="info", text="x"))
    assert newer.can_replace(first)
    assert not other.can_replace(first) and not notice.can_replace(first)


async def test_command_palette_runs_an_action() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen is not app.main, what="palette")
        await pilot.press(*"Mute", "enter")
        await until(pilot, lambda: phone.made("mute") != [], what="mute from the palette")
        assert phone.made("mute")[0]["muted"] is True


async def test_help_screen_lists_main_keys() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f1")
        from softphone.tui.screens.help import HelpScreen

        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        titles = [title for title, _ in app.screen.sections]  # type: ignore[attr-defined]
        assert titles[0] == "Main screen"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="help closed")


async def test_quit_stops_the_phone_then_leaves() -> None:
    """``q`` hangs up through ``phone.stop()`` (the app is still up while it runs), then the
    app ends by itself."""
    phone = FakePhone()
    app, _ = build(phone)
    running_at_stop: list[bool] = []
    stop = phone.stop

    async def watched_stop() -> None:
        running_at_stop.append(app.is_running)
        await stop()

    phone.stop = watched_stop  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await established(pilot, app, phone)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app to end")
    assert running_at_stop == [True]
    assert app.return_code == 0


async def test_accounts_saved_in_the_settings_apply_to_the_phone_at_once(tmp_path: Path) -> None:
    """First run: the account typed in the editor registers as soon as OK is pressed; later
    changes of other settings say they wait for a restart."""
    phone = FakePhone()
    path = tmp_path / "config.toml"
    app, _ = build(phone, config_path=path, first_run=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the first-run form")
        form = app.screen
        for field, value in (
            ("f-name", "alice"),
            ("f-uri", "sip:alice@example.test"),
            ("f-registrar", "sip:127.0.0.1:5070"),
        ):
            form.query_one(f"#{field}", Input).value = value
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is app.main, what="back on the main screen")
        status = main(app).status
        await until(
            pilot,
            lambda: "alice: registering to 127.0.0.1:5070 (udp)" in status.text,
            what="registering",
        )
        (applied,) = phone.made("apply_accounts")
        assert [a.name for a in applied["accounts"]] == ["alice"]  # type: ignore[attr-defined]
        assert phone.accounts == ["alice"] and load_config(path).account("alice")
        phone.settle()
        await until(pilot, lambda: "alice: registered until" in status.text, what="registered")
        assert not any("restart" in t for t in main(app).messages.texts)

        app.call_later(main(app).action_settings)
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        app.screen.query_one("#codecs", Input).value = "pcmu"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main, what="saved and closed")
        await until(
            pilot,
            lambda: "settings saved; the codecs apply after a restart" in main(app).messages.texts,
            what="the restart note",
        )
        assert len(phone.made("apply_accounts")) == 2 and phone.pending == []  # nothing changed
        assert app.config.codecs == ("PCMU",)


def type_ahead(app: SoftphoneApp, *keys: str) -> None:
    """Queue ``keys`` at once, as a terminal delivers keys typed faster than the app reads
    them (or in one read); ``pilot.press`` would wait for the app to settle after each."""
    names = {"tab": "\t", "shift+tab": None}
    for key in keys:
        app.post_message(events.Key(key, names.get(key, key)))


async def test_keys_typed_ahead_across_tab_land_in_the_next_field(tmp_path: Path) -> None:
    app, _ = build(FakePhone(), config_path=tmp_path / "config.toml", first_run=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the first-run form")
        form = app.screen
        fields = [form.query_one(f"#f-{name}", Input) for name in ("name", "uri", "display-name")]
        type_ahead(app, "a", "l", "tab", "s", "i", "p", "tab", "A", "shift+tab")
        await until(
            pilot,
            lambda: form.focused is fields[1] and sum(len(f.value) for f in fields) == 6,
            what="every key typed and the focus back on the URI field",
        )
        assert [f.value for f in fields] == ["al", "sip", "A"]


async def test_an_encrypted_call_shows_a_lock_in_the_list_and_the_quality_panel() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        call_id = await established(pilot, app, phone)
        assert "\N{LOCK}" not in _rows(app)
        assert "\N{LOCK}" not in str(app.main.quality.border_title)
        call = phone.calls[0]
        call.encryption, call.srtp_suite = "dtls-srtp", "AES_CM_128_HMAC_SHA1_80"
        phone.emit_stats(call_id, encryption="dtls-srtp", srtp_suite="AES_CM_128_HMAC_SHA1_80")
        await until(pilot, lambda: "\N{LOCK}" in _rows(app), what="the lock in the calls list")
        await until(
            pilot,
            lambda: (
                "\N{LOCK} SRTP (DTLS) AES_CM_128_HMAC_SHA1_80" in str(app.main.quality.border_title)
            ),
            what="the lock in the quality panel",
        )


async def test_conference_key_joins_two_calls_and_splits_them() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        to_bob = await established(pilot, app, phone)
        await pilot.press("escape")
        await pilot.press("d", *"sip:carol@example.test", "enter")
        await until(pilot, lambda: len(phone.dialled) == 2, what="second dial")
        phone.settle()
        to_carol = str(phone.calls[1].call_id)
        await until(pilot, lambda: _rows(app).count("established") == 2, what="two calls up")
        await phone.hold(to_bob)
        phone.settle()
        await until(pilot, lambda: "held" in _rows(app), what="bob held")
        assert app.main.check_action("conference", ()), "the footer offers the conference key"
        app.main.calls_table.focus()
        app.main.calls_table.select_call(to_carol)
        await pilot.press("j")
        await until(pilot, lambda: phone.made("join") != [], what="join")
        assert phone.made("join") == [{"call_id": to_carol, "other_call_id": to_bob}]
        phone.settle()  # the join resumes the held call
        await until(pilot, lambda: _rows(app).count("conf") == 2, what="both rows in conference")
        await until(pilot, lambda: _rows(app).count("established") == 2, what="bob resumed")
        await pilot.press("j")
        await until(pilot, lambda: phone.made("split") != [], what="split")
        assert phone.made("split") == [{"call_id": to_carol}]
        phone.settle()
        await until(pilot, lambda: "conf" not in _rows(app), what="no conference")
        assert phone.call(to_bob).state == "held" and phone.call(to_carol).state == "established"


async def test_conference_key_needs_two_calls() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(120, 30)) as pilot:
        await established(pilot, app, phone)
        assert not app.main.check_action("conference", ()), "no conference key for one call"
        app.main.calls_table.focus()
        await pilot.press("j")
        await pilot.pause()
        assert phone.made("join") == []


async def test_video_key_asks_for_video_and_the_pane_draws_the_call() -> None:
    phone = FakePhone()
    app, _ = build(phone)
    async with app.run_test(size=(140, 36)) as pilot:
        call_id = await established(pilot, app, phone)
        side = main(app).side
        assert not side.video.display  # no video yet: the pane shows its hint
        phone.calls[0].picture = np.full((96, 128, 3), 200, np.uint8)
        await pilot.press("C")
        await until(
            pilot, lambda: phone.made("set_video") == [{"call_id": call_id, "on": True}], what="ask"
        )
        await until(pilot, lambda: side.video.display, what="the call's picture in the pane")
        assert "bob@example.test" in str(side.border_title)
        await pilot.press("C")  # and away again
        await until(pilot, lambda: len(phone.made("set_video")) == 2, what="remove")
        assert phone.made("set_video")[1] == {"call_id": call_id, "on": False}
        await until(pilot, lambda: not side.video.display, what="the pane's hint back")
