"""Session timers (RFC 4028) driven: the part of the user agent that negotiates them in INVITE,
re-INVITE and UPDATE, refreshes at half time as refresher, and ends a session that no refresh
kept alive, sans-IO. The table and the header rules are in sip/session_timer.py.

The other parts call in at a few points: ``invite_headers`` (our INVITE, §7.1), ``refuses``
(a request whose interval is too small gets 422 with Min-SE, §9), ``answered`` (the headers of
our 2xx, and the timer starts, §9), ``confirmed_by`` (a 2xx to a request of ours, §7.2) and
``interval_after_422`` (§7.4).

As refresher we send UPDATE when the peer's Allow lists it, else a re-INVITE with our last SDP
unchanged (§7.4, §9: UPDATE is preferred, it needs no new offer). A refresh answered 408 or 481
ends the call with BYE (§10, RFC 3261 §14.1); a 491 is tried again 2.1-4 s later; UPDATE
refused as unknown (405, 501) is tried again as a re-INVITE. Whoever refreshes, the call ends
with BYE ``min(32, SE/3)`` seconds before the session expires without a refresh (§10):
CallEnded(by="timeout", reason="session expired ...").
"""

from __future__ import annotations

import logging
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, hop_for
from softphone.sip.bye import Bye
from softphone.sip.call import Call, CallState, ReofferInput, ReofferState
from softphone.sip.context import DeadlineHandler, MethodTable, UaContext
from softphone.sip.errors import RemoteProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.message import SipMessage, SipRequest, SipResponse
from softphone.sip.session_timer import (
    MAX_422_RETRIES,
    Agreement,
    Refresher,
    SessionTimerInput,
    SessionTimerState,
    TooSmall,
    expiry_margin_s,
    has_option,
    request_headers,
    retry_interval,
    uac_agreement,
    uas_agreement,
    uas_response_headers,
)
from softphone.sip.status import explain
from softphone.sip.transaction import ClientTransaction, ServerTransaction

logger = logging.getLogger(__name__)

SI = SessionTimerInput
SESSION_EXPIRED: Final = "session expired"


def peer_allows(msg: SipMessage, method: str) -> bool:
    return has_option(msg, "Allow", method.lower())


class SessionRefresh:
    def __init__(self, ctx: UaContext, bye: Bye) -> None:
        self._ctx = ctx
        self._bye = bye

    def install(self, methods: MethodTable) -> None:
        methods.register_extension("timer")

    # --- what the other parts call ----------------------------------------------------------
    def min_se(self) -> int:
        return self._ctx.timers.min_se

    def invite_headers(self, acct: AccountConfig) -> list[tuple[str, str]]:
        """§7.1: our INVITE asks for the account's interval, and leaves the refresher to the
        callee (it knows whether it can refresh)."""
        if not acct.session_expires_s:
            return []
        return request_headers(max(acct.session_expires_s, self.min_se()), self.min_se())

    def refuses(
        self, acct: AccountConfig, req: SipRequest, tx: ServerTransaction, now: float
    ) -> bool:
        """§9: answer ``req`` 422 (interval below our Min-SE), 400 (a malformed Session-Expires
        or Min-SE) or 420 (it requires timers, off for this account) and say True; False lets it
        go on."""
        if not acct.session_expires_s and has_option(req, "Require", "timer"):
            self._ctx.reply(tx, req, 420, now, extra=[("Unsupported", "timer")])
            return True
        try:
            decided = self._decide(acct, req)
        except RemoteProtocolError as exc:
            self._ctx.reply(tx, req, 400, now, reason=_reason(str(exc)))
            return True
        if isinstance(decided, TooSmall):
            self._ctx.reply(
                tx,
                req,
                422,
                now,
                extra=[("Min-SE", str(decided.min_se_s))],
                reason="Session Interval Too Small",
            )
            return True
        return False

    def answered(self, call: Call, req: SipRequest, now: float) -> list[tuple[str, str]]:
        """The headers of our 2xx to ``req`` (an INVITE, re-INVITE or UPDATE of theirs); the
        timer runs from now (§9, §10)."""
        if "Allow" in req.headers:
            call.session.peer_allows_update = peer_allows(req, "UPDATE")
        try:
            decided = self._decide(call.account, req)
        except RemoteProtocolError:
            decided = None
        if not isinstance(decided, Agreement):
            self._agree(call, None, we_sent=False, now=now)
            return []
        self._agree(call, decided, we_sent=False, now=now)
        return uas_response_headers(req, decided)

    def confirmed_by(self, call: Call, resp: SipResponse, now: float) -> None:
        """§7.2: the 2xx to our INVITE, re-INVITE or UPDATE sets the timer (or none)."""
        if "Allow" in resp.headers:
            call.session.peer_allows_update = peer_allows(resp, "UPDATE")
        if not call.account.session_expires_s:
            return
        try:
            agreement = uac_agreement(resp)
        except RemoteProtocolError as exc:
            logger.warning("call %s: %s; no session timer", call.call_id, exc)
            agreement = None
        self._agree(call, agreement, we_sent=True, now=now)

    def refresh_headers(self, call: Call) -> list[tuple[str, str]]:
        """What our re-INVITE (hold, resume) carries while the timer runs: it refreshes the
        session too (§7.4), keeping who refreshes."""
        timer = call.session
        if not timer.running:
            return []
        refresher: Refresher = "uac" if timer.state is not SessionTimerState.THEY_REFRESH else "uas"
        headers = request_headers(timer.interval_s, self.min_se(), refresher=refresher)
        return [("Supported", "timer"), *headers]

    def interval_after_422(self, call: Call, resp: SipResponse, sent: SipRequest) -> int | None:
        """§7.4: the interval to ask again with after a 422, None when there is no retry."""
        if call.session.retries_422 >= MAX_422_RETRIES:
            return None
        asked = sent.headers.get("Session-Expires")
        sent_s = int(asked.partition(";")[0]) if asked and asked.partition(";")[0].isdigit() else 0
        interval = retry_interval(resp, sent_s)
        if interval is not None:
            call.session.retries_422 += 1
        return interval

    # --- negotiation ------------------------------------------------------------------------
    def _decide(self, acct: AccountConfig, req: SipRequest) -> Agreement | TooSmall | None:
        if not acct.session_expires_s:
            return None  # off for this account: we ask for none and accept none
        return uas_agreement(
            req, wanted_s=max(acct.session_expires_s, self.min_se()), min_se_s=self.min_se()
        )

    def _agree(self, call: Call, agreement: Agreement | None, *, we_sent: bool, now: float) -> None:
        timer = call.session
        half, expiry = _half_key(call), _expiry_key(call)
        if agreement is None:
            if timer.allows(SI.AGREED_NONE):
                timer.apply(SI.AGREED_NONE)
            self._ctx.clear_deadline(half)
            self._ctx.clear_deadline(expiry)
            return
        we_refresh = (agreement.refresher == "uac") == we_sent
        inp = SI.AGREED_WE if we_refresh else SI.AGREED_THEY
        if not timer.allows(inp):  # expired already: the call is being ended
            return
        timer.apply(inp)
        timer.interval_s = agreement.interval_s
        timer.retries_422 = 0
        timer.expires_at = now + agreement.interval_s
        logger.info(
            "call %s: session timer %d s, %s refreshes",
            call.call_id,
            agreement.interval_s,
            "we" if we_refresh else "the peer",
        )
        if we_refresh:
            self._ctx.set_deadline(half, now + agreement.interval_s / 2, self._half_time(call))
        else:
            self._ctx.clear_deadline(half)
        at = timer.expires_at - expiry_margin_s(agreement.interval_s)
        self._ctx.set_deadline(expiry, at, self._expired(call))

    # --- as refresher (§10) -----------------------------------------------------------------
    def _half_time(self, call: Call) -> DeadlineHandler:
        def fire(now: float) -> list[ev.Event]:
            timer = call.session
            if call.state is not CallState.CONFIRMED or not timer.allows(SI.HALF_TIME):
                return []
            if not timer.peer_allows_update and call.reoffer.state is not ReofferState.IDLE:
                # A re-INVITE is under way: ours waits until it is over.
                self._ctx.set_deadline(_half_key(call), now + 1.0, self._half_time(call))
                return []
            timer.apply(SI.HALF_TIME)
            self._send_refresh(call, now)
            return []

        return fire

    def _send_refresh(self, call: Call, now: float) -> None:
        assert call.dialog is not None
        use_update = call.session.peer_allows_update
        method = "UPDATE" if use_update else "INVITE"
        request = call.dialog.build_request(method)
        hop = hop_for(call.dialog, call.account)
        contact = self._ctx.contact_uri(call.account, hop.transport, secure=call.dialog.secure)
        request.headers.add("Contact", str(NameAddr(uri=contact)))
        request.headers.add("Allow", self._ctx.allow)
        request.headers.add("Supported", "timer")
        # §7.4: a refresh keeps who refreshes: we send it, so we are its uac.
        for name, value in request_headers(call.session.interval_s, self.min_se(), refresher="uac"):
            request.headers.add(name, value)
        if not use_update:
            call.reoffer.apply(ReofferInput.SEND_OFFER)  # theirs meanwhile gets 491 (§14.2)
            if call.local_sdp is not None:
                request.headers.add("Content-Type", "application/sdp")
                request.body = call.local_sdp
        logger.info("call %s: session refresh (%s)", call.call_id, method)
        self._ctx.start_client(request, hop, call.account, self._on_refresh_response, now)

    def _on_refresh_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        call = self._ctx.calls.get(tx.request.call_id)
        if call is None or call.dialog is None or (resp is not None and status < 200):
            return []
        reinvite = tx.request.method == "INVITE"
        if reinvite and resp is not None and 200 <= status < 300:
            if call.reoffer.state is ReofferState.OFFER_SENT:
                call.reoffer.apply(ReofferInput.RECV_2XX)
            elif call.ack is not None:  # a retransmitted 2xx: our ACK got lost
                self._ctx.resend(call.ack)
                return []
            call.dialog.refresh_target(resp)
            ack = call.dialog.build_request("ACK", seq=tx.request.cseq.seq)
            call.ack = self._ctx.send_stateless(ack, hop_for(call.dialog, call.account), now)
        if resp is not None and 200 <= status < 300:
            if call.state is CallState.CONFIRMED:
                self.confirmed_by(call, resp, now)
            return []
        if (
            resp is not None
            and status in (401, 407)
            and self._ctx.resend_with_credentials(
                tx,
                resp,
                account=call.account,
                owner=call,
                next_cseq=call.dialog.next_seq,
                handler=self._on_refresh_response,
                now=now,
            )
        ):
            return []
        if reinvite and call.reoffer.allows(ReofferInput.RECV_FAILURE):
            call.reoffer.apply(ReofferInput.RECV_FAILURE)
        timer = call.session
        if call.state is not CallState.CONFIRMED or timer.state is not SessionTimerState.REFRESHING:
            return []
        timer.apply(SI.REFRESH_FAILED)
        if status in (408, 481):  # the peer or the dialog is gone (§10; RFC 3261 §14.1)
            why = f"session refresh failed: {explain(status, reason)}"
            self._bye.send(call, now, why=why)
            return []
        retry_at: float | None = None
        if status == 422 and resp is not None:
            interval = retry_interval(resp, timer.interval_s)
            if interval is not None and timer.retries_422 < MAX_422_RETRIES:
                timer.retries_422 += 1
                timer.interval_s = interval
                retry_at = now
        elif status == 491:  # RFC 3261 §14.1's wait, as for a re-INVITE
            retry_at = now + self._ctx.rng.uniform(2.1, 4.0)
        elif status in (405, 501) and not reinvite:  # UPDATE unknown after all
            timer.peer_allows_update = False
            retry_at = now
        logger.warning(
            "call %s: session refresh got %d %s%s",
            call.call_id,
            status,
            reason,
            "" if retry_at is None else f"; again in {retry_at - now:.1f} s",
        )
        if retry_at is not None and (timer.expires_at is None or retry_at < timer.expires_at):
            self._ctx.set_deadline(_half_key(call), retry_at, self._half_time(call))
        return []

    # --- expiry (§10) -----------------------------------------------------------------------
    def _expired(self, call: Call) -> DeadlineHandler:
        def fire(now: float) -> list[ev.Event]:
            timer = call.session
            if call.state is not CallState.CONFIRMED or not timer.allows(SI.EXPIRY):
                return []
            timer.apply(SI.EXPIRY)
            self._ctx.clear_deadline(_half_key(call))
            reason = f"{SESSION_EXPIRED}: no session refresh within {timer.interval_s} s"
            logger.warning("call %s: %s", call.call_id, reason)
            self._bye.send(call, now, why=reason)
            return call.end(
                ev.CallEnded(call_id=call.call_id, by="timeout", status=408, reason=reason)
            )

        return fire


def _half_key(call: Call) -> tuple[str, str]:
    return ("session-refresh", call.call_id)


def _expiry_key(call: Call) -> tuple[str, str]:
    return ("session-expiry", call.call_id)


def _reason(text: str) -> str:
    """A reason phrase from an error's text: one line, no control characters."""
    return " ".join(text.split())[:100] or "Bad Request"
