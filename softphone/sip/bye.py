"""Ending a call with BYE (RFC 3261 §15), both ways, sans-IO.

The other parts of the INVITE session end calls through ``Bye.send``: after the CANCEL/200 race
(§9.1), when our 2xx got no ACK (§13.3.1.4), or when a re-INVITE got 408/481 (§14.1).
"""

from __future__ import annotations

from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import hop_for
from softphone.sip.call import Call, CallInput, CallState
from softphone.sip.context import MethodTable, UaContext
from softphone.sip.message import SipRequest, SipResponse
from softphone.sip.transaction import ClientTransaction, ServerTransaction

HUNG_UP_HERE: Final = "hung up here"  # the person (or the program) on this side ended the call


class Bye:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx

    def install(self, methods: MethodTable) -> None:
        methods.register_method("BYE", in_dialog=self._on_bye)

    def hang_up(self, call: Call, now: float) -> None:
        """An answered call ends with BYE: at once when confirmed, after the ACK (or its
        timeout) while it has not come (§15)."""
        if call.state is CallState.ANSWERED:
            call.bye_pending = True
        else:
            self.send(call, now)

    def send(self, call: Call, now: float, *, why: str = HUNG_UP_HERE) -> None:
        """BYE for ``call``; ``why`` (in words) becomes the reason its CallEnded carries: the
        BYE's own response (a 200 "OK") says nothing about why the call ended."""
        assert call.dialog is not None
        call.bye_reason = why
        call.apply(CallInput.SEND_BYE)
        bye = call.dialog.build_request("BYE")
        self._ctx.start_client(
            bye, hop_for(call.dialog, call.account), call.account, self._on_response, now
        )

    def _on_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(tx.request.call_id)
        if call is None or (resp is not None and status < 200):
            return []
        dialog = call.dialog
        if (
            resp is not None
            and status in (401, 407)
            and dialog is not None
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=dialog.next_seq,
                handler=self._on_response,
                now=now,
            )
        ):
            return []
        if call.state is CallState.TERMINATING:
            call.apply(CallInput.BYE_DONE)
        call.forget_dialog()
        why = call.bye_reason or HUNG_UP_HERE
        if not 200 <= status < 300:  # the call is over all the same (§15.1.1)
            why = f"{why} (the BYE got {status} {reason})"
        return call.end(ev.CallEnded(call_id=call.call_id, by="local", status=status, reason=why))

    def _on_bye(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        if call.state is CallState.TERMINATED:  # ended here already (our BYE timed out)
            return self._ctx.reply(tx, req, 481, now)
        events = self._ctx.reply(tx, req, 200, now)
        if call.state is CallState.INCOMING and call.invite_server_tx is not None:
            self._ctx.send_response(
                call.invite_server_tx,
                self._ctx.response(call.invite, 487, to_tag=call.local_tag),
                now,
            )
        if call.state is CallState.TERMINATING:
            call.apply(CallInput.RECV_BYE)
            return events
        call.apply(CallInput.RECV_BYE)
        call.forget_dialog()
        return events + call.end(
            ev.CallEnded(call_id=call.call_id, by="remote", status=200, reason="remote hung up")
        )
