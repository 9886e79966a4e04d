"""The phone's instant messages (RFC 3428): :class:`Messaging` sends them through the SIP core's
MESSAGE part (sip/messaging.py) and turns the core's message events into the phone's.

A message to a party we are in a call with (established or held) goes inside that call's
dialog, so the far end sees it belong to the call; any other goes outside a dialog, through the
account's outbound proxy. What was sent is kept only until its outcome arrives (the core always
reports one: at worst Timer F's 408), so that the final ``MessageStatusChanged`` says again
what it was about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from softphone.phone import events as pe
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.message_text import decode_body, encode_text
from softphone.sip import events as ue
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.messaging import Messaging as SipMessaging
from softphone.sip.uri import SipUri

__all__ = ["Messaging", "same_party"]

TALKING = ("established", "held")


@dataclass(frozen=True, slots=True)
class _Sent:
    account: str
    remote: str
    content_type: str
    text: str
    call_id: str | None


def same_party(a: SipUri, b: SipUri) -> bool:
    """Whether two URIs name the same party: user and host (any case), and port (5060 when
    none is given: two phones on one host differ by it)."""
    return (
        a.user == b.user
        and a.host.lower() == b.host.lower()
        and (a.port or 5060) == (b.port or 5060)
    )


class Messaging:
    """Messages of the phone; ``calls`` are the phone's calls now, ``emit`` publishes."""

    def __init__(
        self, *, calls: Callable[[], Iterable[CallInfo]], emit: Callable[[pe.PhoneEvent], None]
    ) -> None:
        self._calls = calls
        self._emit = emit
        self._sent: dict[str, _Sent] = {}

    def call_with(self, uri: SipUri) -> CallInfo | None:
        """The call in progress with ``uri``'s party (the latest one), if any."""
        found = None
        for info in self._calls():
            if info.state not in TALKING:
                continue
            try:
                remote = SipUri.parse(info.remote)
            except ParseError:
                continue
            if same_party(remote, uri):
                found = info
        return found

    def send(
        self,
        core: SipMessaging,
        acct: AccountConfig,
        uri: SipUri,
        text: str,
        content_type: str,
        *,
        now: float,
        dest: Address | None = None,
        call: CallInfo | None = None,
    ) -> str:
        """Send ``text``: inside ``call``'s dialog when given, else to ``uri`` outside any;
        publishes ``sending`` and returns the message's id. PhoneError when it cannot go."""
        body, wire_type = encode_text(text, content_type)
        try:
            if call is not None:
                message_id = core.send_in_call(call.call_id, body, wire_type, now=now)
            else:
                message_id = core.send(acct, uri, body, wire_type, now=now, dest=dest)
        except LocalProtocolError as exc:
            raise PhoneError(str(exc)) from None
        essence = wire_type.split(";", 1)[0]
        sent = _Sent(
            account=call.account if call is not None else acct.name,
            remote=call.remote if call is not None else str(uri),
            content_type=essence,
            text=text,
            call_id=None if call is None else call.call_id,
        )
        self._sent[message_id] = sent
        self._emit(self._status(message_id, sent, "sending"))
        return message_id

    def handle(self, event: ue.MessageReceived | ue.MessageDelivered | ue.MessageFailed) -> None:
        match event:
            case ue.MessageReceived():
                shown = decode_body(event.content_type, event.charset, event.body)
                self._emit(
                    pe.MessageReceived(
                        account=event.account,
                        remote=event.from_uri,
                        display_name=event.from_display,
                        local=event.to_uri,
                        content_type=event.content_type,
                        charset=event.charset,
                        text=shown.text,
                        note=shown.note,
                        body=event.body,
                        call_id=event.call_id,
                    )
                )
            case ue.MessageDelivered(message_id=message_id, status=status, reason=reason):
                if (sent := self._sent.pop(message_id, None)) is not None:
                    self._emit(self._status(message_id, sent, "delivered", status, reason))
            case ue.MessageFailed(message_id=message_id, status=status, reason=reason):
                if (sent := self._sent.pop(message_id, None)) is not None:
                    failed = self._status(
                        message_id, sent, "failed", status, reason, no_response=event.no_response
                    )
                    self._emit(failed)

    @staticmethod
    def _status(
        message_id: str,
        sent: _Sent,
        state: pe.MessageState,
        status: int = 0,
        reason: str = "",
        *,
        no_response: bool = False,
    ) -> pe.MessageStatusChanged:
        return pe.MessageStatusChanged(
            message_id=message_id,
            state=state,
            account=sent.account,
            remote=sent.remote,
            content_type=sent.content_type,
            text=sent.text,
            call_id=sent.call_id,
            status=status,
            reason=reason,
            no_response=no_response,
        )
