"""The user agent's test bench: peers over a fake network, clock walked by argument (no
sockets, no sleeps). Shared by tests/sip/test_ua*.py."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from softphone.sip import events as ev
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
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
    )
    ua = UserAgent(accounts=[acct], rng=random.Random(seed))
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
