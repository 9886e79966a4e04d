"""A scripted presence server for the user agent's subscription and publication tests: it
answers SUBSCRIBE and PUBLISH as Kamailio's presence module does (2xx with a To tag, Contact
and Expires; SIP-ETag for PUBLISH), or as a test scripts it, and sends NOTIFYs in the
subscriptions' dialogs. No sockets, no clock: the test moves time by argument."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from sip_support import Peer, make_peer

from softphone.auth.digest import make_challenge
from softphone.sip import events as ev
from softphone.sip.address import Address
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

SERVER = Address("udp", "127.0.0.10", 5070)
BOB = SipUri(user="bob", host="lab.test")
ALICE = SipUri(user="alice", host="lab.test")


@dataclass
class Dialog:
    """A subscription as the server holds it."""

    call_id: str
    event: str
    to_tag: str  # the server's tag
    watcher_tag: str  # our From tag
    watcher_uri: str
    contact: SipUri
    cseq: int = 1


@dataclass
class Answer:
    status: int
    headers: Sequence[tuple[str, str]] = ()


@dataclass
class PresenceServer:
    """``script``: answers for the next requests, in order (then 2xx). ``address`` is where it
    says it is (its Contact, the Via of its NOTIFYs)."""

    expires: int | None = None  # granted; None: what was asked
    script: list[Answer] = field(default_factory=list)
    requests: list[SipRequest] = field(default_factory=list)
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)
    etags: int = 0
    address: Address = SERVER
    hold: bool = False  # keep responses in ``held`` until ``release()``: a NOTIFY overtakes them
    held: list[bytes] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def receive(self, data: bytes) -> None:
        msg = parse_message(data)
        if isinstance(msg, SipResponse):
            return  # a 200 to one of our NOTIFYs
        assert isinstance(msg, SipRequest)
        self.requests.append(msg)
        answer = self.script.pop(0) if self.script else Answer(200)
        headers = Headers()
        for via in msg.headers.get_lines("Via"):
            headers.add("Via", via)
        headers.add("From", msg.headers.get_lines("From")[0])
        dialog = self.dialogs.get(msg.call_id)
        to_tag = msg.to.tag or (dialog.to_tag if dialog else f"srv{self.rng.randint(1, 10**6)}")
        headers.add("To", str(msg.to if msg.to.tag else msg.to.with_param("tag", to_tag)))
        headers.add("Call-ID", msg.call_id)
        headers.add("CSeq", msg.headers.get_lines("CSeq")[0])
        asked = int(msg.headers.get("Expires") or "3600")
        granted = asked if self.expires is None or asked == 0 else self.expires
        if 200 <= answer.status < 300:
            headers.add("Expires", str(granted))
            if msg.method == "SUBSCRIBE":
                headers.add("Contact", f"<sip:{self.address.host}:{self.address.port}>")
                if dialog is None and msg.contacts:
                    self.dialogs[msg.call_id] = Dialog(
                        call_id=msg.call_id,
                        event=(msg.headers.get("Event") or "").split(";")[0],
                        to_tag=to_tag,
                        watcher_tag=msg.from_.tag or "",
                        watcher_uri=str(msg.from_.uri),
                        contact=SipUri.parse(str(msg.contacts[0].uri)),
                    )
            else:
                self.etags += 1
                headers.add("SIP-ETag", f"etag{self.etags}")
        for name, value in answer.headers:
            headers.add(name, value)
        response = bytes(SipResponse(status=answer.status, reason="x", headers=headers))
        (self.held if self.hold else self.outbox).append(response)

    def release(self) -> None:
        self.hold = False
        self.outbox += self.held
        self.held = []

    def challenge(self, status: int = 407) -> Answer:
        name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
        return Answer(status, [(name, make_challenge(realm="lab.test", nonce="n1"))])

    def last(self, method: str) -> SipRequest:
        return [r for r in self.requests if r.method == method][-1]

    def dialog(self, index: int = -1) -> Dialog:
        return list(self.dialogs.values())[index]

    def notify(
        self,
        dialog: Dialog,
        state: str = "active;expires=600",
        body: bytes = b"",
        content_type: str | None = None,
        *,
        event: str | None = None,
        cseq: int | None = None,
        extra: Sequence[tuple[str, str]] = (),
        from_tag: str | None = None,
    ) -> None:
        """A NOTIFY in ``dialog``; ``state`` is the Subscription-State (None-able via '')."""
        dialog.cseq = cseq if cseq is not None else dialog.cseq + 1
        headers = Headers()
        branch = f"z9hG4bKn{self.rng.randint(1, 10**9)}"
        headers.add("Via", f"SIP/2.0/UDP {self.address.host}:{self.address.port};branch={branch}")
        headers.add("From", f"<sip:{BOB.user}@{BOB.host}>;tag={from_tag or dialog.to_tag}")
        headers.add("To", f"<{dialog.watcher_uri}>;tag={dialog.watcher_tag}")
        headers.add("Call-ID", dialog.call_id)
        headers.add("CSeq", f"{dialog.cseq} NOTIFY")
        headers.add("Contact", f"<sip:{self.address.host}:{self.address.port}>")
        headers.add("Event", event or dialog.event)
        if state:
            headers.add("Subscription-State", state)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        for name, value in extra:
            headers.add(name, value)
        request = SipRequest(method="NOTIFY", uri=dialog.contact, headers=headers, body=body)
        self.outbox.append(bytes(request))


class Bench:
    """Alice (our user agent, outbound proxy = the server) and the presence server."""

    def __init__(self, server: PresenceServer | None = None) -> None:
        self.server = server or PresenceServer()
        self.alice: Peer = make_peer(
            "alice",
            "127.0.0.1",
            seed=1,
            registrar=SipUri(host=SERVER.host, port=SERVER.port),
            outbound=SERVER,
            password="alicepw",
        )
        self.now = 0.0
        self.answers: list[SipResponse] = []  # alice's responses to the server's NOTIFYs

    @property
    def ua(self) -> UserAgent:
        return self.alice.ua

    @property
    def events(self) -> list[ev.Event]:
        return self.alice.events

    def of(self, kind: type) -> list[ev.Event]:
        return self.alice.of(kind)

    def flush(self) -> None:
        for _ in range(50):
            moved = False
            for data, dest in self.alice.ua.messages_to_send():
                moved = True
                msg = parse_message(data)
                if isinstance(msg, SipResponse):
                    self.answers.append(msg)
                    continue
                assert dest == SERVER, f"{msg.method} went to {dest}"
                self.server.receive(data)
            out, self.server.outbox = self.server.outbox, []
            for data in out:
                moved = True
                self.alice.events += self.alice.ua.receive_message(data, SERVER, self.now)
            if not moved:
                return
        raise AssertionError("messages kept flowing")

    def add(self, events: list[ev.Event]) -> None:
        self.alice.events += events
        self.flush()

    def walk(self, until: float) -> None:
        """Fire every timer up to ``until``, exchanging messages after each."""
        self.flush()
        while (at := self.alice.ua.get_timer()) is not None and at <= until:
            self.now = at
            self.alice.events += self.alice.ua.handle_timer(at)
            self.flush()
        self.now = until

    def states(self) -> list[str]:
        return [e.state for e in self.alice.events if isinstance(e, ev.SubscriptionChanged)]

    def subscribe(self, package: str = "presence", target: SipUri = BOB, **kw: object) -> str:
        sub_id, events = self.ua.subscriptions.subscribe(
            self.ua.account(),
            target,
            package,
            now=self.now,
            **kw,  # type: ignore[arg-type]
        )
        self.add(events)
        return sub_id

    def last_answer(self) -> SipResponse:
        return self.answers[-1]
