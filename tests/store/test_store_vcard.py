"""vCard import: Google/iOS/Outlook exports, folding, quoted-printable, problems by line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from softphone.store.contacts import Contacts
from softphone.store.db import Database
from softphone.store.vcard import VCardProblem, parse_vcards, read_vcard

DATA = Path(__file__).parent.parent / "data" / "vcard"


def test_google_export() -> None:
    contacts, problems = read_vcard(DATA / "google.vcf")
    alice, bob, door = contacts
    assert alice.name == "Alice Anderson" and alice.favourite  # CATEGORIES:...,starred
    assert alice.uris == ("sip:alice@voip.example.com", "tel:+15550102000", "tel:+15550103000")
    assert bob.name == "Dr. Bob J. Brown"  # empty FN: built from N (prefix given additional family)
    assert bob.uris == ("tel:0301234567",) and not bob.favourite
    assert door.rtsp_url == "rtsp://192.168.1.20/Streaming/Channels/101"
    assert door.uris == ("sip:door@192.168.1.20",)
    assert problems == [
        VCardProblem(line=21, message="card 'Only Email' skipped: no phone number or SIP address")
    ]


def test_ios_export_with_groups_unicode_and_vcard4() -> None:
    contacts, problems = read_vcard(DATA / "ios.vcf")
    soren, zoe = contacts
    assert soren.name == "Søren Østergaard"
    # SIP addresses first (IMPP;X-SERVICE-TYPE=SIP, X-SIP bare user@host), then numbers,
    # type=pref first; the tel:-valued TEL and the Skype IMPP are handled / ignored.
    assert soren.uris == (
        "sip:soren@nordic.example",
        "sip:desk@nordic.example",
        "tel:+4520123456",
        "tel:+4533123456",
    )
    assert zoe.name == "Zoë Long-Folded-Name"
    assert zoe.uris == ("sips:zoe@secure.example;transport=tls", "tel:+33123456789")  # folded TEL
    assert [str(p) for p in problems] == [
        "line 20: TEL skipped: 'not a number' is not a phone number",
        "line 22: card skipped: it has no name (FN, N or ORG)",
    ]


def test_outlook_2_1_quoted_printable_and_charset() -> None:
    contacts, problems = read_vcard(DATA / "outlook21.vcf")
    jurgen, francoise = contacts
    assert jurgen.name == "Jürgen Müller"  # QUOTED-PRINTABLE in ISO-8859-1
    assert jurgen.uris == ("sip:juergen@pbx.example.de", "tel:+491715550000", "tel:+493012345678")
    assert francoise.name == "Françoise Dupont"  # UTF-8 QP with a soft line break inside N
    assert problems == [
        VCardProblem(line=17, message="card skipped: the file ends before END:VCARD")
    ]


def test_tel_as_sip_on_request() -> None:
    text = "BEGIN:VCARD\nVERSION:3.0\nFN:Pat\nTEL:+44 20 7946 0000\nEND:VCARD\n"
    (pat,), problems = parse_vcards(text, phone_domain="pbx.example.com")
    assert pat.uris == ("sip:+442079460000@pbx.example.com",) and problems == []


def test_folding_escapes_and_lf_only_line_ends() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:4.0\nFN:Smith\\, John\n  the Third\nN:Smith;John;;;\n"
        "IMPP:sip:john\n\t@example.com\nEND:VCARD\n"
    )
    (john,), problems = parse_vcards(text)
    assert john.name == "Smith, John the Third"
    assert john.uris == ("sip:john@example.com",) and problems == []


def test_a_bad_card_is_reported_and_the_next_one_still_read() -> None:
    text = (
        "junk before\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No End\r\nTEL:1\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nthis line has no colon\r\nFN:Fine\r\nTEL:+1 555 0100\r\n"
        "IMPP:sip:bad host@x\r\nEND:VCARD\r\n"
    )
    (fine,), problems = parse_vcards(text)
    assert fine.uris == ("tel:+15550100",)
    assert [p.line for p in problems] == [1, 2, 8, 11]
    assert "outside BEGIN:VCARD" in problems[0].message
    assert "no END:VCARD" in problems[1].message
    assert "not a vCard property" in problems[2].message
    assert problems[3].message.startswith("IMPP skipped:")


def test_unreadable_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    contacts, problems = read_vcard(tmp_path / "missing.vcf")
    assert contacts == [] and len(problems) == 1
    assert problems[0].line == 0 and "cannot read" in str(problems[0])


def test_utf16_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "u16.vcf"
    path.write_bytes(
        "BEGIN:VCARD\r\nFN:Ünal\r\nTEL:+90 212 000 0000\r\nEND:VCARD\r\n".encode("utf-16")
    )
    (unal,), problems = read_vcard(path)
    assert unal.name == "Ünal" and problems == []


def test_imported_contacts_store_and_find(tmp_path: Path) -> None:
    contacts, _ = read_vcard(DATA / "ios.vcf")
    with Database.open(tmp_path / "s.db") as db:
        book = Contacts(db)
        book.add_many(contacts)
        found = book.find_by_uri("sip:soren@Nordic.Example;transport=tcp")
        assert found is not None and found.name == "Søren Østergaard"


LINES = st.sampled_from(
    [
        "BEGIN:VCARD",
        "END:VCARD",
        "VERSION:2.1",
        "FN:x",
        "N:;;;;",
        "TEL:+1",
        "TEL:abc",
        " folded",
        "IMPP:sip:@",
        "X-SIP:a@b",
        "N;ENCODING=QUOTED-PRINTABLE:=C3=",
        "=",
        "URL:rtsp://",
        "a.b.c:d",
        "FN;CHARSET=bogus:y",
        ":",
        ";;",
        "\\",
        "CATEGORIES:starred",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=20)), max_size=25))
def test_never_raises_on_any_input(lines: list[str]) -> None:
    contacts, problems = parse_vcards("\r\n".join(lines))
    assert all(c.name and c.uris for c in contacts)
    assert all(isinstance(p, VCardProblem) for p in problems)
