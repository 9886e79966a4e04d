"""Message waiting (RFC 3842, application/simple-message-summary), sans-IO.

A message-summary body (§5.2)::

    Messages-Waiting: yes
    Message-Account: sip:alice@vmail.example.com
    Voice-Message: 2/8 (0/2)

``Messages-Waiting`` (yes or no) is required; ``Message-Account`` is optional; each summary
line gives a message context class (RFC 3458: voice, fax, pager, multimedia, text, none) with
``new/old`` counts and, in parentheses, how many of those are urgent. What follows a blank line
are optional message headers, not read here. Names are matched without regard to case, line
ends may be CRLF or LF alone (PBXs send both).

Refused with a ParseError saying why: a body over :data:`MAX_SUMMARY_BYTES`, one that is not
ASCII text, no ``Messages-Waiting`` line or a value other than yes/no, a summary line whose
counts are not ``new/old`` numbers, or the same class twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from softphone.sip.errors import ParseError

__all__ = ["MAX_SUMMARY_BYTES", "MESSAGE_SUMMARY_TYPE", "MessageCounts", "MessageSummary"]

MESSAGE_SUMMARY_TYPE: Final = "application/simple-message-summary"
MAX_SUMMARY_BYTES: Final = 8 * 1024
CLASSES: Final = frozenset(
    {
        "voice-message",
        "fax-message",
        "pager-message",
        "multimedia-message",
        "text-message",
        "none",
    }
)
_COUNTS: Final = re.compile(
    r"^(\d{1,9})\s*/\s*(\d{1,9})\s*(?:\(\s*(\d{1,9})\s*/\s*(\d{1,9})\s*\))?$"
)


@dataclass(frozen=True, slots=True)
class MessageCounts:
    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """``counts``: (class, counts) in the order of the body, class names in lower case."""

    waiting: bool
    account: str | None = None
    counts: tuple[tuple[str, MessageCounts], ...] = ()

    @property
    def voice(self) -> MessageCounts | None:
        return dict(self.counts).get("voice-message")

    @classmethod
    def parse(cls, body: bytes) -> MessageSummary:
        if len(body) > MAX_SUMMARY_BYTES:
            raise ParseError(
                f"message-summary: {len(body)} bytes, more than the {MAX_SUMMARY_BYTES} accepted"
            )
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise ParseError("message-summary: not ASCII text (RFC 3842 §5.2)") from None
        waiting: bool | None = None
        account: str | None = None
        counts: dict[str, MessageCounts] = {}
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line.strip():
                if waiting is not None:
                    break  # the optional message headers follow (§5.2)
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise ParseError(f"message-summary: {line[:60]!r} is not a 'Name: value' line")
            name, value = name.strip().lower(), value.strip()
            if name == "messages-waiting":
                if value.lower() not in ("yes", "no"):
                    raise ParseError(f"message-summary: Messages-Waiting is {value!r}, not yes/no")
                waiting = value.lower() == "yes"
            elif name == "message-account":
                account = value or None
            elif name in CLASSES:
                if name in counts:
                    raise ParseError(f"message-summary: {name} is given twice")
                counts[name] = _counts(name, value)
            # Other names are extensions (§5.2 allows them): passed over.
        if waiting is None:
            raise ParseError("message-summary: no Messages-Waiting line (RFC 3842 §5.2)")
        return cls(waiting=waiting, account=account, counts=tuple(counts.items()))


def _counts(name: str, value: str) -> MessageCounts:
    match = _COUNTS.match(value)
    if match is None:
        raise ParseError(
            f"message-summary: {name} is {value!r}, not new/old (urgent_new/urgent_old)"
        )
    new, old, urgent_new, urgent_old = (int(g) if g is not None else 0 for g in match.groups())
    return MessageCounts(new=new, old=old, urgent_new=urgent_new, urgent_old=urgent_old)
