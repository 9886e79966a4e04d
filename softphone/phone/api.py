"""The phone façade as the TUI sees it: a structural :class:`PhoneApi` protocol.

The TUI talks only to this protocol. The real :class:`softphone.phone.phone.Phone` satisfies it,
and so do :class:`~softphone.phone.threaded.ThreadedPhone` (a Phone on a thread of its own: what
``softphone`` runs) and the scripted ``FakePhone`` in ``tests/phone_fake.py`` (Pilot tests drive
the app against the fake). ``tests/phone/test_phone_api.py`` checks all three, for mypy by typed
assignment and at run time by comparing signatures with :mod:`inspect`.

Every member below mirrors the real Phone's signature exactly; nothing here is aspirational.

Contracts the TUI may rely on (every implementation keeps them):

- Actions that fail raise ``softphone.phone.errors.PhoneError`` with a sentence for a person.
- Registration changes arrive as ``Registering``/``Registered``/``RegistrationFailed``/
  ``Unregistered`` (and ``NoAnswerYet`` while a registrar is silent);
  :attr:`PhoneApi.registrations` is the state they lead to. After ``apply_accounts`` returns,
  ``accounts`` and ``registrations`` list the new accounts (a removed one is gone at once; its
  ``Unregistered`` may come later).
- ``mute`` emits ``MuteChanged`` and ``record`` emits ``RecordingChanged`` (at once, in the call).
  ``set_echo_cancellation`` emits ``EchoCancellationChanged`` at once.
  In a conference ``mute`` applies to every call of it (one ``MuteChanged`` each).
- ``join``/``split`` emit ``ConferenceChanged`` at once (a party that ends or is held leaves
  and emits it too); resuming a held call on ``join`` and holding the other on ``split`` come
  later as call-state changes.
- Every call-state change arrives as :class:`~softphone.phone.events.CallStateChanged`; an ended
  call is ``CallStateChanged(state="ended")`` followed by :class:`~softphone.phone.events.CallEnded`.
- ``dial`` returns the call id after ``CallStateChanged(state="calling")`` is queued; ringing and
  established arrive later. ``hold``/``resume``/``transfer``/``answer`` return before their
  outcome: the state change (``held``, ``established``) or ``TransferProgressed`` comes as events.
- ``send_message`` returns the message's id after ``MessageStatusChanged(state="sending")`` is
  queued; ``delivered`` (a 2xx) or ``failed`` (with the status and reason) comes later with that
  id. A message for us arrives as ``MessageReceived``. A message to a party we are in a call
  with goes in that call (``call_id`` set on its events).
- Presence: ``set_presence`` emits ``OwnPresenceChanged`` at once (and again when a call makes
  what is shown ``busy``); ``watch(uri)`` makes ``uri`` one of :attr:`PhoneApi.watched` (state
  ``unknown`` until the first NOTIFY), and every change of it arrives as ``PresenceChanged``
  with that same ``uri`` text; ``unwatch`` removes it. Message waiting arrives as
  ``MessageWaiting``; :attr:`PhoneApi.voicemail` is the state it leads to.
- ``events()``, ``next_event()`` and ``next_event_nowait()`` read one shared queue: a front end
  uses exactly one consumer (the TUI bridge worker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from softphone.config import Account
from softphone.phone.events import (
    CallStateName,
    LampName,
    PhoneEvent,
    PresenceChoice,
    PresenceStateName,
)

__all__ = [
    "CallFlowState",
    "CallSnapshot",
    "CallView",
    "ContactPresence",
    "FlowSummary",
    "OwnPresence",
    "PhoneApi",
    "Registration",
    "RegistrationState",
    "StreamSummary",
    "TracedMessage",
    "Voicemail",
]

RegistrationState = Literal["none", "registering", "registered", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """One account as the status bar shows it. ``state`` is ``"none"`` for an account without a
    registrar (peer to peer) and after unregistering."""

    account: str
    aor: str  # the account's address of record, e.g. "sip:alice@example.com"
    transport: str  # "udp" | "tcp" | "tls"
    state: RegistrationState
    expires_at: float | None = None  # wall clock (time.time()) when the binding runs out
    reason: str | None = None  # why it failed, in words
    retry_in_s: float | None = None  # when a failed registration is tried again
    server: str | None = None  # while registering: the next hop the REGISTER went to, host:port
    no_answer: bool = False  # while registering: that server has not answered at all yet


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactPresence:
    """A watched party as its lamp shows it (PresenceChanged carries the same fields)."""

    uri: str  # as given to ``watch``
    state: PresenceStateName = "unknown"
    note: str | None = None
    lamp: LampName = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnPresence:
    """Our presence: the ``state`` chosen, what is ``shown`` (``busy`` during a call unless the
    choice is ``dnd``), the note, and the accounts it is published for."""

    state: PresenceChoice = "available"
    shown: PresenceChoice = "available"
    note: str | None = None
    on_the_phone: bool = False
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    """An account's voicemail box as the last message-waiting NOTIFY told it (RFC 3842)."""

    account: str
    waiting: bool
    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TracedMessage:
    """One SIP message of a call, as sent or received, for the ladder (sngrep-like) screen.
    ``text`` is the whole message with Authorization/Proxy-Authorization values redacted."""

    at: float  # wall clock (time.time())
    direction: Literal["sent", "received"]
    local: str  # "udp:192.0.2.1:5060"
    remote: str  # the address it went to or came from, same form
    first_line: str  # "INVITE sip:bob@example.com SIP/2.0" or "SIP/2.0 180 Ringing"
    text: str


class CallFlowState(Enum):
    """How an INVITE dialog went, as its messages tell it (the words of sngrep's call list)."""

    SETUP = "CALL SETUP"  # INVITE sent or received, no final answer yet
    IN_CALL = "IN CALL"  # answered (2xx), no BYE yet
    COMPLETED = "COMPLETED"  # BYE
    CANCELLED = "CANCELLED"  # 487 Request Terminated (after CANCEL)
    REJECTED = "REJECTED"  # any other 4xx-6xx to the INVITE
    BUSY = "BUSY"  # 486 Busy Here, 600 Busy Everywhere
    DIVERTED = "DIVERTED"  # 3xx redirection


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSummary:
    """One SIP flow, for the flows list (sngrep's call list): every message of one Call-ID. A
    call, an account's registration with all its refreshes (one Call-ID, RFC 3261 §10.2.4), an
    OPTIONS, a MESSAGE or a NOTIFY outside any call are each one flow."""

    flow_id: str  # the Call-ID; ``sip_flow(flow_id)`` gives the messages
    method: str  # of the flow's first request: "INVITE", "REGISTER", "OPTIONS", "NOTIFY", ...
    started_at: float  # wall clock (time.time()) of the first message
    last_at: float  # wall clock of the latest message
    from_uri: str  # From of the first message, without tag or display name ("" when missing)
    to_uri: str  # To of the first message, likewise
    remote: str  # where the first message went or came from: "udp:192.0.2.1:5060"
    message_count: int  # every message seen, also those no longer kept
    call_state: CallFlowState | None  # INVITE flows only
    last_status: str | None  # the latest final response ("200 OK"), else the latest provisional

    @property
    def is_call(self) -> bool:
        return self.method == "INVITE"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSummary:
    """One direction of a call's RTP stream as it is now, for the glance under the SIP ladder.

    ``sent``: what we send; its loss and jitter are what the peer last reported about it in
    RTCP (RFC 3550 §6.4.1; None before its first report). ``received``: what we receive,
    measured here (loss over the call, RFC 3550 §A.3; interarrival jitter, §A.8), and the
    jitter buffer's delay."""

    direction: Literal["sent", "received"]
    ssrc: int | None  # the sender's; None for ``received`` until its first packet
    local: str  # our RTP address: "192.0.2.1:40000"
    remote: str  # the peer's: where we send, or where packets come from ("" when unknown)
    codec: str  # "opus", "PCMU", "G722", "-" before any
    payload_type: int | None
    clock_rate: int | None
    packets: int
    lost: int | None
    loss_percent: float | None
    jitter_ms: float | None
    jitter_buffer_ms: float | None  # received only: the playout delay of the jitter buffer


class CallView(Protocol):
    """What the TUI may read about one call (``Phone.calls`` yields ``CallInfo``, which fits;
    ``ThreadedPhone`` hands out :class:`CallSnapshot` copies).

    Read-only: the TUI never writes to a call; it asks the phone to act."""

    @property
    def call_id(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def direction(self) -> Literal["outgoing", "incoming"]: ...
    @property
    def remote(self) -> str:
        """The far end's URI as text (``sip:bob@example.com``): the address dialled, or the
        caller's From URI. Never header text: the display name is :attr:`display_name`."""

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
    @property
    def display_name(self) -> str | None:
        """The far end's display name from From (incoming calls), when it sent one."""

    @property
    def muted(self) -> bool: ...
    @property
    def conference(self) -> bool:
        """Mixed with other calls in the local conference (``join``)."""

    @property
    def codec(self) -> str | None:
        """The negotiated audio codec's encoding name ("opus", "PCMU", "G722"); None before SDP."""

    @property
    def encryption(self) -> Literal["none", "sdes", "dtls-srtp"]:
        """What protects the call's media: SRTP keyed by SDES or by DTLS-SRTP, or nothing."""

    @property
    def srtp_suite(self) -> str | None:
        """The SRTP suite ("AES_CM_128_HMAC_SHA1_80"...); None for plain RTP or before keys."""

    @property
    def has_video(self) -> bool:
        """SDP settled a video stream for the call (``set_video`` adds or removes it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSnapshot:
    """One call as it was when :meth:`of` copied it: a frozen :class:`CallView`. The phone's own
    records change as the call goes on, so a phone on another thread hands these out instead
    (``ThreadedPhone`` copies on the phone's thread, where nothing changes the call meanwhile)."""

    call_id: str
    account: str
    direction: Literal["outgoing", "incoming"]
    remote: str
    state: CallStateName
    started_at: float
    established_at: float | None
    local_hold: bool
    remote_hold: bool
    recording_path: Path | None
    display_name: str | None
    muted: bool
    codec: str | None
    encryption: Literal["none", "sdes", "dtls-srtp"] = "none"
    srtp_suite: str | None = None
    conference: bool = False
    has_video: bool = False

    @classmethod
    def of(cls, call: CallView) -> CallSnapshot:
        return cls(
            call_id=call.call_id,
            account=call.account,
            direction=call.direction,
            remote=call.remote,
            state=call.state,
            started_at=call.started_at,
            established_at=call.established_at,
            local_hold=call.local_hold,
            remote_hold=call.remote_hold,
            recording_path=call.recording_path,
            display_name=call.display_name,
            muted=call.muted,
            codec=call.codec,
            encryption=call.encryption,
            srtp_suite=call.srtp_suite,
            conference=call.conference,
            has_video=call.has_video,
        )


@runtime_checkable
class PhoneApi(Protocol):
    """Everything the TUI calls on the phone. Signatures are the real Phone's, verbatim."""

    # lifecycle
    async def start(self) -> None: ...
    async def stop(self) -> None:
        """Hang up every call, unregister, close sockets."""

    @property
    def accounts(self) -> list[str]:
        """Account names in config order (``"local"`` when none is configured), once started."""

    @property
    def registrations(self) -> Mapping[str, Registration]:
        """Account name -> its registration now, in config order."""

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

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        """Use ``accounts`` from now on, without a restart: a new account registers, a removed
        one unregisters, a changed one registers again (at its new registrar, with its new
        password...). Calls go on, each with the account it began with. An account whose
        server cannot be found gets RegistrationFailed; the others apply all the same."""

    # actions
    async def dial(self, target: str, *, account: str | None = None) -> str:
        """Call ``target`` (a SIP URI or a number on the account's domain); returns the call id."""

    async def answer(self, call_id: str) -> None: ...
    async def reject(self, call_id: str, *, status: int = 486) -> None: ...
    async def hangup(self, call_id: str) -> None: ...
    async def hold(self, call_id: str) -> None: ...
    async def set_video(self, call_id: str, on: bool) -> None:
        """Add video to the call, or take it away, by re-INVITE."""

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        """The call's video for a ``width`` x ``height`` pixel box: the far end's picture
        (aspect kept) with our self-view in its corner; None without video."""

    async def resume(self, call_id: str) -> None: ...
    async def transfer(self, call_id: str, target: str) -> None:
        """Blind transfer (REFER); progress comes as TransferProgressed events."""

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        """Attended transfer (RFC 5589 §7): connect the peer of ``call_id`` (usually held) with
        the peer of ``other_call_id``, then leave both. Progress comes as TransferProgressed
        events on ``call_id``; on success both our calls end."""

    async def join(self, call_id: str, other_call_id: str) -> None:
        """A local conference: mix the two calls (resuming a held one) so that each party hears
        the other and us; a call already in the conference brings the others along. Emits
        ConferenceChanged."""

    async def split(self, call_id: str) -> None:
        """End the conference: ``call_id`` stays active, the other calls are put on hold."""

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        """Returns the method used: ``"rtp"`` (RFC 4733) or ``"info"``."""

    async def send_message(
        self,
        target: str,
        text: str,
        *,
        account: str | None = None,
        content_type: str = "text/plain",
    ) -> str:
        """Send ``text`` as an instant message to ``target`` (what ``dial`` takes); returns the
        message's id. PhoneError (AddressError for a bad target) when it cannot be sent: an
        empty text, a content type that does not parse, a charset that cannot hold the text,
        a message too big."""

    def mute(self, call_id: str, muted: bool) -> None: ...

    @property
    def echo_cancellation(self) -> bool:
        """Echo cancellation (with noise suppression) is on for the sound
        card's microphone. Always False when the phone plays and records files."""

    def set_echo_cancellation(self, on: bool) -> None:
        """Switch echo cancellation on or off, for the calls up too; emits
        ``EchoCancellationChanged``. PhoneError when it cannot be turned on (no sound card,
        or the canceller cannot run here: the message says why)."""

    def record(self, call_id: str, on: bool) -> Path | None:
        """Start or stop recording; returns the WAV file's path."""

    def silence(self, call_id: str) -> None:
        """Stop ringing for this incoming call without answering or rejecting it."""

    def levels(self, call_id: str) -> tuple[float, float] | None:
        """(microphone dBFS, speaker dBFS) now, for meters at ~10 Hz; None without audio."""

    def sip_flows(self) -> list[FlowSummary]:
        """Every SIP flow the phone still keeps (the last 50 calls and the last 50 other flows),
        newest first."""

    def sip_flow(self, flow_id: str) -> list[TracedMessage]:
        """One flow's SIP messages in order (the last 200), passwords redacted; a call's flow id is
        its call id. Empty for a flow the phone does not keep (never seen, or dropped)."""

    def rtp_streams(self, call_id: str) -> list[StreamSummary]:
        """The call's RTP streams now (sent, then received), or as they were when its audio
        closed; empty before it had audio. Raises PhoneError for an unknown call."""

    async def play_file(self, path: Path) -> None:
        """Play a WAV file (a recording) on the speaker; returns when it is done or stopped.
        Raises PhoneError when the file cannot be read or there is no output device."""

    def stop_playback(self) -> None:
        """Stop what ``play_file`` plays (nothing happens when nothing plays)."""

    # presence, busy lamps, message waiting
    def set_presence(self, state: str, note: str | None = None) -> None:
        """Choose our presence: ``available``, ``away``, ``busy`` or ``dnd`` (published for every
        account with presence on; ``dnd`` also refuses incoming calls with 480). PhoneError for
        any other state."""

    @property
    def presence(self) -> OwnPresence: ...

    def watch(self, uri: str) -> None:
        """Follow ``uri``'s presence and busy lamp (PresenceChanged). AddressError for text that
        is not an address."""

    def unwatch(self, uri: str) -> None:
        """Stop following ``uri`` (nothing happens when it was not watched)."""

    @property
    def watched(self) -> Mapping[str, ContactPresence]:
        """Every watched ``uri`` (as given to ``watch``) -> its presence now."""

    @property
    def voicemail(self) -> Mapping[str, Voicemail]:
        """Account name -> its voicemail box, for accounts a message-waiting NOTIFY came for."""

    def config_warning(self) -> str | None:
        """When the config file holds a password and other users can read it, the warning to
        show (with the fix: :meth:`protect_config`); None otherwise."""

    def protect_config(self) -> None:
        """Make the config file readable by its owner only (0600). Raises PhoneError when it
        cannot."""
