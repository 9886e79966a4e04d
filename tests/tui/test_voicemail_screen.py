"""The answering machine in the TUI, against FakePhone and a real Book: a message the phone
records is stored and counted into the status bar's message-waiting indicator; ``w`` lists the
messages; ``p`` plays one and marks it heard (the count goes); ``h`` toggles heard; Delete
removes it and its file; Enter calls the caller back."""

from __future__ import annotations

import time
from pathlib import Path

from phone_fake import FakePhone
from tui_support import until

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.book import Book
from softphone.tui.app import make_app
from softphone.tui.screens.main_actions import MAIN_HELP, help_sections
from softphone.tui.screens.voicemail import VoicemailScreen

BOB = "sip:bob@example.test"


def leave_message(phone: FakePhone, path: Path, call_id: str, seconds: float) -> None:
    path.write_bytes(b"RIFF")
    phone.emit(
        pe.VoicemailStarted(
            call_id=call_id,
            account="alice",
            caller=BOB,
            caller_name="Bob",
            path=str(path),
            received_at=time.time(),
        )
    )
    phone.emit(pe.VoicemailRecorded(call_id=call_id, path=str(path), duration_s=seconds))


async def test_a_message_is_counted_listed_played_and_deleted(book: Book, tmp_path: Path) -> None:
    phone = FakePhone(accounts={"alice": "sip:alice@example.test"})
    app = make_app(Config(), phone, book=book)
    async with app.run_test(size=(120, 30)) as pilot:
        status = app.main.status
        await until(pilot, lambda: "alice: local" in status.text, what="started")
        assert "voicemail" not in status.text
        first, second = tmp_path / "1.wav", tmp_path / "2.wav"
        leave_message(phone, first, "c1", 12.0)
        leave_message(phone, second, "c2", 7.0)
        await until(pilot, lambda: "voicemail: 2 new, 0 old (w)" in status.text, what="MWI")
        assert [m.duration_s for m in book.voicemails.list()] == [7.0, 12.0]
        await pilot.press("escape", "w")
        await until(pilot, lambda: isinstance(app.screen, VoicemailScreen), what="the list")
        screen = app.screen
        assert isinstance(screen, VoicemailScreen)
        await until(pilot, lambda: len(screen.messages) == 2, what="the rows")
        await pilot.press("p")  # the newest: marks it heard
        await until(pilot, lambda: phone.played == [second], what="played")
        await until(pilot, lambda: "voicemail: 1 new, 0 old (w)" in status.text, what="1 left")
        await pilot.press("down", "h")  # the older one heard by hand: nothing waits
        await until(pilot, lambda: "voicemail" not in status.text, what="none left")
        await pilot.press("h")  # and not heard again
        await until(pilot, lambda: "voicemail: 1 new, 0 old (w)" in status.text, what="unheard")
        await pilot.press("delete")
        await pilot.press("y")
        await until(pilot, lambda: len(book.voicemails.list()) == 1, what="deleted")
        assert not first.exists() and second.exists()
        await until(pilot, lambda: "voicemail" not in status.text, what="count after delete")
        await pilot.press("enter")  # call bob back
        await until(pilot, lambda: phone.dialled == [BOB], what="called back")


def test_the_key_and_the_screen_are_in_the_help() -> None:
    assert any(keys == "w" and "answering machine" in text for keys, text in MAIN_HELP)
    assert "Voicemail" in [title for title, _ in help_sections()]
