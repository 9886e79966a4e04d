"""One SIP flow of the trace (every message of one Call-ID) and what its messages say: the method
that started it, From and To, the latest status and, for an INVITE dialog, how the call went.

The state of a call is read from the messages alone, as sngrep reads a capture: the phone's own
call records are kept for fewer calls than the trace, and a trace must describe what went over
the wire even when the phone's view of it differs. :data:`TRANSITIONS` is the table.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from softphone.phone.api import CallFlowState, FlowSummary, TracedMessage

__all__ = [
    "TRANSITIONS",
    "Flow",
    "FlowInput",
    "MessageHead",
    "flow_input",
    "parse_head",
]

# RFC 3261 §7.3.3: "f" and "t" are the compact forms of From and To; §20.16: CSeq has none.
# Header names are case-insensitive (§7.3.1).
_HEAD_NAMES: Final = {"from": "from", "f": "from", "to": "to", "t": "to", "cseq": "cseq"}
_CSEQ_VALUE: Final = re.compile(r"\d+[ \t]+(\S+)")
# RFC 3261 §7.1 Request-Line: Method SP Request-URI SP SIP-Version; §7.2 Status-Line:
# SIP-Version SP Status-Code SP Reason-Phrase.
_STATUS_LINE: Final = re.compile(r"^SIP/\d+\.\d+[ \t]+(\d{3})(?:[ \t]+(.*))?$", re.IGNORECASE)
_REQUEST_LINE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9.!%*_+`'~-]*)[ \t]+\S+[ \t]+SIP/", re.ASCII)


@dataclass(frozen=True, slots=True)
class MessageHead:
    """What the trace reads from one message: a request's method or a response's status, the
    CSeq method, and From/To as bare URIs."""

    method: str | None  # of a request
    status: int | None  # of a response
    reason: str
    cseq_method: str | None
    from_uri: str
    to_uri: str

    @property
    def status_text(self) -> str:
        return f"{self.status} {self.reason}".strip()


def _uri(value: str) -> str:
    """The URI of a From/To value (RFC 3261 §20.10): inside <...> when there are angle brackets,
    else up to the first ';' (header parameters such as the tag follow it)."""
    value = value.strip()
    if "<" in value:
        inner = value.split("<", 1)[1]
        return inner.split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip()


def parse_head(text: str) -> MessageHead:
    """Read ``text`` (a whole message, LF line ends) leniently: whatever is missing is empty."""
    head = text.split("\n\n", 1)[0]
    first = head.split("\n", 1)[0].strip()
    method: str | None = None
    status: int | None = None
    reason = ""
    if (match := _STATUS_LINE.match(first)) is not None:
        status, reason = int(match.group(1)), (match.group(2) or "").strip()
    elif (match := _REQUEST_LINE.match(first)) is not None:
        method = match.group(1).upper()
    # One pass over the lines: the first From, To and readable CSeq count.
    found: dict[str, str] = {}
    for line in head.split("\n"):
        name, colon, value = line.partition(":")
        field = _HEAD_NAMES.get(name.rstrip(" \t").lower()) if colon else None
        if field is None or field in found:
            continue
        value = value.lstrip(" \t")
        if field == "cseq":
            match = _CSEQ_VALUE.match(value)
            if match is None:
                continue
            value = match.group(1).upper()
        found[field] = value
    return MessageHead(
        method=method,
        status=status,
        reason=reason,
        cseq_method=found.get("cseq"),
        from_uri=_uri(found["from"]) if "from" in found else "",
        to_uri=_uri(found["to"]) if "to" in found else "",
    )


# --- how a call went -------------------------------------------------------------------------
class FlowInput(Enum):
    """What a message of an INVITE flow means for the call."""

    INVITE = auto()  # an INVITE (the first, a retry with credentials, or a re-INVITE)
    CANCEL = auto()
    BYE = auto()
    ANSWERED = auto()  # 2xx to INVITE
    REDIRECTED = auto()  # 3xx to INVITE
    BUSY = auto()  # 486 or 600 to INVITE
    CANCELLED = auto()  # 487 to INVITE
    REFUSED = auto()  # any other 4xx-6xx to INVITE


def flow_input(head: MessageHead) -> FlowInput | None:
    """The input a message is, or None when it changes nothing (ACK, provisional responses,
    responses to anything but INVITE, other requests)."""
    if head.method is not None:
        return {"INVITE": FlowInput.INVITE, "CANCEL": FlowInput.CANCEL, "BYE": FlowInput.BYE}.get(
            head.method
        )
    status = head.status
    if status is None or status < 200 or head.cseq_method != "INVITE":
        return None
    if status < 300:
        return FlowInput.ANSWERED
    if status < 400:
        return FlowInput.REDIRECTED
    if status in (486, 600):  # RFC 3261 §21.4.24 Busy Here, §21.6.1 Busy Everywhere
        return FlowInput.BUSY
    if status == 487:  # §21.4.25 Request Terminated: the answer to a CANCELled INVITE (§9.2)
        return FlowInput.CANCELLED
    return FlowInput.REFUSED


S, In = CallFlowState, FlowInput
_ENDED_WITHOUT_ANSWER: Final = (S.CANCELLED, S.REJECTED, S.BUSY, S.DIVERTED)
# Every (state, input) pair is listed. Why the less obvious ones go where they go:
# - an INVITE after a refusal is the retry with credentials (RFC 3261 §22.2, same Call-ID) or
#   to a redirection's target: the call is being set up again;
# - a 2xx may still come after CANCEL or after a final error on another branch (§9.1, §13.2.2.4):
#   the dialog exists, and is in a call until its BYE;
# - in a call, a failed re-INVITE leaves the call as it was (§14.1), and so does a CANCEL;
# - after BYE nothing brings the call back: what follows are retransmissions.
TRANSITIONS: Final[Mapping[tuple[CallFlowState, FlowInput], CallFlowState]] = {
    **{(S.SETUP, i): S.SETUP for i in (In.INVITE, In.CANCEL)},
    (S.SETUP, In.BYE): S.COMPLETED,
    (S.SETUP, In.ANSWERED): S.IN_CALL,
    (S.SETUP, In.REDIRECTED): S.DIVERTED,
    (S.SETUP, In.BUSY): S.BUSY,
    (S.SETUP, In.CANCELLED): S.CANCELLED,
    (S.SETUP, In.REFUSED): S.REJECTED,
    **{(S.IN_CALL, i): S.IN_CALL for i in In if i is not In.BYE},
    (S.IN_CALL, In.BYE): S.COMPLETED,
    **{(S.COMPLETED, i): S.COMPLETED for i in In},
    **{(s, In.INVITE): S.SETUP for s in _ENDED_WITHOUT_ANSWER},
    **{(s, In.ANSWERED): S.IN_CALL for s in _ENDED_WITHOUT_ANSWER},
    **{(s, In.BYE): S.COMPLETED for s in _ENDED_WITHOUT_ANSWER},
    **{
        (s, i): s
        for s in _ENDED_WITHOUT_ANSWER
        for i in (In.CANCEL, In.REDIRECTED, In.BUSY, In.CANCELLED, In.REFUSED)
    },
}


# --- one flow --------------------------------------------------------------------------------
class Flow:
    """The kept messages of one Call-ID (the last ``max_messages``) and its summary so far."""

    __slots__ = (
        "call_state",
        "chars",
        "count",
        "flow_id",
        "from_uri",
        "last_at",
        "last_final",
        "last_status",
        "messages",
        "method",
        "remote",
        "started_at",
        "to_uri",
    )

    def __init__(self, flow_id: str, message: TracedMessage, head: MessageHead) -> None:
        self.flow_id = flow_id
        self.started_at = message.at
        self.remote = message.remote
        # A flow that starts with a response (its request was dropped from the trace) is named
        # by the method its CSeq answers.
        self.method = head.method or head.cseq_method or "?"
        self.from_uri = head.from_uri
        self.to_uri = head.to_uri
        self.call_state: CallFlowState | None = S.SETUP if self.method == "INVITE" else None
        self.last_status: str | None = None
        self.last_final = False
        self.last_at = message.at
        self.count = 0
        self.chars = 0
        self.messages: deque[TracedMessage] = deque()

    def add(self, message: TracedMessage, head: MessageHead, max_messages: int) -> int:
        """Keep ``message`` (dropping the oldest beyond ``max_messages``); returns the change in
        characters kept."""
        change = len(message.text)
        self.messages.append(message)
        while len(self.messages) > max_messages:
            change -= len(self.messages.popleft().text)
        self.chars += change
        self.count += 1
        self.last_at = message.at
        if head.status is not None:
            final = head.status >= 200
            if final or not self.last_final:
                self.last_status, self.last_final = head.status_text, final
        if head.method is not None:
            self.last_final = False  # a new request: its provisional answers show again
        if self.call_state is not None and (step := flow_input(head)) is not None:
            self.call_state = TRANSITIONS[(self.call_state, step)]
        return change

    def drop_oldest(self) -> int:
        """Forget the oldest kept message (the summary stays); returns the characters freed."""
        freed = len(self.messages.popleft().text) if self.messages else 0
        self.chars -= freed
        return freed

    def summary(self) -> FlowSummary:
        return FlowSummary(
            flow_id=self.flow_id,
            method=self.method,
            started_at=self.started_at,
            last_at=self.last_at,
            from_uri=self.from_uri,
            to_uri=self.to_uri,
            remote=self.remote,
            message_count=self.count,
            call_state=self.call_state,
            last_status=self.last_status,
        )
