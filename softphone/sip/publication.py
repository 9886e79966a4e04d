"""Publishing our own state (RFC 3903, PUBLISH), sans-IO: one publication per account and event
package (``presence`` for now).

:meth:`Publications.publish` sets the document to publish. The first PUBLISH carries it; the
server's 2xx gives an entity tag (SIP-ETag) and how long it keeps the state (Expires). After
that (§4.1):

- a refresh carries no body, only ``SIP-If-Match`` with the tag, half way through short
  intervals and a minute before the end of long ones;
- a new document is a modification: the body with ``SIP-If-Match``;
- 412 Conditional Request Failed (the server lost the tag: it restarted) is answered with an
  initial PUBLISH of the document (§4.1, §6 step 4);
- 423 Interval Too Brief is answered with Min-Expires (§6 step 3), 401/407 with credentials;
- any other failure is tried again after 30 s, doubling to 30 min.

:meth:`Publications.remove` takes the state away: PUBLISH with ``Expires: 0`` and the tag
(§4.5); ``PublicationChanged(removed)`` follows its answer, or at once when nothing was
published. A document changed while a PUBLISH is out waits for its answer (one request at a
time per publication, so that the tags follow each other). The life of a publication is the
table :data:`PUB_TRANSITIONS`; what entering a state sends is in ``Publications._go``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from functools import partial
from typing import Final

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig, address_for_uri
from softphone.sip.address import Address
from softphone.sip.context import UaContext
from softphone.sip.errors import LocalProtocolError
from softphone.sip.headers import NameAddr
from softphone.sip.message import Headers, SipMessage, SipRequest, SipResponse
from softphone.sip.status import explain
from softphone.sip.subscription_state import DEFAULT_EXPIRES, refresh_delay, retry_delay
from softphone.sip.transaction import ClientTransaction

__all__ = ["PUB_TRANSITIONS", "PubInput", "PubState", "Publication", "Publications"]


class PubState(Enum):
    IDLE = auto()
    PUBLISHING = auto()  # a PUBLISH is out
    PUBLISHED = auto()
    FAILED = auto()  # waiting to try again
    REMOVING = auto()  # the removal (or an earlier PUBLISH it waits for) is out


class PubInput(Enum):
    PUBLISH = auto()  # ours: a (new) document
    OK = auto()  # a 2xx
    FAIL = auto()  # any failure but 412, a timeout, a transport error
    CONDITION_FAILED = auto()  # 412: the entity tag is unknown there
    REFRESH_DUE = auto()
    RETRY_DUE = auto()
    RESTART = auto()  # ours: publish afresh (the registrar came back)
    REMOVE = auto()  # ours: Expires: 0
    REMOVED = auto()  # the answer to Expires: 0, whatever it is


P, PI = PubState, PubInput
# RFC 3903 §4 (the publisher). A pair not listed is a bug of ours: Publication.apply raises.
PUB_TRANSITIONS: Final[dict[tuple[PubState, PubInput], PubState]] = {
    (P.IDLE, PI.PUBLISH): P.PUBLISHING,
    (P.IDLE, PI.REMOVE): P.IDLE,
    (P.PUBLISHING, PI.PUBLISH): P.PUBLISHING,  # sent once the PUBLISH out is answered
    (P.PUBLISHING, PI.OK): P.PUBLISHED,
    (P.PUBLISHING, PI.FAIL): P.FAILED,
    (P.PUBLISHING, PI.CONDITION_FAILED): P.PUBLISHING,  # an initial PUBLISH goes out
    (P.PUBLISHING, PI.RESTART): P.PUBLISHING,
    (P.PUBLISHING, PI.REMOVE): P.REMOVING,
    (P.PUBLISHED, PI.PUBLISH): P.PUBLISHING,
    (P.PUBLISHED, PI.REFRESH_DUE): P.PUBLISHING,
    (P.PUBLISHED, PI.RESTART): P.PUBLISHING,
    (P.PUBLISHED, PI.REMOVE): P.REMOVING,
    (P.FAILED, PI.PUBLISH): P.PUBLISHING,
    (P.FAILED, PI.RETRY_DUE): P.PUBLISHING,
    (P.FAILED, PI.RESTART): P.PUBLISHING,
    (P.FAILED, PI.REMOVE): P.IDLE,
    (P.REMOVING, PI.PUBLISH): P.REMOVING,  # too late: the state is on its way out
    (P.REMOVING, PI.OK): P.REMOVING,  # an earlier PUBLISH's: now remove with its tag
    (P.REMOVING, PI.FAIL): P.IDLE,
    (P.REMOVING, PI.CONDITION_FAILED): P.IDLE,
    (P.REMOVING, PI.REMOVE): P.REMOVING,
    (P.REMOVING, PI.REMOVED): P.IDLE,
}


@dataclass(slots=True)
class Publication:
    account: AccountConfig
    package: str
    content_type: str
    body: bytes
    expires: int
    hop: Address
    call_id: str
    from_tag: str
    cseq: int
    state: PubState = PubState.IDLE
    etag: str | None = None
    sent_body: bytes | None = None  # the document the server has (or is being sent)
    out_expires: int | None = None  # Expires of the PUBLISH out; None when none is
    failures: int = 0
    auth_attempts: int = 0

    def apply(self, inp: PubInput) -> PubState:
        nxt = PUB_TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise LocalProtocolError(
                f"publication {self.account.name}/{self.package}: {inp.name} in {self.state.name}"
            )
        self.state = nxt
        return nxt

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq


class Publications:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        self._pubs: dict[tuple[str, str], Publication] = {}

    def state(self, account: str, package: str = "presence") -> PubState:
        pub = self._pubs.get((account, package))
        return pub.state if pub is not None else PubState.IDLE

    @property
    def removing(self) -> int:
        return sum(p.state is PubState.REMOVING for p in self._pubs.values())

    def publish(
        self,
        acct: AccountConfig,
        body: bytes,
        content_type: str,
        *,
        now: float,
        package: str = "presence",
        expires: int = DEFAULT_EXPIRES,
    ) -> list[ev.Event]:
        """Publish ``body`` as ``acct``'s state (module docstring)."""
        if not body:
            raise LocalProtocolError("nothing to publish: the document is empty")
        key = (acct.name, package)
        pub = self._pubs.get(key)
        if pub is None or pub.account.aor != acct.aor:
            hop = acct.outbound or address_for_uri(acct.aor, acct.transport)
            pub = self._pubs[key] = Publication(
                account=acct,
                package=package,
                content_type=content_type,
                body=body,
                expires=expires,
                hop=hop,
                call_id=self._ctx.new_call_id(),
                from_tag=self._ctx.token(),
                cseq=self._ctx.rng.randint(1, 10000),
            )
        pub.account, pub.body, pub.content_type = acct, body, content_type
        return self._go(pub, PubInput.PUBLISH, now)

    def remove(self, account: str, now: float, package: str = "presence") -> list[ev.Event]:
        pub = self._pubs.get((account, package))
        if pub is None:
            return []
        return self._go(pub, PubInput.REMOVE, now)

    def restart(self, account: str, now: float) -> list[ev.Event]:
        """Publish every document of ``account`` afresh, without entity tags."""
        events: list[ev.Event] = []
        for pub in list(self._pubs.values()):
            if pub.account.name == account and (pub.state, PI.RESTART) in PUB_TRANSITIONS:
                pub.etag, pub.failures = None, 0
                events += self._go(pub, PI.RESTART, now)
        return events

    # --- the table and what entering a state does ---------------------------------------------
    def _go(self, pub: Publication, inp: PubInput, now: float) -> list[ev.Event]:
        """Apply ``inp``; entering a state sends what it needs unless a PUBLISH is still out
        (its answer comes back here with OK, FAIL or CONDITION_FAILED)."""
        state = pub.apply(inp)
        self._ctx.clear_deadline(_key(pub))
        idle = pub.out_expires is None
        if state is P.PUBLISHING and idle:
            self._send(pub, body=None if inp is PI.REFRESH_DUE else pub.body, now=now)
        elif state is P.REMOVING and idle:
            if pub.etag is None:  # nothing is published: there is nothing to take away
                return self._go(pub, PI.REMOVED, now)
            self._send(pub, body=None, now=now, expires=0)
        elif state is P.IDLE:
            self._pubs.pop((pub.account.name, pub.package), None)
            return [ev.PublicationChanged(account=pub.account.name, state="removed")]
        return []

    def _send(
        self, pub: Publication, *, body: bytes | None, now: float, expires: int | None = None
    ) -> None:
        acct = pub.account
        expires = pub.expires if expires is None else expires
        headers = Headers()
        sender = NameAddr(uri=acct.aor, display_name=acct.display_name)
        headers.add("From", str(sender.with_param("tag", pub.from_tag)))
        headers.add("To", str(NameAddr(uri=acct.aor)))
        headers.add("Call-ID", pub.call_id)
        headers.add("CSeq", f"{pub.next_cseq()} PUBLISH")
        headers.add("Event", pub.package)
        headers.add("Expires", str(expires))
        if pub.etag is not None:
            headers.add("SIP-If-Match", pub.etag)
        if body is not None:
            headers.add("Content-Type", pub.content_type)
            pub.sent_body = body
        request = SipRequest(method="PUBLISH", uri=acct.aor, headers=headers, body=body or b"")
        pub.out_expires, pub.auth_attempts = expires, 0
        self._ctx.start_client(request, pub.hop, acct, partial(self._on_response, pub), now)

    def _on_response(
        self,
        pub: Publication,
        tx: ClientTransaction,
        resp: SipResponse | None,
        status: int,
        reason: str,
        now: float,
    ) -> list[ev.Event]:
        if resp is not None and status < 200:
            return []
        if self._pubs.get((pub.account.name, pub.package)) is not pub:
            return []
        if tx.request.cseq.seq != pub.cseq:
            return []  # superseded
        if resp is not None and status in (401, 407):
            if self._ctx.resend_with_credentials(
                tx,
                resp,
                account=pub.account,
                owner=pub,
                next_cseq=pub.next_cseq,
                handler=partial(self._on_response, pub),
                now=now,
            ):
                return []
        asked, pub.out_expires = pub.out_expires or 0, None
        if asked == 0:
            return self._go(pub, PI.REMOVED, now)
        if resp is not None and status == 423:
            floor = _int_header(resp, "Min-Expires")
            if floor and floor > asked:
                pub.expires = floor
                self._send(pub, body=pub.body, now=now)
                return []
        if resp is not None and 200 <= status < 300:
            return self._ok(pub, resp, now, asked)
        if resp is not None and status == 412:
            pub.etag = None  # §6 step 4: the server does not know our tag; publish afresh
            return self._go(pub, PI.CONDITION_FAILED, now)
        return self._failed(pub, status, reason, resp is None, now)

    def _ok(self, pub: Publication, resp: SipResponse, now: float, asked: int) -> list[ev.Event]:
        pub.etag = resp.headers.get("SIP-ETag") or pub.etag
        events = self._go(pub, PI.OK, now)
        if pub.state is not P.PUBLISHED:
            return events  # being removed: the removal went out with this tag
        pub.failures = 0
        if pub.sent_body != pub.body:  # changed while the PUBLISH was out
            return self._go(pub, PI.PUBLISH, now)
        granted = _int_header(resp, "Expires") or asked
        due = partial(self._due, pub.account.name, pub.package)
        self._ctx.set_deadline(_key(pub), now + refresh_delay(granted), due)
        return [ev.PublicationChanged(account=pub.account.name, state="published", expires=granted)]

    def _failed(
        self, pub: Publication, status: int, reason: str, no_response: bool, now: float
    ) -> list[ev.Event]:
        events = self._go(pub, PI.FAIL, now)
        if pub.state is not P.FAILED:
            return events
        pub.failures += 1
        retry_in = retry_delay(pub.failures)
        due = partial(self._due, pub.account.name, pub.package)
        self._ctx.set_deadline(_key(pub), now + retry_in, due)
        return [
            ev.PublicationChanged(
                account=pub.account.name,
                state="failed",
                status=0 if no_response else status,
                reason=reason if no_response else explain(status, reason),
                retry_in_s=retry_in,
            )
        ]

    def _due(self, account: str, package: str, now: float) -> list[ev.Event]:
        pub = self._pubs.get((account, package))
        if pub is None:
            return []
        if pub.state is P.PUBLISHED:
            return self._go(pub, PI.REFRESH_DUE, now)
        if pub.state is P.FAILED:
            return self._go(pub, PI.RETRY_DUE, now)
        return []


def _key(pub: Publication) -> tuple[str, str]:
    return ("publication", f"{pub.account.name}/{pub.package}")


def _int_header(msg: SipMessage, name: str) -> int | None:
    value = (msg.headers.get(name) or "").strip()
    return int(value) if value.isdigit() else None
