"""Events the user agent core hands to the phone layer (past tense, frozen, compared by value).

Everything a peer or the network does reaches the phone as one of these; exceptions are only for
misuse (LocalProtocolError) and malformed input (RemoteProtocolError), see sip/errors.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from softphone.sip.dialog_info import DialogInfo
from softphone.sip.message_summary import MessageSummary
from softphone.sip.pidf import PresenceDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of user agent events."""


# --- registration (RFC 3261 §10) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Registered(Event):
    account: str
    expires: int
    contact: str
    # RFC 5626 §4.4.1: how often the registrar wants the flow kept alive (its Flow-Timer), if said
    flow_timer_s: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationFailed(Event):
    account: str
    status: int  # 0 when no response came (timeout, transport error)
    reason: str
    retry_in_s: float | None  # when the next attempt is scheduled, None when it is not


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregistered(Event):
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationNotAnswered(Event):
    """Nothing came back for our REGISTER (not even 100 Trying) ``waited_s`` after it went out.
    The transaction goes on (retransmitting over UDP) and gives up ``gives_up_in_s`` later,
    with RegistrationFailed. Told once per REGISTER, so that a silent registrar is explained
    while it is happening, not 32 s later."""

    account: str
    server: str  # the next hop, "host:port" ("[v6]:port")
    transport: str  # "udp" | "tcp" | "tls"
    waited_s: float
    gives_up_in_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerFailedOver(Event):
    """A REGISTER or INVITE of ``account`` got no answer, a transport error or a 503 from
    ``failed`` (its next hop), which is now held down until ``held_until`` (monotonic seconds);
    the same request went to ``trying`` (RFC 3263 §4.3). ``call_id`` is the call's for an
    INVITE, None for a REGISTER."""

    account: str
    method: str  # "REGISTER" | "INVITE"
    call_id: str | None
    failed: str  # "host:port" ("[v6]:port")
    trying: str
    transport: str
    why: str  # "did not answer", "could not be reached: ...", "503 Service Unavailable"
    held_until: float


# --- calls (RFC 3261 §13-§15) --------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall(Event):
    call_id: str
    account: str
    remote: str  # the From header's name-addr as text (tag removed)
    remote_uri: str  # the From header's URI alone: the address to call back
    remote_display: str | None
    request_uri: str
    sdp: bytes | None
    replaces_call: bool = (
        False  # second call while another is up (call waiting) is the phone's call
    )
    # An INVITE with Replaces (RFC 3891) naming this call of ours: answer at once, then end it.
    replaces: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallProgressed(Event):
    """A provisional response: 180 Ringing or 183 Session Progress (early media when sdp is set)."""

    call_id: str
    status: int
    reason: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    """Our INVITE got a 2xx (we have sent the ACK)."""

    call_id: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallConfirmed(Event):
    """The caller ACKed our 2xx: the incoming call is established."""

    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteNotAnswered(Event):
    """Nothing came back for our INVITE from its next hop (not even 100 Trying) ``waited_s``
    after it went out; the INVITE transaction gives up ``gives_up_in_s`` later (CallFailed)."""

    call_id: str
    server: str
    transport: str
    waited_s: float
    gives_up_in_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailed(Event):
    """The call never got established. ``phrase`` is the final response's reason phrase.

    ``no_response`` is True when no final response came at all (Timer B fired, or the transport
    failed): ``status`` is then the one RFC 3261 §8.1.3.1 tells the TU to assume, 408 for a
    timeout and 503 for a transport error, and ``phrase`` is empty."""

    call_id: str
    status: int
    reason: str
    phrase: str = ""
    no_response: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    """An established call ended. ``by`` says who hung up."""

    call_id: str
    by: str  # "local" | "remote" | "timeout"
    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReofferReceived(Event):
    """The peer sent a re-INVITE (hold/resume/target refresh). The phone must answer it with
    ``UserAgent.answer_reoffer`` (or ``reject_reoffer``) before returning from the sink."""

    call_id: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReofferAnswered(Event):
    """Our re-INVITE was accepted; ``sdp`` is the peer's answer."""

    call_id: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReofferFailed(Event):
    call_id: str
    status: int
    reason: str


# --- transfer (RFC 3515) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested(Event):
    """The peer asked us (transferee) to call ``target``; we answered 202 Accepted.
    ``replaces``: an attended transfer (RFC 5589 §7), the Replaces header (RFC 3891) the new
    INVITE must carry."""

    call_id: str
    target: str
    referred_by: str | None
    replaces: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferProgressed(Event):
    """A NOTIFY about our REFER (we are the transferor), or the REFER's own final response."""

    call_id: str
    status: int
    reason: str
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(Event):
    """SIP INFO application/dtmf-relay (the RTP telephone-event path lives in rtp/)."""

    call_id: str
    digit: str
    duration_ms: int


# --- instant messages (RFC 3428) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(Event):
    """A MESSAGE for us, answered 200 OK. ``content_type`` is the media type without its
    parameters (``text/plain``), ``charset`` the charset parameter as sent (None when absent);
    the body is the bytes as they came, decoding is the reader's. ``call_id`` is the call whose
    dialog it came in, None for a message outside any call."""

    account: str
    from_uri: str  # the From URI alone: the address to answer
    from_display: str | None
    to_uri: str
    content_type: str
    charset: str | None
    body: bytes
    call_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDelivered(Event):
    """The far end (or a server that keeps messages for it) took our MESSAGE ``message_id``:
    a 2xx final response."""

    message_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFailed(Event):
    """Our MESSAGE ``message_id`` got a final response other than 2xx, or none (``status`` 408
    for a timeout, 503 for a transport error, as RFC 3261 §8.1.3.1 has the TU assume;
    ``no_response`` then). ``reason`` says why in words."""

    message_id: str
    status: int
    reason: str
    no_response: bool = False


# --- subscriptions (RFC 6665) and publications (RFC 3903) ----------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionChanged(Event):
    """A subscription of ours moved to ``state`` (sip/subscription.py): ``subscribing``,
    ``pending``, ``active``, ``waiting`` (a new attempt in ``retry_in_s``), ``unsubscribing``,
    ``terminated`` (for good). ``reason`` says why it waits or ended, in words."""

    subscription_id: str
    account: str
    target: str
    package: str
    state: str
    reason: str | None = None
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationReceived(Event):
    """A NOTIFY we answered 200 OK carried state of ``target`` in ``package``.
    ``subscription_id`` is None for a NOTIFY outside any subscription (unsolicited message
    waiting, as PBXs send). ``document`` is the parsed body; for ``dialog`` it is the whole state
    the subscription knows (partial notifications applied, RFC 4235 §4.1.2); None when the NOTIFY
    carried no body (no state known yet, RFC 6665 §4.1.3)."""

    subscription_id: str | None
    account: str
    target: str
    package: str
    document: PresenceDocument | DialogInfo | MessageSummary | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicationChanged(Event):
    """Our published state for ``account`` (sip/publication.py): ``published`` (the server has
    it for ``expires`` s), ``failed`` (``status``/``reason``; tried again in ``retry_in_s``),
    ``removed`` (the removal was answered, or nothing was left to remove)."""

    account: str
    state: str
    status: int = 0
    reason: str = ""
    expires: int | None = None
    retry_in_s: float | None = None


# Every event the user agent reports: consumers match on it and end with assert_never, so that
# a new event fails type-checking where it is not handled.
UaEvent: TypeAlias = (
    Registered
    | RegistrationFailed
    | RegistrationNotAnswered
    | ServerFailedOver
    | Unregistered
    | IncomingCall
    | CallProgressed
    | CallAnswered
    | CallConfirmed
    | InviteNotAnswered
    | CallFailed
    | CallEnded
    | ReofferReceived
    | ReofferAnswered
    | ReofferFailed
    | TransferRequested
    | TransferProgressed
    | DtmfReceived
    | MessageReceived
    | MessageDelivered
    | MessageFailed
    | SubscriptionChanged
    | NotificationReceived
    | PublicationChanged
)
