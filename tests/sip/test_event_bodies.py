"""The bodies of the event packages we subscribe to: PIDF with RPID (RFC 3863, RFC 4480), dialog
info (RFC 4235) and message summaries (RFC 3842). Real documents (baresip's, Kamailio's, the
RFCs' examples, and documents in the shape Asterisk's generators write) read as they should;
malformed ones are refused with a ParseError that says why, and nothing else ever escapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softphone.sip.dialog_info import Applied, DialogEntry, DialogInfo, DialogView, lamp
from softphone.sip.errors import ParseError
from softphone.sip.message_summary import MessageCounts, MessageSummary
from softphone.sip.pidf import PUBLISHED_STATES, PresenceDocument, build_pidf
from softphone.sip.xml_body import MAX_XML_BYTES

DATA = Path(__file__).resolve().parent.parent / "data" / "presence"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --- PIDF ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "state", "basic", "activities"),
    [
        ("baresip_open.pidf", "available", "open", ()),
        ("baresip_closed.pidf", "offline", "closed", ()),
        ("rfc3863_example.pidf", "available", "open", ()),
        ("rfc4480_meeting.pidf", "away", "open", ("away",)),
        ("asterisk_on_the_phone.pidf", "busy", "open", ("on-the-phone",)),
        ("kamailio_aggregated.pidf", "busy", "open", ("busy",)),
    ],
)
def test_real_pidf_documents_read_as_they_mean(
    name: str, state: str, basic: str, activities: tuple[str, ...]
) -> None:
    doc = PresenceDocument.parse(load(name))
    assert (doc.summary(), doc.basic, doc.activities) == (state, basic, activities)


def test_several_tuples_are_kept_and_any_open_one_makes_the_presentity_open() -> None:
    doc = PresenceDocument.parse(load("rfc3863_example.pidf"))
    assert [t.id for t in doc.tuples] == ["bs35r9", "eg92n8"]
    assert doc.tuples[0].contact == "im:someone@mobilecarrier.net"
    assert doc.note == "Don't Disturb Please!"  # tuple notes before the document's own
    assert doc.notes[-1] == "I'll be in Tokyo next week"
    closed_and_open = load("rfc3863_example.pidf").replace(b"<basic>open", b"<basic>closed", 1)
    assert PresenceDocument.parse(closed_and_open).basic == "open"


def test_rpid_notes_inside_activities_are_not_activities_and_idle_means_away() -> None:
    doc = PresenceDocument.parse(load("rfc4480_meeting.pidf"))
    assert doc.activities == ("away",) and doc.idle
    without_away = load("rfc4480_meeting.pidf").replace(b"<rpid:away/>", b"")
    assert PresenceDocument.parse(without_away).summary() == "away"  # user-input idle


@pytest.mark.parametrize("state", PUBLISHED_STATES)
@pytest.mark.parametrize("on_the_phone", [False, True])
def test_what_we_publish_reads_back_as_the_state_we_chose(state: str, on_the_phone: bool) -> None:
    body = build_pidf(
        "sip:alice@lab.test",
        state,  # type: ignore[arg-type]
        on_the_phone=on_the_phone,
        tuple_id="t1",
        person_id="p1",
        contact="sip:alice@127.0.0.1:5060",
    )
    doc = PresenceDocument.parse(body)
    expected = "busy" if on_the_phone and state != "dnd" else state
    assert doc.summary() == expected and doc.entity == "sip:alice@lab.test"
    assert doc.tuples[0].contact == "sip:alice@127.0.0.1:5060"
    if on_the_phone and state != "dnd":
        assert doc.activities == ("on-the-phone",)


def test_what_baresip_looks_for_is_in_what_we_publish() -> None:
    # baresip 1.0's presence module matches these strings literally (modules/presence).
    assert b"<rpid:busy/>" in build_pidf("sip:a@x", "busy", tuple_id="t", person_id="p")
    assert b"<rpid:away/>" in build_pidf("sip:a@x", "away", tuple_id="t", person_id="p")
    assert b"<basic>open</basic>" in build_pidf("sip:a@x", "available", tuple_id="t", person_id="p")


def test_a_note_is_escaped_and_read_back() -> None:
    body = build_pidf(
        "sip:a@x", "away", note='lunch <back> at 2 & "soon"', tuple_id="t", person_id="p"
    )
    assert PresenceDocument.parse(body).note == 'lunch <back> at 2 & "soon"'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"<presence", "not well-formed"),
        (b"<notpresence/>", "<notpresence>"),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x"><tuple id="1">'
            b"<status><basic>maybe</basic></status></tuple></presence>",
            "'maybe'",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><presence>&lol;</presence>',
            "declarations",
        ),
        (b"<presence>" + b" " * MAX_XML_BYTES + b"</presence>", "more than"),
        (b'<?xml version="1.0" encoding="nope"?><presence/>', "nope"),
        ("<presence>é</presence>".encode("latin-1"), "not well-formed"),
    ],
)
def test_malformed_pidf_is_refused_with_the_reason(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match="PIDF") as caught:
        PresenceDocument.parse(body)
    assert why in str(caught.value)


# --- dialog-info -----------------------------------------------------------------------------------
def test_the_rfc_example_reads_with_every_dialog() -> None:
    info = DialogInfo.parse(load("rfc4235_full.dialog"))
    assert (info.entity, info.version, info.full) == ("sip:alice@example.com", 3, True)
    assert info.dialogs == (
        DialogEntry(
            id="as7d900as8", state="confirmed", direction="initiator", call_id="a84b4c76e66710"
        ),
        DialogEntry(id="j7zgt54", state="early", direction="recipient", call_id="ASDRRVASDRF"),
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("rfc4235_full.dialog", "busy"),
        ("asterisk_ringing.dialog", "ringing"),
        ("kamailio_confirmed.dialog", "busy"),
        ("kamailio_early_callee.dialog", "ringing"),
        ("kamailio_terminated.dialog", "idle"),
    ],
)
def test_the_lamp_of_real_documents(name: str, shown: str) -> None:
    assert lamp(DialogInfo.parse(load(name)).dialogs) == shown


def test_lamps_by_state_and_direction() -> None:
    def one(state: str, direction: str | None = None) -> str:
        entry = DialogEntry(id="d", state=state, direction=direction)  # type: ignore[arg-type]
        return lamp((entry,))

    assert lamp(()) == "idle"
    assert one("early", "recipient") == one("early") == one("proceeding") == "ringing"
    assert one("trying", "initiator") == one("early", "initiator") == "busy"  # placing a call
    assert one("confirmed", "recipient") == "busy"
    assert one("terminated", "initiator") == "idle"


def test_partial_notifications_apply_in_version_order() -> None:
    view = DialogView()
    assert view.apply(DialogInfo.parse(load("rfc4235_full.dialog"))) is Applied.APPLIED
    assert [d.id for d in view.dialogs] == ["as7d900as8", "j7zgt54"]
    partial = DialogInfo.parse(load("rfc4235_partial.dialog"))  # version 4: one dialog ended
    assert view.apply(partial) is Applied.APPLIED
    assert [d.id for d in view.dialogs] == ["j7zgt54"] and view.version == 4
    assert view.apply(partial) is Applied.STALE  # repeated
    assert view.apply(DialogInfo.parse(load("rfc4235_full.dialog"))) is Applied.STALE  # older
    assert [d.id for d in view.dialogs] == ["j7zgt54"]


def test_a_partial_notification_after_a_lost_one_is_a_gap_and_changes_nothing() -> None:
    view = DialogView()
    view.apply(DialogInfo.parse(load("rfc4235_full.dialog")))  # version 3
    skipped = load("rfc4235_partial.dialog").replace(b'version="4"', b'version="5"')
    assert view.apply(DialogInfo.parse(skipped)) is Applied.GAP
    assert len(view.dialogs) == 2 and view.version == 3
    first_partial = DialogView()
    assert first_partial.apply(DialogInfo.parse(load("rfc4235_partial.dialog"))) is Applied.GAP
    full_later = load("rfc4235_full.dialog").replace(b'version="3"', b'version="9"')
    assert view.apply(DialogInfo.parse(full_later)) is Applied.APPLIED  # full state: no gap
    assert view.version == 9


def test_a_stale_publication_beside_the_terminated_one_does_not_keep_the_lamp_lit() -> None:
    # Kamailio under load (pua's PUBLISH met "No E_Tag match"): the call's dialog is listed twice,
    # terminated and, from a publication left behind, confirmed; then the terminated one expires
    # and the confirmed one stays for its 12 hours.
    view = DialogView()
    assert view.apply(DialogInfo.parse(load("kamailio_stale_beside_terminated.dialog"))) is (
        Applied.APPLIED
    )
    assert view.dialogs == () and lamp(view.dialogs) == "idle"
    assert view.apply(DialogInfo.parse(load("kamailio_stale_alone.dialog"))) is Applied.APPLIED
    assert lamp(view.dialogs) == "idle"
    # Once a full document no longer lists the dialog, its id is forgotten.
    gone = b'<dialog-info version="60" state="full" entity="sip:bob@lab.test"/>'
    view.apply(DialogInfo.parse(gone))
    again = load("kamailio_stale_alone.dialog").replace(b'version="54"', b'version="61"')
    view.apply(DialogInfo.parse(again))
    assert [d.id for d in view.dialogs] == ["padi-6b1742c0-26f6-1"] and lamp(view.dialogs) == "busy"


def test_asterisk_names_every_call_after_the_extension_and_each_one_lights_the_lamp() -> None:
    # Asterisk's dialog-info has one <dialog id="EXTEN">: terminated while idle, then early,
    # confirmed and terminated again for every call; the id coming back is the next call.
    ringing = load("asterisk_ringing.dialog")
    view = DialogView()
    shown = []
    for version, state in enumerate(["terminated", "early", "confirmed", "terminated", "early"]):
        body = ringing.replace(b'version="0"', f'version="{version}"'.encode())
        body = body.replace(b"<state>early</state>", f"<state>{state}</state>".encode())
        assert view.apply(DialogInfo.parse(body)) is Applied.APPLIED
        shown.append(lamp(view.dialogs))
    assert shown == ["idle", "ringing", "busy", "idle", "ringing"]


def test_within_a_document_the_furthest_state_of_a_dialog_counts() -> None:
    def doc(version: int, *states: str, full: bool = True) -> DialogInfo:
        dialogs = "".join(f'<dialog id="d"><state>{s}</state></dialog>' for s in states)
        kind = "full" if full else "partial"
        return DialogInfo.parse(
            f'<dialog-info version="{version}" state="{kind}">{dialogs}</dialog-info>'.encode()
        )

    view = DialogView()
    view.apply(doc(1, "confirmed", "early"))
    assert [d.state for d in view.dialogs] == ["confirmed"]
    view.apply(doc(2, "confirmed", "terminated", full=False))  # ended, beside a stale one
    assert view.dialogs == ()
    view.apply(doc(3, "confirmed", full=False))  # the stale one alone, its twin expired
    assert view.dialogs == ()
    view.clear()  # a NOTIFY without a body: nothing is listed any more
    view.apply(doc(4, "early"))
    assert [d.state for d in view.dialogs] == ["early"]
    view.apply(doc(5, "terminated", "confirmed"))
    view.apply(doc(6))  # a full document without it: forgotten
    view.apply(doc(7, "early"))  # so the id may name a new call
    assert [d.state for d in view.dialogs] == ["early"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<dialog-info/>", "version"),
        (b'<dialog-info version="x" state="full"/>', "version 'x'"),
        (b'<dialog-info version="1" state="some"/>', "state 'some'"),
        (
            b'<dialog-info version="1" state="full"><dialog><state>early</state></dialog>'
            b"</dialog-info>",
            "without an id",
        ),
        (
            b'<dialog-info version="1" state="full"><dialog id="a"><state>ringing</state>'
            b"</dialog></dialog-info>",
            "'ringing'",
        ),
        (b'<dialog-info version="1" state="full"><dialog id="a"/></dialog-info>', "state ''"),
        (b"<presence/>", "<presence>"),
        (b"<dialog-info", "not well-formed"),
    ],
)
def test_malformed_dialog_info_is_refused_with_the_reason(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match="dialog-info") as caught:
        DialogInfo.parse(body)
    assert why in str(caught.value)


# --- message-summary -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "waiting", "account", "voice"),
    [
        ("rfc3842_example.summary", True, "sip:alice@vmail.example.com", MessageCounts(2, 8, 0, 2)),
        (
            "rfc3842_with_headers.summary",
            True,
            "sip:alice@vmail.example.com",
            MessageCounts(4, 8, 1, 2),
        ),
        ("asterisk_lf.summary", True, "sip:1000@192.0.2.10", MessageCounts(1, 0, 0, 0)),
        ("none_waiting.summary", False, None, MessageCounts(0, 3)),
        ("kamailio_mwi.summary", True, "sip:alice@lab.test", MessageCounts(3, 5, 1, 0)),
    ],
)
def test_real_message_summaries(
    name: str, waiting: bool, account: str | None, voice: MessageCounts
) -> None:
    summary = MessageSummary.parse(load(name))
    assert (summary.waiting, summary.account, summary.voice) == (waiting, account, voice)


def test_every_class_is_kept_in_order_and_names_do_not_care_for_case() -> None:
    summary = MessageSummary.parse(
        b"messages-waiting: YES\r\nfax-message: 1/0\r\nVOICE-MESSAGE: 0/0\r\n"
    )
    assert summary.waiting and summary.counts == (
        ("fax-message", MessageCounts(1, 0)),
        ("voice-message", MessageCounts(0, 0)),
    )
    assert MessageSummary.parse(b"Messages-Waiting: no\r\nX-Vendor: 1\r\n").voice is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "no Messages-Waiting"),
        (b"Voice-Message: 1/0\r\n", "no Messages-Waiting"),
        (b"Messages-Waiting: perhaps\r\n", "'perhaps'"),
        (b"Messages-Waiting: yes\r\nVoice-Message: one/two\r\n", "'one/two'"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3)\r\n", "'1/2 (3)'"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/2\r\nVoice-Message: 3/4\r\n", "twice"),
        (b"Messages-Waiting: yes\r\njunk\r\n", "'junk'"),
        ("Messages-Waiting: oui\r\nNote: é".encode(), "not ASCII"),
        (b"Messages-Waiting: yes\r\n" + b"X: y\r\n" * 2000, "more than"),
    ],
)
def test_malformed_message_summaries_are_refused_with_the_reason(body: bytes, why: str) -> None:
    with pytest.raises(ParseError, match="message-summary") as caught:
        MessageSummary.parse(body)
    assert why in str(caught.value)


# --- nothing but ParseError ------------------------------------------------------------------------
XML_ALPHABET = st.sampled_from([*"<>/=\"' :-abcdefinoprstuvy0123456789!&;[]?", "é", "\x00"])
FIXTURES = sorted(DATA.iterdir())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if draw(st.booleans()) and data:
            data[pos] = draw(st.integers(0, 255))
        else:
            data[pos:pos] = draw(st.text(XML_ALPHABET, max_size=12)).encode()
    return bytes(data)


@FAST
@given(st.one_of(mutated(), st.binary(max_size=200), st.text(XML_ALPHABET).map(str.encode)))
def test_the_parsers_raise_nothing_but_parse_error(body: bytes) -> None:
    for parse in (PresenceDocument.parse, DialogInfo.parse, MessageSummary.parse):
        try:
            parse(body)
        except ParseError:
            pass
