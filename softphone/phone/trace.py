"""The SIP trace behind the flows list and the ladder screen: every message the transport sends
or receives, kept per flow (one Call-ID), with credentials redacted before they are stored, so no
screen or log can show them.

Memory is bounded however long the phone runs: at most :data:`MAX_CALL_FLOWS` calls,
:data:`MAX_REGISTER_FLOWS` registrations and :data:`MAX_OTHER_FLOWS` other flows (OPTIONS,
MESSAGE, NOTIFY, ...), the least recently active of its kind dropped first, so a proxy's OPTIONS
pings push out neither the calls nor the registrations; at most :data:`MAX_MESSAGES` messages per
flow (a day of REGISTER refreshes stays one flow of its last messages); at most
:data:`MAX_TEXT` characters per message and :data:`MAX_TOTAL_CHARS` in all.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Literal

from softphone.phone.api import FlowSummary, TracedMessage
from softphone.phone.trace_flow import Flow, parse_head

__all__ = [
    "MAX_CALL_FLOWS",
    "MAX_MESSAGES",
    "MAX_OTHER_FLOWS",
    "MAX_REGISTER_FLOWS",
    "MAX_TEXT",
    "MAX_TOTAL_CHARS",
    "SipTrace",
    "call_id_of",
    "redact",
]

MAX_MESSAGES: Final = 200
MAX_CALL_FLOWS: Final = 50  # as many as the phone keeps calls
MAX_REGISTER_FLOWS: Final = 10  # one per account, and one more after a failed one
MAX_OTHER_FLOWS: Final = 50
MAX_TEXT: Final = 16_384  # a longer message is cut (with a note): a trace is for reading
MAX_TOTAL_CHARS: Final = 8_000_000  # all kept messages together (a few MB)

# RFC 3261 §7.3.3: "i" is the compact form of Call-ID. Header names are case-insensitive.
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_AUTH_HEADER = re.compile(
    r"^((?:proxy-)?authorization[ \t]*:[ \t]*)(\S+)(.*)$", re.IGNORECASE | re.MULTILINE
)
_DIGEST_SECRET = re.compile(r'\b(response|cnonce)[ \t]*=[ \t]*("[^"]*"|[^,\s]+)', re.IGNORECASE)
# RFC 3261 §19.1.1: userinfo may carry a password ("sip:alice:secret@host"; NOT RECOMMENDED,
# but seen). The user part has no ':' of its own, so what follows one up to '@' is the password.
_URI_PASSWORD = re.compile(r"\b(sips?:[^:@\s<>;,\"]+):[^@\s<>;,\"]+@", re.IGNORECASE)
_URI_PASSWORD_AT = re.compile(r"sips?:[^:@\s<>;,\"]+:[^@\s<>;,\"]+@")  # on lower-cased text
# RFC 4568 §9.1: an a=crypto line carries the SRTP master key and salt after "inline:".
_SDES_KEY = re.compile(r"(inline:)[^\s|;]+", re.IGNORECASE)
REDACTED: Final = "<redacted>"


def call_id_of(data: bytes) -> str | None:
    head = data.split(b"\r\n\r\n", 1)[0]
    match = _CALL_ID.search(head)
    return match.group(1).decode("utf-8", "replace") if match else None


def redact(text: str) -> str:
    """Authorization and Proxy-Authorization (RFC 3261 §20.7, §20.28): a Digest response and
    cnonce become ``<redacted>``; any other scheme (Basic carries the password) loses its whole
    value. Usernames and realms stay: they help read a failed login. A password in a SIP URI
    (``sip:alice:secret@host``) becomes ``<redacted>`` too, wherever it appears, and so does the
    SRTP key of an ``a=crypto`` line (RFC 4568): the trace must not let anyone decrypt a call."""

    def one(match: re.Match[str]) -> str:
        prefix, scheme, rest = match.groups()
        if scheme.lower() == "digest":
            return (
                prefix + scheme + _DIGEST_SECRET.sub(lambda m: f'{m.group(1)}="{REDACTED}"', rest)
            )
        return f"{prefix}{scheme} {REDACTED}"

    # Most messages have neither: cheap look-ups first, so that a flood of them costs little.
    lowered = text.lower()
    if "authorization" in lowered:
        text = _AUTH_HEADER.sub(one, text)
    if _may_hold_uri_password(lowered):
        text = _URI_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    if "inline:" in lowered:
        text = _SDES_KEY.sub(rf"\1{REDACTED}", text)
    return text


def _may_hold_uri_password(lowered: str) -> bool:
    """Whether some ``sip:``/``sips:`` in the (lower-cased) text is followed by
    ``user:password@``: each candidate is checked where it starts, not by a search that tries
    every position."""
    start = lowered.find("sip")
    while start >= 0:
        if _URI_PASSWORD_AT.match(lowered, start):
            return True
        start = lowered.find("sip", start + 3)
    return False


class SipTrace:
    """Collects messages by Call-ID into flows. The bounds are the module's constants unless
    given (tests pass small ones)."""

    def __init__(
        self,
        wall_clock: Callable[[], float],
        *,
        max_call_flows: int = MAX_CALL_FLOWS,
        max_register_flows: int = MAX_REGISTER_FLOWS,
        max_other_flows: int = MAX_OTHER_FLOWS,
        max_messages: int = MAX_MESSAGES,
        max_total_chars: int = MAX_TOTAL_CHARS,
    ) -> None:
        self._clock = wall_clock
        self._max_flows = {
            "INVITE": max_call_flows,
            "REGISTER": max_register_flows,
            "": max_other_flows,
        }
        self._max_messages = max_messages
        self._max_chars = max_total_chars
        # One dict per kind (calls, registrations, the rest), least recently active first.
        self._flows: dict[str, OrderedDict[str, Flow]] = {k: OrderedDict() for k in self._max_flows}
        self._chars = 0

    @property
    def stored_chars(self) -> int:
        """Characters of message text kept now (what the total bound limits)."""
        return self._chars

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
        message = TracedMessage(
            at=self._clock(),
            direction=direction,
            local=local,
            remote=remote,
            first_line=first_line,
            text=text,
        )
        head = parse_head(text)
        flow = self._find(call_id)
        if flow is None:
            flow = Flow(call_id, message, head)
            kind = _kind(flow)
            flows = self._flows[kind]
            flows[call_id] = flow
            while len(flows) > self._max_flows[kind]:
                self._chars -= flows.popitem(last=False)[1].chars
        else:
            self._flows[_kind(flow)].move_to_end(call_id)
        self._chars += flow.add(message, head, self._max_messages)
        self._trim(keep=flow)

    def _find(self, call_id: str) -> Flow | None:
        return next((f[call_id] for f in self._flows.values() if call_id in f), None)

    def _trim(self, keep: Flow) -> None:
        """Over the total bound: drop whole flows, least recently active first (``keep``, the one
        just added to, last), then ``keep``'s oldest messages."""
        while self._chars > self._max_chars:
            oldest = [
                (flow.last_at, kind, key)
                for kind, flows in self._flows.items()
                for key, flow in flows.items()
                if flow is not keep
            ]
            if not oldest:
                break
            _, kind, key = min(oldest)
            self._chars -= self._flows[kind].pop(key).chars
        while self._chars > self._max_chars and len(keep.messages) > 1:
            self._chars -= keep.drop_oldest()

    def messages(self, flow_id: str) -> list[TracedMessage]:
        flow = self._find(flow_id)
        return list(flow.messages) if flow is not None else []

    def flows(self) -> list[FlowSummary]:
        """Every flow kept, newest (by its first message) first."""
        every = [f for flows in self._flows.values() for f in flows.values()]
        every.sort(key=lambda f: f.started_at, reverse=True)
        return [f.summary() for f in every]


def _kind(flow: Flow) -> str:
    """Which bound a flow counts against: calls, registrations, or the rest ("")."""
    return flow.method if flow.method in ("INVITE", "REGISTER") else ""
