"""A new user's first hour, by keys alone, in a real terminal (a private tmux server, 160x48):
``softphone`` with nothing configured (its XDG directories empty, under tmp), against the lab's
Kamailio, two baresip phones and GStreamer's RTSP server, all on 127.0.0.1.

1. The first run opens the account editor; alice is typed in and OK (Enter) saves her; the
   status bar shows her registered, with no restart.
2. bob (baresip, auto-answer) is called from the dial bar; the call is up on both sides; ``h``
   hangs up.
3. bob, who sends a display name, calls alice: answered, hung up. The history (``y``) shows him
   by name; Enter on his row calls back his address, and bob's baresip gets the call.
4. A door station is added in the contacts (``c``, ``a``): its SIP address is carol's baresip,
   its camera a mount of the RTSP lab. carol calls: the incoming dialog names the contact and
   the side pane plays the camera.
5. ``v`` with a URL the server lacks: the reason in the messages area; ``v`` with a good one:
   it plays; ``x`` stops it (the server sees the TEARDOWN).
6. ``q`` quits: no traceback on the screen or in the log, and the history holds every call with
   the address and the name the call brought kept apart.

Asserted on our screen, on baresip's ctrl_tcp events, on Kamailio's and the RTSP server's logs,
and on the files the run leaves (config, history, log)."""

from __future__ import annotations

import re
import sqlite3
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import make_env
from lab_support import BaresipFactory, KamailioFactory
from tmux_term import TmuxTerm

from softphone import lab

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
SIZE = (160, 48)  # wide enough for the side pane beside the calls
STEP_S = 15.0  # bound for one wait; each takes well under a second on the lab
BOB_NAME = "Bob Baresip"
DOOR_NAME = "Door Station 2000"  # what the door station's From says
CONTACT = "Front door"  # what alice calls it in her contacts


def picture(screen: str) -> bool:
    """A video picture in the side pane: rows of half blocks (an empty view has none)."""
    return len(re.findall("[\u2580\u2584]{30}", screen)) >= 10


class FirstHour:
    """What a person does at the terminal: press keys, type text, look for something on the
    screen (waiting for it, within a bound), and what a peer saw."""

    def __init__(self, term: TmuxTerm, kamailio: lab.Kamailio) -> None:
        self.term = term
        self.kamailio = kamailio

    def keys(self, *keys: str) -> None:
        self.term.send(*keys)

    def type(self, text: str) -> None:
        self.term.send(text, literal=True)

    def see(self, pattern: str, timeout_s: float = STEP_S) -> str:
        return self.term.wait_for(pattern, timeout_s).group(0)

    def see_all(self, *texts: str, timeout_s: float = STEP_S) -> str:
        """Wait until every one of ``texts`` is on the screen (one screen, not one each)."""
        return self.term.wait_until(
            lambda screen: all(t in screen for t in texts), timeout_s, f"all of {texts}"
        )

    def screen(self) -> str:
        return self.term.screen()

    def call_row(self, arrow: str, who: str, state: str) -> None:
        """The calls list shows the call (so a key for it finds it selected)."""
        self.see(rf"{arrow}\s+{re.escape(who)}\s+{state}")

    def peer(self, phone: lab.Baresip, event: str, since: int) -> lab.Event:
        try:
            return phone.wait_event(event, timeout_s=STEP_S, since=since)
        except lab.LabError as exc:
            relayed = "\n".join(self.kamailio.lab_lines()[-20:])
            raise AssertionError(
                f"{exc}\nKamailio's last lines:\n{relayed}\nour screen:\n{self.screen()}"
            ) from None


@pytest.fixture
def term() -> Iterator[TmuxTerm]:
    t = TmuxTerm("softphone-first-hour", size=SIZE)
    try:
        yield t
    finally:
        t.close()


def test_the_first_hour(
    kamailio_factory: KamailioFactory,
    baresip_factory: BaresipFactory,
    rtsp_lab: lab.RtspServer,
    term: TmuxTerm,
    tmp_path: Path,
) -> None:
    # A registrar of its own, as a new user's is: no bindings left by other tests to fork to.
    kamailio = kamailio_factory()
    bob = baresip_factory(user="bob", auto_answer=True, display_name=BOB_NAME, kamailio=kamailio)
    door = baresip_factory(user="carol", display_name=DOOR_NAME, kamailio=kamailio)
    hop = f"sip:127.0.0.1:{kamailio.port_for('udp')}"
    alice = f"sip:alice@{lab.DOMAIN}"
    camera, missing = rtsp_lab.url("/h264"), rtsp_lab.url("/no-such-stream")
    env = make_env(tmp_path)
    env["COLORTERM"] = "truecolor"
    config_file = tmp_path / "xdg_config_home" / "softphone" / "config.toml"
    db = tmp_path / "xdg_data_home" / "softphone" / "softphone.db"
    log = tmp_path / "xdg_state_home" / "softphone" / "softphone.log"
    me = FirstHour(term, kamailio)
    since = kamailio.mark()

    # 1. First run: the account editor is open, its first field focused.
    term.start([sys.executable, "-m", "softphone"], env=env, cwd=REPO)
    me.see(r"No config yet: add your SIP account")
    me.see(r"New account")
    # Name, SIP URI, display name, username, password, registrar, proxy: Tab between them.
    for text in ("alice", alice, "", "", lab.USERS["alice"], hop, hop):
        if text:
            me.type(text)
        me.keys("Tab")
    me.keys("Enter")  # on the Expires field: Enter submits the form (OK)
    me.see(r"alice: registered until")
    kamailio.wait_for(r"LAB REGISTERED alice expires=\d+", timeout_s=5, since=since)
    saved = tomllib.loads(config_file.read_text())
    assert [a["name"] for a in saved["account"]] == ["alice"]
    assert lab.USERS["alice"] not in me.screen()

    # 2. Call bob from the dial bar (focused again once the settings closed); h hangs up.
    mark = bob.mark()
    me.type(bob.aor)
    me.keys("Enter")
    me.peer(bob, "CALL_ESTABLISHED", mark)
    me.call_row("→", bob.aor, "established")
    me.see(r"h Hang up")  # the calls list has the focus: the single keys act
    me.keys("h")
    me.peer(bob, "CALL_CLOSED", mark)
    me.see(r"call ended after [0-9.]+ s: hung up here")

    # 3. bob calls alice; answered (a) and hung up (h); called back from the history.
    mark = bob.mark()
    bob.dial(alice)
    me.see_all("Incoming call", BOB_NAME, bob.aor)  # his name once, his address beneath
    me.keys("a")
    me.peer(bob, "CALL_ESTABLISHED", mark)
    me.call_row("←", BOB_NAME, "established")
    me.see(r"h Hang up")
    me.keys("h")
    me.peer(bob, "CALL_CLOSED", mark)
    me.keys("y")
    me.see(r"Call history")
    me.see(r"← in\s+" + re.escape(BOB_NAME))  # newest first: the row is selected
    mark = bob.mark()
    since = kamailio.mark()
    me.keys("Enter")
    # bob answers at once (auto-answer: baresip reports no CALL_INCOMING then).
    answered = me.peer(bob, "CALL_ESTABLISHED", mark)
    assert str(answered["peeruri"]).startswith(alice), answered
    kamailio.wait_for(r"LAB REQUEST INVITE alice->bob", timeout_s=5, since=since)
    me.call_row("→", bob.aor, "established")
    me.keys("h")
    me.peer(bob, "CALL_CLOSED", mark)

    # 4. The door station in the contacts, then its call: named, and its camera in the pane.
    me.keys("c")
    me.see(r"No contacts\. Press a to add one")
    me.keys("a")
    me.see(r"New contact")
    me.type(CONTACT)
    me.keys("Tab")
    me.type(door.aor)
    me.keys("Tab")
    me.type(camera)
    me.keys("Enter")
    me.see(r"Saved " + CONTACT)
    me.keys("Escape")
    me.see(r"y History")  # the main screen's footer
    mark, rtsp_mark = door.mark(), rtsp_lab.mark()
    door.dial(alice)
    # The contact's name, not the one the door station sends, with its address beneath; the
    # camera playing beside it.
    screen = me.see_all("Incoming call", CONTACT, door.aor, "playing · h264", timeout_s=30)
    assert DOOR_NAME not in screen and picture(screen), screen
    me.keys("h")  # not now: rejected
    closed = me.peer(door, "CALL_CLOSED", mark)
    # What we sent reaches the caller (no binding of ours left at another address to fork to).
    assert str(closed["param"]).startswith("486"), closed
    rtsp_lab.wait_for(r"LAB PLAY /h264", timeout_s=5, since=rtsp_mark)

    # 5. A bad URL (its reason in the messages area), a good one (plays), x stops it.
    me.keys("v")
    me.see(r"Open a stream in the side pane")
    me.type(missing)
    me.keys("Enter")
    me.see(r"cannot play \S*no-such-stream: DESCRIBE refused: 404")
    assert not picture(me.screen())
    me.keys("v")
    me.see(r"Open a stream in the side pane")
    me.type(camera)
    me.keys("Enter")
    me.see(r"Video · " + re.escape(camera))
    me.see(r"playing · h264 \d+x\d+", timeout_s=30)
    assert picture(me.screen())
    me.keys("x")
    me.see(r"stopped\. Press v")
    lab_lines = rtsp_lab.lines()[rtsp_mark:]
    assert sum(ln.startswith("LAB TEARDOWN /h264") for ln in lab_lines) == 2, lab_lines

    # 6. Quit.
    me.keys("q")
    term.wait_dead(timeout_s=STEP_S)
    screen = me.screen()
    assert "Traceback" not in screen, screen
    assert log.is_file() and "Traceback" not in log.read_text(errors="replace")
    assert lab.USERS["alice"] not in log.read_text(errors="replace")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT direction, remote_uri, remote_name, result FROM calls ORDER BY id"
        ).fetchall()
    assert rows == [
        ("out", bob.aor, None, "answered"),
        ("in", bob.aor, BOB_NAME, "answered"),
        ("out", bob.aor, None, "answered"),
        ("in", door.aor, DOOR_NAME, "rejected"),
    ], rows
