"""UPDATE received (RFC 3311), in early and confirmed dialogs, sans-IO. Sending UPDATE is the
session refresh's (sip/session_refresh.py), the one use we have for it.

An UPDATE without a body is a session refresh and a target refresh (§5.2): 200 at once, with
the session timer's headers. One with an SDP offer in a confirmed call goes through the
re-offer sub-table (call.REOFFER_TRANSITIONS) like a re-INVITE, so that the two cannot cross:
it reaches the phone as ReofferReceived and is answered with ``answer``/``reject`` (the UPDATE's
2xx needs no ACK: the exchange is over when it goes). §5.2's collisions:

- an offer of ours is out (a re-INVITE, or the INVITE's offer not answered yet): 491;
- an offer of theirs is not answered yet (a re-INVITE or UPDATE pending, or their INVITE's offer
  before our answer): 500 with Retry-After 0-10 s.

An offer in an early dialog after the offer/answer of the INVITE is done is refused 488: early
media is negotiated once here.
"""

from __future__ import annotations

from softphone.sip import events as ev
from softphone.sip.call import Call, CallState, ReofferInput, ReofferState
from softphone.sip.context import MethodTable, UaContext
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest
from softphone.sip.session_refresh import SessionRefresh
from softphone.sip.status import warning_header
from softphone.sip.transaction import ServerTransaction

RI = ReofferInput
THEIRS_UNANSWERED = frozenset({ReofferState.OFFER_RECEIVED, ReofferState.ANSWER_SENT})
EARLY = frozenset({CallState.INCOMING, CallState.CALLING, CallState.PROCEEDING})


class Update:
    def __init__(self, ctx: UaContext, session: SessionRefresh) -> None:
        self._ctx = ctx
        self._session = session

    def install(self, methods: MethodTable) -> None:
        methods.register_method("UPDATE", in_dialog=self._on_update, accept=("application/sdp",))

    def pending(self, call: Call) -> bool:
        """Whether the offer the phone is answering came in an UPDATE."""
        request = call.reoffer.request
        return request is not None and request.method == "UPDATE"

    def answer(self, call: Call, *, sdp: bytes | None, now: float) -> None:
        sub = call.reoffer
        tx, request = sub.server_tx, sub.request
        if not sub.allows(RI.SEND_2XX) or tx is None or request is None:
            raise LocalProtocolError("no UPDATE to answer")
        extra = self._session.answered(call, request, now)
        resp = self._ctx.response(request, 200, contact=call.account, sdp=sdp, extra=extra)
        sub.apply(RI.SEND_2XX)
        sub.apply(RI.RECV_ACK)  # an UPDATE's 2xx ends the exchange: there is no ACK (§5.2)
        if sdp is not None:
            call.local_sdp = sdp
        self._ctx.send_response(tx, resp, now)

    def reject(
        self, call: Call, *, status: int, now: float, warning: tuple[int, str] | None = None
    ) -> None:
        sub = call.reoffer
        tx, request = sub.server_tx, sub.request
        if not sub.allows(RI.SEND_REJECT) or tx is None or request is None:
            raise LocalProtocolError("no UPDATE to reject")
        extra = [("Warning", warning_header(*warning))] if warning is not None else []
        sub.apply(RI.SEND_REJECT)
        self._ctx.send_response(tx, self._ctx.response(request, status, extra=extra), now)

    def _on_update(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        ctx = self._ctx
        if call.dialog is None or call.state not in (
            *EARLY,
            CallState.ANSWERED,
            CallState.CONFIRMED,
        ):
            return ctx.reply(tx, req, 481, now)
        if self._session.refuses(call.account, req, tx, now):
            return []
        if req.body:
            collision = self._collision(call)
            if collision is not None:
                status, extra = collision
                return ctx.reply(tx, req, status, now, extra=extra)
        call.dialog.refresh_target(req)  # §5.2: UPDATE is a target refresh request
        if not req.body:
            extra = (
                self._session.answered(call, req, now) if call.state is CallState.CONFIRMED else []
            )
            resp = ctx.response(req, 200, contact=call.account, extra=extra)
            ctx.send_response(tx, resp, now)
            return []
        call.reoffer.apply(RI.RECV_OFFER)
        call.reoffer.server_tx = tx
        call.reoffer.request = req
        return [ev.ReofferReceived(call_id=call.call_id, sdp=req.body)]

    def _collision(self, call: Call) -> tuple[int, list[tuple[str, str]]] | None:
        """The status (and headers) an offer gets now (§5.2), or None when it can be taken."""
        retry_later = (500, [("Retry-After", str(self._ctx.rng.randint(0, 10)))])  # §5.2
        if call.state is CallState.CONFIRMED:
            state = call.reoffer.state
            if state is ReofferState.OFFER_SENT:
                return 491, []
            if state in THEIRS_UNANSWERED or not call.reoffer.allows(RI.RECV_OFFER):
                return retry_later
            return None
        if call.state is CallState.ANSWERED:  # our 2xx is out, its ACK not here yet
            return retry_later
        if not call.outgoing:
            return retry_later  # their INVITE's offer: our answer comes with the 2xx
        if not call.prack_client.early_answer:  # our INVITE's offer, not answered reliably yet
            return 491, []
        return 488, [("Warning", warning_header(399, "no new offer before the call is answered"))]
