"""Re-offers in a confirmed call (RFC 3261 §14): hold, resume, codec change, sans-IO.

Ours (§14.1) is a re-INVITE with a new offer; theirs (§14.2) reaches the phone as
ReofferReceived and is answered with ``answer``/``reject``. The re-offer sub-table
(call.REOFFER_TRANSITIONS) says what may happen when. Glare, when both re-INVITEs cross: the
one that arrives while ours is pending is answered 491; a 491 to ours makes us wait a random
2.1-4 s when we own the Call-ID (we placed the call), 0-2 s otherwise, then send it again, at
most MAX_GLARE_RETRIES times. While we wait, theirs is taken; ours goes after it is done.
"""

from __future__ import annotations

import logging
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import hop_for
from softphone.sip.bye import Bye
from softphone.sip.call import Call, CallState, ReofferInput, ReofferState
from softphone.sip.compose import sdp_body
from softphone.sip.context import MethodTable, ServerKey, UaContext
from softphone.sip.errors import LocalProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.message import SipRequest, SipResponse
from softphone.sip.session_refresh import SessionRefresh
from softphone.sip.status import explain, warning_header, warning_texts
from softphone.sip.transaction import (
    AckReceived,
    ClientTransaction,
    ServerTransaction,
    TransactionEvent,
    TransactionTerminated,
    server_key,
)

logger = logging.getLogger(__name__)

MAX_GLARE_RETRIES: Final = 3
RI = ReofferInput
GLARE_WAITING: Final = frozenset(
    {
        ReofferState.GLARE_WAIT,
        ReofferState.GLARE_WAIT_OFFER_RECEIVED,
        ReofferState.GLARE_WAIT_ANSWER_SENT,
    }
)


class Reoffers:
    def __init__(self, ctx: UaContext, bye: Bye, session: SessionRefresh) -> None:
        self._ctx = ctx
        self._bye = bye
        self._session = session  # a re-INVITE may be a session refresh (RFC 4028)

    def install(self, methods: MethodTable) -> None:
        methods.register_method("INVITE", in_dialog=self._on_reinvite, accept=("application/sdp",))
        methods.observe_call_transactions(self._on_transaction_event)

    # --- ours (§14.1) ----------------------------------------------------------------------------
    def reoffer(self, call: Call, *, sdp: bytes, now: float) -> None:
        """Send a re-INVITE with a new offer (hold: a=sendonly/inactive; resume: a=sendrecv)."""
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot re-INVITE a call in state {call.state.name}")
        if not call.reoffer.allows(RI.SEND_OFFER):
            raise LocalProtocolError("a re-INVITE is already in progress on this call")
        call.reoffer.apply(RI.SEND_OFFER)
        call.reoffer.offer = sdp
        call.local_sdp = sdp
        call.reoffer.glare_retries = 0
        self._send(call, now)

    def _send(self, call: Call, now: float) -> None:
        assert call.dialog is not None and call.reoffer.offer is not None
        request = call.dialog.build_request("INVITE")
        hop = hop_for(call.dialog, call.account)
        request.headers.add(
            "Contact",
            str(
                NameAddr(
                    uri=self._ctx.contact_uri(
                        call.account, hop.transport, secure=call.dialog.secure
                    )
                )
            ),
        )
        request.headers.add("Allow", self._ctx.allow)
        for name, value in self._session.refresh_headers(call):
            request.headers.add(name, value)
        request.headers.add("Content-Type", "application/sdp")
        request.body = call.reoffer.offer
        self._ctx.start_client(request, hop, call.account, self._on_response, now)

    def _on_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(tx.request.call_id)
        if call is None or call.dialog is None or (resp is not None and status < 200):
            return []
        dialog, sub = call.dialog, call.reoffer
        if resp is not None and 200 <= status < 300:
            if sub.state is not ReofferState.OFFER_SENT:  # an earlier 2xx again: ACK again
                sub.apply(RI.RECV_2XX)
                if call.ack is not None:
                    self._ctx.resend(call.ack)
                return []
            sub.apply(RI.RECV_2XX)
            dialog.refresh_target(resp)
            ack = dialog.build_request("ACK", seq=tx.request.cseq.seq)
            call.ack = self._ctx.send_stateless(ack, hop_for(dialog, call.account), now)
            if "Session-Expires" in tx.request.headers:  # it was a session refresh too
                self._session.confirmed_by(call, resp, now)
            return [ev.ReofferAnswered(call_id=call.call_id, sdp=sdp_body(resp))]
        if not sub.allows(RI.RECV_FAILURE):
            # No re-INVITE of ours is outstanding: an earlier one's transaction failing after
            # its final response (a transport error on the ACK) changes nothing.
            logger.debug("re-INVITE %s: %d in %s ignored", call.call_id, status, sub.state.name)
            return []
        if (
            resp is not None
            and status in (401, 407)
            and sub.allows(RI.RECV_CHALLENGE)
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=dialog.next_seq,
                handler=self._on_response,
                now=now,
                prepare=lambda _request: self._challenged(call),
            )
        ):
            return []
        if status == 491 and sub.allows(RI.RECV_491) and sub.glare_retries < MAX_GLARE_RETRIES:
            # §14.1: retry after a random wait; 2.1-4 s when we own the Call-ID, else 0-2 s.
            sub.apply(RI.RECV_491)
            sub.glare_retries += 1
            rng = self._ctx.rng
            wait = rng.uniform(2.1, 4.0) if call.outgoing else rng.uniform(0.0, 2.0)
            self._ctx.set_deadline(
                ("glare", call.call_id), now + wait, lambda at: self._glare_over(call, at)
            )
            return []
        if sub.state in GLARE_WAITING:  # the 491's transaction failed: no retry any more
            self._ctx.clear_deadline(("glare", call.call_id))
        sub.apply(RI.RECV_FAILURE)
        warnings = warning_texts(resp.headers.get_lines("Warning")) if resp is not None else []
        events: list[ev.Event] = [
            ev.ReofferFailed(
                call_id=call.call_id,
                status=status,
                reason=explain(status, reason, "; ".join(warnings) or None),
            )
        ]
        if status in (408, 481) and call.state is CallState.CONFIRMED:
            # §14.1: a 481 or 408 to a re-INVITE ends the dialog.
            self._bye.send(call, now, why=f"the call was lost: {explain(status, reason)}")
        return events

    def _challenged(self, call: Call) -> None:
        call.reoffer.apply(RI.RECV_CHALLENGE)

    def _glare_over(self, call: Call, now: float) -> list[ev.Event]:
        if call.state is not CallState.CONFIRMED or not call.reoffer.allows(RI.GLARE_TIMER):
            return []
        if call.reoffer.apply(RI.GLARE_TIMER) is ReofferState.OFFER_SENT:
            self._send(call, now)
        else:  # theirs goes first; look again a T1 later
            self._ctx.set_deadline(
                ("glare", call.call_id),
                now + self._ctx.timers.t1,
                lambda at: self._glare_over(call, at),
            )
        return []

    # --- theirs (§14.2) --------------------------------------------------------------------------
    def answer(self, call: Call, *, sdp: bytes | None, now: float) -> None:
        sub = call.reoffer
        tx, request = sub.server_tx, sub.request
        if not sub.allows(RI.SEND_2XX) or tx is None or request is None:
            raise LocalProtocolError("no re-INVITE to answer")
        extra = self._session.answered(call, request, now)
        resp = self._ctx.response(request, 200, contact=call.account, sdp=sdp, extra=extra)
        if sdp is not None:
            call.local_sdp = sdp
        sub.apply(RI.SEND_2XX)
        self._ctx.send_response(tx, resp, now)

    def reject(
        self, call: Call, *, status: int = 488, now: float, warning: tuple[int, str] | None = None
    ) -> None:
        sub = call.reoffer
        tx, request = sub.server_tx, sub.request
        if not sub.allows(RI.SEND_REJECT) or tx is None or request is None:
            raise LocalProtocolError("no re-INVITE to reject")
        extra = [("Warning", warning_header(*warning))] if warning is not None else []
        resp = self._ctx.response(request, status, extra=extra)
        sub.apply(RI.SEND_REJECT)
        self._ctx.send_response(tx, resp, now)

    def _on_reinvite(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        if call.state is not CallState.CONFIRMED:
            return self._ctx.reply(tx, req, 491 if call.state is CallState.ANSWERED else 481, now)
        if not call.reoffer.allows(RI.RECV_OFFER):
            return self._ctx.reply(tx, req, 491, now)  # §14.2 glare
        assert call.dialog is not None
        if self._session.refuses(call.account, req, tx, now):
            return []  # 422: its interval is below our Min-SE (RFC 4028 §9)
        call.dialog.refresh_target(req)
        call.reoffer.apply(RI.RECV_OFFER)
        call.reoffer.server_tx = tx
        call.reoffer.request = req
        self._ctx.send_response(tx, self._ctx.response(req, 100), now)
        return [ev.ReofferReceived(call_id=call.call_id, sdp=req.body or None)]

    def _on_transaction_event(
        self, call: Call, key: ServerKey, item: TransactionEvent, now: float
    ) -> list[ev.Event]:
        """Theirs is over when the ACK for our answer comes, or its transaction ends."""
        tx = call.reoffer.server_tx
        if tx is None or server_key(tx.request) != key:
            return []
        if isinstance(item, AckReceived) and call.reoffer.allows(RI.RECV_ACK):
            call.reoffer.apply(RI.RECV_ACK)
        elif isinstance(item, TransactionTerminated):
            call.reoffer.apply(RI.THEIRS_ENDED)
        return []
