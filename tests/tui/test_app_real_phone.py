"""Pilot tests of the app with the real phone: a ThreadedPhone around a Phone on 127.0.0.1, as
``softphone`` runs it, called by a second Phone peer-to-peer the way baresip, Linphone and desk
phones call: with a display name in From. What front ends get from the phone (the caller's URI
and name apart) is what these tests are about, so no FakePhone stands in for it here."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from phone_support import free_port
from textual.widgets import Input, Label
from tui_support import until

from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.book import Book, Contact
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.phone.video import VideoSettings
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.tui.app import SoftphoneApp, default_player, make_app
from softphone.tui.screens.history import HistoryScreen
from softphone.tui.screens.incoming import IncomingScreen
from softphone.tui.widgets.side_pane import Login, PlayerLike

HOST = "127.0.0.1"


class Peer:
    """The far-end phone, started in the test's loop: ``uri`` is its account's address (what
    its From carries); ``seen`` keeps every event it had."""

    def __init__(self, phone: Phone, uri: str) -> None:
        self.phone = phone
        self.uri = uri
        self.seen: list[pe.PhoneEvent] = []

    def had(self, kind: type[pe.PhoneEvent]) -> list[Any]:
        while (event := self.phone.next_event_nowait()) is not None:
            self.seen.append(event)
        return [e for e in self.seen if isinstance(e, kind)]


def phone_at(port: int, config: Config, seed: str) -> Phone:
    return Phone(
        config,
        bind_host=HOST,
        sip_port=port,
        rng=random.Random(seed),
        dns=StubBackend(),
        audio=NullAudio(),
    )


@pytest.fixture
async def caller() -> AsyncIterator[Callable[[str, str, str | None], Any]]:
    """``await caller(user, display_name)``: a started Phone whose account's URI carries its
    own port, so that calling back the From URI reaches it."""
    made: list[Phone] = []

    async def make(user: str, display_name: str, seed: str | None = None) -> Peer:
        port = free_port()
        account = Account(
            name="far", uri=SipUri.parse(f"sip:{user}@{HOST}:{port}"), display_name=display_name
        )
        phone = phone_at(port, Config(accounts=(account,)), seed or user)
        await phone.start()
        made.append(phone)
        return Peer(phone, str(account.uri))

    yield make
    for phone in made:
        await phone.stop()


def our_app(book: Book, port: int, urls: list[str]) -> SoftphoneApp:
    """The app around a real phone (on a thread of its own, as ``run_tui`` makes it), with the
    real players in the side pane; ``urls`` records what the pane was asked to play."""
    config = Config()

    def player(url: str, config: Config, login: Login | None) -> PlayerLike:
        urls.append(url)
        return default_player(url, config, login)

    phone = ThreadedPhone(phone_at(port, config, "ours"))
    return make_app(config, phone, book=book, player_factory=player)


def labels(app: SoftphoneApp) -> list[str]:
    return [str(label.render()) for label in app.screen.query(Label)]


async def test_a_named_caller_lands_in_the_history_and_call_back_dials_its_uri(
    tmp_path: Path, caller: Callable[..., Any]
) -> None:
    book = Book.open(tmp_path / "t.db")
    port = free_port()
    app = our_app(book, port, [])
    bob: Peer = await caller("bob", "Builder, Bob")
    bob_uri = bob.uri
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: "local" in app.main.status.text, what="the phone to start")
        call_id = await bob.phone.dial(f"sip:softphone@{HOST}:{port}")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="the modal")
        # The caller, named once, its address beneath: not the From header's text.
        shown = labels(app)
        assert "Builder, Bob" in shown and bob_uri in shown
        assert sum("Builder, Bob" in text for text in shown) == 1, shown
        await pilot.press("a")
        await until(
            pilot,
            lambda: [c.state for c in app.phone.calls] == ["established"],
            what="answered",
        )
        await until(
            pilot, lambda: [r.result for r in book.history.list()] == ["in_progress"], what="row"
        )
        await bob.phone.hangup(call_id)
        await until(
            pilot, lambda: [r.result for r in book.history.list()] == ["answered"], what="ended"
        )
        (row,) = book.history.list()
        assert (row.direction, row.remote_uri, row.remote_name) == ("in", bob_uri, "Builder, Bob")

        await pilot.press("escape", "y")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await until(pilot, lambda: len(history.records) == 1, what="the row")
        await pilot.press("enter")  # call back
        await until(pilot, lambda: bob.had(pe.IncomingCall) != [], what="bob's phone to ring")
        (back,) = bob.had(pe.IncomingCall)
        assert back.remote == f"sip:softphone@{HOST}"  # it is us calling
        outgoing = [c for c in app.phone.calls if c.direction == "outgoing"]
        assert [c.remote for c in outgoing] == [bob_uri]
    book.close()


@pytest.mark.parametrize(
    ("contact_uri", "caller_user"),
    [
        ("sip:door@127.0.0.1", "door"),  # a SIP user on its host (the port is the caller's)
        ("tel:+49 30 1234-56", "004930123456"),  # a number, spelled differently by each side
    ],
    ids=["sip-user", "number-with-00"],
)
async def test_a_door_station_contact_calls_and_its_camera_opens_in_the_side_pane(
    tmp_path: Path, caller: Callable[..., Any], contact_uri: str, caller_user: str
) -> None:
    book = Book.open(tmp_path / "t.db")
    camera = "rtsp://127.0.0.1:9/door"  # nothing listens: the pane only has to try it
    book.contacts.add(Contact(name="Front door", uris=(contact_uri,), rtsp_url=camera))
    port = free_port()
    urls: list[str] = []
    app = our_app(book, port, urls)
    door: Peer = await caller(caller_user, "Door Station 2000")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: "local" in app.main.status.text, what="the phone to start")
        await door.phone.dial(f"sip:softphone@{HOST}:{port}")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="the modal")
        modal = app.screen
        assert isinstance(modal, IncomingScreen)
        # The contact's name, the address beneath; not the raw user part, not the device's name.
        assert (modal.caller, modal.uri) == ("Front door", door.uri)
        await until(pilot, lambda: urls == [camera], what="the side pane to open the camera")
        assert app.main.side.display
    book.close()


async def test_a_video_call_is_drawn_in_the_side_pane_and_c_takes_the_video_away(
    tmp_path: Path,
) -> None:
    """A peer calls with its test pattern (offering video); we answer (receive-only: no source
    here), the pane draws the far end; C re-INVITEs without video and the pane's hint is back."""
    book = Book.open(tmp_path / "t.db")
    port = free_port()
    app = our_app(book, port, [])
    peer = Phone(
        Config(),
        bind_host=HOST,
        sip_port=0,
        rng=random.Random("peer"),
        dns=StubBackend(),
        audio=NullAudio(),
        video=VideoSettings(source="pattern", offer=True),
    )
    await peer.start()
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: "local" in app.main.status.text, what="the phone to start")
            call_id = await peer.dial(f"sip:softphone@{HOST}:{port}")
            await until(pilot, lambda: isinstance(app.screen, IncomingScreen), what="the modal")
            await pilot.press("a")
            side = app.main.side
            await until(pilot, lambda: side.video.display, what="the call's video in the pane")
            await until(pilot, lambda: side.video.rows_built > 0, what="the picture drawn")
            assert [c.has_video for c in app.phone.calls] == [True]
            stats = peer.call_stats(call_id) or {}
            assert stats["video_frames_sent"] and not stats["video_frames_received"]  # recvonly
            if isinstance(app.focused, Input):
                await pilot.press("escape")  # out of the dial bar: single keys act
            await pilot.press("C")
            await until(pilot, lambda: not peer.call(call_id).has_video, what="video taken away")
            await until(pilot, lambda: not side.video.display, what="the pane's hint back")
    finally:
        await peer.stop()
        book.close()
