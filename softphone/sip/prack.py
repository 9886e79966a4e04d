"""Reliable provisional responses and PRACK (RFC 3262), both sides, sans-IO. The records and
the callee's table are in sip/reliable.py.

As caller (§4): our INVITE says ``Supported: 100rel`` (``Require: 100rel`` when the account's
``prack`` is "required"). A 1xx with ``Require: 100rel`` and an RSeq is PRACKed inside its early
dialog with ``RAck: <RSeq> <CSeq> INVITE``; its SDP is the answer (early media) like any 1xx's.
The same RSeq again (our PRACK was lost) is PRACKed once more and not processed again; one that
is not the next in order is dropped (§4). A reliable 1xx without RSeq is processed as an
unreliable one, with a warning: nothing can be acknowledged.

As callee (§3): when the INVITE requires 100rel (or supports it and our account requires it)
every 1xx after 100 goes with ``Require: 100rel`` and an RSeq, retransmitted at T1, 2*T1, 4*T1...
until its PRACK comes; no PRACK within 64*T1 rejects the call with 500. A second 1xx waits for
the first one's PRACK, and so does our 2xx (§3: nothing answers the INVITE before its reliable
1xx are acknowledged). A PRACK that matches no 1xx waiting for one gets 481, one without a
well-formed RAck 400.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, hop_for
from softphone.sip.call import Call, CallInput, CallState
from softphone.sip.context import DeadlineHandler, MethodTable, UaContext
from softphone.sip.errors import RemoteProtocolError
from softphone.sip.message import SipRequest, SipResponse
from softphone.sip.reliable import (
    MAX_RSEQ,
    PrackServer,
    RAck,
    ReliableInput,
    ReliableState,
    rseq_of,
)
from softphone.sip.session_timer import has_option
from softphone.sip.transaction import ClientTransaction, ServerTransaction

logger = logging.getLogger(__name__)

RLI = ReliableInput
NO_PRACK: Final = "no PRACK for our reliable provisional response"
AnswerRelease = Callable[[Call, bytes | None, float], None]


class Prack:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        # Set by the callee's side (invite_server.py): sends the 2xx that waited for a PRACK.
        self.release_answer: AnswerRelease | None = None

    def install(self, methods: MethodTable) -> None:
        methods.register_method("PRACK", in_dialog=self._on_prack, accept=("application/sdp",))
        methods.register_extension("100rel")

    # --- as caller (§4) ---------------------------------------------------------------------
    @staticmethod
    def invite_headers(acct: AccountConfig) -> list[tuple[str, str]]:
        return [("Require", "100rel")] if acct.prack == "required" else []

    def provisional(self, call: Call, resp: SipResponse, now: float) -> bool:
        """A 1xx to our INVITE: PRACK it if it is reliable. False when it must not be processed
        (a retransmission, or one out of order)."""
        if not has_option(resp, "Require", "100rel"):
            return True
        if call.account.prack == "off":
            logger.warning(
                "call %s: a reliable %d though we never offered 100rel", call.call_id, resp.status
            )
            return True
        try:
            rseq = rseq_of(resp)
        except RemoteProtocolError as exc:
            logger.warning("call %s: %s; taken as unreliable", call.call_id, exc)
            return True
        dialog = call.dialog
        if dialog is None or dialog.remote_tag != (resp.to.tag or ""):
            logger.warning(
                "call %s: reliable %d outside our early dialog; not acknowledged",
                call.call_id,
                resp.status,
            )
            return True
        record = call.prack_client
        last = record.last_rseq
        if last is not None and rseq <= last:
            if rseq == last and rseq not in record.prack_again:  # our PRACK was lost
                record.prack_again.add(rseq)
                self._send_prack(call, rseq, now)
            return False
        if last is not None and rseq != last + 1:
            logger.warning("call %s: RSeq %d after %d dropped (§4)", call.call_id, rseq, last)
            return False
        record.last_rseq = rseq
        record.early_answer = record.early_answer or bool(resp.body)
        self._send_prack(call, rseq, now)
        return True

    def _send_prack(self, call: Call, rseq: int, now: float) -> None:
        assert call.dialog is not None
        prack = call.dialog.build_request("PRACK")
        prack.headers.add("RAck", str(RAck(rseq, call.invite.cseq.seq, "INVITE")))
        hop = hop_for(call.dialog, call.account)
        self._ctx.start_client(prack, hop, call.account, self._on_prack_response, now)

    def _on_prack_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(tx.request.call_id)
        if (
            resp is not None
            and status in (401, 407)
            and call is not None
            and call.dialog is not None
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=call.dialog.next_seq,
                handler=self._on_prack_response,
                now=now,
            )
        ):
            return []
        if status >= 300:
            logger.warning("PRACK for call %s: %d %s", tx.request.call_id, status, reason)
        return []

    # --- as callee (§3) ---------------------------------------------------------------------
    def refuses(
        self, acct: AccountConfig, req: SipRequest, tx: ServerTransaction, now: float
    ) -> bool:
        """An INVITE we cannot take as it asks: 420 when it requires 100rel and the account has
        it off (§8.2.2.3 of RFC 3261), 421 when the account requires it and the INVITE does not
        support it (§3). True when answered so."""
        required = has_option(req, "Require", "100rel")
        if required and acct.prack == "off":
            self._ctx.reply(tx, req, 420, now, extra=[("Unsupported", "100rel")])
            return True
        if acct.prack == "required" and not (required or has_option(req, "Supported", "100rel")):
            self._ctx.reply(tx, req, 421, now, extra=[("Require", "100rel")])
            return True
        return False

    def setup(self, call: Call) -> None:
        """Whether this incoming call's 1xx are reliable (``refuses`` said it may go on)."""
        req = call.invite
        if has_option(req, "Require", "100rel") or (
            call.account.prack == "required" and has_option(req, "Supported", "100rel")
        ):
            call.prack_server = PrackServer(next_rseq=self._ctx.rng.randint(1, MAX_RSEQ // 2))

    def send_reliable(self, call: Call, status: int, sdp: bytes | None, now: float) -> None:
        """Send a 1xx reliably, or queue it behind the one still waiting for its PRACK."""
        record, tx = call.prack_server, call.invite_server_tx
        assert record is not None and tx is not None
        if record.state is not ReliableState.IDLE:
            record.queued.append((status, sdp))
            return
        rseq = record.next_rseq
        record.next_rseq += 1
        resp = self._ctx.response(
            call.invite,
            status,
            to_tag=call.local_tag,
            contact=call.account,
            sdp=sdp,
            extra=[("Require", "100rel"), ("RSeq", str(rseq))],
        )
        record.apply(RLI.SEND_RELIABLE)
        record.pending, record.pending_rseq = resp, rseq
        record.interval_s, record.first_sent_at = self._ctx.timers.t1, now
        self._ctx.send_response(tx, resp, now)
        self._arm(call, record, now)

    def _arm(self, call: Call, record: PrackServer, now: float) -> None:
        """The next retransmission, or the end of the 64*T1 wait if that comes first (§3)."""
        give_up_at = record.first_sent_at + self._ctx.timers.timeout
        at = min(now + record.interval_s, give_up_at)
        self._ctx.set_deadline(_key(call), at, self._retransmit(call))

    def holds_answer(self, call: Call, sdp: bytes | None) -> bool:
        """§3: our 2xx waits while a reliable 1xx has no PRACK. True when it was held."""
        record = call.prack_server
        if record is None or (record.state is ReliableState.IDLE and not record.queued):
            return False
        record.held_answer, record.answer_held = sdp, True
        return True

    def final_sent(self, call: Call) -> None:
        """A final response went (a rejection, 487): stop retransmitting."""
        record = call.prack_server
        if record is not None and record.allows(RLI.FINAL_SENT):
            record.apply(RLI.FINAL_SENT)
            record.queued.clear()
            record.answer_held = False
            self._ctx.clear_deadline(_key(call))

    def _retransmit(self, call: Call) -> DeadlineHandler:
        def fire(now: float) -> list[ev.Event]:
            record, tx = call.prack_server, call.invite_server_tx
            if (
                record is None
                or tx is None
                or record.pending is None
                or call.state is not CallState.INCOMING
                or not record.allows(RLI.RETRANSMIT)
            ):
                return []
            if now - record.first_sent_at >= self._ctx.timers.timeout:  # §3: 64*T1
                record.apply(RLI.GIVE_UP)
                resp = self._ctx.response(call.invite, 500, to_tag=call.local_tag, reason=None)
                self._ctx.send_response(tx, resp, now)
                call.apply(CallInput.REJECT)
                call.forget_dialog()
                return call.end(
                    ev.CallFailed(
                        call_id=call.call_id, status=500, reason=NO_PRACK, no_response=True
                    )
                )
            record.apply(RLI.RETRANSMIT)
            self._ctx.send_response(tx, record.pending, now)
            record.interval_s *= 2
            self._arm(call, record, now)
            return []

        return fire

    def _on_prack(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        text = req.headers.get("RAck")
        if text is None:
            return self._ctx.reply(tx, req, 400, now, reason="Missing RAck")
        try:
            rack = RAck.parse(text)
        except RemoteProtocolError:
            return self._ctx.reply(tx, req, 400, now, reason="Bad RAck")
        record = call.prack_server
        if (
            record is None
            or record.state is not ReliableState.WAITING_PRACK
            or rack != RAck(record.pending_rseq, call.invite.cseq.seq, "INVITE")
        ):
            return self._ctx.reply(tx, req, 481, now)  # §3: matches no unacknowledged 1xx
        self._ctx.reply(tx, req, 200, now)
        record.apply(RLI.RECV_PRACK)
        self._ctx.clear_deadline(_key(call))
        if call.state is not CallState.INCOMING:
            return []
        if record.queued:
            status, sdp = record.queued.pop(0)
            self.send_reliable(call, status, sdp, now)
        elif record.answer_held and self.release_answer is not None:
            record.answer_held = False
            self.release_answer(call, record.held_answer, now)
        return []


def _key(call: Call) -> tuple[str, str]:
    return ("reliable-1xx", call.call_id)
