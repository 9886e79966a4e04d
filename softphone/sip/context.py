"""The seam between the user agent (sip/ua.py) and its parts, sans-IO.

The user agent keeps the accounts, the transactions and the dispatch of incoming requests. Each
part (registration, the two sides of INVITE, re-offers, BYE, transfer, INFO) is a class built
with a ``UaContext``, the services the user agent lends it, and reaches nothing else of the user
agent or of another part except through the public methods it is handed:

- transactions: ``start_client`` with a response handler, ``resend_with_credentials`` when a
  request is challenged (one helper for every request, RFC 3261 §22.2), ``send_response`` and
  ``reply`` on a server transaction, ``send_stateless`` / ``resend`` for ACKs of 2xx (§13.2.2.4);
- building: ``response`` (§8.2.6), ``contact_uri``, ``account_for_request``, ``allow``;
- time and identity: ``set_deadline`` / ``clear_deadline`` (deadlines, not tasks), ``token``,
  ``new_call_id`` and ``rng``, all from the user agent's seeded generator;
- calls: ``calls``, the store of calls by Call-ID and by dialog.

A part that answers requests installs itself into the ``MethodTable``: the methods it handles
(in a dialog, outside one, or both), the option tags it supports, and the observers that see
the events of server transactions a call owns. The table is what ``Allow`` says, in the order
methods were installed. A part that takes NOTIFYs registers the event packages it handles
(RFC 6665 §7.2.1); sip/notify.py routes each NOTIFY by its Event header to the one that did.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address, TransportName
from softphone.sip.call import Call, Calls
from softphone.sip.errors import LocalProtocolError
from softphone.sip.failover import TargetHealth
from softphone.sip.message import SipRequest, SipResponse
from softphone.sip.timers import TimerConfig
from softphone.sip.transaction import ClientTransaction, ServerTransaction, TransactionEvent
from softphone.sip.uri import SipUri

ResponseHandler: TypeAlias = Callable[
    [ClientTransaction, SipResponse | None, int, str, float], list[ev.Event]
]
"""Called with each response a client transaction passes up: (transaction, response, status,
reason, now). A timeout comes as (None, 408, ...), a transport error as (None, 503, ...)."""

InDialogHandler: TypeAlias = Callable[[SipRequest, ServerTransaction, Call, float], list[ev.Event]]
OutOfDialogHandler: TypeAlias = Callable[[SipRequest, ServerTransaction, float], list[ev.Event]]
ServerKey: TypeAlias = tuple[str, str, str]
CallTransactionObserver: TypeAlias = Callable[
    [Call, ServerKey, TransactionEvent, float], list[ev.Event]
]
DeadlineHandler: TypeAlias = Callable[[float], list[ev.Event]]


def ignore_response(
    tx: ClientTransaction, resp: SipResponse | None, status: int, reason: str, now: float
) -> list[ev.Event]:
    """For requests whose outcome changes nothing (CANCEL, the BYE after a stray 2xx...)."""
    return []


class Challenged(Protocol):
    """What is counted against MAX_AUTH_ATTEMPTS: a registration, or a call (all its requests)."""

    auth_attempts: int


class UaContext(Protocol):
    """The services a part of the user agent may use (module docstring)."""

    @property
    def rng(self) -> random.Random: ...

    @property
    def timers(self) -> TimerConfig: ...

    @property
    def calls(self) -> Calls: ...

    @property
    def allow(self) -> str: ...

    @property
    def supported(self) -> str:
        """What ``Supported`` says: the option tags we support (§20.37)."""
        ...

    @property
    def health(self) -> TargetHealth:
        """Which servers failed lately and until when (sip/failover.py), for every account."""
        ...

    def start_client(
        self,
        request: SipRequest,
        dest: Address,
        account: AccountConfig,
        handler: ResponseHandler,
        now: float,
        *,
        keep_via: bool = False,
    ) -> ClientTransaction:
        """Add Via (unless ``keep_via``), Max-Forwards and User-Agent, and send ``request`` in a
        new client transaction whose responses go to ``handler``."""
        ...

    def resend_with_credentials(
        self,
        tx: ClientTransaction,
        resp: SipResponse,
        *,
        account: AccountConfig,
        owner: Challenged,
        next_cseq: Callable[[], int],
        handler: ResponseHandler,
        now: float,
        prepare: Callable[[SipRequest], None] | None = None,
    ) -> bool:
        """§22.2: answer the 401/407 ``resp`` to ``tx``: a copy of its request with credentials,
        ``owner.auth_attempts`` + 1, CSeq ``next_cseq()``, ``prepare(copy)`` if given, then a
        new client transaction to the same next hop with ``handler``. False when no challenge
        can be answered (none for us, attempts used up, the same realm refused again)."""
        ...

    def cached_credentials(self, account: AccountConfig, method: str, uri: str) -> list[str]:
        """Authorization values to send before being challenged (RFC 7616 §3.4)."""
        ...

    def send_response(self, tx: ServerTransaction, resp: SipResponse, now: float) -> None: ...

    def reply(
        self,
        tx: ServerTransaction,
        req: SipRequest,
        status: int,
        now: float,
        *,
        extra: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> list[ev.Event]:
        """Send a plain response to ``req`` on ``tx``; returns no events (for ``return``)."""
        ...

    def response(
        self,
        req: SipRequest,
        status: int,
        *,
        to_tag: str | None = None,
        contact: AccountConfig | None = None,
        sdp: bytes | None = None,
        extra: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> SipResponse: ...

    def send_stateless(
        self, request: SipRequest, dest: Address, now: float
    ) -> tuple[bytes, Address]:
        """Send a request outside any transaction (the ACK for a 2xx); returns what was sent."""
        ...

    def resend(self, item: tuple[bytes, Address]) -> None:
        """Send again what ``send_stateless`` returned."""
        ...

    def own_server_transaction(self, key: ServerKey, call: Call) -> None:
        """Events of this server transaction go to the call observers, with ``call``."""
        ...

    def contact_uri(
        self, account: AccountConfig, transport: TransportName, *, secure: bool = False
    ) -> SipUri:
        """Our Contact for ``account`` on ``transport``; ``secure``: a SIPS URI (a SIPS
        request or dialog), when we listen on TLS."""
        ...

    def account_for_request(self, req: SipRequest) -> AccountConfig | None: ...

    def set_deadline(self, key: tuple[str, str], at: float, fire: DeadlineHandler) -> None: ...

    def clear_deadline(self, key: tuple[str, str]) -> None: ...

    def deadline_of(self, key: tuple[str, str]) -> float | None:
        """When the deadline ``key`` is due, None when there is none."""
        ...

    def token(self, length: int = 10) -> str: ...

    def new_call_id(self) -> str: ...


@dataclass(slots=True)
class MethodSpec:
    """How requests of one method are handled.

    ``in_dialog`` gets requests that match a dialog (To tag); a method without one is answered
    405 inside a dialog. ``out_of_dialog`` gets requests without a To tag; a method without one
    is answered 481 outside a dialog (§12.2.2). ``accept``: body types the method takes, others
    get 415 (§8.2.3). ``addressed_to_us``: outside a dialog the Request-URI must be one of our
    users or registered contacts, or 404 (§8.2.2.1). ``creates_dialog``: outside a dialog the
    request must carry exactly one Contact with a SIP URI, or 400 (§8.1.1.8, §12.1.1); a request
    that cannot be answered properly is malformed before it is misrouted.
    """

    name: str
    in_dialog: InDialogHandler | None = None
    out_of_dialog: OutOfDialogHandler | None = None
    accept: tuple[str, ...] = ()
    addressed_to_us: bool = False
    creates_dialog: bool = False
    other_dialog: OutOfDialogHandler | None = None


@dataclass(frozen=True, slots=True)
class EventPackageSpec:
    """Who takes NOTIFYs of one event package: ``in_call`` those in a call's dialog (REFER's
    implicit subscription), ``elsewhere`` the others (a subscription's own dialog, or none)."""

    name: str
    in_call: InDialogHandler | None = None
    elsewhere: OutOfDialogHandler | None = None


class MethodTable:
    """The methods, option tags and call observers the parts of the user agent installed."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._allow: list[str] = []
        self._extensions: set[str] = set()
        self._observers: list[CallTransactionObserver] = []
        self._packages: dict[str, EventPackageSpec] = {}

    def declare(self, name: str) -> None:
        """A method the user agent core answers itself, before dispatch (ACK, CANCEL)."""
        if name not in self._allow:
            self._allow.append(name)

    def register_method(
        self,
        name: str,
        *,
        in_dialog: InDialogHandler | None = None,
        out_of_dialog: OutOfDialogHandler | None = None,
        accept: Sequence[str] = (),
        addressed_to_us: bool = False,
        creates_dialog: bool = False,
        other_dialog: OutOfDialogHandler | None = None,
    ) -> None:
        """Handle ``name`` in a dialog, outside one, or both. Two parts may share a method (an
        INVITE starts a call outside a dialog and re-offers inside one); each side has one
        handler."""
        name = name.upper()
        spec = self._specs.get(name)
        if spec is None:
            spec = self._specs[name] = MethodSpec(name)
            self.declare(name)
        if (
            (in_dialog and spec.in_dialog)
            or (out_of_dialog and spec.out_of_dialog)
            or (other_dialog and spec.other_dialog)
        ):
            raise LocalProtocolError(f"{name} already has a handler there")
        if accept and spec.accept and tuple(accept) != spec.accept:
            raise LocalProtocolError(f"{name} accepts {spec.accept}, not {tuple(accept)}")
        spec.in_dialog = spec.in_dialog or in_dialog
        spec.out_of_dialog = spec.out_of_dialog or out_of_dialog
        spec.accept = spec.accept or tuple(accept)
        spec.addressed_to_us = spec.addressed_to_us or addressed_to_us
        spec.creates_dialog = spec.creates_dialog or creates_dialog
        spec.other_dialog = spec.other_dialog or other_dialog

    def register_event_package(
        self,
        name: str,
        *,
        in_call: InDialogHandler | None = None,
        elsewhere: OutOfDialogHandler | None = None,
    ) -> None:
        """NOTIFYs of the event package ``name`` go to these handlers (EventPackageSpec)."""
        key = name.lower()
        if key in self._packages:
            raise LocalProtocolError(f"event package {name} already has its handlers")
        self._packages[key] = EventPackageSpec(key, in_call=in_call, elsewhere=elsewhere)

    def event_package(self, name: str) -> EventPackageSpec | None:
        return self._packages.get(name.lower())

    @property
    def event_packages(self) -> tuple[str, ...]:
        """What ``Allow-Events`` says (RFC 6665 §8.2.2), in the order they were registered."""
        return tuple(self._packages)

    def register_extension(self, option_tag: str) -> None:
        """An option tag we support: a Require naming it does not get 420 (§8.2.2.3)."""
        self._extensions.add(option_tag.lower())

    def observe_call_transactions(self, observer: CallTransactionObserver) -> None:
        """``observer`` sees every event of every server transaction a call owns."""
        self._observers.append(observer)

    def get(self, name: str) -> MethodSpec | None:
        return self._specs.get(name)

    def supports(self, option_tag: str) -> bool:
        return option_tag.strip().lower() in self._extensions

    @property
    def allow(self) -> str:
        return ", ".join(self._allow)

    @property
    def supported(self) -> str:
        return ", ".join(sorted(self._extensions))

    @property
    def observers(self) -> tuple[CallTransactionObserver, ...]:
        return tuple(self._observers)
