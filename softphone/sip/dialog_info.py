"""Dialog state of a watched party (RFC 4235, application/dialog-info+xml), sans-IO: the busy
lamp.

:meth:`DialogInfo.parse` reads one notification's document: its ``version``, whether it is
``full`` or ``partial`` state (§4.1), and each ``<dialog>`` with its ``<state>`` (§4.1.6:
trying, proceeding, early, confirmed, terminated) and ``direction``. A document without a
version or state, a dialog without an id or state, or a state outside the five is refused with
a ParseError saying which.

:class:`DialogView` is what one subscription knows, built from its notifications in version
order (§4.1.2): a full document replaces the dialogs, a partial one changes the dialogs it
names (a terminated one leaves). A document whose version is not above the last one applied is
stale (out of order, or repeated) and ignored. A partial document that skips a version means
one was lost: it is not applied, and the subscriber refreshes the subscription to get full state
(§4.1.2: "the subscriber ... SHOULD generate a refresh request").

A dialog's states only move forward (§3.7.1: terminated is final), and a presence server that
aggregates several publications for one party can list the same dialog more than once, in
different states. Kamailio does this under load: when its pua module's PUBLISH meets "No E_Tag
match" (412) it publishes the state again as a new publication, and the one left behind keeps
an older state (a ``confirmed`` with its 12-hour expiry beside the ``terminated``). So within
a document the furthest state of a dialog counts. A dialog listed twice in one document and
terminated in one of them is a publication left behind: later documents that list it only in
its older state (once the terminated one has expired) do not bring it back, until a full
document no longer lists it. A dialog listed once is taken as it is: Asterisk names every
dialog of an extension after the extension, ``terminated`` while idle and ``early`` on the next
call.

:func:`lamp` turns the dialogs into what a busy lamp shows: ``busy`` for a call in progress
(confirmed, or one the party is placing), ``ringing`` for a call ringing at the party, ``idle``
for none.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Literal, TypeAlias, get_args

from softphone.sip.errors import ParseError
from softphone.sip.xml_body import children, descendants, local_name, parse_xml, text_of

__all__ = [
    "DIALOG_INFO_TYPE",
    "LAMPS",
    "Applied",
    "DialogEntry",
    "DialogInfo",
    "DialogView",
    "Lamp",
    "lamp",
]

DIALOG_INFO_TYPE: Final = "application/dialog-info+xml"

Lamp: TypeAlias = Literal["idle", "ringing", "busy", "unknown"]
LAMPS: Final[tuple[Lamp, ...]] = get_args(Lamp)
DialogStateName: TypeAlias = Literal["trying", "proceeding", "early", "confirmed", "terminated"]
_STATES: Final[tuple[DialogStateName, ...]] = get_args(DialogStateName)
_STATE_OF: Final[dict[str, DialogStateName]] = {name: name for name in _STATES}
_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(_STATES)}  # §3.7.1 order
Direction: TypeAlias = Literal["initiator", "recipient"]
_DIRECTION_OF: Final[dict[str, Direction]] = {"initiator": "initiator", "recipient": "recipient"}


@dataclass(frozen=True, slots=True)
class DialogEntry:
    """One ``<dialog>`` (§4.1.6). ``remote`` is the other party's identity when given."""

    id: str
    state: DialogStateName
    direction: Direction | None = None
    call_id: str | None = None
    remote: str | None = None


@dataclass(frozen=True, slots=True)
class DialogInfo:
    entity: str
    version: int
    full: bool
    dialogs: tuple[DialogEntry, ...] = ()

    @classmethod
    def parse(cls, body: bytes) -> DialogInfo:
        root = parse_xml(body, "dialog-info")
        if local_name(root) != "dialog-info":
            raise ParseError(
                f"dialog-info: the root element is <{local_name(root)}>, not <dialog-info>"
            )
        version_text = (root.get("version") or "").strip()
        if not version_text.isdigit():
            raise ParseError(f"dialog-info: version {version_text!r} is not a number (§4.1.1)")
        state = (root.get("state") or "").strip().lower()
        if state not in ("full", "partial"):
            raise ParseError(f"dialog-info: state {state!r} is neither full nor partial (§4.1.1)")
        dialogs = tuple(_dialog(node) for node in children(root, "dialog"))
        return cls(
            entity=root.get("entity", ""),
            version=int(version_text),
            full=state == "full",
            dialogs=dialogs,
        )


def _dialog(node: ET.Element) -> DialogEntry:
    dialog_id = (node.get("id") or "").strip()
    if not dialog_id:
        raise ParseError("dialog-info: a <dialog> without an id (§4.1.2)")
    state_text = (text_of(next(children(node, "state"), None)) or "").lower()
    if state_text not in _STATE_OF:
        raise ParseError(f"dialog-info: dialog {dialog_id!r} has state {state_text!r} (§4.1.6)")
    direction = (node.get("direction") or "").strip().lower()
    remote = None
    for side in children(node, "remote"):
        remote = next(map(text_of, descendants(side, "identity")), None)
    return DialogEntry(
        id=dialog_id,
        state=_STATE_OF[state_text],
        direction=_DIRECTION_OF.get(direction),
        call_id=node.get("call-id"),
        remote=remote,
    )


class Applied(Enum):
    """What :meth:`DialogView.apply` did with a document."""

    APPLIED = "applied"
    STALE = "stale"  # version not above the last applied: ignored
    GAP = "gap"  # a partial document after a lost one: ignored; refresh for full state


@dataclass(slots=True)
class DialogView:
    """The dialogs of one watched party, from one subscription's notifications (module
    docstring)."""

    version: int | None = None
    _dialogs: dict[str, DialogEntry] = field(default_factory=dict)
    _stale: set[str] = field(default_factory=set)  # ended, but a stale publication lists them

    @property
    def dialogs(self) -> tuple[DialogEntry, ...]:
        return tuple(self._dialogs.values())

    def clear(self) -> None:
        """No dialogs, as a NOTIFY without a body says; the version stays."""
        self._dialogs = {}
        self._stale = set()

    def apply(self, info: DialogInfo) -> Applied:
        last = self.version
        if last is not None and info.version <= last:
            return Applied.STALE
        if not info.full and (last is None or info.version != last + 1):
            return Applied.GAP
        furthest: dict[str, DialogEntry] = {}
        listed_twice: set[str] = set()
        for entry in info.dialogs:
            seen = furthest.get(entry.id)
            if seen is not None:
                listed_twice.add(entry.id)
            if seen is None or _RANK[entry.state] >= _RANK[seen.state]:
                furthest[entry.id] = entry
        if info.full:
            self._dialogs = {}
            self._stale &= furthest.keys()
        self._stale |= {i for i in listed_twice if furthest[i].state == "terminated"}
        for dialog_id, entry in furthest.items():
            if entry.state == "terminated" or dialog_id in self._stale:
                self._dialogs.pop(dialog_id, None)
            else:
                self._dialogs[dialog_id] = entry
        self.version = info.version
        return Applied.APPLIED


def lamp(dialogs: tuple[DialogEntry, ...]) -> Lamp:
    """``busy``: a confirmed dialog, or a call the party is placing (trying, proceeding or early
    as initiator); ``ringing``: an early dialog in which the party is called; ``idle``: none."""
    live = [d for d in dialogs if d.state != "terminated"]
    if any(d.state == "confirmed" or d.direction == "initiator" for d in live):
        return "busy"
    if live:
        return "ringing"
    return "idle"
