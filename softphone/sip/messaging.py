"""Instant messages with MESSAGE (RFC 3428), sans-IO, both ways, outside a dialog and inside a
call's.

Sending: :meth:`Messaging.send` makes a MESSAGE outside any dialog (a Call-ID and From tag of
its own, no To tag, §4) to a URI, through the account's outbound proxy when it has one;
:meth:`Messaging.send_in_call` sends one inside a confirmed call's dialog (it then belongs to
that call's session, §2). Each returns an id of ours; the outcome comes back as
``MessageDelivered`` (a 2xx) or ``MessageFailed`` (any other final response, or none) with that
id. A 401/407 is answered with the account's credentials like any request (RFC 3261 §22.2).

Size (RFC 3428 §4; RFC 3261 §18.1.1): a MESSAGE over 1300 bytes must not go over UDP, whose
datagrams would be fragmented and lost without congestion control. When the next hop is UDP,
such a message goes over TCP to the same address (every SIP element implements TCP, RFC 3261
§18) unless the URI that names the hop pins ``transport=udp``; then sending is refused with a
clear error. The size checked is the request as built here plus :data:`CORE_HEADERS_BYTES` for
what the core adds (Via, Max-Forwards, User-Agent).

Receiving: any media type is taken (text/plain must be, §7; the rest is the reader's to show as
it can) and answered 200 OK at once (§7). Refused, with the reason in the response:

- a body of an encoding we cannot undo (``Content-Encoding`` other than identity): 415 with
  ``Accept-Encoding: identity`` (RFC 3261 §8.2.3);
- a body over :data:`MAX_BODY_BYTES`: 413;
- no body, no Content-Type, or a Content-Type that does not parse: 400.

Outside a dialog the Request-URI must be one of ours (404 otherwise, the user agent's dispatch
checks it); inside one the call's dialog checks the CSeq (RFC 3261 §12.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, address_for_uri, hop_for
from softphone.sip.address import Address
from softphone.sip.call import Call, CallState
from softphone.sip.context import MethodTable, UaContext
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import NameAddr
from softphone.sip.media_type import MediaType
from softphone.sip.message import Headers, SipRequest, SipResponse
from softphone.sip.transaction import ClientTransaction, ServerTransaction
from softphone.sip.uri import SipUri, Uri

__all__ = ["CORE_HEADERS_BYTES", "MAX_BODY_BYTES", "UDP_LIMIT_BYTES", "Messaging"]

MAX_BODY_BYTES: Final = 32 * 1024  # what we send and take; pager-mode messages are short
UDP_LIMIT_BYTES: Final = 1300  # RFC 3428 §4: above this, not over a congestion-unsafe hop
CORE_HEADERS_BYTES: Final = 128  # Via (IPv6 address, branch, rport), Max-Forwards, User-Agent
_IDENTITY: Final = "identity"


@dataclass(slots=True)
class _Outgoing:
    """A MESSAGE of ours waiting for its final response. Outside a dialog it is its own
    ``Challenged`` owner and counts its own CSeq; inside a call, the call is."""

    message_id: str
    account: AccountConfig
    call_id: str | None
    auth_attempts: int = 0
    cseq: int = 1

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq


class Messaging:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        self._outgoing: dict[str, _Outgoing] = {}

    def install(self, methods: MethodTable) -> None:
        methods.register_method(
            "MESSAGE",
            in_dialog=self._on_in_dialog,
            out_of_dialog=self._on_out_of_dialog,
            addressed_to_us=True,
        )

    @property
    def pending(self) -> int:
        """Messages of ours still waiting for their final response."""
        return len(self._outgoing)

    # --- sending ----------------------------------------------------------------------------
    def send(
        self,
        acct: AccountConfig,
        target: SipUri,
        body: bytes,
        content_type: str,
        *,
        now: float,
        dest: Address | None = None,
    ) -> str:
        """A MESSAGE outside any dialog to ``target``; returns its id. ``dest`` overrides the
        next hop (otherwise the outbound proxy, or the target when its host is an IP
        literal). LocalProtocolError for a body we cannot send."""
        ctx = self._ctx
        media = _checked_body(body, content_type)
        hop = dest or acct.outbound or address_for_uri(target, acct.transport)
        # Only a hop named by the target itself can be pinned to UDP; a proxy's is the account's.
        pinned = target if dest is None and acct.outbound is None else None
        headers = Headers()
        tag = ctx.token()
        sender = NameAddr(uri=acct.aor, display_name=acct.display_name).with_param("tag", tag)
        headers.add("From", str(sender))
        headers.add("To", str(NameAddr(uri=target)))
        headers.add("Call-ID", ctx.new_call_id())
        out = _Outgoing(message_id=self._new_id(), account=acct, call_id=None)
        out.cseq = ctx.rng.randint(1, 10000)
        headers.add("CSeq", f"{out.cseq} MESSAGE")
        headers.add("Content-Type", str(media))
        request = SipRequest(method="MESSAGE", uri=target, headers=headers, body=body)
        hop = _hop_for_size(request, hop, pinned)
        self._outgoing[out.message_id] = out
        ctx.start_client(request, hop, acct, partial(self._on_response, out.message_id), now)
        return out.message_id

    def send_in_call(self, call_id: str, body: bytes, content_type: str, *, now: float) -> str:
        """A MESSAGE inside the dialog of the call ``call_id`` (it must be confirmed); returns
        its id."""
        call = self._ctx.calls.require(call_id)
        if call.state is not CallState.CONFIRMED or call.dialog is None:
            raise LocalProtocolError(f"cannot send a message in call state {call.state.name}")
        media = _checked_body(body, content_type)
        dialog = call.dialog
        request = dialog.build_request("MESSAGE")
        request.headers.add("Content-Type", str(media))
        request.body = body
        first = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
        hop = _hop_for_size(request, hop_for(dialog, call.account), first)
        out = _Outgoing(message_id=self._new_id(), account=call.account, call_id=call.call_id)
        self._outgoing[out.message_id] = out
        handler = partial(self._on_response, out.message_id)
        self._ctx.start_client(request, hop, call.account, handler, now)
        return out.message_id

    def _new_id(self) -> str:
        while (message_id := "msg-" + self._ctx.token(16)) in self._outgoing:
            pass
        return message_id

    def _on_response(
        self,
        message_id: str,
        tx: ClientTransaction,
        resp: SipResponse | None,
        status: int,
        reason: str,
        now: float,
    ) -> list[ev.Event]:
        out = self._outgoing.get(message_id)
        if out is None or (resp is not None and status < 200):
            return []
        if resp is not None and status in (401, 407) and self._answer_challenge(out, tx, resp, now):
            return []
        del self._outgoing[message_id]
        if 200 <= status < 300:
            return [ev.MessageDelivered(message_id=message_id, status=status, reason=reason)]
        return [
            ev.MessageFailed(
                message_id=message_id,
                status=status,
                reason=reason,
                no_response=resp is None,
            )
        ]

    def _answer_challenge(
        self, out: _Outgoing, tx: ClientTransaction, resp: SipResponse, now: float
    ) -> bool:
        handler = partial(self._on_response, out.message_id)
        if out.call_id is None:
            return self._ctx.resend_with_credentials(
                tx,
                resp,
                account=out.account,
                owner=out,
                next_cseq=out.next_cseq,
                handler=handler,
                now=now,
            )
        call = self._ctx.calls.get(out.call_id)
        if call is None or call.dialog is None:
            return False
        return self._ctx.resend_with_credentials(
            tx,
            resp,
            account=call.account,
            owner=call,
            next_cseq=call.dialog.next_seq,
            handler=handler,
            now=now,
        )

    # --- receiving --------------------------------------------------------------------------
    def _on_out_of_dialog(
        self, req: SipRequest, tx: ServerTransaction, now: float
    ) -> list[ev.Event]:
        acct = self._ctx.account_for_request(req)
        if acct is None:  # the dispatch answers 404 first; kept for a dispatch that does not
            return self._ctx.reply(tx, req, 404, now)
        return self._receive(req, tx, now, account=acct.name, call_id=None)

    def _on_in_dialog(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        return self._receive(req, tx, now, account=call.account.name, call_id=call.call_id)

    def _receive(
        self,
        req: SipRequest,
        tx: ServerTransaction,
        now: float,
        *,
        account: str,
        call_id: str | None,
    ) -> list[ev.Event]:
        ctx = self._ctx
        encoding = (req.headers.get("Content-Encoding") or _IDENTITY).strip().lower()
        if encoding != _IDENTITY:
            extra = [("Accept-Encoding", _IDENTITY)]
            return ctx.reply(tx, req, 415, now, extra=extra, reason="Unsupported Content-Encoding")
        size = len(req.body)
        if size > MAX_BODY_BYTES:
            reason = f"Message Too Large ({size} bytes, at most {MAX_BODY_BYTES})"
            return ctx.reply(tx, req, 413, now, reason=reason)
        if not size:
            return ctx.reply(tx, req, 400, now, reason="MESSAGE Without a Body")
        value = req.headers.get("Content-Type")
        if value is None:
            return ctx.reply(tx, req, 400, now, reason="Missing Content-Type")
        try:
            media = MediaType.parse(value)
        except ParseError:
            return ctx.reply(tx, req, 400, now, reason="Bad Content-Type")
        sender = req.from_
        events = ctx.reply(tx, req, 200, now)
        events.append(
            ev.MessageReceived(
                account=account,
                from_uri=str(sender.uri),
                from_display=sender.display_name or None,
                to_uri=str(req.to.uri),
                content_type=media.essence,
                charset=media.charset,
                body=req.body,
                call_id=call_id,
            )
        )
        return events


def _checked_body(body: bytes, content_type: str) -> MediaType:
    """The Content-Type of a body we are about to send, or LocalProtocolError saying why not."""
    if not body:
        raise LocalProtocolError("nothing to send: the message is empty")
    if len(body) > MAX_BODY_BYTES:
        raise LocalProtocolError(
            f"the message is {len(body)} bytes; at most {MAX_BODY_BYTES} can be sent"
        )
    try:
        return MediaType.parse(content_type)
    except ParseError as exc:
        raise LocalProtocolError(f"not a content type: {exc}") from None


def _hop_for_size(request: SipRequest, hop: Address, pinned: Uri | None) -> Address:
    """``hop``, or the same address over TCP when the request is too big for UDP (module
    docstring); LocalProtocolError when the URI that names the hop allows only UDP."""
    size = len(bytes(request)) + CORE_HEADERS_BYTES
    if hop.transport != "udp" or size <= UDP_LIMIT_BYTES:
        return hop
    if isinstance(pinned, SipUri) and (pinned.transport or "").lower() == "udp":
        raise LocalProtocolError(
            f"the message is about {size} bytes, more than the {UDP_LIMIT_BYTES} that may go "
            f"over UDP (RFC 3428 §4), and {pinned} allows only UDP: send a shorter message"
        )
    return Address("tcp", hop.host, hop.port, server_name=hop.server_name)
