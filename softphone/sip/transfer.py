"""Blind transfer with REFER and NOTIFY (RFC 3515), sans-IO, both roles.

As transferor we REFER the peer to a target and follow its NOTIFYs (message/sipfrag,
RFC 3420). As transferee we accept a REFER in a dialog (202), tell the phone, and report how the
new call goes with NOTIFYs until a final status. The implicit subscription's "norefersub" option
tag (RFC 4488) is supported: a Require naming it is not refused. Its NOTIFYs (``Event: refer``)
come here through sip/notify.py, which routes every NOTIFY by its event package.
"""

from __future__ import annotations

from softphone.sip import events as ev
from softphone.sip.account import hop_for
from softphone.sip.call import Call, CallState
from softphone.sip.context import MethodTable, UaContext, ignore_response
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import NameAddr
from softphone.sip.message import SipRequest, SipResponse
from softphone.sip.transaction import ClientTransaction, ServerTransaction
from softphone.sip.uri import SipUri


class Transfer:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx

    def install(self, methods: MethodTable) -> None:
        methods.register_method("REFER", in_dialog=self._on_refer, out_of_dialog=self._on_refer_out)
        methods.register_event_package("refer", in_call=self._on_notify)
        methods.register_extension("norefersub")

    # --- transferor ------------------------------------------------------------------------------
    def refer(self, call: Call, target: SipUri, now: float) -> None:
        """Blind transfer as transferor: REFER the peer to ``target``."""
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot transfer a call in state {call.state.name}")
        request = call.dialog.build_request("REFER")
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
        request.headers.add("Refer-To", str(NameAddr(uri=target)))
        request.headers.add("Referred-By", str(NameAddr(uri=call.account.aor)))
        self._ctx.start_client(request, hop, call.account, self._on_refer_response, now)

    def _on_refer_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(tx.request.call_id)
        if call is None or (resp is not None and status < 200):
            return []
        if (
            resp is not None
            and status in (401, 407)
            and call.dialog is not None
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=call.dialog.next_seq,
                handler=self._on_refer_response,
                now=now,
            )
        ):
            return []
        ok = 200 <= status < 300
        return [
            ev.TransferProgressed(call_id=call.call_id, status=status, reason=reason, final=not ok)
        ]

    def _on_notify(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        events = self._ctx.reply(tx, req, 200, now)
        status, reason = _parse_sipfrag(req.body)
        state = (req.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        final = state == "terminated" or status >= 200
        if status:
            events.append(
                ev.TransferProgressed(
                    call_id=call.call_id, status=status, reason=reason, final=final
                )
            )
        return events

    # --- transferee ------------------------------------------------------------------------------
    def notify_transfer(self, call: Call, *, status: int, reason: str, now: float) -> None:
        """As transferee, tell the transferor how the new call goes (RFC 3515 §2.4.5)."""
        if not call.refer_in_progress or call.dialog is None:
            raise LocalProtocolError("no transfer in progress on this call")
        final = status >= 200
        if final:
            call.refer_in_progress = False
        self._send_notify(call, status, reason, final=final, now=now)

    def _send_notify(
        self, call: Call, status: int, reason: str, *, final: bool, now: float
    ) -> None:
        assert call.dialog is not None
        if call.state in (CallState.TERMINATED, CallState.TERMINATING):
            return
        request = call.dialog.build_request("NOTIFY")
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
        request.headers.add("Event", "refer")
        state = "terminated;reason=noresource" if final else "active;expires=60"
        request.headers.add("Subscription-State", state)
        request.headers.add("Content-Type", "message/sipfrag;version=2.0")
        request.body = f"SIP/2.0 {status} {reason}\r\n".encode()
        self._ctx.start_client(request, hop, call.account, ignore_response, now)

    def _on_refer_out(self, req: SipRequest, tx: ServerTransaction, now: float) -> list[ev.Event]:
        return self._ctx.reply(tx, req, 403, now, reason="Out-of-dialog REFER not accepted")

    def _on_refer(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        targets = req.headers.get_all("Refer-To")
        if len(targets) != 1:
            return self._ctx.reply(tx, req, 400, now, reason="REFER needs exactly one Refer-To")
        try:
            target = NameAddr.parse(targets[0])
        except ParseError:
            return self._ctx.reply(tx, req, 400, now, reason="Bad Refer-To")
        if not isinstance(target.uri, SipUri) or target.uri.headers:
            # Refer-To with ?Replaces= asks for an attended transfer, which is not supported.
            return self._ctx.reply(tx, req, 501, now, reason="Only blind transfer is supported")
        events = self._ctx.reply(tx, req, 202, now)
        call.refer_in_progress = True
        self._send_notify(call, 100, "Trying", final=False, now=now)
        referred_by = req.headers.get("Referred-By")
        return [
            *events,
            ev.TransferRequested(
                call_id=call.call_id, target=str(target.uri), referred_by=referred_by
            ),
        ]


def _parse_sipfrag(body: bytes) -> tuple[int, str]:
    """RFC 3420 message/sipfrag: the first line is a status line."""
    first = body.decode("utf-8", "replace").split("\n", 1)[0].strip()
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, ""
