"""Busy lamps in the TUI with the real peers: the app around a real phone (on its own thread,
as ``softphone`` runs it) registered to Kamailio with its presence modules, two baresips as
contacts. A call between them through Kamailio (pua_dialoginfo publishes its dialog state)
lights their lamps in the contacts list: ringing at the callee, in a call at both, then idle.
The phone side of the same call is test_presence.py's; this is what a person sees of it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lab_support import BaresipFactory, KamailioFactory
from textual.pilot import Pilot
from tui_support import until

from softphone import lab
from softphone.config import Account, Config
from softphone.phone.audio import NullAudio
from softphone.phone.book import Book, Contact
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.contacts import ContactsScreen

pytestmark = pytest.mark.interop

STEP_S = 8.0  # bound for any one step; real steps take milliseconds
BOB = f"sip:bob@{lab.DOMAIN}"
CAROL = f"sip:carol@{lab.DOMAIN}"


def alice_at(kamailio: lab.Kamailio) -> Account:
    """alice, registered through ``kamailio`` (presence is on for an account with a registrar)."""
    hop = SipUri.parse(f"sip:{lab.HOST}:{kamailio.port_for('udp')}")
    return Account(
        name="alice",
        uri=SipUri(user="alice", host=lab.DOMAIN),
        password=lab.USERS["alice"],
        registrar=hop,
        proxy=hop,
    )


def status(screen: ContactsScreen, name: str) -> str:
    """The Status cell of the contact ``name`` as the table shows it."""
    (row,) = [r for r in screen.rows if r.name == name]
    cell = screen.table.get_cell(screen.key(row), "lamp")
    return str(getattr(cell, "plain", cell))


async def lamp(pilot: Pilot[object], screen: ContactsScreen, name: str, wanted: str) -> None:
    await until(pilot, lambda: status(screen, name) == wanted, STEP_S, f"{name}: {wanted!r}")


async def test_a_call_through_kamailio_lights_the_lamps_in_the_contacts_list(
    kamailio_factory: KamailioFactory, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    server = kamailio_factory(presence=True)
    bob = baresip_factory(user="bob", kamailio=server)
    carol = baresip_factory(user="carol", kamailio=server)
    book = Book.open(tmp_path / "t.db")
    book.contacts.add(Contact(name="Bob", uris=(BOB,)))
    book.contacts.add(Contact(name="Carol", uris=(CAROL,)))
    config = Config(accounts=(alice_at(server),))
    phone = ThreadedPhone(
        Phone(
            config,
            bind_host=lab.HOST,
            sip_port=0,
            rng=random.Random("tui-presence"),
            dns=StubBackend(),
            audio=NullAudio(),
        )
    )
    app: SoftphoneApp = make_app(config, phone, book=book)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: "registered" in app.main.status.text, STEP_S, "registered")
            await pilot.press("escape", "c")
            await until(pilot, lambda: isinstance(app.screen, ContactsScreen), what="contacts")
            contacts = app.screen
            assert isinstance(contacts, ContactsScreen)
            await until(pilot, lambda: len(contacts.rows) == 2, what="both contacts")
            await lamp(pilot, contacts, "Bob", "● idle")
            await lamp(pilot, contacts, "Carol", "● idle")
            mark = carol.mark()
            bob.dial(CAROL)
            carol.wait_event("CALL_INCOMING", STEP_S, since=mark)
            await lamp(pilot, contacts, "Carol", "● ringing")
            await lamp(pilot, contacts, "Bob", "● in a call")  # placing it
            carol.accept()
            carol.wait_event("CALL_ESTABLISHED", STEP_S, since=mark)
            await lamp(pilot, contacts, "Carol", "● in a call")
            bob.hangup()
            carol.wait_event("CALL_CLOSED", STEP_S, since=mark)
            await lamp(pilot, contacts, "Bob", "● idle")
            await lamp(pilot, contacts, "Carol", "● idle")
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is app.main, what="back")
    finally:
        book.close()
