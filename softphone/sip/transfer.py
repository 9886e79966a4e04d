"""Transfer with REFER and NOTIFY (RFC 3515, RFC 5589), sans-IO, both roles, blind or attended.

As transferor we REFER the peer to a target and follow its NOTIFYs (message/sipfrag,
RFC 3420); an attended transfer's Refer-To carries ``?Replaces=`` naming our dialog with the
target (RFC 5589 §7.1, sip/replaces.py). As transferee we accept a REFER in a dialog (202), tell
the phone (with the Replaces the new INVITE must carry, if any), and report how the new call
goes with NOTIFYs until a final status. The implicit subscription's "norefersub" option
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
from softphone.sip.replaces import REFER_TO_HEADERS, Replaces, refer_to_target, with_replaces
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
        self._send_refer(call, target, now)

    def refer_replacing(self, call: Call, other: Call, now: float) -> None:
        """Attended transfer as transferor (RFC 5589 §7.1): REFER the peer of ``call`` to the
        peer of ``other``, replacing our dialog with it. The Refer-To is that peer's address of
        record (the dialog's remote URI), not its Contact: a Contact is often only reachable
        by its own proxy (a NAT, a registrar that routes only AORs), and the Replaces makes
        every other device the AOR forks to answer 481, so the one holding the dialog wins."""
        for leg in (call, other):
            if leg.state is not CallState.CONFIRMED or leg.dialog is None:
                raise LocalProtocolError(f"cannot transfer a call in state {leg.state.name}")
        if call is other:
            raise LocalProtocolError("an attended transfer needs two different calls")
        assert other.dialog is not None
        target = other.dialog.remote_uri.uri
        if not isinstance(target, SipUri):
            raise LocalProtocolError(f"the other call's peer is not a SIP URI: {target}")
        # RFC 3891 §3: the target matches to-tag against its local tag, which is our remote one.
        replaces = Replaces(
            call_id=other.call_id,
            to_tag=other.dialog.remote_tag,
            from_tag=other.dialog.local_tag,
        )
        self._send_refer(call, with_replaces(target, replaces), now)

    def _send_refer(self, call: Call, target: SipUri, now: float) -> None:
        assert call.dialog is not None
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
        if not isinstance(target.uri, SipUri):
            return self._ctx.reply(tx, req, 501, now, reason="Refer-To must be a SIP URI")
        unknown = [n for n, _ in target.uri.headers if n.lower() not in REFER_TO_HEADERS]
        if unknown:
            # RFC 3515 §2.4.2: a Refer-To we cannot act on as asked is refused, not half done.
            return self._ctx.reply(
                tx, req, 501, now, reason=f"Refer-To header {unknown[0][:40]} not supported"
            )
        try:
            uri, replaces = refer_to_target(target.uri)
        except ParseError:
            return self._ctx.reply(tx, req, 400, now, reason="Bad Replaces in Refer-To")
        events = self._ctx.reply(tx, req, 202, now)
        call.refer_in_progress = True
        self._send_notify(call, 100, "Trying", final=False, now=now)
        referred_by = req.headers.get("Referred-By")
        return [
            *events,
            ev.TransferRequested(
                call_id=call.call_id,
                target=str(uri),
                referred_by=referred_by,
                replaces=str(replaces) if replaces is not None else None,
            ),
        ]


def _parse_sipfrag(body: bytes) -> tuple[int, str]:
    """RFC 3420 message/sipfrag: the first line is a status line."""
    first = body.decode("utf-8", "replace").split("\n", 1)[0].strip()
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isdigit():
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, ""
