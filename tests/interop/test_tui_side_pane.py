"""The side pane against GStreamer's RTSP server, in the app (Pilot), with the real Player and a
real Phone on 127.0.0.1: one stream at a time (the old session torn down before the next is
opened, a bad URL never leaves the old stream playing or blocks the next one), the stop key, no
decoding while the pane is hidden, and the login a camera asks for (401): prompted, retried,
saved as a camera, and the password nowhere on screen or in the log.

The RTSP sessions are counted from the server's own log (``LAB <METHOD> <path> session=...`` and
``LAB SESSION-REMOVED <id>``)."""

from __future__ import annotations

import logging
import random
import re
import stat
import tomllib
import urllib.parse
from base64 import b64encode
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input
from tui_support import until

from softphone import lab
from softphone.config import Config
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.player import Player
from softphone.transport.resolver import StubBackend
from softphone.tui.app import SoftphoneApp, make_app
from softphone.tui.screens.login import LoginScreen
from softphone.tui.screens.prompt import PromptScreen
from softphone.tui.widgets.pane_state import PaneState

pytestmark = pytest.mark.interop

SIZE = (120, 36)  # wide enough for the pane to show by default


@asynccontextmanager
async def softphone_app(tmp_path: Path) -> AsyncIterator[tuple[SoftphoneApp, Pilot[None]]]:
    """The app around a real Phone (peer-to-peer on 127.0.0.1, silent) with the default player
    factory (the real Player); the config file is ``tmp_path / "config.toml"`` (not there yet)."""
    config = Config(sip_port=0, path=tmp_path / "config.toml")
    phone = Phone(
        config,
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random(17),
        dns=StubBackend(),
        audio=NullAudio(),
    )
    app = make_app(config, phone, config_path=config.path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            yield app, pilot
            await app.main.side.stop_and_wait()
    finally:
        await phone.stop()


def pane_state(app: SoftphoneApp) -> PaneState:
    return app.main.side.state


def player(app: SoftphoneApp) -> Player:
    return cast(Player, app.main.side.player)


def sessions(server: lab.RtspServer, since: int) -> list[str]:
    """The RTSP sessions PLAYed since ``since`` (their ids, in order)."""
    ids: list[str] = []
    for line in server.lines()[since:]:
        if (m := re.match(r"LAB PLAY \S+ .*session=([^;\s]+)", line)) and m[1] not in ids:
            ids.append(m[1])
    return ids


def removed(server: lab.RtspServer, since: int) -> set[str]:
    return {
        line.split()[2] for line in server.lines()[since:] if line.startswith("LAB SESSION-REMOVED")
    }


def first_index(lines: list[str], pattern: str) -> int:
    return next(i for i, line in enumerate(lines) if re.search(pattern, line))


async def wait_playing_pictures(pilot: Pilot[None], app: SoftphoneApp, what: str) -> None:
    shown = app.main.side.video.frames_shown
    await until(pilot, lambda: pane_state(app) is PaneState.PLAYING, 20, f"{what}: PLAYING")
    await until(
        pilot, lambda: app.main.side.video.frames_shown > shown + 5, 20, f"{what}: pictures"
    )


async def test_a_bad_url_then_a_good_one_plays_and_no_old_session_is_left(
    rtsp_lab: lab.RtspServer, tmp_path: Path
) -> None:
    good, bad = rtsp_lab.url("/h264"), rtsp_lab.url("/no-such-stream")
    since = rtsp_lab.mark()
    async with softphone_app(tmp_path) as (app, pilot):
        side = app.main.side
        await pilot.press("escape", "v")  # from the prompt, as a person does
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        app.screen.query_one(Input).value = good
        await pilot.press("enter")
        await wait_playing_pictures(pilot, app, "the first stream")
        first = player(app)

        mark = rtsp_lab.mark()
        app.main.open_stream(bad)
        await until(pilot, lambda: pane_state(app) is PaneState.FAILED, 20, "the bad URL failed")
        lines = rtsp_lab.lines()[mark:]
        # The old session was torn down before the bad URL was asked for, and its run is over.
        assert first_index(lines, r"LAB TEARDOWN /h264") < first_index(lines, r"/no-such-stream")
        assert first.state in ("ended", "failed")
        assert side.player is None and not side.video.display
        frames = side.video.frames_shown
        # A picture the old player's decoder had queued on the loop before it stopped is dropped.
        handed: list[np.ndarray] = []
        side.video.show = handed.append  # type: ignore[method-assign]
        assert first.on_picture is not None
        first.on_picture(np.zeros((48, 64, 3), np.uint8))
        await pilot.pause()
        assert handed == []
        del side.video.show
        # The reason, in full, in the messages area (the pane's status line is one line).
        said = [t for t in app.main.messages.texts if "no-such-stream" in t]
        assert said and "404" in said[-1] and "Not Found" in said[-1], app.main.messages.texts

        app.main.open_stream(good)
        await wait_playing_pictures(pilot, app, "the good URL after the bad one")
        assert side.title == good and side.border_title == f"Video · {good}"
        # No picture of the first player after it was stopped: every picture since is the new one's.
        assert side.video.frames_shown > frames

        await pilot.press("escape", "x")  # the stop key
        await until(pilot, lambda: pane_state(app) is PaneState.CLOSED, 20, "stopped")
        opened = sessions(rtsp_lab, since)
        assert len(opened) == 2  # the bad URL never got a session
        await until(
            pilot,
            lambda: set(opened) <= removed(rtsp_lab, since),
            10,
            f"every session removed by TEARDOWN: {opened}",
        )
        teardowns = [ln for ln in rtsp_lab.lines()[since:] if ln.startswith("LAB TEARDOWN")]
        assert len(teardowns) == 2


async def test_the_hidden_pane_decodes_no_video_and_the_picture_comes_back(
    rtsp_lab: lab.RtspServer, tmp_path: Path
) -> None:
    async with softphone_app(tmp_path) as (app, pilot):
        app.main.open_stream(rtsp_lab.url("/h264"))
        await wait_playing_pictures(pilot, app, "the stream")
        counters = player(app).counters
        await pilot.press("escape", "V")
        await until(pilot, lambda: not app.main.side.display, what="pane hidden")
        assert player(app).video_decoding is False
        decoded, skipped = counters.video_frames, counters.video_units_skipped
        await until(
            pilot,
            lambda: counters.video_units_skipped >= skipped + 50,
            10,
            "two seconds of video received while hidden",
        )
        # At most what was being decoded when the pane went away; the session kept playing.
        assert counters.video_frames - decoded <= 2
        assert pane_state(app) is PaneState.PLAYING
        await pilot.press("V")
        await until(pilot, lambda: app.main.side.display, what="pane shown")
        await until(
            pilot,
            lambda: counters.video_frames > decoded + 10,
            10,
            "decoding again (from the key frame asked for)",
        )


async def test_a_camera_that_asks_for_a_login_is_prompted_saved_and_never_shows_the_password(
    rtsp_lab: lab.RtspServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user, password = rtsp_lab.user, rtsp_lab.password
    secrets = {
        password,
        urllib.parse.quote(password, safe=""),
        b64encode(f"{user}:{password}".encode()).decode(),
    }
    url = rtsp_lab.url("/basic")
    async with softphone_app(tmp_path) as (app, pilot):
        app.main.open_stream(url)
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), 20, "the login prompt")
        assert pane_state(app) is PaneState.LOGIN
        assert any("asks for a login" in t and "401" in t for t in app.main.messages.texts)
        login = app.screen
        assert login.query_one("#login-password", Input).password  # masked
        await pilot.press(*user, "tab")  # the user name, then the password field
        login.query_one("#login-password", Input).value = password
        login.query_one("#login-save", Checkbox).value = True
        login.query_one("#login-camera", Input).value = "porch"
        await pilot.press("enter")
        await wait_playing_pictures(pilot, app, "the stream with the login")
        saved = tmp_path / "config.toml"
        await until(pilot, lambda: saved.is_file(), 10, "the camera saved")
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        cameras = tomllib.loads(saved.read_text())["camera"]
        assert cameras == [{"name": "porch", "url": url, "username": user, "password": password}]
        assert app.config.cameras[0].name == "porch"

        # The saved camera plays by its name (its credentials from the config, no prompt).
        app.main.open_stream("porch")
        await wait_playing_pictures(pilot, app, "the camera by name")
        assert app.main.side.border_title == "Video · porch"

        # A URL that carries the login: the title shows it without.
        with_login = rtsp_lab.url("/digest", user=user, password=password)
        app.main.open_stream(with_login)
        await wait_playing_pictures(pilot, app, "the URL with its login")
        assert app.main.side.border_title == f"Video · {rtsp_lab.url('/digest')}"

        screen = app.export_screenshot()
        shown = [
            screen,
            *app.main.messages.texts,
            str(app.main.side.border_title),
            str(app.main.side.query_one("#pane-status").render()),
            app.main.side.video.overlay,
        ]
    for secret in secrets:
        assert not any(secret in text for text in shown), secret
        assert secret not in caplog.text, secret
