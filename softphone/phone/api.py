"""The phone façade as the TUI sees it: a structural :class:`PhoneApi` protocol.

The TUI (issue 5) talks only to this protocol. Two things satisfy it: the real
:class:`softphone.phone.phone.Phone` and the scripted ``FakePhone`` in ``tests/phone_fake.py``
(Pilot tests drive the app against the fake). ``tests/phone/test_phone_api.py`` checks both,
for mypy by typed assignment and at run time by comparing signatures with :mod:`inspect`.

Every member below mirrors the real Phone's signature exactly; nothing here is aspirational.
What the TUI needs but the Phone does not have yet (registration state per account, a frozen
call snapshot with codec and mute state, audio levels at meter rate, the SIP trace of a call,
silencing the ringer) is listed in ``PHONE_API_GAPS`` so the lead can add it to the Phone first
and to this protocol second.

Contracts the TUI may rely on (both implementations keep them):

- Actions that fail raise ``softphone.phone.phone.PhoneError`` with a sentence for a person.
- Every call-state change arrives as :class:`~softphone.phone.events.CallStateChanged`; an ended
  call is ``CallStateChanged(state="ended")`` followed by :class:`~softphone.phone.events.CallEnded`.
- ``dial`` returns the call id after ``CallStateChanged(state="calling")`` is queued; ringing and
  established arrive later. ``hold``/``resume``/``transfer``/``answer`` return before their
  outcome: the state change (``held``, ``established``) or ``TransferProgressed`` comes as events.
- ``events()``, ``next_event()`` and ``next_event_nowait()`` read one shared queue: a front end
  uses exactly one consumer (the TUI bridge worker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final, Literal, Protocol, runtime_checkable

from softphone.phone.events import CallStateName, PhoneEvent

__all__ = ["PHONE_API_GAPS", "CallView", "PhoneApi"]


class CallView(Protocol):
    """What the TUI may read about one call (``Phone.calls`` yields ``CallInfo``, which fits).

    Read-only: the TUI never writes to a call; it asks the phone to act."""

    @property
    def call_id(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def direction(self) -> Literal["outgoing", "incoming"]: ...
    @property
    def remote(self) -> str: ...
    @property
    def state(self) -> CallStateName: ...
    @property
    def started_at(self) -> float:
        """Monotonic seconds (the event loop's clock) when the call began."""
    @property
    def established_at(self) -> float | None:
        """Monotonic seconds when it was answered; None until then (the call timer starts here)."""
    @property
    def local_hold(self) -> bool: ...
    @property
    def remote_hold(self) -> bool: ...
    @property
    def recording_path(self) -> Path | None: ...


@runtime_checkable
class PhoneApi(Protocol):
    """Everything the TUI calls on the phone. Signatures are the real Phone's, verbatim."""

    # lifecycle
    async def start(self) -> None: ...
    async def stop(self) -> None:
        """Hang up every call, unregister, close sockets."""

    # the event stream (one consumer)
    def events(self) -> AsyncIterator[PhoneEvent]:
        """An endless async iterator of events (the Phone's is an async generator)."""
    async def next_event(self) -> PhoneEvent: ...
    def next_event_nowait(self) -> PhoneEvent | None: ...

    # calls
    @property
    def calls(self) -> Sequence[CallView]:
        """Every call the phone knows, ended ones included (the last 50), oldest first."""
    def call(self, call_id: str) -> CallView:
        """One call; raises PhoneError for an unknown id."""
    def call_stats(self, call_id: str) -> dict[str, object] | None:
        """The call's audio statistics now (keys as in ``MediaStats``), or its last ones once ended;
        None before it had audio."""

    # actions
    async def dial(self, target: str, *, account: str | None = None) -> str:
        """Call ``target`` (a SIP URI or a number on the account's domain); returns the call id."""
    async def answer(self, call_id: str) -> None: ...
    async def reject(self, call_id: str, *, status: int = 486) -> None: ...
    async def hangup(self, call_id: str) -> None: ...
    async def hold(self, call_id: str) -> None: ...
    async def resume(self, call_id: str) -> None: ...
    async def transfer(self, call_id: str, target: str) -> None:
        """Blind transfer (REFER); progress comes as TransferProgressed events."""
    async def send_dtmf(self, call_id: str, digits: str) -> str:
        """Returns the method used: ``"rtp"`` (RFC 4733) or ``"info"``."""
    def mute(self, call_id: str, muted: bool) -> None: ...
    def record(self, call_id: str, on: bool) -> Path | None:
        """Start or stop recording; returns the WAV file's path."""


# What the TUI (issue 5) needs that the real Phone lacks: the proposed member (or event, or module)
# -> its signature and why.
# Add each to Phone, then to PhoneApi above (the conformance test keeps them in step).
PHONE_API_GAPS: Final[dict[str, str]] = {
    "registrations": (
        "@property def registrations(self) -> Mapping[str, Registration]  # account name -> "
        "Registration(account, transport, state: Literal['none', 'registering', 'registered', "
        "'failed'], expires_at: float | None, reason: str | None). Today: only events, the private "
        "_registered dict and the blocking wait_registered()."
    ),
    "accounts": (
        "@property def accounts(self) -> Sequence[str]  # names in config order, 'local' when none "
        "is configured (start() invents it; the TUI cannot know its name otherwise)."
    ),
    "calls": (
        "CallInfo is mutable and carries rtp/audio/engine internals; propose @property def calls("
        "self) -> Sequence[CallSnapshot] with a frozen CallSnapshot(call_id, account, direction, "
        "remote, display_name, state, started_at, established_at, local_hold, remote_hold, "
        "muted, codec: str | None, recording_path). codec, muted and display_name are missing today."
    ),
    "MuteChanged": (
        "mute() emits nothing and is silently ignored before the call has audio (ringing); propose "
        "storing muted on the call (applied when audio starts) and emitting "
        "MuteChanged(call_id, muted)."
    ),
    "RecordingChanged": (
        "record() emits nothing; propose RecordingChanged(call_id, path: str | None)."
    ),
    "levels": (
        "def levels(self, call_id: str) -> tuple[float, float] | None  # (mic_dbfs, speaker_dbfs) "
        "now, for meters at ~10 Hz; today they come only in CallStats every 5 s."
    ),
    "sip_trace": (
        "def sip_trace(self, call_id: str) -> Sequence[TracedMessage]  # TracedMessage(at: float, "
        "direction: Literal['sent', 'received'], local: str, remote: str, first_line: str, "
        "text: str) with Authorization redacted, for the ladder screen."
    ),
    "silence": (
        "def silence(self, call_id: str) -> None  # stop ringing for this incoming call without "
        "answering or rejecting it (the incoming-call modal's 'silence')."
    ),
    "errors": (
        "PhoneError lives in softphone.phone.phone, which imports sockets, numpy and the codecs; "
        "propose softphone/phone/errors.py so the TUI can catch it with a light import."
    ),
}
