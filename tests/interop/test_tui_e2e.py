"""The whole product once, as a person uses it: ``softphone`` in a terminal (a private tmux
server, 100x30), registered to Kamailio on 127.0.0.1, calls baresip's bob by typing the URI in
the dial bar, sees the call established on screen, hangs up with a key and quits. Asserted on
both sides: our screen, baresip's ctrl_tcp events, Kamailio's log, and the history file."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest
import tomli_w
from cli_support import make_env
from lab_support import BaresipFactory
from tmux_term import TmuxTerm

from softphone import lab

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
GUARD_DIR = Path(__file__).with_name("media_guard")


def write_config(path: Path, kamailio: lab.Kamailio) -> None:
    hop = f"sip:127.0.0.1:{kamailio.port_for('udp')}"
    path.write_text(
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
                        "transport": "udp",
                    }
                ],
            }
        )
    )


def test_tui_calls_baresip_through_kamailio_and_hangs_up(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    bob = baresip_factory(user="bob", transport="udp", auto_answer=True)
    config = tmp_path / "config.toml"
    write_config(config, kamailio)
    env = make_env(tmp_path)
    since = kamailio.mark()
    term = TmuxTerm("softphone-e2e", size=(100, 30))
    try:
        term.start([sys.executable, "-m", "softphone", "--config", str(config)], env=env, cwd=REPO)
        term.wait_for(r"alice.*registered", timeout_s=20)
        mark = bob.mark()
        term.send(bob.aor, literal=True)  # the dial bar has focus at start
        term.send("Enter")
        bob.wait_event("CALL_ESTABLISHED", timeout_s=15, since=mark)
        term.wait_for(r"(?i)established", timeout_s=10)
        # Dialling moved the focus to the calls list: the footer shows the call keys. (No Escape
        # here: ESC then h sent at once would reach the app as Alt+h.)
        term.wait_for(r"h Hang up", timeout_s=5)
        term.send("h")
        try:
            bob.wait_event("CALL_CLOSED", timeout_s=15, since=mark)
        except lab.LabError as exc:
            raise AssertionError(f"{exc}; our screen:\n{term.screen()}") from None
        term.wait_for(r"call ended after [0-9.]+ s", timeout_s=10)
        term.send("q")
        term.wait_dead(timeout_s=15)
        screen = term.screen()
        assert "Traceback" not in screen, screen
    finally:
        term.close()
    kamailio.wait_for(r"LAB REQUEST INVITE alice->bob", timeout_s=5, since=since)
    history = tmp_path / "xdg_data_home" / "softphone"
    db = history / "softphone.db"
    assert db.is_file(), f"no history database in {history}"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT direction, remote_uri, result FROM calls").fetchall()
    assert rows == [("out", bob.aor, "answered")], rows
    log = tmp_path / "xdg_state_home" / "softphone" / "softphone.log"
    assert log.is_file() and "Traceback" not in log.read_text(errors="replace")


def test_tui_plays_a_camera_in_the_side_pane(rtsp_lab: lab.RtspServer, tmp_path: Path) -> None:
    """``softphone play URL`` opens the phone's interface with the stream beside the calls: the
    GStreamer lab's H.264 camera shows as half blocks in the side pane, under the media guard
    (our own RTSP client and decoder, never ffmpeg's network code)."""
    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps({"sip_port": 0}))
    env = make_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), env.get("PYTHONPATH")]))
    env["SOFTPHONE_MEDIA_GUARD"] = "1"
    env["COLORTERM"] = "truecolor"
    term = TmuxTerm("softphone-e2e-play", size=(160, 48))
    try:
        term.start(
            [
                sys.executable,
                "-m",
                "softphone",
                "--config",
                str(config),
                "play",
                rtsp_lab.url("/h264"),
            ],
            env=env,
            cwd=REPO,
        )
        # A picture: 20 runs of 40 half blocks (counted, not matched by one regex: a nested
        # lazy pattern backtracks for minutes on a screen with only a few such rows).
        term.wait_until(
            lambda screen: len(re.findall("[\u2580\u2584]{40}", screen)) >= 20,
            timeout_s=30,
            what="a picture of 20 rows of half blocks",
        )
        term.wait_for(r"first picture after \d+ ms: h264", timeout_s=5)
        term.wait_for(r"Dial|Call:", timeout_s=5)  # the phone's screen, not the bare viewer
        term.send("C-q")  # the dial bar has the focus: q would be typed, ctrl+q quits
        term.wait_dead(timeout_s=15)
        assert "Traceback" not in term.screen()
    finally:
        term.close()
    log = tmp_path / "xdg_state_home" / "softphone" / "softphone.log"
    assert "Traceback" not in log.read_text(errors="replace")


def test_tui_side_pane_bad_url_then_good_then_stop(
    rtsp_lab: lab.RtspServer, tmp_path: Path
) -> None:
    """``softphone play URL``, then in its side pane a URL the server does not have (the whole
    reason in the messages area, no old picture left under the new title), a good one again
    (it plays), and the stop key (the session is torn down)."""
    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps({"sip_port": 0}))
    env = make_env(tmp_path)
    env["COLORTERM"] = "truecolor"
    good, bad = rtsp_lab.url("/h264"), rtsp_lab.url("/no-such-stream")
    since = rtsp_lab.mark()

    def picture(screen: str) -> bool:  # the video view is up (half blocks)
        return len(re.findall("[\u2580\u2584]{30}", screen)) >= 10

    def open_in_pane(url: str) -> None:
        term.send("v")
        term.wait_for(r"Open a stream in the side pane", timeout_s=5)
        term.send(url, literal=True)
        term.send("Enter")

    term = TmuxTerm("softphone-e2e-pane", size=(160, 48))
    try:
        term.start(
            [sys.executable, "-m", "softphone", "--config", str(config), "play", good],
            env=env,
            cwd=REPO,
        )
        term.wait_for(r"playing · h264 320x240", timeout_s=30)
        term.send("Escape")  # leave the dial bar: the single keys act (footer shows them)
        term.wait_for(r"a Answer", timeout_s=5)
        open_in_pane(bad)
        term.wait_for(r"cannot play \S*no-such-stream: DESCRIBE refused: 404", timeout_s=20)
        screen = term.screen()
        assert not picture(screen), screen  # the old stream is not left under the new title
        open_in_pane(good)
        term.wait_for(r"Video · " + re.escape(good), timeout_s=10)
        # The overlay names the codec and size once this player has decoded a picture (an empty
        # video view is drawn with half blocks too, so they alone prove nothing).
        term.wait_for(r"playing · h264 320x240", timeout_s=30)
        assert picture(term.screen())
        term.send("x")
        term.wait_for(r"stopped\. Press v", timeout_s=20)
        assert not picture(term.screen())
        term.send("C-q")
        term.wait_dead(timeout_s=15)
        assert "Traceback" not in term.screen()
    finally:
        term.close()
    plays = [ln for ln in rtsp_lab.lines()[since:] if ln.startswith("LAB PLAY")]
    teardowns = [ln for ln in rtsp_lab.lines()[since:] if ln.startswith("LAB TEARDOWN")]
    assert len(plays) == 2 and len(teardowns) == 2, rtsp_lab.lines()[since:]
    log = tmp_path / "xdg_state_home" / "softphone" / "softphone.log"
    assert "Traceback" not in log.read_text(errors="replace")
