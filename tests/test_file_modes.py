"""What softphone keeps of its own is private, and a config that others can read is never read
silently: the log (every SIP message at DEBUG) 0600 in a 0700 state directory, the call history
and recordings in a 0700 data directory, existing files and directories tightened; a config
that holds a password and that others can read gets a warning (one line on stderr; in the TUI
a message and the fix, carried out by the phone)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import make_env
from phone_fake import FakePhone
from tui_support import until

from softphone.__main__ import setup_logging
from softphone.config import Account, Camera, Config
from softphone.config_privacy import exposed_password, make_private
from softphone.files import private_dir, private_file
from softphone.phone.recordings import recordings_dir
from softphone.sip.uri import SipUri
from softphone.store.db import Database
from softphone.tui.app import make_app

SECRET = "s3cret-pw"
ALICE = Account(name="alice", uri=SipUri(user="alice", host="lab.test"), password=SECRET)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """What a desktop session has: files 0644, directories 0755 unless asked otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


# --- directories and files of our own ------------------------------------------------------------
@pytest.mark.parametrize("before", [None, 0o755, 0o777, 0o750, 0o700])
def test_a_private_dir_is_made_or_tightened_to_0700(
    tmp_path: Path, loose_umask: None, before: int | None
) -> None:
    target = tmp_path / "state" / "softphone"
    if before is not None:
        target.mkdir(parents=True)
        target.chmod(before)
    assert private_dir(target) == target
    assert mode(target) == 0o700
    assert mode(target.parent) == 0o755  # a parent is not ours to tighten


@pytest.mark.parametrize("before", [None, 0o644, 0o666, 0o640, 0o604, 0o600])
def test_a_private_file_is_made_or_tightened_to_0600_keeping_its_content(
    tmp_path: Path, loose_umask: None, before: int | None
) -> None:
    target = tmp_path / "softphone.log"
    if before is not None:
        target.write_text("earlier lines\n")
        target.chmod(before)
    private_file(target)
    assert mode(target) == 0o600
    assert target.read_text() == ("earlier lines\n" if before is not None else "")


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return tmp_path


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """setup_logging adds a handler to the root logger and sets the wire log's level: both
    put back after the test (a wire log left at INFO hides SIP messages from later tests)."""
    root, wire = logging.getLogger(), logging.getLogger("softphone.wire")
    before, level, wire_level = list(root.handlers), root.level, wire.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    wire.setLevel(wire_level)


def test_the_log_and_state_directory_are_private_and_older_ones_tightened(
    xdg: Path, loose_umask: None, root_handlers: None
) -> None:
    state = xdg / "xdg_state_home" / "softphone"
    state.mkdir(parents=True, mode=0o755)
    old_log = state / "softphone.log"
    old_log.write_text("INVITE of an earlier run\n")
    old_log.chmod(0o644)
    target = setup_logging(None, "DEBUG")
    assert target == old_log
    logging.getLogger("softphone.wire").debug("INVITE sip:bob@lab.test SIP/2.0")
    assert mode(state) == 0o700 and mode(old_log) == 0o600
    assert "INVITE of an earlier run" in old_log.read_text()  # tightened, not truncated


def test_a_log_file_named_on_the_command_line_is_0600_and_its_directory_left_alone(
    tmp_path: Path, loose_umask: None, root_handlers: None
) -> None:
    target = setup_logging(tmp_path / "logs" / "mine.log", "INFO")
    assert target is not None and mode(target) == 0o600
    assert mode(target.parent) == 0o755


def test_the_history_database_and_its_directory_are_private(xdg: Path, loose_umask: None) -> None:
    data = xdg / "xdg_data_home" / "softphone"
    data.mkdir(parents=True, mode=0o755)  # as a recording made first used to leave it
    db = Database.open(data / "history.db")
    try:
        assert mode(data) == 0o700 and mode(data / "history.db") == 0o600
    finally:
        db.close()


def test_recordings_go_to_a_private_data_directory(xdg: Path, loose_umask: None) -> None:
    data = xdg / "xdg_data_home" / "softphone"
    data.mkdir(parents=True, mode=0o755)  # as an older softphone left it
    assert recordings_dir(Config()) == data / "recordings"
    assert mode(data) == 0o700 and mode(data / "recordings") == 0o700
    mine = xdg / "calls"
    mine.mkdir(mode=0o755)
    assert recordings_dir(Config(recordings_dir=mine)) == mine
    assert mode(mine) == 0o755  # the user's own directory: left as it is
    made = recordings_dir(Config(recordings_dir=xdg / "new" / "calls"))
    assert mode(made) == 0o700


# --- a config others can read --------------------------------------------------------------------
def config_file(tmp_path: Path, config: Config, file_mode: int) -> Config:
    path = tmp_path / "config.toml"
    path.write_text("# the test's config\n")
    path.chmod(file_mode)
    return Config(accounts=config.accounts, cameras=config.cameras, path=path)


WITH_PASSWORDS = [
    Config(accounts=(ALICE,)),
    Config(cameras=(Camera(name="door", url="rtsp://cam/1", username="u", password=SECRET),)),
    Config(cameras=(Camera(name="door", url=f"rtsp://admin:{SECRET}@cam/1"),)),
]
WITHOUT = [
    Config(),
    Config(accounts=(Account(name="bob", uri=SipUri(user="bob", host="lab.test")),)),
    Config(cameras=(Camera(name="door", url="rtsp://cam/1"),)),
]


def test_every_mode_that_lets_others_read_a_password_is_warned_about(tmp_path: Path) -> None:
    for file_mode in range(0o400, 0o1000):
        readable = bool(file_mode & 0o044)
        for config in WITH_PASSWORDS:
            warning = exposed_password(config_file(tmp_path, config, file_mode))
            assert (warning is not None) == readable, oct(file_mode)
            if warning is not None:
                assert f"mode {file_mode:04o}" in warning and "chmod 600" in warning
                assert SECRET not in warning
        for config in WITHOUT:  # nothing secret in it: its mode is the user's business
            assert exposed_password(config_file(tmp_path, config, file_mode)) is None
    assert exposed_password(Config(accounts=(ALICE,))) is None  # no file at all


def test_the_fix_leaves_the_config_for_its_owner_only(tmp_path: Path) -> None:
    config = config_file(tmp_path, WITH_PASSWORDS[0], 0o644)
    assert config.path is not None
    make_private(config.path)
    assert mode(config.path) == 0o600 and exposed_password(config) is None


def run_cli(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "softphone", "--config", str(config), "play", "nocam"],
        env=make_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_command_line_warns_in_one_line_and_never_shows_the_password(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[camera]]\nname = "door"\nurl = "rtsp://127.0.0.1:9/d"\n'
        f'username = "u"\npassword = "{SECRET}"\n'
    )
    config.chmod(0o644)
    result = run_cli(tmp_path, config)
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"softphone: warning: {config} holds a password and other users can read it "
        f"(mode 0644); make it private with: chmod 600 {config}"
    ], result.stderr
    assert SECRET not in result.stderr + result.stdout
    config.chmod(0o600)
    assert "warning" not in run_cli(tmp_path, config).stderr


async def test_the_tui_says_so_and_the_phone_makes_it_private() -> None:
    phone = FakePhone()
    phone.exposed_config = "/home/u/.config/softphone/config.toml holds a password ..."
    app = make_app(Config(), phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: any("holds a password" in n.message for n in app._notifications))
        notice = next(n for n in app._notifications if "holds a password" in n.message)
        assert notice.severity == "warning" and "F6" in notice.message
        await pilot.press("f6")
        await until(pilot, lambda: ("protect_config", {}) in phone.calls_made)
        assert phone.config_warning() is None


async def test_the_tui_says_nothing_of_a_private_config() -> None:
    phone = FakePhone()
    app = make_app(Config(), phone)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert not any("password" in n.message for n in app._notifications)
