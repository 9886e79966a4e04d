"""The user agent's test bench: peers over a fake network, clock walked by argument (no
sockets, no sleeps). Shared by tests/sip/test_ua*.py."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from softphone.auth.digest import Algorithm, make_challenge, verify_authorization
from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.message import Headers, SipRequest, SipResponse, parse_message
from softphone.sip.reliable import PrackMode
from softphone.sip.timers import TimerConfig
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = OFFER.replace(b"4000", b"5000")


@dataclass
class Peer:
    name: str
    ua: UserAgent
    address: Address
    events: list[ev.Event] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)

    def of(self, kind: type) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, kind)]


def make_peer(
    name: str,
    host: str,
    *,
    seed: int,
    port: int = 5060,
    registrar: SipUri | None = None,
    outbound: Address | None = None,
    password: str | None = None,
    display_name: str | None = None,
    binding_check_s: float | None = None,
    only_from_proxy: bool = False,
    prack: PrackMode = "supported",
    session_expires_s: int = 1800,
    timers: TimerConfig | None = None,
) -> Peer:
    address = Address("udp", host, port)
    acct = AccountConfig(
        name=name,
        aor=SipUri(
            user=name, host="lab.test" if registrar else host, port=None if registrar else port
        ),
        username=name,
        password=password,
        registrar=registrar,
        outbound=outbound,
        display_name=display_name,
        binding_check_s=binding_check_s,
        only_from_proxy=only_from_proxy,
        prack=prack,
        session_expires_s=session_expires_s,
    )
    ua = UserAgent(accounts=[acct], rng=random.Random(seed), timers=timers)
    ua.add_listener(address)
    return Peer(name, ua, address)


class Network:
    """Delivers every message to the peer whose address it is for; ``drop`` filters."""

    def __init__(self, *peers: Peer) -> None:
        self.peers = {(p.address.host, p.address.port): p for p in peers}
        self.now = 0.0
        self.drop: Callable[[bytes, Address], bool] = lambda data, dest: False
        self.undeliverable: list[tuple[bytes, Address]] = []

    def flush(self, limit: int = 200) -> None:
        for _ in range(limit):
            moved = False
            for sender in list(self.peers.values()):
                for data, dest in sender.ua.messages_to_send():
                    moved = True
                    if self.drop(data, dest):
                        continue
                    target = self.peers.get((dest.host, dest.port))
                    if target is None:
                        self.undeliverable.append((data, dest))
                        continue
                    target.received.append(data)
                    target.events += target.ua.receive_message(data, sender.address, self.now)
            if not moved:
                return
        raise AssertionError("messages kept flowing")

    def run_until(self, t_end: float) -> None:
        self.flush()
        while True:
            deadlines = [(p.ua.get_timer(), p) for p in self.peers.values()]
            due = [(at, p) for at, p in deadlines if at is not None and at <= t_end]
            if not due:
                break
            at, peer = min(due, key=lambda x: x[0])
            self.now = max(self.now, at)
            peer.events += peer.ua.handle_timer(self.now)
            self.flush()
        self.now = t_end


def call_up(net: Network, alice: Peer, bob: Peer) -> tuple[str, str]:
    call_id = alice.ua.invite(
        None, SipUri(user="bob", host="127.0.0.2", port=5060), sdp=OFFER, now=net.now
    )
    net.flush()
    (incoming,) = bob.of(ev.IncomingCall)
    bob.ua.ring(incoming.call_id, net.now)
    bob.ua.answer(incoming.call_id, sdp=ANSWER, now=net.now)
    net.flush()
    return call_id, incoming.call_id


# --- registration ---------------------------------------------------------------------------------
class Registrar:
    """A minimal registrar that challenges with digest, as Kamailio does."""

    def __init__(
        self,
        *,
        min_expires: int = 60,
        password: str = "alicepw",
        public: Address | None = None,
        algorithms: tuple[Algorithm, ...] = (Algorithm.MD5,),
        refused: int = 403,
        flow_timer: int | None = None,
    ) -> None:
        self.flow_timer = flow_timer  # RFC 5626 §4.4.1 Flow-Timer in the 200, when given
        self.algorithms = algorithms  # one challenge each, in this order
        self.refused = refused  # the answer to a wrong password: 403 (Kamailio) or 401 again
        self.issued: set[str] = set()  # nonces it handed out and still knows
        self.generation = 0
        self.public = public  # where the requests seem to come from (a NAT), stamped into Via
        self.min_expires = min_expires
        self.password = password
        self.requests: list[SipRequest] = []
        self.bindings: dict[str, int] = {}  # contact URI -> expires, as §10.3 keeps them
        self.lists_bindings = True  # a 2xx lists the bindings, as §10.3 step 8 says

    def respond(self, data: bytes) -> bytes:
        req = parse_message(data)
        assert isinstance(req, SipRequest)
        if req.method != "REGISTER":  # a registrar only: PUBLISH, SUBSCRIBE... are not for it
            return self.refuse(req)
        self.requests.append(req)
        auth = req.headers.get_lines("Authorization")
        headers = Headers()
        vias = req.vias
        if self.public is not None:  # §18.2.1 / RFC 3581 as the registrar applies them
            vias[0] = (
                vias[0]
                .with_param("received", self.public.host)
                .with_param("rport", str(self.public.port))
            )
        headers.add("Via", ", ".join(str(v) for v in vias))
        for name in ("From", "To", "Call-ID", "CSeq"):
            headers.add(name, req.headers.get_lines(name)[0] + (";tag=reg" if name == "To" else ""))
        expires = int(req.headers.get("Expires") or "3600")
        nonce_known = bool(auth) and any(f'nonce="{n}"' in auth[0] for n in self.issued)
        if (
            not auth
            or not nonce_known
            or not verify_authorization(auth[0], password=self.password, method="REGISTER")
        ):
            # A nonce it does not know (issued before a restart) is challenged afresh, with no
            # stale=true, as Kamailio does.
            status = self.refused if auth and nonce_known else 401
            for algorithm in self.algorithms if status == 401 else ():
                nonce = f"n{len(self.requests)}-{algorithm.value}"
                if self.generation:
                    nonce += f"-g{self.generation}"
                self.issued.add(nonce)
                headers.add(
                    "WWW-Authenticate",
                    make_challenge(realm="lab.test", nonce=nonce, algorithm=algorithm),
                )
        elif 0 < expires < self.min_expires:
            status = 423
            headers.add("Min-Expires", str(self.min_expires))
        else:
            status = 200
            for contact in req.contacts:  # §10.3 step 7: a Contact's own expires wins
                seconds = int(contact.param("expires") or expires)
                if seconds:
                    self.bindings[str(contact.uri)] = seconds
                else:
                    self.bindings.pop(str(contact.uri), None)
            # step 8: every current binding (none at all from a registrar that ignores it);
            # a REGISTER without Contact is a query for them (§10.2.3)
            for uri, seconds in self.bindings.items() if self.lists_bindings else ():
                headers.add("Contact", f"<{uri}>;expires={seconds}")
            if self.flow_timer is not None:
                headers.add("Flow-Timer", str(self.flow_timer))
        return bytes(SipResponse(status=status, reason="x", headers=headers))

    @staticmethod
    def refuse(req: SipRequest) -> bytes:
        """405 Method Not Allowed (RFC 3261 §8.2.1), Allow: REGISTER."""
        headers = Headers()
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in req.headers.get_lines(name):
                headers.add(name, value + (";tag=reg" if name == "To" and not req.to.tag else ""))
        headers.add("Allow", "REGISTER")
        return bytes(SipResponse(status=405, reason="Method Not Allowed", headers=headers))

    def restart(self) -> None:
        """Forget every nonce and binding, as a registrar restarting with its location table
        in memory does."""
        self.issued.clear()
        self.bindings.clear()
        self.generation += 1


def registering_alice(
    expires: int = 3600, password: str = "alicepw", binding_check_s: float | None = None
) -> Peer:
    registrar = Address("udp", "127.0.0.10", 5070)
    return make_peer(
        "alice",
        "127.0.0.1",
        seed=1,
        registrar=SipUri(host="127.0.0.10", port=5070),
        outbound=registrar,
        password=password,
        binding_check_s=binding_check_s,
    )


def exchange(alice: Peer, registrar: Registrar, now: float) -> None:
    for _ in range(10):
        out = alice.ua.messages_to_send()
        if not out:
            return
        for data, dest in out:
            assert dest == Address("udp", "127.0.0.10", 5070)
            alice.events += alice.ua.receive_message(registrar.respond(data), dest, now)
