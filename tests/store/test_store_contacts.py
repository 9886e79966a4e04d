"""Contacts: validation, round trips, ordering, dial-bar search and caller look-up by URI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from softphone.store.contacts import (
    Contact,
    ContactError,
    Contacts,
    normalise_uri,
    validate_contact,
)
from softphone.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "softphone.db") as database:
        yield database


def person(name: str, *uris: str, favourite: bool = False, rtsp_url: str | None = None) -> Contact:
    return Contact(name=name, uris=uris, favourite=favourite, rtsp_url=rtsp_url)


def test_round_trip_normalises_and_keeps_uri_order(db: Database) -> None:
    contacts = Contacts(db)
    stored = contacts.add(
        person(
            "  Front   Door ",
            "door@192.168.1.20",
            "tel:+49-30-1234",
            "SIPS:Door@Cam.Example:5061",
            rtsp_url="rtsp://192.168.1.20/ch1",
            favourite=True,
        )
    )
    assert stored.id is not None
    assert stored.name == "Front Door"
    assert stored.uris == ("sip:door@192.168.1.20", "tel:+49-30-1234", "sips:Door@Cam.Example:5061")
    assert stored.primary_uri == "sip:door@192.168.1.20"
    assert contacts.get(stored.id) == stored
    assert contacts.get(stored.id + 100) is None


def test_update_replaces_uris_and_delete_cascades(db: Database) -> None:
    contacts = Contacts(db)
    bob = contacts.add(person("Bob", "sip:bob@example.com", "sip:bob@mobile.example.com"))
    assert bob.id is not None
    moved = contacts.update(Contact(id=bob.id, name="Robert", uris=("sip:robert@example.com",)))
    assert contacts.get(bob.id) == moved
    assert contacts.find_by_uri("sip:bob@mobile.example.com") is None
    assert contacts.delete(bob.id) is True
    assert contacts.delete(bob.id) is False
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM contact_uris").fetchone()[0] == 0
    with pytest.raises(ContactError, match="no contact with id"):
        contacts.update(moved)
    with pytest.raises(ContactError, match="never added"):
        contacts.update(person("X", "sip:x@y"))


def test_list_puts_favourites_first_then_names_ignoring_case(db: Database) -> None:
    contacts = Contacts(db)
    for name, fav in [
        ("charlie", False),
        ("Bob", True),
        ("alice", False),
        ("Émile", False),
        ("Zed", True),
        ("Ærin", False),
    ]:
        contacts.add(
            person(
                name,
                f"sip:{len(name)}{name[:1].lower()}@example.com".replace("é", "e").replace(
                    "æ", "a"
                ),
                favourite=fav,
            )
        )
    assert [c.name for c in contacts.list()] == ["Bob", "Zed", "alice", "charlie", "Émile", "Ærin"]
    assert contacts.count() == 6


def test_search_for_the_dial_bar_ranks_prefixes_first(db: Database) -> None:
    contacts = Contacts(db)
    contacts.add(person("Annabel Lee", "sip:lee@example.com"))
    contacts.add(person("Dan", "sip:dan.anderson@example.com"))
    contacts.add(person("Joanna", "sip:jo@example.com", favourite=True))
    contacts.add(person("Zack", "tel:+15550100"))
    # "Annabel" starts with it; then the favourite; then the rest by name
    assert [c.name for c in contacts.search("an")] == ["Annabel Lee", "Joanna", "Dan"]
    assert [c.name for c in contacts.search("LEE")] == ["Annabel Lee"]  # a word of the name
    assert [c.name for c in contacts.search("dan.")] == ["Dan"]  # after the scheme
    assert [c.name for c in contacts.search("+1555")] == ["Zack"]
    assert [c.name for c in contacts.search("an", limit=1)] == ["Annabel Lee"]
    assert [c.name for c in contacts.search("")] == ["Joanna", "Annabel Lee", "Dan", "Zack"]


def test_search_escapes_like_wildcards(db: Database) -> None:
    contacts = Contacts(db)
    contacts.add(person("100% Bob", "sip:bob@example.com"))
    contacts.add(person("Ann", "sip:a_b@example.com"))
    contacts.add(person("Axb", "sip:axb@example.com"))
    assert [c.name for c in contacts.search("%")] == ["100% Bob"]
    assert [c.name for c in contacts.search("a_b")] == ["Ann"]


def test_find_by_uri_ignores_scheme_params_host_case_but_not_user_case(db: Database) -> None:
    contacts = Contacts(db)
    bob = contacts.add(person("Bob", "sip:bob@example.com"))
    door = contacts.add(person("Door", "sip:door@192.168.1.20:5062"))
    phone = contacts.add(person("Phone", "tel:+1-555-0100"))
    assert contacts.find_by_uri("sip:bob@EXAMPLE.com;transport=tcp") == bob
    assert contacts.find_by_uri("sips:bob@Example.Com") == bob
    assert contacts.find_by_uri("bob@example.com") == bob
    assert contacts.find_by_uri("sip:bob@example.com:5060") == bob  # port on one side only
    assert contacts.find_by_uri("sip:b%6Fb@example.com") == bob  # RFC 3261 §19.1.4 escapes
    assert contacts.find_by_uri("sip:Bob@example.com") is None  # user part is case-sensitive
    assert contacts.find_by_uri("sip:bob@example.org") is None
    assert contacts.find_by_uri("sip:door@192.168.1.20") == door
    assert contacts.find_by_uri("sip:door@192.168.1.20:5060") is None  # both have ports: differ
    assert contacts.find_by_uri("tel:+15550100") == phone
    assert contacts.find_by_uri("not a uri at all") is None


@pytest.mark.parametrize(
    ("contact", "message"),
    [
        (person("   ", "sip:a@b"), "needs a name"),
        (person("Nobody"), "at least one SIP address"),
        (person("Web", "http://example.com"), "not a SIP address"),
        (person("Number", "12345"), "not a SIP address"),
        (person("Bad", "sip:bad user@example.com"), "not a valid URI"),
        (person("Twice", "sip:a@b.com", "sip:a@B.com;transport=udp"), "listed twice"),
        (person("Cam", "sip:c@d", rtsp_url="http://cam/stream"), "rtsp:// or rtsps://"),
        (person("Cam", "sip:c@d", rtsp_url="rtsp:///nohost"), "has no host"),
        (person("Hdr", "sip:c@d?subject=hi"), "cannot carry headers"),
    ],
)
def test_validation_errors_say_what_is_wrong(db: Database, contact: Contact, message: str) -> None:
    contacts = Contacts(db)
    with pytest.raises(ContactError, match=message):
        contacts.add(contact)
    assert contacts.count() == 0


def test_uris_as_one_string_is_refused() -> None:
    with pytest.raises(ContactError, match="tuple"):
        validate_contact(Contact(name="A", uris="sip:a@b"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob@example.com", "sip:bob@example.com"),
        ("bob@example.com:5070", "sip:bob@example.com:5070"),
        ("SIP:bob@example.com", "sip:bob@example.com"),
        (" tel:+1-555-0100 ", "tel:+1-555-0100"),
        ("sips:[2001:db8::1]", "sips:[2001:db8::1]"),
    ],
)
def test_normalise_uri(text: str, expected: str) -> None:
    assert normalise_uri(text) == expected


def test_add_many_is_all_or_nothing(db: Database) -> None:
    contacts = Contacts(db)
    with pytest.raises(ContactError):
        contacts.add_many([person("Good", "sip:good@example.com"), person("Bad", "nope")])
    assert contacts.count() == 0
    added = contacts.add_many([person("A", "sip:a@x.com"), person("B", "sip:b@x.com")])
    assert [c.id is not None for c in added] == [True, True]
    assert contacts.list() == added


async def test_async_wrappers_from_two_tasks(db: Database) -> None:
    contacts = Contacts(db)

    async def writer(prefix: str) -> None:
        for n in range(20):
            await contacts.add_async(person(f"{prefix}{n}", f"sip:{prefix}{n}@example.com"))

    async with asyncio.timeout(30):
        await asyncio.gather(writer("a"), writer("b"))
    assert len(await contacts.list_async()) == 40
    found = await contacts.find_by_uri_async("sip:b7@example.com")
    assert found is not None and found.name == "b7"
    assert [c.name for c in await contacts.search_async("a1", limit=3)] == ["a1", "a10", "a11"]
    assert found.id is not None
    assert await contacts.get_async(found.id) == found
    renamed = await contacts.update_async(Contact(id=found.id, name="B seven", uris=found.uris))
    assert renamed.name == "B seven"
    assert await contacts.delete_async(found.id) is True
    assert len(await contacts.add_many_async([person("c", "sip:c@x")])) == 1


# Who calls (or is called) as a URI, and the contact it must find. The book below holds each
# contact's URI in one spelling; the caller uses another.
MATCH_BOOK = {
    "Bob": "sip:bob@lab.test",
    "Desk 1002": "sip:1002@pbx.lab.test",
    "Mum": "tel:+49 30 1234-5678",
    "Office": "sip:+441632960000@gw.example.com;user=phone",
    "Pizza": "tel:0301234",
}
MATCHES = [
    # SIP users: user exact, host any case, scheme, port on one side and parameters ignored
    ("sip:bob@LAB.test;transport=tcp", "Bob"),
    ("sips:bob@lab.test:5061", "Bob"),
    ("sip:Bob@lab.test", None),
    ("sip:bob@elsewhere.test", None),
    ("sip:1002@pbx.lab.test", "Desk 1002"),
    ("sip:1002@pbx.lab.test;user=phone", "Desk 1002"),  # a number first, its SIP user second
    ("sip:1002@other.test", None),  # an extension is nothing without its PBX
    # telephone numbers: digits compare, whatever the spelling and the gateway
    ("tel:+493012345678", "Mum"),
    ("tel:+49-30-1234-5678", "Mum"),
    ("tel:+49(30)12345678", "Mum"),
    ("sip:+493012345678@gw.example.com;user=phone", "Mum"),
    ("sip:+493012345678@127.0.0.1", "Mum"),
    ("sip:00493012345678@pbx.lab.test", "Mum"),  # 00 is the international prefix
    ("tel:+44 1632 960000", "Office"),
    ("sip:00441632960000@other-gw.example.com", "Office"),
    ("sip:0301234@pbx.lab.test", "Pizza"),  # an outgoing call to a number the dial bar made
    ("tel:030-1234", "Pizza"),
    ("tel:+4930123", None),
    # what is not a URI finds nothing: header text never reaches this look-up
    ('"Bob" <sip:bob@lab.test>', None),
    ("", None),
]


@pytest.mark.parametrize(("uri", "name"), MATCHES, ids=[m[0] or "empty" for m in MATCHES])
def test_find_by_uri_matches_the_user_and_host_or_the_numbers_digits(
    db: Database, uri: str, name: str | None
) -> None:
    contacts = Contacts(db)
    for who, where in MATCH_BOOK.items():
        contacts.add(person(who, where))
    found = contacts.find_by_uri(uri)
    assert (found.name if found else None) == name


def test_a_number_and_a_sip_user_sharing_digits_prefer_the_number_for_a_phone_uri(
    db: Database,
) -> None:
    contacts = Contacts(db)
    contacts.add(person("Extension", "sip:1002@pbx.lab.test"))
    contacts.add(person("Short number", "tel:1002"))
    by_number = contacts.find_by_uri("sip:1002@pbx.lab.test;user=phone")
    by_user = contacts.find_by_uri("sip:1002@pbx.lab.test")
    assert by_number is not None and by_number.name == "Short number"
    assert by_user is not None and by_user.name == "Extension"
