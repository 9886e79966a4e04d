"""A scripted phone for TUI tests: ``from phone_fake import FakePhone``.

``FakePhone`` satisfies :class:`softphone.phone.api.PhoneApi` and publishes the very event types
(and field values, where the real phone's are predictable) of ``softphone.phone.events``. It
never opens a socket and never sleeps: what the network would do later is queued as *steps*,
and the test moves time on with :meth:`FakePhone.advance` (one step) or :meth:`FakePhone.settle`
(all of them). ``FakePhone(autoplay=True)`` runs the steps at once, inside the action.

What the other side does is a method too: :meth:`incoming`, :meth:`remote_hangup`,
:meth:`remote_hold`, :meth:`remote_dtmf`, :meth:`remote_message`, :meth:`register`, :meth:`fail_registration`,
:meth:`registrar_silent`, :meth:`emit_stats`, :meth:`set_levels`, :meth:`add_trace`,
:meth:`add_sip`, :meth:`set_streams`, or any event with :meth:`emit`. Failures on demand:
:meth:`fail_next_dial` (a SIP status), :meth:`fail_next_transfer`, :meth:`fail_next_reoffer`,
:meth:`fail_next_message` and :meth:`fail_next` (the next call of a method raises ``PhoneError``). Every PhoneApi call
except the event readers is recorded in :attr:`FakePhone.calls_made` as ``(name, arguments)``.

The sequences mirror the real Phone (checked against two real Phones in test_phone_api.py):
dial -> calling, [step] ringing, [step] established; answer -> [step] established;
hold/resume -> [step] held/established; hangup of a ringing outgoing call -> [step] 487
"cancelled"; of an established one -> [step] 200 "hung up here"; reject/hangup of a ringing incoming call
-> at once; transfer -> [steps] 202 Accepted, 100 Trying, 200 OK (final), then the call ends;
mute/record -> MuteChanged/RecordingChanged at once (only when the state changes);
set_echo_cancellation -> EchoCancellationChanged at once (on at start: a sound card); start with
registrars -> Registering at once, [step] Registered; apply_accounts -> Registering at once for a
new or changed account with a registrar, [step] Registered; a removed registered one [step]
Unregistered; send_message -> MessageStatusChanged "sending" at once, [step] "delivered" 200 OK
(or "failed" with the status of :meth:`fail_next_message`), in the call with that party when one
is up. ``play_file`` "plays" until
``stop_playback`` (see :attr:`played`, :attr:`playing`).

Presence: ``set_presence`` -> OwnPresenceChanged at once when the choice changes; presence runs
for an account with a registrar once it registered (as the real phone's default), and while it
runs a call established or held makes what is shown ``busy`` (OwnPresenceChanged again).
``watch`` adds an ``unknown`` record to :attr:`watched`; the far side's changes are
:meth:`remote_presence` (PresenceChanged) and :meth:`message_waiting` (MessageWaiting).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from softphone.config import Account
from softphone.phone import events as pe
from softphone.phone.api import (
    ContactPresence,
    FlowSummary,
    OwnPresence,
    Registration,
    RegistrationState,
    StreamSummary,
    TracedMessage,
    Voicemail,
)
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.event_queue import EventReader
from softphone.phone.message_text import decode_body, encode_text
from softphone.phone.messaging import same_party
from softphone.phone.outcome import call_outcome
from softphone.phone.target import TargetError, normalize_target
from softphone.phone.trace import SipTrace
from softphone.sip.status import explain
from softphone.sip.uri import SipUri

# Reason phrases the far end usually sends (RFC 3261 §21); the real phone shows explain(status, phrase).
REASON_PHRASES: dict[int, str] = {
    200: "OK",
    202: "Accepted",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}

# What a fresh call's audio statistics look like (the keys of softphone.phone.media.MediaStats).
DEFAULT_STATS: dict[str, object] = {
    "codec": "opus",
    "packets_sent": 0,
    "packets_received": 0,
    "packets_lost": 0,
    "loss_percent": 0.0,
    "fraction_lost": 0.0,
    "jitter_ms": 0.0,
    "rtt_ms": None,
    "remote_loss_percent": None,
    "remote_jitter_ms": None,
    "jitter_buffer_ms": 0.0,
    "target_delay_ms": 0.0,
    "concealed_ms": 0.0,
    "stretched_ms": 0.0,
    "late_packets": 0,
    "mos": 4.41,
    "r_factor": 93.2,
    "mic_dbfs": None,
    "speaker_dbfs": None,
}

DTMF_DIGITS = "0123456789*#ABCD"
LOCAL_AOR = SipUri.parse("sip:softphone@localhost")  # no account configured: peer to peer


def status_reason(status: int, reason: str | None = None) -> str:
    """The reason text the real phone puts in CallEnded for a final response from the peer."""
    return explain(status, reason if reason is not None else REASON_PHRASES.get(status, ""))


@dataclass(slots=True)
class FakeCall:
    """One call of the fake (fits softphone.phone.api.CallView), plus what the test may check."""

    call_id: str
    account: str
    direction: Literal["outgoing", "incoming"]
    remote: str
    state: pe.CallStateName
    started_at: float
    established_at: float | None = None
    local_hold: bool = False
    remote_hold: bool = False
    recording_path: Path | None = None
    display_name: str | None = None
    muted: bool = False
    conference: bool = False
    recording: bool = False
    silenced: bool = False
    dtmf_sent: str = ""
    stats: dict[str, object] = field(default_factory=lambda: dict(DEFAULT_STATS))
    level_dbfs: tuple[float, float] = (-30.0, -24.0)  # (mic, speaker) while it has audio
    trace: list[TracedMessage] = field(default_factory=list)
    streams: list[StreamSummary] = field(default_factory=list)
    encryption: Literal["none", "sdes", "dtls-srtp"] = "none"  # a test sets it to show the lock
    srtp_suite: str | None = None
    session_expires_s: int | None = None  # RFC 4028: the default account's 1800 once answered
    has_video: bool = False  # set_video turns it on and off
    picture: npt.NDArray[np.uint8] | None = None  # what video_picture gives while has_video

    @property
    def codec(self) -> str | None:
        return str(self.stats.get("codec")) if self.established_at is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DialOutcome:
    """How the next dial goes: answered, left ringing, or failed with a final status."""

    answer: bool = True
    status: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """Something the network would do later; ``label`` shows in :attr:`FakePhone.pending`."""

    label: str
    run: Callable[[], None]


class FakePhone(EventReader):
    """A PhoneApi with scripted behaviour. The clock (``now``) moves ``step_s`` per step."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        registrars: Sequence[str] = (),
        expires: int = 3600,
        autoplay: bool = False,
        step_s: float = 1.0,
        recordings_dir: Path = Path("/nonexistent/recordings"),
        dtmf_method: Literal["rtp", "info"] = "rtp",
        media_encryption: Literal["none", "sdes", "dtls-srtp"] = "none",
    ) -> None:
        aors = accounts if accounts is not None else {"local": str(LOCAL_AOR)}
        self.aors: dict[str, SipUri] = {name: SipUri.parse(aor) for name, aor in aors.items()}
        self.registrars = tuple(registrars)
        self.applied: dict[str, Account] = {}  # what apply_accounts was last given, by name
        self.expires = expires
        self.autoplay = autoplay
        self.step_s = step_s
        self.recordings_dir = recordings_dir
        self.dtmf_method = dtmf_method
        # What the calls it establishes negotiate: two real phones with the default policy
        # (srtp-optional) agree on SDES with the first suite offered.
        self.media_encryption = media_encryption
        self.now = 0.0
        self.started = False
        self._echo_cancellation = True  # a sound card, the config's default
        self.calls_made: list[tuple[str, dict[str, object]]] = []
        self.emitted: list[pe.PhoneEvent] = []  # everything ever published, in order
        self.registered: dict[str, bool] = {}
        self.wall_clock = 1_790_000_000.0  # time.time() of "now = 0" (registrations' expiry)
        self.played: list[Path] = []  # play_file() calls, in order
        self.playing: Path | None = None
        self.exposed_config: str | None = None  # what config_warning() says
        self._registrations: dict[str, Registration] = {}
        self._queue: asyncio.Queue[pe.PhoneEvent] = asyncio.Queue()
        self._calls: dict[str, FakeCall] = {}
        self._steps: deque[Step] = deque()
        self._next_id = 0
        self._dial_outcomes: deque[DialOutcome] = deque()
        self._transfer_failures: deque[tuple[int, str]] = deque()
        self._reoffer_failures: deque[str] = deque()
        self._message_failures: deque[tuple[int, str, bool]] = deque()
        self._next_message = 0
        self._raise_next: dict[str, str] = {}
        # The SIP flows: the phone's own trace, fed by add_sip() with whole messages.
        self.sip = SipTrace(lambda: self.wall_clock + self.now)
        self._presence = OwnPresence()
        self._watched: dict[str, ContactPresence] = {}
        self._voicemail: dict[str, Voicemail] = {}

    # ------------------------------------------------------------------ the test's controls
    def advance(self, steps: int = 1) -> list[pe.PhoneEvent]:
        """Run up to ``steps`` pending steps; returns the events they published."""
        mark = len(self.emitted)
        for _ in range(steps):
            if not self._steps:
                break
            self.now += self.step_s
            self._steps.popleft().run()
        return self.emitted[mark:]

    def settle(self, limit: int = 1000) -> list[pe.PhoneEvent]:
        """Run every pending step (and the ones they add); returns the events published."""
        mark = len(self.emitted)
        for _ in range(limit):
            if not self._steps:
                return self.emitted[mark:]
            self.advance()
        raise AssertionError(f"FakePhone did not settle in {limit} steps: {self.pending}")

    @property
    def pending(self) -> list[str]:
        return [step.label for step in self._steps]

    def drain(self) -> list[pe.PhoneEvent]:
        """Take every queued event (as a consumer would), for tests without a bridge."""
        out: list[pe.PhoneEvent] = []
        while (event := self.next_event_nowait()) is not None:
            out.append(event)
        return out

    def emit(self, event: pe.PhoneEvent) -> None:
        """Publish any event, as the real phone would."""
        self.emitted.append(event)
        self._queue.put_nowait(event)

    def made(self, name: str) -> list[dict[str, object]]:
        """The arguments of every recorded call of ``name``."""
        return [args for called, args in self.calls_made if called == name]

    @property
    def dialled(self) -> list[str]:
        return [str(args["target"]) for args in self.made("dial")]

    def fail_next(self, method: str, message: str) -> None:
        """The next call of ``method`` (e.g. "dial", "hold") raises PhoneError(message)."""
        self._raise_next[method] = message

    def fail_next_dial(self, status: int = 486, reason: str | None = None) -> None:
        """The next dial rings, then fails with this final status (reason: the peer's phrase)."""
        self._dial_outcomes.append(DialOutcome(answer=False, status=status, reason=reason))

    def keep_next_dial_ringing(self) -> None:
        """The next dial rings and stays ringing until hung up (or remote_answer)."""
        self._dial_outcomes.append(DialOutcome(answer=False))

    def fail_next_transfer(self, status: int = 603, reason: str | None = None) -> None:
        self._transfer_failures.append((status, reason or REASON_PHRASES.get(status, "")))

    def fail_next_message(
        self, status: int = 404, reason: str | None = None, *, no_response: bool = False
    ) -> None:
        """The next message sent fails with this final status (``no_response``: none came)."""
        phrase = reason if reason is not None else REASON_PHRASES.get(status, "")
        self._message_failures.append((status, phrase, no_response))

    def remote_message(
        self,
        remote: str,
        body: str | bytes,
        *,
        content_type: str = "text/plain",
        charset: str | None = "UTF-8",
        call_id: str | None = None,
        display_name: str | None = None,
        account: str | None = None,
        local: str | None = None,
    ) -> pe.MessageReceived:
        """A message for us, as the real phone publishes it (text decoded by its charset, other
        types as an attachment line). A str body is sent in UTF-8."""
        name = self._account_name(account)
        raw = body.encode("utf-8") if isinstance(body, str) else body
        shown = decode_body(content_type, charset, raw)
        event = pe.MessageReceived(
            account=name,
            remote=remote,
            display_name=display_name,
            local=local or str(self.aors[name]),
            content_type=content_type,
            charset=charset,
            text=shown.text,
            note=shown.note,
            body=raw,
            call_id=call_id,
        )
        self.emit(event)
        return event

    @property
    def messages_sent(self) -> list[tuple[str, str]]:
        """(target, text) of every send_message, in order."""
        return [(str(a["target"]), str(a["text"])) for a in self.made("send_message")]

    def fail_next_reoffer(self, reason: str = "488 Not Acceptable Here") -> None:
        """The next hold or resume is refused by the peer: a warning Notice, no state change."""
        self._reoffer_failures.append(reason)

    def incoming(
        self, remote: str, account: str | None = None, *, display_name: str | None = None
    ) -> str:
        """A call for us: IncomingCall (waiting when a call is up), then ringing. Returns its id."""
        info = FakeCall(
            call_id=self._new_id(),
            account=account or self._account_name(None),
            direction="incoming",
            remote=remote,
            state="ringing",
            started_at=self.now,
            display_name=display_name,
        )
        waiting = any(c.state in ("established", "held") for c in self._calls.values())
        self._calls[info.call_id] = info
        self.emit(
            pe.IncomingCall(
                call_id=info.call_id,
                account=info.account,
                remote=remote,
                display_name=display_name,
                waiting=waiting,
            )
        )
        self._publish_state(info)
        return info.call_id

    def remote_answer(self, call_id: str) -> None:
        """The far end answers an outgoing call that was kept ringing."""
        self._establish(self._fake(call_id))

    def remote_hangup(self, call_id: str) -> None:
        """The far end hangs up (or cancels a call still ringing for us)."""
        info = self._fake(call_id)
        if info.direction == "incoming" and info.state == "ringing":
            self._finish(info, 487, "caller cancelled")
        else:
            self._finish(info, 200, "remote hung up")

    def remote_hold(self, call_id: str, on: bool = True) -> None:
        info = self._fake(call_id)
        info.remote_hold = on
        self._update_hold(info)

    def remote_dtmf(
        self,
        call_id: str,
        digit: str,
        *,
        method: Literal["rtp", "info"] = "rtp",
        duration_ms: int = 100,
    ) -> None:
        self.emit(
            pe.DtmfReceived(call_id=call_id, digit=digit, method=method, duration_ms=duration_ms)
        )

    def remote_presence(
        self,
        uri: str,
        state: pe.PresenceStateName = "available",
        note: str | None = None,
        lamp: pe.LampName = "idle",
    ) -> None:
        """A NOTIFY about the watched ``uri`` (as given to watch): PresenceChanged when it
        changes what is known, as the real phone."""
        if uri not in self._watched:
            raise AssertionError(f"{uri} is not watched: {sorted(self._watched)}")
        record = ContactPresence(uri=uri, state=state, note=note, lamp=lamp)
        if self._watched[uri] != record:
            self._watched[uri] = record
            self.emit(pe.PresenceChanged(uri=uri, state=state, note=note, lamp=lamp))

    def message_waiting(
        self,
        account: str,
        new: int,
        old: int = 0,
        *,
        waiting: bool | None = None,
        urgent_new: int = 0,
    ) -> None:
        """A message-summary NOTIFY for ``account`` (MessageWaiting when it changes)."""
        box = Voicemail(
            account=account,
            waiting=new > 0 if waiting is None else waiting,
            new=new,
            old=old,
            urgent_new=urgent_new,
        )
        if self._voicemail.get(account) != box:
            self._voicemail[account] = box
            self.emit(
                pe.MessageWaiting(
                    account=account,
                    waiting=box.waiting,
                    new=new,
                    old=old,
                    urgent_new=urgent_new,
                )
            )

    def register(self, account: str, expires: int | None = None) -> None:
        self.registered[account] = True
        if account in self.registrars and account not in self._presence.accounts:
            accounts = tuple(sorted((*self._presence.accounts, account)))
            self._presence = replace(self._presence, accounts=accounts)
        seconds = self.expires if expires is None else expires
        self._set_registration(
            account, "registered", expires_at=self.wall_clock + self.now + seconds
        )
        self.emit(pe.Registered(account=account, expires=seconds))

    def fail_registration(
        self,
        account: str,
        status: int = 403,
        reason: str | None = None,
        retry_in_s: float | None = None,
    ) -> None:
        self.registered[account] = False
        text = status_reason(status, reason)
        self._set_registration(account, "failed", reason=text, retry_in_s=retry_in_s)
        self.emit(
            pe.RegistrationFailed(
                account=account, status=status, reason=text, retry_in_s=retry_in_s
            )
        )

    def registrar_silent(self, account: str, server: str, transport: str = "udp") -> None:
        """The account's registrar has not answered at all yet (as the real phone says 2 s
        after a REGISTER nothing answers; it fails 30 s later, see fail_registration)."""
        self._set_registration(account, "registering", server=server, no_answer=True)
        self.emit(
            pe.NoAnswerYet(
                account=account,
                request="REGISTER",
                call_id=None,
                server=server,
                transport=transport,
                waited_s=2.0,
                gives_up_in_s=30.0,
            )
        )

    def unregister(self, account: str) -> None:
        self.registered[account] = False
        self._set_registration(account, "none")
        self.emit(pe.Unregistered(account=account))

    def set_levels(self, call_id: str, mic_dbfs: float, speaker_dbfs: float) -> None:
        """What ``levels()`` returns for the call while it has audio."""
        self._fake(call_id).level_dbfs = (mic_dbfs, speaker_dbfs)

    def add_trace(self, call_id: str, *messages: TracedMessage) -> None:
        """SIP messages ``sip_flow(call_id)`` returns for the call (the real phone records them)."""
        self._fake(call_id).trace.extend(messages)

    def add_sip(
        self,
        direction: Literal["sent", "received"],
        message: str,
        *,
        local: str = "udp:127.0.0.1:5060",
        remote: str = "udp:127.0.0.1:5080",
    ) -> None:
        """One whole SIP message (``\\n`` or CRLF line ends) the phone sent or received now: it
        joins its flow (by Call-ID) in ``sip_flows()`` / ``sip_flow()``, as on the real phone."""
        data = message.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        self.sip.add(direction, data, local, remote)

    def set_streams(self, call_id: str, *streams: StreamSummary) -> None:
        """What ``rtp_streams()`` returns for the call once it is answered."""
        self._fake(call_id).streams = list(streams)

    def emit_stats(self, call_id: str, **stats: object) -> dict[str, object]:
        """Update the call's statistics and publish CallStats, as the phone does every 5 s."""
        info = self._fake(call_id)
        info.stats.update(stats)
        self.emit(pe.CallStats(call_id=call_id, stats=dict(info.stats)))
        return dict(info.stats)

    # ------------------------------------------------------------------ PhoneApi: lifecycle
    async def start(self) -> None:
        self._record("start")
        self.started = True
        for name in self.aors:
            self._set_registration(name, "none")
        for transport in ("udp", "tcp"):
            self.emit(pe.Listening(transport=transport, host="127.0.0.1", port=5060))
        for account in self.registrars:
            self._set_registration(account, "registering")
            self.emit(pe.Registering(account=account))
            self._schedule(f"register {account}", partial(self.register, account))

    async def stop(self) -> None:
        self._record("stop")
        if not self.started:
            return
        for info in list(self._calls.values()):
            if info.state != "ended":
                self._finish(info, 200, "hung up here")
        self._steps.clear()
        for account, registered in list(self.registered.items()):
            if registered:
                self.unregister(account)
        self.started = False

    @property
    def accounts(self) -> list[str]:
        return list(self.aors)

    @property
    def registrations(self) -> Mapping[str, Registration]:
        return {
            name: self._registrations[name] for name in self.aors if name in self._registrations
        }

    # ------------------------------------------------------------------ PhoneApi: events

    # ------------------------------------------------------------------ PhoneApi: calls
    @property
    def calls(self) -> list[FakeCall]:
        return list(self._calls.values())

    def call(self, call_id: str) -> FakeCall:
        self._record("call", call_id=call_id)
        return self._fake(call_id)

    def call_stats(self, call_id: str) -> dict[str, object] | None:
        self._record("call_stats", call_id=call_id)
        info = self._fake(call_id)
        return dict(info.stats) if info.established_at is not None else None

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        """As the real phone: a removed account's record goes at once ([step] Unregistered when
        it was registered); a new or changed account with a registrar is Registering at once
        (to its proxy or registrar, port 5060 when none is given), [step] Registered."""
        self._record("apply_accounts", accounts=tuple(accounts))
        self._require_started()
        wanted = {a.name: a for a in accounts}
        aors = {name: a.uri for name, a in wanted.items()} or {"local": LOCAL_AOR}
        before, was_registrar = dict(self.applied), set(self.registrars)
        gone = [name for name in self.aors if name not in aors]
        changed = [
            name
            for name, acct in wanted.items()
            if name not in self.aors
            or (name in before and before[name] != acct)
            or (name not in before and (acct.registrar is not None) != (name in was_registrar))
            or self.aors[name] != acct.uri
        ]
        self.aors = aors
        self.applied = wanted
        self.registrars = tuple(name for name, a in wanted.items() if a.registrar is not None)
        for name in gone:
            self._registrations.pop(name, None)
            if self.registered.pop(name, False):
                self._schedule(
                    f"unregister {name}", partial(self.emit, pe.Unregistered(account=name))
                )
        for name in self.aors:
            if name not in self._registrations:
                self._set_registration(name, "none")
        for name in changed:
            acct = wanted[name]
            hop = acct.proxy or acct.registrar
            if hop is None:
                self._set_registration(name, "none")
                if self.registered.pop(name, False):
                    self._schedule(f"unregister {name}", partial(self.unregister, name))
                continue
            transport = hop.transport or acct.transport
            port = hop.port or (5061 if transport == "tls" else 5060)
            server = f"{hop.host}:{port}"
            self.registered[name] = False
            self._set_registration(name, "registering", server=server)
            self.emit(pe.Registering(account=name, server=server, transport=transport))
            self._schedule(f"register {name}", partial(self.register, name, acct.expires))
        self._registrations = {n: self._registrations[n] for n in self.aors}

    # ------------------------------------------------------------------ PhoneApi: actions
    async def dial(self, target: str, *, account: str | None = None) -> str:
        self._record("dial", target=target, account=account)
        self._require_started()
        name = self._account_name(account)
        try:
            uri = normalize_target(target, self.aors[name])
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        info = FakeCall(
            call_id=self._new_id(),
            account=name,
            direction="outgoing",
            remote=str(uri),
            state="calling",
            started_at=self.now,
        )
        self._calls[info.call_id] = info
        self._publish_state(info)
        outcome = self._dial_outcomes.popleft() if self._dial_outcomes else DialOutcome()
        self._schedule(f"{info.call_id} rings", lambda: self._ring(info))
        if outcome.status is not None:
            status, reason = outcome.status, outcome.reason
            self._schedule(
                f"{info.call_id} fails {status}",
                lambda: self._finish(info, status, status_reason(status, reason), reason),
            )
        elif outcome.answer:
            self._schedule(f"{info.call_id} answered", lambda: self._establish(info))
        return info.call_id

    async def answer(self, call_id: str) -> None:
        self._record("answer", call_id=call_id)
        self._require_started()
        info = self._fake(call_id)
        if info.direction != "incoming" or info.state != "ringing":
            raise PhoneError("this call is not ringing")
        self._schedule(f"{call_id} ACK", lambda: self._establish(info))

    async def reject(self, call_id: str, *, status: int = 486) -> None:
        self._record("reject", call_id=call_id, status=status)
        self._require_started()
        info = self._fake(call_id)
        if info.direction != "incoming" or info.state != "ringing":
            raise PhoneError(f"cannot reject a call in state {info.state.upper()}")
        self._finish(info, status, status_reason(status))

    async def hangup(self, call_id: str) -> None:
        self._record("hangup", call_id=call_id)
        self._require_started()
        info = self._fake(call_id)
        if info.state == "ended":
            return
        if info.direction == "incoming" and info.state == "ringing":
            self._finish(info, 603, status_reason(603))  # the real phone rejects with 603
        elif info.state in ("calling", "ringing", "early"):
            self._schedule(f"{call_id} 487", lambda: self._finish(info, 487, "cancelled"))
        else:
            self._schedule(f"{call_id} BYE 200", lambda: self._finish(info, 200, "hung up here"))

    async def set_video(self, call_id: str, on: bool) -> None:
        self._record("set_video", call_id=call_id, on=on)
        info = self._fake(call_id)
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        info.has_video = on

    def video_picture(self, call_id: str, width: int, height: int) -> npt.NDArray[np.uint8] | None:
        info = self._fake(call_id)
        return info.picture if info.has_video else None

    async def hold(self, call_id: str) -> None:
        self._record("hold", call_id=call_id)
        self._reoffer(call_id, hold=True)

    async def resume(self, call_id: str) -> None:
        self._record("resume", call_id=call_id)
        self._reoffer(call_id, hold=False)

    async def transfer(self, call_id: str, target: str) -> None:
        self._record("transfer", call_id=call_id, target=target)
        self._require_started()
        info = self._fake(call_id)
        try:
            normalize_target(target, self.aors[info.account])
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        if info.state not in ("established", "held"):
            raise PhoneError(f"cannot transfer a call in state {info.state.upper()}")
        progress = [(202, "Accepted", False), (100, "Trying", False)]
        failure = self._transfer_failures.popleft() if self._transfer_failures else None
        progress.append((*failure, True) if failure else (200, "OK", True))
        for status, reason, final in progress:
            self._schedule(
                f"{call_id} transfer {status}",
                partial(self._transfer_progressed, info, status, reason, final),
            )

    async def attended_transfer(self, call_id: str, other_call_id: str) -> None:
        self._record("attended_transfer", call_id=call_id, other_call_id=other_call_id)
        self._require_started()
        info, other = self._fake(call_id), self._fake(other_call_id)
        if info is other:
            raise PhoneError("an attended transfer needs two different calls")
        for leg in (info, other):
            if leg.state not in ("established", "held"):
                raise PhoneError(f"the call with {leg.remote} is not established ({leg.state})")
        for status, reason, final in [(202, "Accepted", False), (200, "OK", True)]:
            self._schedule(
                f"{call_id} attended transfer {status}",
                partial(self._transfer_progressed, info, status, reason, final),
            )
        # RFC 5589 §7.1: after success we leave the call with the target too.
        self._schedule(
            f"{other_call_id} replaced", lambda: self._finish(other, 200, "hung up here")
        )

    async def join(self, call_id: str, other_call_id: str) -> None:
        self._record("join", call_id=call_id, other_call_id=other_call_id)
        self._require_started()
        info, other = self._fake(call_id), self._fake(other_call_id)
        if info is other:
            raise PhoneError("a conference needs two different calls")
        for leg in (info, other):
            if leg.state not in ("established", "held"):
                raise PhoneError(f"the call with {leg.remote} is not established ({leg.state})")
        for leg in (info, other):
            leg.conference = True
            if leg.local_hold:
                self._reoffer(leg.call_id, hold=False)
        self.emit(pe.ConferenceChanged(call_ids=self._conference_ids()))

    async def split(self, call_id: str) -> None:
        self._record("split", call_id=call_id)
        self._require_started()
        keep = self._fake(call_id)
        if not keep.conference:
            raise PhoneError("this call is not in a conference")
        for leg in self._calls.values():
            if leg.conference:
                leg.conference = False
                if leg is not keep and not leg.local_hold:
                    self._reoffer(leg.call_id, hold=True)
        self.emit(pe.ConferenceChanged(call_ids=[]))

    def _conference_ids(self) -> list[str]:
        return [c.call_id for c in self._calls.values() if c.conference]

    async def send_dtmf(self, call_id: str, digits: str) -> str:
        self._record("send_dtmf", call_id=call_id, digits=digits)
        self._require_started()
        info = self._fake(call_id)
        if not digits or any(d.upper() not in DTMF_DIGITS for d in digits):
            raise PhoneError(f"not DTMF digits: {digits!r} (use 0-9, *, #, A-D)")
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        info.dtmf_sent += digits.upper()
        return self.dtmf_method

    async def send_message(
        self,
        target: str,
        text: str,
        *,
        account: str | None = None,
        content_type: str = "text/plain",
    ) -> str:
        self._record(
            "send_message", target=target, text=text, account=account, content_type=content_type
        )
        self._require_started()
        name = self._account_name(account)
        try:
            uri = normalize_target(target, self.aors[name])
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        _, wire_type = encode_text(text, content_type)  # the real phone's checks and errors
        call = None
        for info in self._calls.values():
            if info.state in ("established", "held") and same_party(SipUri.parse(info.remote), uri):
                call = info
        self._next_message += 1
        message_id = f"fake-msg-{self._next_message}"
        sending = pe.MessageStatusChanged(
            message_id=message_id,
            state="sending",
            account=call.account if call else name,
            remote=call.remote if call else str(uri),
            content_type=wire_type.split(";", 1)[0],
            text=text,
            call_id=call.call_id if call else None,
        )
        self.emit(sending)
        failure = self._message_failures.popleft() if self._message_failures else None
        status, reason, no_response = failure or (200, "OK", False)
        final = replace(
            sending,
            state="delivered" if failure is None else "failed",
            status=status,
            reason=reason,
            no_response=no_response,
        )
        self._schedule(f"{message_id} {status}", partial(self.emit, final))
        return message_id

    def mute(self, call_id: str, muted: bool) -> None:
        self._record("mute", call_id=call_id, muted=muted)
        info = self._fake(call_id)
        if info.state == "ended":
            raise PhoneError("the call has ended")
        party = [c for c in self._calls.values() if c.conference] if info.conference else [info]
        for leg in party:
            if leg.muted != muted:
                leg.muted = muted
                self.emit(pe.MuteChanged(call_id=leg.call_id, muted=muted))

    @property
    def echo_cancellation(self) -> bool:
        return self._echo_cancellation

    def set_echo_cancellation(self, on: bool) -> None:
        self._record("set_echo_cancellation", on=on)
        self._echo_cancellation = on
        self.emit(pe.EchoCancellationChanged(on=on))

    def record(self, call_id: str, on: bool) -> Path | None:
        self._record("record", call_id=call_id, on=on)
        info = self._fake(call_id)
        if info.established_at is None or info.state == "ended":
            raise PhoneError("the call has no audio to record yet")
        if on and info.recording_path is None:
            info.recording_path = self.recordings_dir / f"{info.call_id.split('@')[0]}.wav"
        if info.recording != on:
            info.recording = on
            path = str(info.recording_path) if on and info.recording_path else None
            self.emit(pe.RecordingChanged(call_id=call_id, path=path))
        return info.recording_path

    def silence(self, call_id: str) -> None:
        self._record("silence", call_id=call_id)
        info = self._fake(call_id)
        if info.direction == "incoming" and info.state == "ringing":
            info.silenced = True

    def levels(self, call_id: str) -> tuple[float, float] | None:
        info = self._fake(call_id)
        if info.established_at is None or info.state == "ended":
            return None
        return info.level_dbfs

    def sip_flows(self) -> list[FlowSummary]:
        return self.sip.flows()

    def sip_flow(self, flow_id: str) -> list[TracedMessage]:
        info = self._calls.get(flow_id)
        if info is not None and info.trace:
            return list(info.trace)
        return self.sip.messages(flow_id)

    def rtp_streams(self, call_id: str) -> list[StreamSummary]:
        info = self._fake(call_id)
        return list(info.streams) if info.established_at is not None else []

    async def play_file(self, path: Path) -> None:
        self._record("play_file", path=path)
        if not Path(path).is_file():
            raise PhoneError(f"cannot play {path}: no such file")
        self.played.append(Path(path))
        self.playing = Path(path)  # "plays" until stop_playback(); returns at once

    def stop_playback(self) -> None:
        self._record("stop_playback")
        self.playing = None

    def set_presence(self, state: str, note: str | None = None) -> None:
        self._record("set_presence", state=state, note=note)
        choices: dict[str, pe.PresenceChoice] = {
            "available": "available",
            "away": "away",
            "busy": "busy",
            "dnd": "dnd",
        }
        chosen = choices.get(state)
        if chosen is None:
            raise PhoneError(f"no presence state {state!r}: use {', '.join(choices)}")
        note = note.strip() or None if note is not None else None
        if (chosen, note) == (self._presence.state, self._presence.note):
            return
        self._presence = replace(self._presence, state=chosen, note=note)
        self._show_presence()

    @property
    def presence(self) -> OwnPresence:
        return self._presence

    def watch(self, uri: str) -> None:
        self._record("watch", uri=uri)
        try:
            normalize_target(uri, next(iter(self.aors.values())))
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        self._watched.setdefault(uri, ContactPresence(uri=uri))

    def unwatch(self, uri: str) -> None:
        self._record("unwatch", uri=uri)
        self._watched.pop(uri, None)

    @property
    def watched(self) -> Mapping[str, ContactPresence]:
        return dict(self._watched)

    @property
    def voicemail(self) -> Mapping[str, Voicemail]:
        return dict(self._voicemail)

    def config_warning(self) -> str | None:
        return self.exposed_config

    def protect_config(self) -> None:
        self._record("protect_config")
        self.exposed_config = None

    # ------------------------------------------------------------------ plumbing
    def _record(self, name: str, **arguments: object) -> None:
        self.calls_made.append((name, arguments))
        message = self._raise_next.pop(name, None)
        if message is not None:
            raise PhoneError(message)

    def _require_started(self) -> None:
        if not self.started:
            raise PhoneError("the phone is not started")

    def _schedule(self, label: str, run: Callable[[], None]) -> None:
        self._steps.append(Step(label, run))
        if self.autoplay:
            self.settle()

    def _new_id(self) -> str:
        self._next_id += 1
        return f"fake-{self._next_id}@127.0.0.1"

    def _set_registration(self, account: str, state: RegistrationState, **fields: object) -> None:
        aor = self.aors[account]
        transport = aor.transport or "udp"
        self._registrations[account] = Registration(
            account=account,
            aor=str(aor),
            transport=transport,
            state=state,
            **fields,  # type: ignore[arg-type]
        )

    def _account_name(self, name: str | None) -> str:
        if name is None:
            return next(iter(self.aors))
        if name not in self.aors:
            raise PhoneError(f"no account named {name!r}")
        return name

    def _fake(self, call_id: str) -> FakeCall:
        try:
            return self._calls[call_id]
        except KeyError:
            raise PhoneError(f"no call {call_id}") from None

    def _publish_state(self, info: FakeCall) -> None:
        self.emit(
            pe.CallStateChanged(
                call_id=info.call_id,
                state=info.state,
                direction=info.direction,
                remote=info.remote,
                encryption=info.encryption,
                srtp_suite=info.srtp_suite,
                session_expires_s=info.session_expires_s,
            )
        )

    def _set_state(self, info: FakeCall, state: pe.CallStateName) -> None:
        if info.state != state:
            info.state = state
            self._publish_state(info)
            talking = any(c.state in ("established", "held") for c in self._calls.values())
            if talking != self._presence.on_the_phone:
                self._presence = replace(self._presence, on_the_phone=talking)
                if self._presence.accounts:  # presence runs: what is shown changes
                    self._show_presence()

    def _show_presence(self) -> None:
        own = self._presence
        shown: pe.PresenceChoice = "busy" if own.on_the_phone and own.state != "dnd" else own.state
        self._presence = replace(own, shown=shown)
        self.emit(
            pe.OwnPresenceChanged(
                state=own.state, shown=shown, note=own.note, on_the_phone=own.on_the_phone
            )
        )

    def _ring(self, info: FakeCall) -> None:
        if info.state == "calling":
            self._set_state(info, "ringing")

    def _establish(self, info: FakeCall) -> None:
        if info.state in ("calling", "ringing", "early"):
            info.established_at = self.now
            info.session_expires_s = 1800  # both sides' default session_expires
            if self.media_encryption != "none" and info.encryption == "none":
                info.encryption = self.media_encryption
                info.srtp_suite = "AES_CM_128_HMAC_SHA1_80"
            self._set_state(info, "established")

    def _finish(self, info: FakeCall, status: int, reason: str, phrase: str | None = None) -> None:
        if info.state == "ended":
            return
        answered = info.established_at is not None
        self._set_state(info, "ended")
        if info.conference:  # a party left: one call alone is no conference
            info.conference = False
            ids = self._conference_ids()
            if len(ids) < 2:
                for leg in self._calls.values():
                    leg.conference = False
                ids = []
            self.emit(pe.ConferenceChanged(call_ids=ids))
        info.recording = False
        self.emit(
            pe.CallEnded(
                call_id=info.call_id,
                status=status,
                reason=reason,
                # The real phone passes on the final response's phrase; a BYE brings none.
                phrase=phrase
                if phrase is not None
                else ("" if answered else REASON_PHRASES.get(status, "")),
                outcome=call_outcome(direction=info.direction, answered=answered, status=status),
                duration_s=round(self.now - info.established_at, 3)
                if info.established_at is not None
                else 0.0,
                answered=answered,
                stats=dict(info.stats) if answered else None,
                recording=str(info.recording_path) if info.recording_path else None,
            )
        )

    def _reoffer(self, call_id: str, *, hold: bool) -> None:
        self._require_started()
        info = self._fake(call_id)
        if info.state not in ("established", "held"):
            raise PhoneError("the call is not established")
        failure = self._reoffer_failures.popleft() if self._reoffer_failures else None

        def answered() -> None:
            if info.state not in ("established", "held"):
                return
            if failure is not None:
                self.emit(pe.Notice(level="warning", text=f"hold/resume failed: {failure}"))
                return
            info.local_hold = hold
            self._update_hold(info)

        self._schedule(f"{call_id} re-INVITE {'hold' if hold else 'resume'}", answered)

    def _update_hold(self, info: FakeCall) -> None:
        if info.state in ("established", "held"):
            self._set_state(info, "held" if info.local_hold or info.remote_hold else "established")

    def _transfer_progressed(self, info: FakeCall, status: int, reason: str, final: bool) -> None:
        if info.state == "ended":
            return
        self.emit(
            pe.TransferProgressed(call_id=info.call_id, status=status, reason=reason, final=final)
        )
        if final and 200 <= status < 300:
            self._finish(info, 200, "hung up here")  # blind transfer done: we leave (RFC 5589 §6)
