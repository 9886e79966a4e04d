"""Do not disturb and forwarding in the TUI, against FakePhone: ``D`` on the main screen turns
do-not-disturb on and off for every account, saves it in the config, hands the accounts to the
phone and shows "[DND]" in the status bar; forwarding set in the config shows there too; the
key is in the help and the command palette; the account form edits every forwarding key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from phone_fake import FakePhone
from textual.widgets import Checkbox, Input, Select
from tui_support import until

from softphone.config import Account, Config, load_config
from softphone.config_forwarding import Forwarding
from softphone.phone import events as pe
from softphone.phone.book import Book
from softphone.phone.call_log import ended_record
from softphone.sip.uri import SipUri
from softphone.store import CallRecord
from softphone.tui.app import make_app
from softphone.tui.screens.account_form import AccountForm
from softphone.tui.screens.history import result_text
from softphone.tui.screens.main_actions import MAIN_HELP
from softphone.tui.screens.settings import SettingsScreen

ALICE = Account(name="alice", uri=SipUri.parse("sip:alice@example.test"))


def config_at(path: Path, forwarding: Forwarding | None = None) -> Config:
    return Config(
        accounts=(Account(name=ALICE.name, uri=ALICE.uri, forwarding=forwarding or Forwarding()),),
        path=path,
    )


async def test_d_toggles_do_not_disturb_in_the_status_bar_and_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    phone = FakePhone(accounts={"alice": "sip:alice@example.test"})
    app = make_app(config_at(path), phone, config_path=path)
    async with app.run_test(size=(120, 30)) as pilot:
        status = app.main.status
        await until(pilot, lambda: "alice: local (no registrar)" in status.text, what="started")
        assert "DND" not in status.text
        await pilot.press("escape", "D")  # out of the dial bar, then the key
        await until(pilot, lambda: "alice: local (no registrar) [DND]" in status.text, what="DND")
        assert load_config(path).account().forwarding.do_not_disturb is True
        applied = [c for c in phone.calls_made if c[0] == "apply_accounts"]
        assert applied and applied[-1][1]["accounts"][0].forwarding.do_not_disturb is True
        assert any(
            "do not disturb: calls are refused (486 Busy Here)" in t
            for t in app.main.messages.texts
        )
        await pilot.press("D")
        await until(pilot, lambda: "[DND]" not in status.text, what="DND off")
        assert load_config(path).account().forwarding.do_not_disturb is False


async def test_forwarding_from_the_config_is_in_the_status_bar(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    phone = FakePhone(accounts={"alice": "sip:alice@example.test"})
    forwarding = Forwarding(always="sip:bob@example.test")
    app = make_app(config_at(path, forwarding), phone, config_path=path)
    async with app.run_test(size=(120, 30)) as pilot:
        status = app.main.status
        await until(pilot, lambda: "[→ sip:bob@example.test]" in status.text, what="forwarding")


def test_the_key_is_in_the_help() -> None:
    assert (
        "D",
        "do not disturb on / off for every account (saved; the status bar says [DND])",
    ) in MAIN_HELP


async def test_the_account_form_edits_forwarding_and_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    phone = FakePhone(accounts={"alice": "sip:alice@example.test"})
    app = make_app(config_at(path), phone, config_path=path)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("escape", "s")
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, AccountForm), what="the form")
        form = app.screen
        assert isinstance(form, AccountForm)
        form.query_one("#f-forward-busy", Input).value = "1002"
        form.query_one("#f-forward-no-answer", Input).value = "sip:voicemail@example.test"
        form.query_one("#f-forward-after", Input).value = "500"
        form.query_one("#f-dnd", Checkbox).value = True
        form.query_one("#f-dnd-response", Select).value = 603
        form.query_one("#f-voicemail", Checkbox).value = True
        form.query_one("#f-voicemail-after", Input).value = "9"
        form.query_one("#f-voicemail-max", Input).value = "2"
        form.action_submit()
        await pilot.pause()
        error = str(form.query_one("#form-error").render())
        assert "forward_no_answer_after must be a whole number of seconds from 1 to 300" in error
        form.query_one("#f-forward-after", Input).value = "12"
        form.action_submit()
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen), what="form closed")
        await until(
            pilot,
            lambda: path.exists() and load_config(path).account().forwarding.busy is not None,
            what="saved",
        )
        assert load_config(path).account().forwarding == Forwarding(
            busy="sip:1002@example.test",
            no_answer="sip:voicemail@example.test",
            no_answer_after_s=12,
            do_not_disturb=True,
            dnd_response=603,
            voicemail=True,
            voicemail_after_s=9,
            voicemail_max_s=120,
        )


def test_the_history_keeps_a_forwarded_and_a_dnd_call_and_lists_them_so(tmp_path: Path) -> None:
    book = Book.open(tmp_path / "t.db")
    rows = []
    for status, outcome, reason in (
        (302, "forwarded", "forwarded to sip:carol@lab.test (busy)"),
        (603, "rejected", "do not disturb (603 Decline)"),
    ):
        started = book.history.start(
            CallRecord(
                started_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
                direction="in",
                remote_uri="sip:bob@lab.test",
                account="alice",
                result="in_progress",
            )
        )
        ended = pe.CallEnded(
            call_id="c",
            status=status,
            reason=reason,
            outcome=outcome,
            duration_s=0.0,
            answered=False,
        )
        done = ended_record(started, ended)  # what the call log writes when the call ends
        assert done.id is not None
        rows.append(
            book.history.finish(done.id, result=done.result, reason=done.reason, duration_s=0.0)
        )
    forwarded, dnd = rows
    assert forwarded is not None and dnd is not None
    assert (forwarded.result, forwarded.reason) == (
        "forwarded",
        "forwarded to sip:carol@lab.test (busy)",
    )
    assert (dnd.result, dnd.reason) == ("rejected", "do not disturb (603 Decline)")
    assert result_text(forwarded) == "→ sip:carol@lab.test (busy)"
    assert result_text(dnd) == "DND"
    book.close()
