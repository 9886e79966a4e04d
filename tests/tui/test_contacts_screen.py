"""ContactsScreen, ContactEditor and the vCard import, against a real Book on tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static, TextArea
from tui_support import Host as BaseHost
from tui_support import until

from softphone.phone.book import Book, Contact
from softphone.tui.screens.confirm import ConfirmDialog
from softphone.tui.screens.contacts import ContactEditor, ContactsScreen, VCardPrompt, split_uris

VCARDS = Path(__file__).resolve().parents[1] / "data" / "vcard"


class Host(BaseHost):
    def notes(self) -> list[tuple[str, str]]:
        return [(n.message, n.severity) for n in self._notifications]


def fill(book: Book) -> None:
    book.contacts.add_many(
        [
            Contact(name="zoe Zimmer", uris=("sip:zoe@example.com",)),
            Contact(
                name="Bob Brown",
                uris=("sip:bob@example.com", "tel:+15550100", "bob@work.example"),
                favourite=True,
            ),
            Contact(
                name="Front Door",
                uris=("sip:door@192.0.2.20",),
                rtsp_url="rtsp://192.0.2.20/stream",
            ),
            Contact(name="Alice Anderson", uris=("sip:alice@example.com",)),
        ]
    )


async def loaded(pilot: Pilot[Any], rows: int) -> ContactsScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, ContactsScreen), what="screen")
    screen = pilot.app.screen
    assert isinstance(screen, ContactsScreen)
    await until(
        pilot, lambda: screen.loaded and screen.table.row_count == rows, what=f"{rows} rows"
    )
    return screen


def host(book: Book) -> Host:
    return Host(lambda: ContactsScreen(book, phone_domain="pbx.example"))


def names(screen: ContactsScreen) -> list[str]:
    return [c.name for c in screen.contacts]


def test_split_uris() -> None:
    assert split_uris("sip:a@x\n\n b@y , tel:+1;") == ("sip:a@x", "b@y", "tel:+1")


async def test_rows_favourites_first_then_by_name(book: Book) -> None:
    fill(book)
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        assert names(screen) == ["Bob Brown", "Alice Anderson", "Front Door", "zoe Zimmer"]
        bob = screen.table.get_row_at(0)
        assert bob[0] == "★" and str(bob[2]) == "sip:bob@example.com (+2 more)"
        assert screen.table.get_row_at(2)[3] == "rtsp" and screen.table.get_row_at(1)[3] == ""


async def test_empty_state(book: Book) -> None:
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 0)
        empty = screen.query_one("#contacts-empty", Static)
        assert not empty.has_class("-hidden")
        assert "Press a to add one or i to import a vCard file." in str(empty.content)


async def test_search_filters_and_enter_dismisses_with_primary_uri(book: Book) -> None:
    fill(book)
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("slash", *"door")
        await until(pilot, lambda: names(screen) == ["Front Door"], what="filtered")
        await pilot.press("enter")  # leaves the search box for the table
        assert screen.table.has_focus
        await pilot.press("enter")
        await until(pilot, lambda: app.results == ["sip:door@192.0.2.20"], what="dismissed")


async def test_escape_clears_search_then_goes_back(book: Book) -> None:
    fill(book)
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("slash", *"ali")
        await until(pilot, lambda: names(screen) == ["Alice Anderson"], what="filtered")
        await pilot.press("escape")
        await until(pilot, lambda: len(screen.contacts) == 4, what="cleared")
        await pilot.press("escape")
        await until(pilot, lambda: app.results == [None], what="dismissed with None")


async def test_favourite_toggle_persists(book: Book) -> None:
    fill(book)
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("down", "f")  # Alice
        await until(
            pilot,
            lambda: names(screen)[:2] == ["Alice Anderson", "Bob Brown"],
            what="Alice starred",
        )
        alice = next(c for c in book.contacts.list() if c.name == "Alice Anderson")
        assert alice.favourite
        assert screen.selected() == alice  # the cursor followed her to the top
        await pilot.press("f")
        await until(
            pilot,
            lambda: not book.contacts.get(alice.id or 0).favourite,  # type: ignore[union-attr]
            what="unstarred",
        )


async def test_delete_with_confirm(book: Book) -> None:
    fill(book)
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="confirm")
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is screen, what="back")
        assert book.contacts.count() == 4
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="confirm")
        await pilot.press("y")
        await until(pilot, lambda: len(screen.contacts) == 3, what="deleted")
        assert "Bob Brown" not in [c.name for c in book.contacts.list()]


async def editor(pilot: Pilot[Any]) -> ContactEditor:
    await until(pilot, lambda: isinstance(pilot.app.screen, ContactEditor), what="editor")
    screen = pilot.app.screen
    assert isinstance(screen, ContactEditor)
    return screen


async def test_add_with_validation_error_keeps_the_typed_text(book: Book) -> None:
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 0)
        await pilot.press("a")
        form = await editor(pilot)
        await pilot.press(*"Carol", "tab", *"not a uri", "ctrl+s")
        await until(pilot, lambda: "not a SIP address" in form.error, what="inline error")
        assert pilot.app.screen is form
        assert form.query_one("#editor-name", Input).value == "Carol"
        assert form.query_one("#editor-uris", TextArea).text == "not a uri"
        form.query_one("#editor-uris", TextArea).text = "carol@example.com, tel:+15550199"
        form.query_one("#editor-favourite", Checkbox).value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(screen.contacts) == 1, what="added")
        [carol] = book.contacts.list()
        assert carol.name == "Carol" and carol.favourite
        assert carol.uris == ("sip:carol@example.com", "tel:+15550199")


async def test_edit_saves_and_cancel_discards(book: Book) -> None:
    fill(book)
    async with host(book).run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 4)
        await pilot.press("down", "e")  # Alice
        form = await editor(pilot)
        assert form.query_one("#editor-name", Input).value == "Alice Anderson"
        form.query_one("#editor-rtsp", Input).value = "http://cam"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "rtsp://" in form.error, what="bad RTSP URL refused")
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is screen, what="cancelled")
        assert all(c.rtsp_url is None for c in book.contacts.list() if c.name.startswith("Alice"))
        await pilot.press("e")
        form = await editor(pilot)
        name = form.query_one("#editor-name", Input)
        name.value = "Alice A. Anderson"
        await pilot.press("enter")  # Enter in an Input saves too
        await until(pilot, lambda: "Alice A. Anderson" in names(screen), what="renamed")
        assert screen.selected() is not None and screen.selected().name == "Alice A. Anderson"  # type: ignore[union-attr]


async def import_file(pilot: Pilot[Any], path: str) -> None:
    await pilot.press("i")
    await until(pilot, lambda: isinstance(pilot.app.screen, VCardPrompt), what="prompt")
    pilot.app.screen.query_one("#vcard-path", Input).value = path
    await pilot.press("enter")


async def test_import_vcard_counts_and_skips_duplicates(book: Book) -> None:
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await loaded(pilot, 0)
        await import_file(pilot, str(VCARDS / "google.vcf"))
        await until(
            pilot,
            lambda: any(m.startswith("Imported") for m, _ in app.notes()),
            what="import summary",
        )
        message, severity = next(n for n in app.notes() if n[0].startswith("Imported"))
        stored = book.contacts.count()
        assert stored == 3 and message.startswith("Imported 3 contacts, 1 problem:\n")
        assert "'Only Email' skipped" in message and severity == "warning"
        await until(pilot, lambda: len(screen.contacts) == stored, what="rows shown")
        # The same file again: every card is already there, nothing is stored twice.
        app._notifications.clear()
        await import_file(pilot, str(VCARDS / "google.vcf"))
        await until(
            pilot,
            lambda: any(m.startswith("Imported") for m, _ in app.notes()),
            what="second summary",
        )
        message, severity = next(n for n in app.notes() if n[0].startswith("Imported"))
        assert message.startswith("Imported 0 contacts, 4 problems:\n")  # 3 duplicates + 1
        assert "Alice Anderson: already in contacts as Alice Anderson, skipped" in message
        assert severity == "warning" and book.contacts.count() == stored


async def test_import_unreadable_path_is_an_error(book: Book, tmp_path: Path) -> None:
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 0)
        await import_file(pilot, str(tmp_path / "missing.vcf"))
        await until(pilot, lambda: app.notes(), what="notification")
        [(message, severity)] = app.notes()
        assert severity == "error" and "cannot read" in message and "missing.vcf" in message


async def test_import_from_an_unknown_users_home_is_an_error(book: Book) -> None:
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 0)
        await import_file(pilot, "~nosuchuser-softphone/contacts.vcf")
        await until(pilot, lambda: app.notes(), what="notification")
        [(message, severity)] = app.notes()
        assert severity == "error" and "cannot read" in message and "contacts.vcf" in message


async def test_import_expands_home(
    book: Book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ios.vcf").write_bytes((VCARDS / "ios.vcf").read_bytes())
    app = host(book)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, 0)
        await import_file(pilot, "~/ios.vcf")
        await until(
            pilot,
            lambda: any(m.startswith("Imported") for m, _ in app.notes()),
            what="import summary",
        )
        assert book.contacts.count() > 0


def snapshot_app(tmp_path: Path) -> Host:
    book = Book.open(tmp_path / "snap.db")
    fill(book)
    return host(book)


async def wait_rows(pilot: Pilot[Any]) -> None:
    await loaded(pilot, 4)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(snapshot_app(tmp_path), terminal_size=size, run_before=wait_rows)


def test_snapshot_editor(snap_compare: Any, tmp_path: Path) -> None:
    async def open_editor(pilot: Pilot[Any]) -> None:
        await loaded(pilot, 4)
        await pilot.press("e")
        form = await editor(pilot)
        for widget in form.query(Input):
            widget.cursor_blink = False
        form.query_one("#editor-uris", TextArea).cursor_blink = False
        form.query_one("#editor-rtsp", Input).value = "ftp://nope"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: bool(form.error), what="inline error")

    assert snap_compare(snapshot_app(tmp_path), terminal_size=(80, 24), run_before=open_editor)
