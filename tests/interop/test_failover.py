"""RFC 3263 fail-over against real servers: two Kamailio instances behind SRV records of
``lab.test`` served by a DNS server the test starts (tests/dns_stub.py, on 127.0.0.1), the
first (priority 10) stopped. softphone resolves the registrar by SRV through that server,
finds the first silent, says so, registers with the second; a call from baresip registered on
the second reaches it, and softphone's own call goes straight to the second (the first is held
down)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from dns_stub import DnsStub
from lab_support import BaresipFactory, KamailioFactory
from test_softphone_sip import expect, state, wait_log, wait_peer

from softphone import lab
from softphone.config import Account, Config
from softphone.phone import events as pe
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.sip.timers import TimerConfig
from softphone.sip.uri import SipUri
from softphone.transport.resolver import DnspythonBackend

pytestmark = pytest.mark.interop

# T1 of 50 ms (RFC 3261 §17.1.1.1 allows a smaller T1 on a known network): Timer F, the
# transaction timeout after which a silent server counts as failed, is 64*T1 = 3.2 s.
TIMERS = TimerConfig(t1=0.05, t2=0.4)


@pytest.fixture
async def first_down(
    kamailio_factory: KamailioFactory,
) -> AsyncIterator[tuple[lab.Kamailio, lab.Kamailio, DnsStub]]:
    first, second = kamailio_factory(), kamailio_factory()
    first.stop()  # the preferred server is down: nothing listens on its port any more
    records = {
        ("_sip._udp.lab.test", "SRV"): [
            f"10 10 {first.udp_port} k1.lab.test.",
            f"20 10 {second.udp_port} k2.lab.test.",
        ],
        ("k1.lab.test", "A"): ["127.0.0.1"],
        ("k2.lab.test", "A"): ["127.0.0.1"],
    }
    with DnsStub(records) as dns:
        yield first, second, dns


async def test_registers_via_the_second_srv_target_and_takes_a_call(
    first_down: tuple[lab.Kamailio, lab.Kamailio, DnsStub], baresip_factory: BaresipFactory
) -> None:
    first, second, dns = first_down
    acct = Account(
        name="alice",
        uri=SipUri(user="alice", host=lab.DOMAIN),
        password=lab.USERS["alice"],
        registrar=SipUri(host=lab.DOMAIN),  # no port, no proxy: found through SRV
    )
    phone = Phone(
        Config(accounts=(acct,)),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random("failover"),
        dns=DnspythonBackend(nameservers=["127.0.0.1"], port=dns.port, timeout_s=2.0),
        timers=TIMERS,
        audio=NullAudio(),
    )
    mark = second.mark()
    await phone.start()
    try:
        seen: list[pe.PhoneEvent] = []
        await expect(phone, lambda e: isinstance(e, pe.Registered), timeout_s=15, seen=seen)
        assert ("_sip._udp.lab.test", "SRV") in dns.questions
        notices = [e.text for e in seen if isinstance(e, pe.Notice)]
        assert (
            f"alice: registrar 127.0.0.1:{first.udp_port} did not answer; "
            f"trying 127.0.0.1:{second.udp_port}"
        ) in notices, notices
        assert not [e for e in seen if isinstance(e, pe.RegistrationFailed)]
        await wait_log(second, r"LAB REGISTERED alice expires=\d+ proto=udp", mark)

        bob = await asyncio.to_thread(baresip_factory, "bob", "udp", kamailio=second)
        peer_mark = bob.mark()
        await asyncio.to_thread(bob.dial, f"sip:alice@{lab.DOMAIN}")
        incoming = await expect(phone, lambda e: isinstance(e, pe.IncomingCall))
        assert isinstance(incoming, pe.IncomingCall) and "bob@lab.test" in incoming.remote
        await phone.answer(incoming.call_id)
        await expect(phone, state(incoming.call_id, "established"))
        await wait_peer(bob, "CALL_ESTABLISHED", peer_mark)
        await phone.hangup(incoming.call_id)
        await wait_peer(bob, "CALL_CLOSED", peer_mark)

        # Our own call: the first server is held down, so the INVITE goes to the second at once.
        bob_mark = bob.mark()
        calls: list[pe.PhoneEvent] = []
        await asyncio.to_thread(bob.command, "answermode", "auto")
        call_id = await phone.dial(f"sip:bob@{lab.DOMAIN}")
        await expect(phone, state(call_id, "established"), seen=calls)
        assert not [e for e in calls if isinstance(e, pe.Notice) and "trying" in e.text]
        await wait_peer(bob, "CALL_ESTABLISHED", bob_mark)
        await phone.hangup(call_id)
        await wait_peer(bob, "CALL_CLOSED", bob_mark)
    finally:
        await phone.stop()
