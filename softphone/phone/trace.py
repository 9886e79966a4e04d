"""The SIP trace behind the ladder screen: every message the transport sends or receives, kept
per Call-ID (bounded: the last :data:`MAX_MESSAGES` of the last :data:`MAX_DIALOGS` Call-IDs),
with credentials redacted before they are stored, so no screen or log can show them."""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final, Literal

from softphone.phone.api import TracedMessage

__all__ = ["MAX_DIALOGS", "MAX_MESSAGES", "SipTrace", "call_id_of", "redact"]

MAX_MESSAGES: Final = 200
MAX_DIALOGS: Final = 100
MAX_TEXT: Final = 16_384  # a longer message is cut (with a note): a trace is for reading

# RFC 3261 §7.3.3: "i" is the compact form of Call-ID. Header names are case-insensitive.
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_AUTH_HEADER = re.compile(
    r"^((?:proxy-)?authorization[ \t]*:[ \t]*)(\S+)(.*)$", re.IGNORECASE | re.MULTILINE
)
_DIGEST_SECRET = re.compile(r'\b(response|cnonce)[ \t]*=[ \t]*("[^"]*"|[^,\s]+)', re.IGNORECASE)
REDACTED: Final = "<redacted>"


def call_id_of(data: bytes) -> str | None:
    head = data.split(b"\r\n\r\n", 1)[0]
    match = _CALL_ID.search(head)
    return match.group(1).decode("utf-8", "replace") if match else None


def redact(text: str) -> str:
    """Authorization and Proxy-Authorization (RFC 3261 §20.7, §20.28): a Digest response and
    cnonce become ``<redacted>``; any other scheme (Basic carries the password) loses its whole
    value. Usernames and realms stay: they help read a failed login."""

    def one(match: re.Match[str]) -> str:
        prefix, scheme, rest = match.groups()
        if scheme.lower() == "digest":
            return (
                prefix + scheme + _DIGEST_SECRET.sub(lambda m: f'{m.group(1)}="{REDACTED}"', rest)
            )
        return f"{prefix}{scheme} {REDACTED}"

    return _AUTH_HEADER.sub(one, text)


class SipTrace:
    """Collects messages by Call-ID. ``local_for(address_of_peer)`` names our end of the hop."""

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        self._clock = wall_clock
        self._by_call: OrderedDict[str, deque[TracedMessage]] = OrderedDict()

    def add(
        self, direction: Literal["sent", "received"], data: bytes, local: str, remote: str
    ) -> None:
        call_id = call_id_of(data)
        if call_id is None or not data.strip():
            return
        text = data.decode("utf-8", "replace")
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT] + f"\n[... {len(text) - MAX_TEXT} more characters not kept]"
        text = redact(text.replace("\r\n", "\n"))
        first_line = text.split("\n", 1)[0].strip()
        messages = self._by_call.get(call_id)
        if messages is None:
            messages = self._by_call[call_id] = deque(maxlen=MAX_MESSAGES)
            while len(self._by_call) > MAX_DIALOGS:
                self._by_call.popitem(last=False)
        else:
            self._by_call.move_to_end(call_id)
        messages.append(
            TracedMessage(
                at=self._clock(),
                direction=direction,
                local=local,
                remote=remote,
                first_line=first_line,
                text=text,
            )
        )

    def messages(self, call_id: str) -> list[TracedMessage]:
        return list(self._by_call.get(call_id, ()))
