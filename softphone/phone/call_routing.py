"""Forwarding, do-not-disturb and voicemail carried out: :class:`CallRouting` asks the policy
(phone/forwarding.py) what to do with each incoming call, and tells the SIP core (a 302 with
the target, or do-not-disturb's 486/603) or the answering machine (answering_machine.py). The phone's incoming call handling (sip_events.py)
asks it first; ``Phone.reject`` asks it when the user refuses a call as busy.

A call that is to be forwarded when nobody answers waits on a task of the phone's TaskSet,
so stopping the phone ends the wait; when it fires, the call is forwarded only if it still
rings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from softphone.config import Account
from softphone.config_forwarding import Forwarding
from softphone.phone.answering_machine import AnsweringMachine
from softphone.phone.call_info import CallInfo
from softphone.phone.forwarding import Action, Decision, Trigger, decide
from softphone.phone.tasks import TaskSet
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

__all__ = ["CallRouting"]

logger = logging.getLogger(__name__)


class CallRouting:
    """Each account's forwarding, applied to the calls it receives."""

    def __init__(
        self,
        accounts: Sequence[Account],
        *,
        tasks: TaskSet,
        calls: Callable[[], Iterable[CallInfo]],
        clock: Callable[[], float],
        machine: AnsweringMachine | None = None,
    ) -> None:
        self._settings: dict[str, Forwarding] = {}
        self._machine = machine
        self._tasks = tasks
        self._calls = calls
        self._clock = clock
        self._ua: UserAgent | None = None
        self._handle: Callable[[Iterable[object]], None] = lambda events: None
        self.configure(accounts)

    def configure(self, accounts: Sequence[Account]) -> None:
        """The accounts' settings from now on (calls already ringing keep their timers)."""
        self._settings = {a.name: a.forwarding for a in accounts}

    def bind(self, ua: UserAgent, handle: Callable[[Iterable[object]], None]) -> None:
        """The core to answer with, and where the events its answers make go."""
        self._ua, self._handle = ua, handle

    def settings(self, account: str) -> Forwarding:
        return self._settings.get(account, Forwarding())

    def arrived(self, info: CallInfo) -> bool:
        """A new incoming call: forwarded or refused here (True), or for the phone to ring
        (False; a no-answer forward is then armed by :meth:`ringing`)."""
        busy = any(c.call_id != info.call_id and c.state != "ended" for c in self._calls())
        decision = decide(Trigger.ARRIVED, self.settings(info.account), busy=busy)
        return self._carry_out(info, decision)

    def ringing(self, info: CallInfo) -> None:
        """The call rings: forward it after the account's no-answer time, if it has one."""
        decision = decide(Trigger.ARRIVED, self.settings(info.account))
        if decision.action is Action.RING and decision.ring_for_s is not None:
            self._tasks.spawn(
                self._no_answer(info, decision.ring_for_s), name=f"no-answer-{info.call_id}"
            )

    def refused_busy(self, info: CallInfo) -> bool:
        """The user refuses the call as busy: True when it was forwarded instead."""
        decision = decide(Trigger.USER_BUSY, self.settings(info.account))
        return decision.action is Action.FORWARD and self._carry_out(info, decision)

    async def _no_answer(self, info: CallInfo, after_s: float) -> None:
        await asyncio.sleep(after_s)
        if self._ua is None or self._ua.call_state(info.call_id) is not CallState.INCOMING:
            return  # answered, refused or cancelled meanwhile
        self._carry_out(info, decide(Trigger.NO_ANSWER, self.settings(info.account)))

    def _carry_out(self, info: CallInfo, decision: Decision) -> bool:
        ua, call_id = self._ua, info.call_id
        if ua is None or decision.action in (Action.RING, Action.KEEP_RINGING):
            return False
        if decision.action is Action.VOICEMAIL:
            if self._machine is None:
                return False
            self._machine.take(info, self.settings(info.account))
            return True
        try:
            if decision.action is Action.FORWARD:
                assert decision.target is not None
                target = SipUri.parse(decision.target)  # checked when the config was read
                events = ua.redirect(
                    call_id,
                    target,
                    now=self._clock(),
                    diversion=decision.diversion,
                    why=decision.reason,
                )
            else:
                assert decision.status is not None
                events = ua.reject(
                    call_id, status=decision.status, now=self._clock(), why=decision.reason
                )
        except (LocalProtocolError, ParseError) as exc:  # cancelled in the same instant
            logger.info("could not %s call %s: %s", decision.action.value, call_id, exc)
            return False
        logger.info("call %s: %s", call_id, decision.reason)
        self._handle(events)
        return True
