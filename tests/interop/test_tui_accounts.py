"""Accounts edited in the TUI's settings apply at once: the real app (Pilot) around a real Phone
on 127.0.0.1, registered to the lab's Kamailio, with a call to baresip up on another account
the whole time. Asserted on Kamailio's log (its view of the bindings), our status bar, the
config file, and baresip's events (the call never drops)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from lab_support import BaresipFactory
from textual.widgets import Input
from tui_support import until

from softphone import lab
from softphone.config import Account, Config, load_config
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.sip.uri import SipUri
from softphone.transport.resolver import StubBackend
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.settings import AccountForm, SettingsScreen

pytestmark = pytest.mark.interop

STEP_S = 10.0  # bound for any one step; real steps take milliseconds


async def kamailio_says(kamailio: lab.Kamailio, pattern: str, since: int) -> str:
    match = await asyncio.to_thread(kamailio.wait_for, pattern, STEP_S, since)
    return match.group(0)


def settings(app: SoftphoneApp) -> SettingsScreen:
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    return screen


async def edit_alice(pilot: Any, app: SoftphoneApp, **fields: str) -> None:
    """Select alice's row, open the form (e), type ``fields`` and press Enter on OK."""
    screen = settings(app)
    screen.table.focus()
    screen.table.move_cursor(row=[a["name"] for a in screen.accounts].index("alice"))
    await pilot.press("e")
    await until(pilot, lambda: isinstance(app.screen, AccountForm), what="alice's form")
    for name, value in fields.items():
        app.screen.query_one(f"#f-{name}", Input).value = value
    app.screen.query_one("#form-ok").focus()
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="back on settings")


async def test_accounts_added_changed_and_removed_in_the_settings_apply_without_a_restart(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    carol = baresip_factory(user="carol", transport="udp", auto_answer=True)
    hop = SipUri.parse(f"sip:127.0.0.1:{kamailio.port_for('udp')}")
    bob = Account(
        name="bob",
        uri=SipUri(user="bob", host=lab.DOMAIN),
        password=lab.USERS["bob"],
        registrar=hop,
        proxy=hop,
    )
    path = tmp_path / "config.toml"
    config = Config(accounts=(bob,), path=path)
    phone = Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random("tui-accounts"),
        dns=StubBackend(),
        audio=NullAudio(),
    )
    app = make_app(config, phone, config_path=path)
    async with app.run_test(size=(140, 36)) as pilot:
        status = app.main.status
        await until(pilot, lambda: "bob: registered until" in status.text, STEP_S, "bob")

        # A call on bob's account, up for the whole test.
        carol_mark = carol.mark()
        await pilot.press(*f"sip:carol@{lab.DOMAIN}", "enter")
        await until(
            pilot,
            lambda: [c.state for c in phone.calls] == ["established"],
            STEP_S,
            "the call to carol established",
        )
        await asyncio.to_thread(carol.wait_event, "CALL_ESTABLISHED", STEP_S, None, carol_mark)

        # Added in the settings: registers at once.
        app.call_later(app.main.action_settings)
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the new form")
        since = kamailio.mark()
        for name, value in (
            ("name", "alice"),
            ("uri", f"sip:alice@{lab.DOMAIN}"),
            ("password", lab.USERS["alice"]),
            ("registrar", str(hop)),
            ("proxy", str(hop)),
        ):
            app.screen.query_one(f"#f-{name}", Input).value = value
        app.screen.query_one("#form-ok").focus()
        await pilot.press("enter")
        await kamailio_says(kamailio, r"LAB REGISTERED alice expires=\d+", since)
        await until(pilot, lambda: "alice: registered until" in status.text, STEP_S, "alice")
        assert load_config(path).account("alice").password == lab.USERS["alice"]
        assert path.stat().st_mode & 0o777 == 0o600

        # A changed password registers again at once: refused, then accepted.
        since = kamailio.mark()
        await edit_alice(pilot, app, password="not-alices")
        await kamailio_says(kamailio, r"LAB REPLY 403 REGISTER alice", since)
        await until(pilot, lambda: "alice: failed: 403" in status.text, STEP_S, "alice failed")
        since = kamailio.mark()
        await edit_alice(pilot, app, password=lab.USERS["alice"])
        await kamailio_says(kamailio, r"LAB REGISTERED alice expires=\d+", since)
        await until(pilot, lambda: "alice: registered until" in status.text, STEP_S, "again")

        # Removed: unregistered (Kamailio no longer has the binding).
        since = kamailio.mark()
        settings(app).table.move_cursor(row=1)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="delete?")
        await pilot.press("y")
        await kamailio_says(kamailio, r"LAB UNREGISTERED alice", since)
        await until(pilot, lambda: "alice" not in status.text, STEP_S, "alice gone")
        assert [a.name for a in load_config(path).accounts] == ["bob"]
        assert phone.accounts == ["bob"]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="back on the main screen")

        # bob and his call were never touched.
        assert "bob: registered until" in status.text
        assert [c.state for c in phone.calls] == ["established"]
        assert carol.ctrl.find_event("CALL_CLOSED", 0.0, since=carol_mark) is None
        await phone.hangup(phone.calls[0].call_id)
        await asyncio.to_thread(carol.wait_event, "CALL_CLOSED", STEP_S, None, carol_mark)
        await phone.stop()
