"""Registration (RFC 3261 §10.2; RFC 3581 for the address a NAT gives us), sans-IO.

One Registration per account with a registrar: REGISTER with the account's Contact, refresh
before the binding expires, back off after failures, learn our public address from the Via the
registrar stamped, and unregister with Expires: 0. Times are deadlines kept by the user agent.

Accounts change at run time (:meth:`Registrations.update`): a new account registers, a removed
one unregisters, a changed one registers again at once. A change that keeps the binding (same
address of record, registrar, hop and transport: a new password, interval or display name) is a
refresh of it; any other change removes the old binding (Expires: 0, its own Call-ID) while the
new one registers. Bindings on their way out are kept apart from the accounts' registrations
until their last response.

A registrar that does not answer at all is told about while it happens: RegistrationNotAnswered
after ``TimerConfig.silence_notice`` (2 s), long before Timer F gives up (32 s).

A registrar that restarts with its location table in memory (Kamailio with usrloc in memory,
a PBX reloaded) forgets every binding and tells nobody: calls to us get 404 until our next
refresh, up to an hour later. With ``AccountConfig.binding_check_s``, while registered we ask it
for our bindings (a REGISTER without Contact, RFC 3261 §10.2.3, on the same Call-ID) that often;
a 2xx that no longer lists our Contact is answered at once by registering again. The check is
only made with registrars that list our Contact in their 2xx, as §10.3 step 8 says they must.

Behind a NAT (RFC 3581, RFC 5626):

- The Contact names the address the registrar saw us at (Via received/rport), on every transport:
  over TCP/TLS that is the public end of our connection, and a request sent to that Contact
  (an ACK or BYE routed by it) comes back over the connection. The binding registered at the
  old address is removed in the same REGISTER. One rewrite per round of registration.
- Over TCP/TLS the Contact carries ``+sip.instance`` and ``reg-id`` (RFC 5626 §4.2) and the URI
  ``ob`` (§5.4): an outbound-aware proxy then routes requests in our dialogs over our flow.
- When the connection a registration rides on closes (``flow_closed``: the server or a router
  ended it), the binding is registered again at once over a new connection; flows that keep
  breaking back off (§4.5: 30 s doubling, up to 30 min, each wait 50-100 % at random).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto
from functools import partial
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountChanges, AccountConfig, address_for_uri, same_binding
from softphone.sip.address import Address
from softphone.sip.context import ResponseHandler, UaContext
from softphone.sip.errors import LocalProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.message import Headers, SipMessage, SipRequest, SipResponse
from softphone.sip.status import explain
from softphone.sip.transaction import ClientTransaction
from softphone.sip.uri import SipUri

logger = logging.getLogger(__name__)

REGISTER_RETRY_MIN_S: Final = 30.0
REGISTER_RETRY_MAX_S: Final = 1800.0
# A flow that breaks again within this long after the last break counts as the same failure
# (RFC 5626 §4.5 back-off); one that lived longer starts the count afresh.
FLOW_STABLE_S: Final = 120.0
REG_ID: Final = "1"  # one flow per account: its registrar hop (RFC 5626 §4.2)


class RegState(Enum):
    IDLE = auto()
    REGISTERING = auto()
    REGISTERED = auto()
    FAILED = auto()  # waiting for the retry timer
    UNREGISTERING = auto()


class RegInput(Enum):
    START = auto()
    OK = auto()
    FAIL = auto()
    RETRY = auto()  # refresh or retry timer fired, or an auth/423 resend
    STOP = auto()
    STOPPED = auto()


R, RI = RegState, RegInput
REG_TRANSITIONS: Final[dict[tuple[RegState, RegInput], RegState]] = {
    (R.IDLE, RI.START): R.REGISTERING,
    (R.FAILED, RI.START): R.REGISTERING,
    (R.REGISTERED, RI.START): R.REGISTERING,
    (R.REGISTERING, RI.START): R.REGISTERING,  # the account changed while a REGISTER was out
    (R.REGISTERING, RI.RETRY): R.REGISTERING,
    (R.REGISTERING, RI.OK): R.REGISTERED,
    (R.REGISTERING, RI.FAIL): R.FAILED,
    (R.REGISTERED, RI.RETRY): R.REGISTERING,
    (R.FAILED, RI.RETRY): R.REGISTERING,
    (R.REGISTERING, RI.STOP): R.UNREGISTERING,
    (R.REGISTERED, RI.STOP): R.UNREGISTERING,
    (R.FAILED, RI.STOP): R.IDLE,
    (R.IDLE, RI.STOP): R.IDLE,
    (R.UNREGISTERING, RI.RETRY): R.UNREGISTERING,
    (R.UNREGISTERING, RI.STOPPED): R.IDLE,
    (R.UNREGISTERING, RI.OK): R.IDLE,
    (R.UNREGISTERING, RI.FAIL): R.IDLE,
}


@dataclass(slots=True)
class Registration:
    account: AccountConfig
    call_id: str
    from_tag: str
    cseq: int
    expires: int
    state: RegState = RegState.IDLE
    contact: SipUri | None = None  # the Contact we register (learned NAT address included)
    # The binding the registrar still holds at the address we used before learning the NAT one:
    # removed (expires=0) by the REGISTERs that carry the new one, until one is accepted.
    stale_contact: SipUri | None = None
    auth_attempts: int = 0
    failures: int = 0
    nat_rewritten: bool = False
    tell_unregistered: bool = True  # False for a binding replaced by the account's new one
    bound: bool = False  # the registrar accepted this binding at least once
    listed: bool = False  # the registrar's last 2xx listed our Contact (binding checks work)
    flow_breaks: int = 0  # consecutive breaks of its TCP/TLS flow (RFC 5626 §4.5)
    flow_broken_at: float | None = None

    def apply(self, inp: RegInput) -> RegState:
        nxt = REG_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(
                f"registration {self.account.name}: {inp.name} in {self.state.name}"
            )
        self.state = nxt
        return nxt

    def next_cseq(self) -> int:
        """§10.2.4: one Call-ID for every REGISTER of a binding, CSeq + 1 each time."""
        self.cseq += 1
        return self.cseq


class Registrations:
    """The registrations of every account that has a registrar."""

    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        self._by_account: dict[str, Registration] = {}
        self._retiring: list[Registration] = []  # bindings being removed, until their response

    def state(self, account: str) -> RegState:
        reg = self._by_account.get(account)
        return reg.state if reg else RegState.IDLE

    def contact(self, account: str) -> SipUri | None:
        """The Contact registered for ``account`` (our public address once learned), if any."""
        reg = self._by_account.get(account)
        return reg.contact if reg is not None else None

    def update(
        self, old: Sequence[AccountConfig], new: Sequence[AccountConfig], now: float
    ) -> AccountChanges:
        """The accounts changed from ``old`` to ``new``: register, refresh or unregister each
        account whose configuration changed (module docstring)."""
        before = {a.name: a for a in old}
        after = {a.name: a for a in new}
        removed = tuple(name for name in before if name not in after)
        added = tuple(name for name in after if name not in before)
        changed = tuple(name for name in after if name in before and before[name] != after[name])
        registering: list[str] = []
        unregistering = [name for name in removed if self.remove(name, now)]
        for name in after:
            if name not in added and name not in changed:
                continue
            acct = after[name]
            if acct.registrar is not None:
                self.register(acct, now)
                registering.append(name)
            elif self.remove(name, now):
                unregistering.append(name)
        return AccountChanges(
            added=added,
            removed=removed,
            changed=changed,
            registering=tuple(registering),
            unregistering=tuple(unregistering),
        )

    def register(self, acct: AccountConfig, now: float, *, expires: int | None = None) -> None:
        if acct.registrar is None:
            raise LocalProtocolError(f"account {acct.name!r} has no registrar")
        reg = self._by_account.get(acct.name)
        if reg is not None and (
            reg.state is RegState.UNREGISTERING or not same_binding(reg.account, acct)
        ):
            self._retire(reg, now, tell=False)
            reg = None
        if reg is None:
            reg = Registration(
                account=acct,
                call_id=self._ctx.new_call_id(),
                from_tag=self._ctx.token(),
                cseq=self._ctx.rng.randint(1, 10000),
                expires=acct.expires,
            )
            self._by_account[acct.name] = reg
        elif acct.expires != reg.account.expires:
            reg.expires = acct.expires
        reg.account = acct
        if expires is not None:
            reg.expires = expires
        reg.apply(RegInput.START)
        reg.auth_attempts = 0
        reg.nat_rewritten = False
        self._ctx.clear_deadline(("register", acct.name))
        self._send(reg, reg.expires, now)

    def unregister(self, account: str, now: float) -> bool:
        """Send REGISTER with Expires: 0. Returns False when nothing was registered."""
        reg = self._by_account.get(account)
        if reg is None:
            self._ctx.clear_deadline(("register", account))
            return False
        if reg.state is RegState.UNREGISTERING:
            return True
        self._ctx.clear_deadline(("register", account))
        return self._stop(reg, now)

    def _stop(self, reg: Registration, now: float) -> bool:
        """Stop registering ``reg``: Expires: 0 when the registrar accepted the binding (True),
        else only forget it. A registrar that never answered has no binding of ours to remove,
        and waiting on it to confirm a removal would only take Timer F's 32 s once more."""
        self._ctx.clear_deadline(_silence_key(reg))
        self._ctx.clear_deadline(_check_key(reg))
        registered = reg.bound and reg.state in (RegState.REGISTERING, RegState.REGISTERED)
        reg.apply(RegInput.STOP)
        if registered:
            reg.auth_attempts = 0
            self._send(reg, 0, now)
            return True
        if reg.state is RegState.UNREGISTERING:  # a REGISTER was out, never answered
            reg.apply(RegInput.STOPPED)
            reg.next_cseq()  # its answer, should one come late, is for no current request
        return False

    def remove(self, account: str, now: float) -> bool:
        """The account is gone (or no longer registers): unregister its binding and forget the
        registration; Unregistered follows. Returns False when nothing was registered."""
        reg = self._by_account.get(account)
        return reg is not None and self._retire(reg, now, tell=True)

    def _retire(self, reg: Registration, now: float, *, tell: bool) -> bool:
        """Take ``reg`` away from its account and remove its binding. True when a REGISTER with
        Expires: 0 is on its way (sent now, or already)."""
        del self._by_account[reg.account.name]
        self._ctx.clear_deadline(("register", reg.account.name))
        if reg.state is RegState.UNREGISTERING:
            self._retiring.append(reg)
            return True
        reg.tell_unregistered = tell
        if not self._stop(reg, now):
            return False
        self._retiring.append(reg)
        return True

    def _send(
        self,
        reg: Registration,
        expires: int | None,
        now: float,
        *,
        handler: ResponseHandler | None = None,
    ) -> None:
        """REGISTER our Contact for ``expires`` seconds (0 removes it), or with ``expires`` None
        ask for the bindings (no Contact, no Expires: §10.2.3), answered to ``handler``."""
        acct = reg.account
        assert acct.registrar is not None
        dest = registrar_hop(acct)
        reg.next_cseq()
        if reg.contact is None:
            reg.contact = self._ctx.contact_uri(acct, dest.transport)
            if acct.instance_id is not None and dest.reliable:
                # RFC 5626 §5.4: "ob" asks proxies to keep our dialogs on this flow; it goes on
                # every Contact we send (sip/ua.py contact_uri hands this one out).
                reg.contact = reg.contact.with_param("ob", None)
        headers = Headers()
        headers.add(
            "From",
            str(
                NameAddr(uri=acct.aor, display_name=acct.display_name).with_param(
                    "tag", reg.from_tag
                )
            ),
        )
        headers.add("To", str(NameAddr(uri=acct.aor, display_name=acct.display_name)))
        headers.add("Call-ID", reg.call_id)
        headers.add("CSeq", f"{reg.cseq} REGISTER")
        if expires is not None:
            contact = NameAddr(uri=reg.contact)
            if acct.instance_id is not None and dest.reliable:  # RFC 5626 §4.2
                contact = contact.with_param("reg-id", REG_ID).with_param(
                    "+sip.instance", f'"<urn:uuid:{acct.instance_id}>"'
                )
            headers.add("Contact", str(contact))
            if reg.stale_contact is not None:  # §10.2.2: one REGISTER may remove and add bindings
                stale = NameAddr(uri=reg.stale_contact).with_param("expires", "0")
                headers.add("Contact", str(stale))
            headers.add("Expires", str(expires))
        headers.add("Allow", self._ctx.allow)
        uri = acct.registrar.replace(user=None, password=None, headers=())
        # Pre-authenticate refreshes with the last challenge (RFC 7616 §3.4 nonce reuse); a
        # stale nonce is simply challenged again.
        for value in self._ctx.cached_credentials(acct, "REGISTER", str(uri)):
            headers.add("Authorization", value)
        request = SipRequest(method="REGISTER", uri=uri, headers=headers)
        self._ctx.start_client(request, dest, acct, handler or self._on_response, now)
        if expires:
            notice_at = now + self._ctx.timers.silence_notice
            self._ctx.set_deadline(
                _silence_key(reg), notice_at, partial(self._not_answered, reg, dest, now)
            )

    def _not_answered(
        self, reg: Registration, dest: Address, sent_at: float, now: float
    ) -> list[ev.Event]:
        if self._by_account.get(reg.account.name) is not reg:
            return []
        if reg.state is not RegState.REGISTERING:
            return []
        return [
            ev.RegistrationNotAnswered(
                account=reg.account.name,
                server=dest.host_port,
                transport=dest.transport,
                waited_s=now - sent_at,
                gives_up_in_s=max(0.0, sent_at + self._ctx.timers.timeout - now),
            )
        ]

    def _owner(self, tx: ClientTransaction) -> Registration | None:
        """The registration whose latest REGISTER ``tx`` carries. A response to an earlier one
        (the account changed while it was out) is left alone: its successor is on its way."""
        call_id, seq = tx.request.call_id, tx.request.cseq.seq
        for reg in (*self._by_account.values(), *self._retiring):
            if reg.call_id == call_id:
                return reg if reg.cseq == seq else None
        return None

    def _on_response(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        reg = self._owner(tx)
        if reg is None:
            return []
        self._ctx.clear_deadline(_silence_key(reg))  # the registrar answered, or we gave up
        acct = reg.account
        unregistering = reg.state is RegState.UNREGISTERING
        if resp is not None and status < 200:
            return []
        if resp is not None and status in (401, 407):

            def retrying(_request: SipRequest) -> None:
                reg.apply(RegInput.RETRY)

            if self._ctx.resend_with_credentials(
                tx,
                resp,
                account=acct,
                owner=reg,
                next_cseq=reg.next_cseq,
                handler=self._on_response,
                now=now,
                prepare=retrying,
            ):
                return []
        if resp is not None and status == 423 and not unregistering:
            min_expires = _int_header(resp, "Min-Expires")
            if min_expires and min_expires > reg.expires:
                # RFC 3261 §10.2.8: retry with at least the registrar's Min-Expires.
                reg.expires = min_expires
                reg.apply(RegInput.RETRY)
                self._send(reg, reg.expires, now)
                return []
        if unregistering:
            reg.apply(RegInput.OK if 200 <= status < 300 else RegInput.FAIL)
            self._retiring = [r for r in self._retiring if r is not reg]
            return [ev.Unregistered(account=acct.name)] if reg.tell_unregistered else []
        if resp is not None and 200 <= status < 300:
            reg.auth_attempts = 0
            if self._learn_nat_address(reg, resp, tx.dest, now):
                return []
            reg.stale_contact = None
            expires = self._granted_expires(reg, resp)
            reg.apply(RegInput.OK)
            reg.bound = True
            reg.failures = 0
            reg.listed = self._lists_ours(reg, resp)
            # Refresh well before expiry: half way for short intervals, a minute early otherwise.
            refresh_in = expires / 2 if expires <= 240 else expires - 60
            self._ctx.set_deadline(
                ("register", acct.name), now + max(refresh_in, 1.0), partial(self._due, acct.name)
            )
            self._schedule_check(reg, now, before=now + refresh_in)
            return [
                ev.Registered(
                    account=acct.name,
                    expires=expires,
                    contact=str(reg.contact),
                    flow_timer_s=_int_header(resp, "Flow-Timer") or None,
                )
            ]
        reg.apply(RegInput.FAIL)
        reg.failures += 1
        retry_in = min(REGISTER_RETRY_MIN_S * 2 ** (reg.failures - 1), REGISTER_RETRY_MAX_S)
        self._ctx.set_deadline(
            ("register", acct.name), now + retry_in, partial(self._due, acct.name)
        )
        return [
            ev.RegistrationFailed(
                account=acct.name,
                # No response at all (a timeout, a refused connection) is status 0: its reason
                # says what happened; 408/503 would be made up.
                status=status if resp is not None else 0,
                reason=explain(status, reason) if resp is not None else reason,
                retry_in_s=retry_in,
            )
        ]

    def _due(self, account: str, now: float) -> list[ev.Event]:
        """The refresh, or the retry after a failure, is due."""
        reg = self._by_account.get(account)
        if reg is not None and reg.state in (RegState.REGISTERED, RegState.FAILED):
            reg.apply(RegInput.RETRY)
            reg.auth_attempts = 0
            reg.nat_rewritten = False
            self._send(reg, reg.expires, now)
        return []

    # -- binding checks (RFC 3261 §10.2.3) ---------------------------------------------------

    def _schedule_check(self, reg: Registration, now: float, *, before: float) -> None:
        """The next check, when the account asks for checks, the registrar lists bindings and
        the check comes before the refresh (which would find a lost binding anyway)."""
        every = reg.account.binding_check_s
        if every is None or every <= 0 or not reg.listed or now + every >= before:
            self._ctx.clear_deadline(_check_key(reg))
            return
        self._ctx.set_deadline(_check_key(reg), now + every, partial(self._check, reg))

    def _check(self, reg: Registration, now: float) -> list[ev.Event]:
        """Ask for our bindings: the REGISTER of a refresh without Contact and Expires."""
        if (
            self._by_account.get(reg.account.name) is not reg
            or reg.state is not RegState.REGISTERED
        ):
            return []
        self._send(reg, None, now, handler=self._on_check)
        return []

    def _on_check(
        self, tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
    ) -> list[ev.Event]:
        reg = self._owner(tx)
        if reg is None or reg.state is not RegState.REGISTERED:
            return []
        if resp is not None and status < 200:
            return []
        refresh = self._ctx.deadline_of(("register", reg.account.name))
        before = refresh if refresh is not None else now + reg.expires
        if resp is not None and status in (401, 407):
            if self._ctx.resend_with_credentials(
                tx,
                resp,
                account=reg.account,
                owner=reg,
                next_cseq=reg.next_cseq,
                handler=self._on_check,
                now=now,
            ):
                return []
        elif resp is not None and 200 <= status < 300:
            reg.auth_attempts = 0
            if not self._lists_ours(reg, resp):
                logger.info(
                    "%s: the registrar no longer has our binding (restarted?); registering again",
                    reg.account.name,
                )
                self._ctx.clear_deadline(("register", reg.account.name))
                reg.apply(RegInput.RETRY)
                self._send(reg, reg.expires, now)
                return []
        # No answer, or one that is not about bindings: the refresh will tell; check again then.
        self._schedule_check(reg, now, before=before)
        return []

    @staticmethod
    def _lists_ours(reg: Registration, resp: SipResponse) -> bool:
        """Whether the 2xx lists our Contact among the bindings of the address of record."""
        return reg.contact is not None and any(
            isinstance(c.uri, SipUri) and c.uri.matches(reg.contact) for c in resp.contacts
        )

    def flow_closed(self, dest: Address, now: float) -> None:
        """The TCP/TLS connection to ``dest`` closed: the registrations that ride on it register
        again over a new one, at once the first time (module docstring)."""
        if not dest.reliable:
            return
        for reg in self._by_account.values():
            if reg.state is not RegState.REGISTERED or registrar_hop(reg.account) != dest:
                continue
            recent = reg.flow_broken_at is not None and now - reg.flow_broken_at < FLOW_STABLE_S
            reg.flow_breaks = reg.flow_breaks + 1 if recent else 1
            reg.flow_broken_at = now
            delay = 0.0
            if reg.flow_breaks > 1:
                base = REGISTER_RETRY_MIN_S * 2 ** (reg.flow_breaks - 2)
                delay = min(base, REGISTER_RETRY_MAX_S) * (0.5 + 0.5 * self._ctx.rng.random())
            logger.info(
                "%s: the flow to %s closed; registering again in %.0f s",
                reg.account.name,
                dest,
                delay,
            )
            name = reg.account.name
            self._ctx.set_deadline(("register", name), now + delay, partial(self._due, name))

    def _granted_expires(self, reg: Registration, resp: SipResponse) -> int:
        """§10.2.4: the expires of our own binding in the 200, else Expires, else what we asked."""
        for contact in resp.contacts:
            if (
                isinstance(contact.uri, SipUri)
                and reg.contact is not None
                and contact.uri.matches(reg.contact)
            ):
                value = contact.param("expires")
                if value and value.isdigit():
                    return int(value)
        header = _int_header(resp, "Expires")
        return header if header is not None else reg.expires

    def _learn_nat_address(
        self, reg: Registration, resp: SipResponse, dest: Address, now: float
    ) -> bool:
        """RFC 3581: when the registrar saw us at another address than our Contact (NAT), register
        the learned address instead, once per round, and remove the binding just made at the
        other one: left there, every call to us would be forked to it as well, and its failure
        (a 404 or a timeout) could be the answer the caller gets. Over TCP/TLS the learned
        address is the public end of our connection (module docstring)."""
        if reg.nat_rewritten or reg.contact is None:
            return False
        via = resp.top_via
        received, rport = via.received, via.rport
        if received is None and rport is None:
            return False
        host = received or reg.contact.host
        port = rport or reg.contact.port
        if host == reg.contact.host and port == reg.contact.port:
            return False
        logger.info("registrar sees us at %s:%s (NAT); re-registering that address", host, port)
        reg.nat_rewritten = True
        reg.stale_contact = reg.contact
        reg.contact = reg.contact.replace(host=host, port=port)
        reg.apply(RegInput.RETRY)
        self._send(reg, reg.expires, now)
        return True


def registrar_hop(acct: AccountConfig) -> Address:
    """Where ``acct``'s REGISTER goes: its outbound proxy, else its registrar (an IP literal)."""
    if acct.registrar is None:
        raise LocalProtocolError(f"account {acct.name!r} has no registrar")
    return acct.outbound or address_for_uri(acct.registrar, acct.transport)


def _silence_key(reg: Registration) -> tuple[str, str]:
    return ("register-silent", reg.call_id)


def _check_key(reg: Registration) -> tuple[str, str]:
    return ("register-check", reg.call_id)


def _int_header(msg: SipMessage, name: str) -> int | None:
    value = msg.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None
