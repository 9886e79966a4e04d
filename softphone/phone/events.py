"""Domain events the phone publishes to front ends (CLI, TUI). Frozen, past tense, snake_case
fields: the CLI's ``--json`` output is these events, one per line, with ``"event"`` = ``kind``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

# The base class and the player's events live in player_events.py; front ends find them here too.
from softphone.phone.outcome import Outcome
from softphone.phone.player_events import (
    FirstFrame,
    Notice,
    PhoneEvent,
    StreamDescribed,
    StreamFailed,
    StreamInfo,
    StreamPaused,
    StreamPlaying,
    StreamReconnecting,
    StreamStats,
    StreamSummary,
)

CallStateName = Literal["calling", "ringing", "early", "established", "held", "ended"]
# Presence (phone/presence.py): what a watched party's PIDF says, what its busy lamp shows.
PresenceStateName = Literal["available", "away", "busy", "dnd", "offline", "unknown"]
PresenceChoice = Literal["available", "away", "busy", "dnd"]  # what we can publish
LampName = Literal["idle", "ringing", "busy", "unknown"]

__all__ = [
    "CallEnded",
    "CallStateChanged",
    "CallStateName",
    "CallStats",
    "ConferenceChanged",
    "DtmfReceived",
    "EchoCancellationChanged",
    "FirstFrame",
    "IncomingCall",
    "LampName",
    "Listening",
    "MessageReceived",
    "MessageState",
    "MessageStatusChanged",
    "MessageWaiting",
    "MuteChanged",
    "NoAnswerYet",
    "Notice",
    "OwnPresenceChanged",
    "PhoneEvent",
    "PresenceChanged",
    "PresenceChoice",
    "PresenceStateName",
    "RecordingChanged",
    "Registered",
    "Registering",
    "RegistrationFailed",
    "StreamDescribed",
    "StreamFailed",
    "StreamInfo",
    "StreamPaused",
    "StreamPlaying",
    "StreamReconnecting",
    "StreamStats",
    "StreamSummary",
    "TransferProgressed",
    "Unregistered",
    "VideoPictureChanged",
    "VideoSourceLost",
    "VoicemailRecorded",
    "VoicemailStarted",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Listening(PhoneEvent):
    kind: ClassVar[str] = "listening"
    transport: str
    host: str
    port: int
    fallback: bool = False  # the default port was taken and another one was chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered(PhoneEvent):
    kind: ClassVar[str] = "registered"
    account: str
    expires: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationFailed(PhoneEvent):
    kind: ClassVar[str] = "registration_failed"
    account: str
    status: int
    reason: str
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregistered(PhoneEvent):
    kind: ClassVar[str] = "unregistered"
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(PhoneEvent):
    """A call for us. ``remote`` is the caller's URI as text (what to call back), never the From
    header's text: ``display_name`` is the name the caller sent beside it, if any."""

    kind: ClassVar[str] = "incoming_call"
    call_id: str
    account: str
    remote: str
    display_name: str | None
    waiting: bool  # another call is already up (call waiting)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged(PhoneEvent):
    kind: ClassVar[str] = "call_state"
    call_id: str
    state: CallStateName
    direction: Literal["outgoing", "incoming"]
    remote: str
    encryption: Literal["none", "sdes", "dtls-srtp"] = "none"  # what protects the media
    srtp_suite: str | None = None  # DTLS-SRTP: None until the handshake has chosen it
    # The session timer agreed with the far end (RFC 4028): without a refresh within this many
    # seconds the call ends ("session expired"). None: no session timer.
    session_expires_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(PhoneEvent):
    """A call ended. ``status`` is its final SIP status (200 once answered), ``phrase`` the
    reason phrase that came with it (empty when none came), ``reason`` the explanation in words,
    and ``outcome`` what it means (busy, declined, no answer, ...: see phone/outcome.py)."""

    kind: ClassVar[str] = "call_ended"
    call_id: str
    status: int
    reason: str
    outcome: Outcome
    phrase: str = ""
    duration_s: float  # talk time; 0 when never established
    answered: bool
    stats: dict[str, Any] | None = None  # the call's last audio statistics (see CallStats)
    recording: str | None = None  # the call recording's path, when the call was recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStats(PhoneEvent):
    """Every few seconds while a call has audio: codec, packets, loss, jitter, RTT, the jitter
    buffer, concealment and a MOS estimate (ITU-T G.107), plus microphone/speaker levels."""

    kind: ClassVar[str] = "call_stats"
    call_id: str
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(PhoneEvent):
    kind: ClassVar[str] = "dtmf"
    call_id: str
    digit: str
    method: Literal["rtp", "info"]
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferProgressed(PhoneEvent):
    kind: ClassVar[str] = "transfer"
    call_id: str
    status: int
    reason: str
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Registering(PhoneEvent):
    """A REGISTER for the account is on its way (first time, after a change of the account).
    ``server`` is the next hop it goes to ("host:port"), over ``transport``."""

    kind: ClassVar[str] = "registering"
    account: str
    server: str | None = None
    transport: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAnswerYet(PhoneEvent):
    """Nothing at all came back from ``server`` (not even 100 Trying) ``waited_s`` after our
    REGISTER or INVITE went out: the registrar or proxy is down, unreachable, or not on that
    port or transport. SIP goes on trying (retransmitting over UDP) and gives up
    ``gives_up_in_s`` later; then RegistrationFailed or CallEnded says so."""

    kind: ClassVar[str] = "no_answer_yet"
    account: str
    request: Literal["REGISTER", "INVITE"]
    call_id: str | None  # the call, for an INVITE
    server: str
    transport: str
    waited_s: float
    gives_up_in_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteChanged(PhoneEvent):
    kind: ClassVar[str] = "mute"
    call_id: str
    muted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoCancellationChanged(PhoneEvent):
    """Echo cancellation (with noise suppression) on the sound card's
    microphone was switched on or off (``set_echo_cancellation``); the calls up have it now."""

    kind: ClassVar[str] = "echo_cancellation"
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceChanged(PhoneEvent):
    """The local conference changed: ``call_ids`` are the calls mixed together now (empty once
    it is split, or when only one call is left)."""

    kind: ClassVar[str] = "conference"
    call_ids: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingChanged(PhoneEvent):
    kind: ClassVar[str] = "recording"
    call_id: str
    path: str | None  # the WAV being written; None once recording stopped


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoSourceLost(PhoneEvent):
    """Our video source failed mid-call (a camera unplugged, a file gone): the call goes on
    with its audio and the far end's picture, without ours. Once per call."""

    kind: ClassVar[str] = "video_source_lost"
    call_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoPictureChanged(PhoneEvent):
    """The far end's picture broke (``broken``: undecodable frames, no key frame, a picture
    of an absurd size; the last good one is held and a key frame asked for) or is back."""

    kind: ClassVar[str] = "video_picture"
    call_id: str
    broken: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailStarted(PhoneEvent):
    """The answering machine played its greeting and records the caller into ``path`` (WAV);
    ``received_at`` is the wall clock (time.time()) when the recording began."""

    kind: ClassVar[str] = "voicemail_started"
    call_id: str
    account: str
    caller: str  # the caller's URI
    caller_name: str | None = None
    path: str
    received_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailRecorded(PhoneEvent):
    """The message of ``call_id`` is complete: ``duration_s`` of the caller in ``path``."""

    kind: ClassVar[str] = "voicemail_recorded"
    call_id: str
    path: str
    duration_s: float


MessageState = Literal["sending", "delivered", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(PhoneEvent):
    """An instant message for us (RFC 3428 MESSAGE), already answered 200 OK. ``remote`` is the
    sender's URI (what to answer), ``local`` the URI it was sent to. ``content_type`` is the
    media type without parameters. ``text`` is what to show: a text/plain body decoded by its
    charset, any other body as an attachment line (``[image/png, 2.3 kB]``); ``note`` says when
    the text could not be decoded as sent (replacement characters show where). ``body`` is the
    bytes as they came. ``call_id`` is the call whose dialog it came in, None outside a call.

    ``--json`` prints ``{"event": "message", "from", "to", "content_type", "text"}``, with
    ``call_id`` when it came in a call: tools outside the project read these names."""

    kind: ClassVar[str] = "message"
    account: str
    remote: str
    display_name: str | None
    local: str
    content_type: str
    charset: str | None
    text: str
    note: str | None
    body: bytes
    call_id: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.kind,
            "from": self.remote,
            "to": self.local,
            "content_type": self.content_type,
            "text": self.text,
        }
        if self.call_id is not None:
            out["call_id"] = self.call_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStatusChanged(PhoneEvent):
    """How a message of ours goes: ``sending`` as soon as it is on its way (what was sent is
    here: ``text`` in ``content_type``, to ``remote``), then ``delivered`` on a 2xx or
    ``failed`` with the final ``status`` and ``reason`` (``no_response``: none came; status
    is then 408 for a timeout or 503 for a transport error). ``call_id`` is the call whose
    dialog carried it, None outside a call. ``status`` is 0 while sending."""

    kind: ClassVar[str] = "message_status"
    message_id: str
    state: MessageState
    account: str
    remote: str
    content_type: str
    text: str
    call_id: str | None = None
    status: int = 0
    reason: str = ""
    no_response: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceChanged(PhoneEvent):
    """A watched party (``uri`` as it was given to ``watch``) changed: ``state`` is what its
    presence (PIDF, RFC 3863) says, ``note`` its note, ``lamp`` its busy lamp (dialog state,
    RFC 4235): ``idle``, ``ringing`` (a call rings there), ``busy`` (in a call, or placing one)
    or ``unknown`` (no dialog state to be had)."""

    kind: ClassVar[str] = "presence"
    uri: str
    state: PresenceStateName
    note: str | None
    lamp: LampName


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageWaiting(PhoneEvent):
    """Message waiting for ``account`` (RFC 3842): whether voice messages wait, and how many
    are new and old (``urgent_*``: how many of those are urgent). From a subscription to the
    account's own address, or a NOTIFY the PBX sent unasked.

    ``--json`` prints ``{"event": "mwi", "account", "waiting", "new", "old", "urgent_new",
    "urgent_old"}``."""

    kind: ClassVar[str] = "mwi"
    account: str
    waiting: bool
    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnPresenceChanged(PhoneEvent):
    """Our own presence as others see it: ``state`` the one chosen (``set_presence``), ``shown``
    what is published (``busy`` while a call is up, unless the choice is ``dnd``), ``note``."""

    kind: ClassVar[str] = "own_presence"
    state: PresenceChoice
    shown: PresenceChoice
    note: str | None
    on_the_phone: bool
