"""Presence documents: PIDF (RFC 3863) with RPID activities (RFC 4480), read and written, sans-IO.

Reading (:meth:`PresenceDocument.parse`) takes what real presence agents send: the default
namespace or any prefix, several tuples (one per device; a presence server aggregates them),
the person element of the data model (RFC 4479) or of the drafts before it, activities in the
RFC 4480 namespace or in Asterisk's older ``rpid-person`` one, notes anywhere. It refuses, with
a ParseError saying why: a body that is not XML (see xml_body.py), a root other than
``<presence>``, a ``<basic>`` other than ``open`` or ``closed`` (RFC 3863 §4.1.4).

What a document means to a person is :meth:`PresenceDocument.summary`, one of
:data:`PRESENCE_STATES` and a note:

- ``dnd`` ("do not disturb"): an ``<rpid:other>`` activity or a note saying so (what we and
  several phones publish: there is no RFC 4480 activity for it);
- ``offline``: every tuple's basic status is ``closed`` (RFC 3863 §4.1.4: not willing or able to
  communicate);
- ``busy``: an activity that means the person is occupied (on-the-phone, busy, meeting, ...);
- ``away``: an activity that means the person is not there (away, meal, vacation, ...), or
  ``<rpid:user-input>idle</rpid:user-input>`` (RFC 4480 §3.2.6);
- ``available``: open and none of the above; ``unknown``: nothing to tell (no basic status, no
  activity).

Writing (:func:`build_pidf`) makes the document we PUBLISH (RFC 3903) for our own state: one
tuple for this device, a person with the activity, prefixes ``dm`` and ``rpid`` (baresip's
presence module matches ``<rpid:busy/>`` and ``<rpid:away/>`` literally).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import escape as _html_escape
from typing import Final, Literal, TypeAlias, get_args

from softphone.sip.errors import ParseError
from softphone.sip.xml_body import children, descendants, local_name, parse_xml, text_of

__all__ = [
    "PIDF_TYPE",
    "PRESENCE_STATES",
    "PUBLISHED_STATES",
    "Basic",
    "PresenceDocument",
    "PresenceState",
    "PresenceTuple",
    "build_pidf",
]


# xml.sax.saxutils would do, but it imports urllib.request and with it socket and ssl, which a
# sans-IO core must not pull in; html.escape is the same escaping for text and attributes.
def _escape(text: str) -> str:
    """``text`` as XML character data (&, < and > escaped)."""
    return _html_escape(text, quote=False)


def _quoteattr(value: str) -> str:
    """``value`` as a double-quoted XML attribute value."""
    return f'"{_html_escape(value, quote=True)}"'


PIDF_TYPE: Final = "application/pidf+xml"

PresenceState: TypeAlias = Literal["available", "away", "busy", "dnd", "offline", "unknown"]
PRESENCE_STATES: Final[tuple[PresenceState, ...]] = get_args(PresenceState)
PublishedState: TypeAlias = Literal["available", "away", "busy", "dnd"]
PUBLISHED_STATES: Final[tuple[PublishedState, ...]] = get_args(PublishedState)
Basic: TypeAlias = Literal["open", "closed"]

# RFC 4480 §3.2 activities, by what they mean for reaching the person now.
BUSY_ACTIVITIES: Final = frozenset(
    {"busy", "on-the-phone", "meeting", "appointment", "performance", "presentation", "worship"}
)
AWAY_ACTIVITIES: Final = frozenset(
    {
        "away",
        "breakfast",
        "dinner",
        "lunch",
        "meal",
        "holiday",
        "vacation",
        "permanent-absence",
        "sleeping",
        "travel",
        "in-transit",
        "steering",
        "shopping",
        "looking-for-work",
        "playing",
        "spectator",
        "tv",
    }
)
_DND_WORDS: Final = frozenset({"dnd", "do not disturb", "do-not-disturb", "donotdisturb"})
_NS: Final = {
    "pidf": "urn:ietf:params:xml:ns:pidf",
    "dm": "urn:ietf:params:xml:ns:pidf:data-model",
    "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
}
_ACTIVITY_OF: Final[dict[PublishedState, str | None]] = {
    "available": None,
    "away": "away",
    "busy": "busy",
    "dnd": "busy",
}
_DEFAULT_NOTE: Final[dict[PublishedState, str | None]] = {
    "available": None,
    "away": "Away",
    "busy": "Busy",
    "dnd": "Do not disturb",
}


@dataclass(frozen=True, slots=True)
class PresenceTuple:
    """One ``<tuple>``: a device or service of the presentity (RFC 3863 §4.1.2)."""

    id: str
    basic: Basic | None
    contact: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PresenceDocument:
    """What a PIDF document says. ``activities`` are RFC 4480 activity names in lower case, in
    document order, without repeats; ``other`` the free-text ``<rpid:other>`` activities;
    ``notes`` every note, person notes first."""

    entity: str
    tuples: tuple[PresenceTuple, ...] = ()
    activities: tuple[str, ...] = ()
    other: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    idle: bool = False

    @classmethod
    def parse(cls, body: bytes) -> PresenceDocument:
        root = parse_xml(body, "PIDF")
        if local_name(root) != "presence":
            raise ParseError(f"PIDF: the root element is <{local_name(root)}>, not <presence>")
        tuples = tuple(_tuple(node, index) for index, node in enumerate(children(root, "tuple")))
        activities: list[str] = []
        other: list[str] = []
        for group in descendants(root, "activities"):
            for activity in group:
                name = local_name(activity).lower()
                if name == "other":
                    if (text := text_of(activity)) is not None:
                        other.append(text)
                elif name and name != "note" and name not in activities:
                    activities.append(name)
        person_notes = [
            note
            for person in descendants(root, "person")
            for note in map(text_of, descendants(person, "note"))
            if note
        ]
        tuple_notes = [t.note for t in tuples if t.note]
        root_notes = [note for note in map(text_of, children(root, "note")) if note]
        idle = any(
            (text_of(node) or "").lower() == "idle" for node in descendants(root, "user-input")
        )
        return cls(
            entity=root.get("entity", ""),
            tuples=tuples,
            activities=tuple(activities),
            other=tuple(other),
            notes=tuple(dict.fromkeys([*person_notes, *tuple_notes, *root_notes])),
            idle=idle,
        )

    @property
    def basic(self) -> Basic | None:
        """``open`` when any tuple is open (any device can be reached), ``closed`` when every
        tuple that says is closed, None when none says."""
        said = [t.basic for t in self.tuples if t.basic is not None]
        if not said:
            return None
        return "open" if "open" in said else "closed"

    @property
    def note(self) -> str | None:
        return self.notes[0] if self.notes else None

    def summary(self) -> PresenceState:
        """What the document means for reaching the person now (module docstring)."""
        words = {w.lower() for w in (*self.other, *self.notes)}
        if words & _DND_WORDS:
            return "dnd"
        if self.basic == "closed":
            return "offline"
        if BUSY_ACTIVITIES.intersection(self.activities):
            return "busy"
        if AWAY_ACTIVITIES.intersection(self.activities) or self.idle:
            return "away"
        if self.basic == "open":
            return "available"
        return "unknown"


def _tuple(node: ET.Element, index: int) -> PresenceTuple:
    basic_text: str | None = None
    for status in children(node, "status"):
        for element in children(status, "basic"):
            basic_text = (text_of(element) or "").lower()
    if basic_text is not None and basic_text not in ("open", "closed"):
        raise ParseError(f"PIDF: <basic> is {basic_text!r}, not open or closed (RFC 3863 §4.1.4)")
    contact = next(map(text_of, children(node, "contact")), None)
    note = next((n for n in map(text_of, children(node, "note")) if n), None)
    basic: Basic | None = "open" if basic_text == "open" else "closed" if basic_text else None
    return PresenceTuple(
        id=node.get("id") or f"tuple-{index}", basic=basic, contact=contact, note=note
    )


def build_pidf(
    entity: str,
    state: PublishedState,
    *,
    note: str | None = None,
    on_the_phone: bool = False,
    tuple_id: str,
    person_id: str,
    contact: str | None = None,
) -> bytes:
    """The PIDF document for our own ``state`` (module docstring). ``on_the_phone`` replaces
    the activity with RFC 4480's ``on-the-phone``: busy because of a call, not by choice."""
    if state not in PUBLISHED_STATES:
        raise ValueError(f"cannot publish {state!r}; one of {', '.join(PUBLISHED_STATES)}")
    basic = "closed" if state == "dnd" else "open"
    activity = "on-the-phone" if on_the_phone and state != "dnd" else _ACTIVITY_OF[state]
    text = note if note is not None else _DEFAULT_NOTE[state]
    if on_the_phone and note is None and state != "dnd":
        text = "On the phone"
    note_xml = f"<note>{_escape(text)}</note>" if text else ""
    person_note = f"<dm:note>{_escape(text)}</dm:note>" if text else ""
    contact_xml = f"<contact>{_escape(contact)}</contact>" if contact else ""
    activities = ""
    if activity is not None:
        other = "<rpid:other>dnd</rpid:other>" if state == "dnd" else ""
        activities = f"<rpid:activities><rpid:{activity}/>{other}</rpid:activities>"
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<presence xmlns="{_NS["pidf"]}" xmlns:dm="{_NS["dm"]}" xmlns:rpid="{_NS["rpid"]}"'
        f" entity={_quoteattr(entity)}>\r\n"
        f"  <tuple id={_quoteattr(tuple_id)}><status><basic>{basic}</basic></status>"
        f"{contact_xml}{note_xml}</tuple>\r\n"
        f"  <dm:person id={_quoteattr(person_id)}>{activities}{person_note}</dm:person>\r\n"
        "</presence>\r\n"
    )
    return document.encode("utf-8")
