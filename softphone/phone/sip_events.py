"""What the SIP core's events mean to the phone: :class:`SipEvents` turns each
``softphone.sip.events`` event into changes of the registrations and the calls and into the
phone's own events (``softphone.phone.events``) for front ends.

Two reactions start work that takes longer than one event: answering by itself (the phone's
``auto_answer``) and dialling the target of a REFER (blind transfer, RFC 3515). Both run as
tasks of the phone's :class:`~softphone.phone.tasks.TaskSet`, so stopping the phone ends them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, assert_never

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.answering_machine import AnsweringMachine
from softphone.phone.call_info import CallInfo
from softphone.phone.call_routing import CallRouting
from softphone.phone.calls import Calls
from softphone.phone.errors import PhoneError
from softphone.phone.messaging import Messaging
from softphone.phone.network import keep_alive_interval
from softphone.phone.offer_answer import warning_for
from softphone.phone.presence import PresenceService
from softphone.phone.registrations import Registrations
from softphone.phone.tasks import TaskSet
from softphone.phone.transfers import calls_to_end, invite_headers
from softphone.sdp import MediaRefused
from softphone.sip import events as ue
from softphone.sip.account import AccountConfig
from softphone.sip.errors import LocalProtocolError
from softphone.sip.ua import UserAgent
from softphone.transport.sip import SipTransport

__all__ = ["PhoneActions", "SipEvents"]

logger = logging.getLogger(__name__)

REASON_MAX = 60  # a NOTIFY's sipfrag reason phrase is kept short
# After an attended transfer, how long the transferee leaves the old call to the transferor's BYE.
TRANSFERRED_CALL_GRACE_S = 4.0


class PhoneActions(Protocol):
    """The phone's own actions a reaction takes, as a front end would call them."""

    auto_answer: bool

    async def dial_with(
        self, target: str, *, account: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> str: ...
    async def answer(self, call_id: str) -> None: ...
    async def hangup(self, call_id: str) -> None: ...


def failed_over_text(event: ue.ServerFailedOver) -> str:
    """ "registrar 203.0.113.10:5060 did not answer; trying 203.0.113.11:5060"."""
    role = "registrar" if event.method == "REGISTER" else "proxy"
    what = f"{event.account}: {role}" if event.method == "REGISTER" else f"call: {role}"
    return f"{what} {event.failed} {event.why}; trying {event.trying}"


class SipEvents:
    """Handles the core's events for ``phone``; :meth:`handle` is the SIP transport's sink."""

    def __init__(
        self,
        *,
        phone: PhoneActions,
        ua: UserAgent,
        transport: SipTransport,
        calls: Calls,
        registrations: Registrations,
        accounts: Mapping[str, AccountConfig],
        tasks: TaskSet,
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
        do_not_disturb: bool,
        messaging: Messaging,
        presence: PresenceService,
        config: Config,
        rng: random.Random | None = None,
    ) -> None:
        self._phone = phone
        self._ua = ua
        self._transport = transport
        self._calls = calls
        self._registrations = registrations
        self._accounts = accounts
        self._tasks = tasks
        self._emit = emit
        self._clock = clock
        self._do_not_disturb = do_not_disturb
        self._messaging = messaging
        self._presence = presence
        # Forwarding and do-not-disturb per account (call_routing.py); the phone reconfigures it
        machine = AnsweringMachine(
            config, answer=phone.answer, hangup=phone.hangup, emit=emit, tasks=tasks
        )
        self.routing = CallRouting(
            config.accounts, tasks=tasks, calls=calls.all, clock=clock, machine=machine
        )
        self.routing.bind(ua, self.handle)
        self._rng = rng or random.Random()
        self._flow_timers: dict[str, int | None] = {}  # account -> the Flow-Timer last granted

    def handle(self, events: Iterable[object]) -> None:
        """Apply each event in order, then send what the core queued in response."""
        for event in events:
            try:
                self._handle_one(event)
            except LocalProtocolError as exc:  # a race between our action and the peer's
                logger.info("event %r raced with the call state: %s", event, exc)
        self._transport.pump()

    def _answer_reoffer(self, info: CallInfo, sdp: bytes | None) -> None:
        ua, call_id = self._ua, info.call_id
        answer = self._calls.answer_offer(info, sdp)
        if answer is None:
            warning = warning_for(info.sdp_problem)
            ua.reject_reoffer(call_id, status=488, now=self._clock(), warning=warning)
            self._emit(pe.Notice(level="warning", text=f"re-offer refused: {info.sdp_problem}"))
            return
        ua.answer_reoffer(call_id, sdp=answer, now=self._clock())
        self._calls.reoffered(info, None)

    async def _gathered_reoffer(self, info: CallInfo, sdp: bytes | None) -> None:
        """Answer the re-offer once the video's candidates are gathered (at most a few s: the
        INVITE server transaction waits, RFC 3261 §17.2.1)."""
        await self._calls.gather(info, sdp)
        if info.state in ("established", "held"):
            try:
                self._answer_reoffer(info, sdp)
            except LocalProtocolError as exc:  # the peer gave up on it meanwhile
                logger.info("re-offer of %s could not be answered: %s", info.call_id, exc)
        self._transport.pump()

    def _handle_one(self, event: object) -> None:
        ua, calls = self._ua, self._calls
        if not isinstance(event, ue.UaEvent):
            logger.error("not a user agent event: %r", event)
            return
        match event:
            case ue.Registered(account=account, expires=expires, flow_timer_s=flow_timer):
                first = self._registrations.registered(account, expires_at=time.time() + expires)
                acct = self._accounts.get(account)
                hop = ua.registration_hop(account) or (acct.outbound if acct else None)
                if hop is not None and (first or flow_timer != self._flow_timers.get(account)):
                    self._flow_timers[account] = flow_timer
                    interval = keep_alive_interval(hop, flow_timer, self._rng)
                    self._transport.keep_alive(hop, interval)
                self._emit(pe.Registered(account=account, expires=expires))
                # Presence starts with the first registration and starts again after a failed
                # one: a registrar that came back has lost its subscriptions.
                self._presence.account_ready(account, again=first)
            case ue.RegistrationNotAnswered(account=account):
                self._registrations.no_answer(account)
                self._emit(
                    pe.NoAnswerYet(
                        account=account,
                        request="REGISTER",
                        call_id=None,
                        server=event.server,
                        transport=event.transport,
                        waited_s=event.waited_s,
                        gives_up_in_s=event.gives_up_in_s,
                    )
                )
            case ue.InviteNotAnswered(call_id=call_id):
                if (info := calls.get(call_id)) is not None:
                    self._emit(
                        pe.NoAnswerYet(
                            account=info.account,
                            request="INVITE",
                            call_id=call_id,
                            server=event.server,
                            transport=event.transport,
                            waited_s=event.waited_s,
                            gives_up_in_s=event.gives_up_in_s,
                        )
                    )
            case ue.RegistrationFailed(
                account=account, status=status, reason=reason, retry_in_s=retry
            ):
                self._registrations.failed(account, reason=reason, retry_in_s=retry)
                self._emit(
                    pe.RegistrationFailed(
                        account=account, status=status, reason=reason, retry_in_s=retry
                    )
                )
            case ue.Unregistered(account=account):
                self._registrations.unregistered(account)
                self._emit(pe.Unregistered(account=account))
            case ue.IncomingCall():
                self._incoming(event)
            case ue.CallProgressed(call_id=call_id, status=status, sdp=sdp):
                if (info := calls.get(call_id)) is not None:
                    calls.progressed(info, status, sdp)
            case ue.CallAnswered(call_id=call_id, sdp=sdp):
                if (info := calls.get(call_id)) is not None:
                    info.session_expires_s = ua.session_interval(call_id)
                    refused = calls.answered(info, sdp)
                    if refused is not None:
                        self._emit(pe.Notice(level="error", text=f"hanging up: {refused}"))
                        self.handle(ua.hangup(call_id, self._clock()))
                        return
                    self._notify_transferor(info, 200, "OK")
            case ue.CallConfirmed(call_id=call_id):
                if (info := calls.get(call_id)) is not None:
                    info.session_expires_s = ua.session_interval(call_id)
                    calls.established(info)
            case ue.CallFailed(call_id=call_id, status=status, reason=reason):
                if (info := calls.get(call_id)) is not None:
                    self._notify_transferor(info, status or 503, reason)
                    calls.finish(
                        info,
                        status,
                        reason,
                        phrase=event.phrase,
                        no_response=event.no_response,
                    )
            case ue.CallEnded(call_id=call_id, status=status, reason=reason):
                if (info := calls.get(call_id)) is not None:
                    calls.finish(info, status, reason)
            case ue.ReofferReceived(call_id=call_id, sdp=sdp):
                if (info := calls.get(call_id)) is None:
                    return
                if calls.gathers_for(info, sdp):  # it adds video with ICE: candidates first
                    self._tasks.spawn(self._gathered_reoffer(info, sdp), name=f"gather {call_id}")
                    return
                self._answer_reoffer(info, sdp)
            case ue.ReofferAnswered(call_id=call_id, sdp=sdp):
                if (info := calls.get(call_id)) is not None:
                    calls.reoffered(info, sdp)
            case ue.ReofferFailed(call_id=call_id, reason=reason):
                if (info := calls.get(call_id)) is not None:
                    info.local_hold = not info.local_hold  # the change did not happen
                    self._emit(pe.Notice(level="warning", text=f"hold/resume failed: {reason}"))
            case ue.TransferRequested(call_id=call_id, target=target):
                if (info := calls.get(call_id)) is not None:
                    self._emit(pe.Notice(level="info", text=f"transferred to {target}"))
                    headers = invite_headers(event.replaces, event.referred_by)
                    self._tasks.spawn(
                        self._transfer_dial(info, target, headers, replacing=bool(event.replaces)),
                        name=f"transfer-dial-{call_id}",
                    )
            case ue.TransferProgressed(call_id=call_id, status=status, reason=reason, final=final):
                self._emit(
                    pe.TransferProgressed(
                        call_id=call_id, status=status, reason=reason, final=final
                    )
                )
                info = calls.get(call_id)
                if final and 200 <= status < 300 and info is not None:
                    # Transfer done: the transferee has the new call; we leave (RFC 5589 §6),
                    # and after an attended one the call with the target too (§7.1).
                    for ended in calls_to_end(calls, info):
                        self.handle(ua.hangup(ended, self._clock()))
                elif final and info is not None:
                    info.attended_with = None
            case ue.DtmfReceived(call_id=call_id, digit=digit, duration_ms=duration_ms):
                self._emit(
                    pe.DtmfReceived(
                        call_id=call_id, digit=digit, method="info", duration_ms=duration_ms
                    )
                )
            case ue.MessageReceived() | ue.MessageDelivered() | ue.MessageFailed():
                self._messaging.handle(event)
            case ue.ServerFailedOver():
                self._emit(pe.Notice(level="warning", text=failed_over_text(event)))
            case ue.SubscriptionChanged() | ue.NotificationReceived() | ue.PublicationChanged():
                self._presence.handle(event)
            case _:
                assert_never(event)

    def _incoming(self, event: ue.IncomingCall) -> None:
        info = CallInfo(
            call_id=event.call_id,
            account=event.account,
            direction="incoming",
            remote=event.remote_uri,
            state="ringing",
            started_at=self._clock(),
            remote_sdp=event.sdp,
            display_name=event.remote_display,
        )
        self._calls.add(info)
        replaced = self._calls.get(event.replaces) if event.replaces else None
        if replaced is None:  # a replacing call is no new call for the person: no alert
            self._emit(
                pe.IncomingCall(
                    call_id=event.call_id,
                    account=event.account,
                    remote=event.remote_uri,
                    display_name=event.remote_display,
                    waiting=event.replaces_call,
                )
            )
        # A replacing call takes an existing call's place: never forwarded nor refused.
        if replaced is None and self.routing.arrived(info):  # forwarded, or do not disturb
            return
        if (self._do_not_disturb or self._presence.do_not_disturb) and replaced is None:
            self.handle(
                self._ua.reject(
                    event.call_id, status=480, now=self._clock(), reason="Do Not Disturb"
                )
            )
            return
        problem = self._calls.offer_problem(info)
        # e.g. plain RTP to an account that needs SRTP, or IP6 media to a phone on IPv4 only
        if isinstance(problem, MediaRefused):
            self._emit(
                pe.Notice(level="warning", text=f"refused the call from {info.remote}: {problem}")
            )
            self.handle(
                self._ua.reject(
                    event.call_id, status=488, now=self._clock(), warning=warning_for(problem)
                )
            )
            return
        self._emit(
            pe.CallStateChanged(
                call_id=info.call_id, state="ringing", direction="incoming", remote=info.remote
            )
        )
        if replaced is not None:
            # RFC 3891 §3: a transfer or pickup takes the place of a call we already have; it
            # is answered at once, and the core ends the replaced call once this one is up.
            text = f"call from {info.remote} replaces the call with {replaced.remote}"
            self._emit(pe.Notice(level="info", text=text))
            self._tasks.spawn(self._auto_answer(event.call_id), name=f"replace-{info.call_id}")
            return
        self._calls.update_tones()
        self._ua.ring(event.call_id, self._clock())
        self.routing.ringing(info)
        if self._phone.auto_answer:
            self._tasks.spawn(self._auto_answer(event.call_id), name=f"auto-answer-{info.call_id}")

    async def _auto_answer(self, call_id: str) -> None:
        try:
            await self._phone.answer(call_id)
        except PhoneError as exc:
            self._emit(pe.Notice(level="error", text=f"could not answer: {exc}"))

    async def _transfer_dial(
        self,
        original: CallInfo,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        replacing: bool = False,
    ) -> None:
        try:
            new_id = await self._phone.dial_with(target, account=original.account, headers=headers)
        except PhoneError as exc:
            try:
                self._ua.notify_transfer(
                    original.call_id, status=503, reason=str(exc)[:REASON_MAX], now=self._clock()
                )
            except LocalProtocolError:
                pass
            self._transport.pump()
            return
        new = self._calls.require(new_id)
        new.transfer_of, new.transfer_replaces = original.call_id, replacing

    def _notify_transferor(self, info: CallInfo, status: int, reason: str) -> None:
        """The call made for a REFER reached an outcome: tell the transferor (RFC 3515 §2.4.5)."""
        if info.transfer_of is None:
            return
        original, info.transfer_of = info.transfer_of, None
        try:
            self._ua.notify_transfer(
                original, status=status, reason=reason[:REASON_MAX], now=self._clock()
            )
        except LocalProtocolError:
            pass
        if info.transfer_replaces and 200 <= status < 300:
            # The new call replaced the transferor's with the target: our old call is over
            # too. The transferor ends it on our NOTIFY (RFC 5589 §7.1); a BYE from us at once
            # could overtake the NOTIFY through a proxy and leave it without an outcome, so
            # ours goes only if the transferor has not hung up after a grace time.
            self._tasks.spawn(self._end_after_transfer(original), name=f"transferred-{original}")

    async def _end_after_transfer(self, call_id: str) -> None:
        await asyncio.sleep(TRANSFERRED_CALL_GRACE_S)
        old = self._calls.get(call_id)
        if old is not None and old.state != "ended":
            try:
                self.handle(self._ua.hangup(call_id, self._clock()))
            except LocalProtocolError:
                pass
