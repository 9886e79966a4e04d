"""The Replaces header (RFC 3891) and its place in a REFER's Refer-To (RFC 5589 §7), sans-IO.

``Replaces: callid;to-tag=T;from-tag=F[;early-only]`` names a dialog. The receiver matches the
tags as if they were in a request it received (RFC 3891 §3): to-tag against its local tag,
from-tag against the remote one. So a transferor that copies its dialog with the target into
a Refer-To puts the target's tag (its remote tag) in to-tag and its own in from-tag.

In a Refer-To the header travels as a URI header, ``<sip:c@host?Replaces=...>``: the ``;``,
``=`` and ``@`` of the value are %-escaped there (RFC 3261 §19.1.1, RFC 3891 §3), which
:class:`softphone.sip.uri.SipUri` does on output and undoes on parsing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final

from softphone.sip.errors import ParseError
from softphone.sip.uri import SipUri

__all__ = ["REFER_TO_HEADERS", "Replaces", "refer_to_target", "with_replaces"]

# RFC 3261 §25.1 ``word``: what a Call-ID is made of (``callid = word [ "@" word ]``).
_WORD: Final = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+")
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

# The URI headers a Refer-To may carry that we copy into the new INVITE (RFC 5589 §7.1 shows
# Replaces; nothing else a transferor sends changes what we do).
REFER_TO_HEADERS: Final = frozenset({"replaces"})


@dataclass(frozen=True, slots=True)
class Replaces:
    """RFC 3891 §6.1: ``Replaces = callid *(SEMI replaces-param)``; to-tag and from-tag are
    required, ``early-only`` is a flag, other generic parameters are kept but mean nothing."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Replaces:
        pieces = [p.strip() for p in text.strip().split(";")]
        call_id = pieces[0]
        if not call_id:
            raise ParseError("Replaces without a Call-ID")
        for part in call_id.split("@", 1):
            if not _WORD.fullmatch(part):
                raise ParseError(f"bad Call-ID in Replaces: {call_id!r}")
        to_tag = from_tag = None
        early_only = False
        for piece in pieces[1:]:
            name, eq, value = (s.strip() for s in piece.partition("="))
            key = name.lower()
            if not _TOKEN.fullmatch(name) or (eq and not value):
                raise ParseError(f"bad Replaces parameter {piece!r}")
            if key in ("to-tag", "from-tag"):
                if not _TOKEN.fullmatch(value):
                    raise ParseError(f"bad {key} in Replaces: {value!r}")
                if (to_tag if key == "to-tag" else from_tag) is not None:
                    raise ParseError(f"{key} twice in Replaces")
                if key == "to-tag":
                    to_tag = value
                else:
                    from_tag = value
            elif key == "early-only":
                if eq:
                    raise ParseError("early-only takes no value")
                early_only = True
        if to_tag is None or from_tag is None:
            raise ParseError("Replaces needs both to-tag and from-tag (RFC 3891 §6.1)")
        return cls(call_id=call_id, to_tag=to_tag, from_tag=from_tag, early_only=early_only)

    def __str__(self) -> str:
        text = f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}"
        return text + ";early-only" if self.early_only else text


def with_replaces(target: SipUri, replaces: Replaces) -> SipUri:
    """The Refer-To URI of an attended transfer: ``target`` with ``?Replaces=`` (escaped when
    the URI is written)."""
    kept = tuple((n, v) for n, v in target.headers if n.lower() != "replaces")
    return dataclasses.replace(target, headers=(*kept, ("Replaces", str(replaces))))


def refer_to_target(uri: SipUri) -> tuple[SipUri, Replaces | None]:
    """Split a Refer-To URI into the URI to call and the Replaces for the new INVITE.

    Raises ParseError for a malformed Replaces, two of them, or a URI header we would have to
    put in the INVITE but do not understand (RFC 3515 §2.1 lets us refuse those).
    """
    replaces: Replaces | None = None
    for name, value in uri.headers:
        key = name.lower()
        if key not in REFER_TO_HEADERS:
            raise ParseError(f"Refer-To header {name!r} is not supported")
        if replaces is not None:
            raise ParseError("Refer-To with two Replaces")
        replaces = Replaces.parse(value)
    return dataclasses.replace(uri, headers=()), replaces
