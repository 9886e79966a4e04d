"""DTMF over SIP INFO (application/dtmf-relay), sans-IO, both ways.

The fallback when the peer did not offer RFC 4733 telephone-event: one INFO per digit, with the
body format SIP phones and PBXs share (``Signal=5`` and ``Duration=250`` lines). INFO itself is
RFC 6086; only this legacy package is understood.
"""

from __future__ import annotations

from softphone.sip import events as ev
from softphone.sip.account import hop_for
from softphone.sip.call import Call, CallState
from softphone.sip.context import MethodTable, UaContext, ignore_response
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest
from softphone.sip.transaction import ServerTransaction


class DtmfInfo:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx

    def install(self, methods: MethodTable) -> None:
        methods.register_method("INFO", in_dialog=self._on_info)

    def send(self, call: Call, digit: str, *, duration_ms: int, now: float) -> None:
        """Send one digit in an INFO inside the call's dialog."""
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot send DTMF in call state {call.state.name}")
        if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
            raise LocalProtocolError(f"not a DTMF digit: {digit!r}")
        request = call.dialog.build_request("INFO")
        hop = hop_for(call.dialog, call.account)
        request.headers.add("Content-Type", "application/dtmf-relay")
        request.body = f"Signal={digit.upper()}\r\nDuration={duration_ms}\r\n".encode()
        self._ctx.start_client(request, hop, call.account, ignore_response, now)

    def _on_info(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        if not req.body:
            return self._ctx.reply(tx, req, 200, now)
        if req.content_type != "application/dtmf-relay":
            return self._ctx.reply(tx, req, 415, now, extra=[("Accept", "application/dtmf-relay")])
        fields = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (
                line.partition("=") for line in req.body.decode("utf-8", "replace").splitlines()
            )
        )
        digit = fields.get("signal", "")
        events = self._ctx.reply(tx, req, 200, now)
        if len(digit) == 1 and digit in "0123456789*#ABCDabcd":
            duration = fields.get("duration", "250")
            events.append(
                ev.DtmfReceived(
                    call_id=call.call_id,
                    digit=digit.upper(),
                    duration_ms=int(duration) if duration.isdigit() else 250,
                )
            )
        return events
