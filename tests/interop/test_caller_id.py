"""Who called, and how it ended, against the real peers on 127.0.0.1: baresip with a display
name in its From (as baresip, Linphone and desk phones send one), through Kamailio.

- The app with the real phone (registered as alice) takes bob's call: the dialog names him once
  with his address beneath, the history keeps his URI and name apart, and calling back from the
  history rings bob's baresip.
- ``softphone dial`` to bob, who refuses the call: the exit code and the line say "busy".
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from cli_support import make_env
from lab_support import BaresipFactory
from test_softphone_sip import account
from tui_support import until

from softphone import lab
from softphone.config import Config
from softphone.phone.audio import NullAudio
from softphone.phone.book import Book
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.transport.resolver import StubBackend
from softphone.tui.app import make_app
from softphone.tui.screens.history import HistoryScreen
from softphone.tui.screens.incoming import IncomingScreen

pytestmark = pytest.mark.interop

STEP_S = 10.0
BOB_NAME = "Bob Baresip"


async def test_a_named_baresip_caller_is_kept_apart_and_called_back_from_the_history(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    bob = baresip_factory(user="bob", display_name=BOB_NAME)
    config = Config(accounts=(account(kamailio),))
    phone = ThreadedPhone(
        Phone(
            config,
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random("alice"),
            dns=StubBackend(),
            audio=NullAudio(),
        )
    )
    book = Book.open(tmp_path / "t.db")
    app = make_app(config, phone, book=book)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(
            pilot, lambda: "alice: registered" in app.main.status.text, STEP_S, "registered"
        )
        mark = bob.mark()
        await asyncio.to_thread(bob.dial, f"sip:alice@{lab.DOMAIN}")
        await until(pilot, lambda: isinstance(app.screen, IncomingScreen), STEP_S, "the modal")
        modal = app.screen
        assert isinstance(modal, IncomingScreen)
        assert (modal.caller, modal.uri) == (BOB_NAME, bob.aor)
        await pilot.press("h")  # reject
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", STEP_S, None, mark)
        await until(
            pilot,
            lambda: [r.result for r in book.history.list()] not in ([], ["in_progress"]),
            STEP_S,
            "the row completed",
        )
        (row,) = book.history.list()
        assert (row.direction, row.remote_uri, row.remote_name) == ("in", bob.aor, BOB_NAME)

        mark = bob.mark()
        await pilot.press("escape", "y")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), STEP_S, "history")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        await until(pilot, lambda: len(history.records) == 1, STEP_S, "the row")
        await pilot.press("enter")  # call back
        incoming = await asyncio.to_thread(bob.wait_event, "CALL_INCOMING", STEP_S, None, mark)
        assert str(incoming["peeruri"]).startswith(f"sip:alice@{lab.DOMAIN}")
        await asyncio.to_thread(bob.hangup)
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", STEP_S, None, mark)
    book.close()


def test_dial_to_a_baresip_that_refuses_exits_busy(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    bob = baresip_factory(user="bob", display_name=BOB_NAME)
    hop = f"sip:127.0.0.1:{kamailio.port_for('udp')}"
    config = tmp_path / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "sip_port": 0,
                "account": [
                    {
                        "name": "alice",
                        "uri": f"sip:alice@{lab.DOMAIN}",
                        "password": lab.USERS["alice"],
                        "registrar": hop,
                        "proxy": hop,
                    }
                ],
            }
        )
    )
    mark = bob.mark()
    argv = [sys.executable, "-m", "softphone", "--config", str(config)]
    argv += ["dial", bob.aor, "--no-audio", "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        argv,
        env=make_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        bob.wait_event("CALL_INCOMING", STEP_S, None, mark)
        bob.hangup()  # a person pressing reject: baresip answers 486
        _, stderr = proc.communicate(timeout=STEP_S * 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, stderr
    assert "softphone: call failed: busy (SIP 486 " in stderr and "Traceback" not in stderr
