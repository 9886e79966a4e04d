"""Accounts changed at run time, and a registrar or proxy that never answers: the user agent core
with registrars on a fake network, the clock walked by argument (no sockets, no sleeps)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from sip_support import OFFER, Network, Peer, Registrar, make_peer

from softphone.sip import events as ev
from softphone.sip.account import AccountChanges, AccountConfig
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest, parse_message
from softphone.sip.registration import RegState
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

HOME = Address("udp", "127.0.0.10", 5070)
WORK = Address("udp", "127.0.0.11", 5070)


def account(
    name: str, at: Address, *, password: str = "alicepw", user: str = "alice"
) -> AccountConfig:
    return AccountConfig(
        name=name,
        aor=SipUri(user=user, host="lab.test"),
        username=user,
        password=password,
        registrar=SipUri(host=at.host, port=at.port),
        outbound=at,
    )


class Registrars:
    """Registrars by address; ``down`` ones receive nothing (their REGISTERs are lost)."""

    def __init__(self, **by_name: tuple[Address, Registrar]) -> None:
        self.by_address = dict(by_name.values())
        self.down: set[Address] = set()
        self.seen: list[tuple[Address, SipRequest]] = []

    def exchange(self, alice: Peer, now: float) -> None:
        for _ in range(20):
            out = alice.ua.messages_to_send()
            if not out:
                return
            for data, dest in out:
                request = parse_message(data)
                assert isinstance(request, SipRequest)
                self.seen.append((dest, request))
                if dest in self.down:
                    continue
                answer = self.by_address[dest].respond(data)
                alice.events += alice.ua.receive_message(answer, dest, now)
        raise AssertionError("messages kept flowing")

    def sent_to(self, dest: Address) -> list[SipRequest]:
        return [r for d, r in self.seen if d == dest]


def alice_with(*accounts: AccountConfig) -> Peer:
    ua = UserAgent(accounts=list(accounts), rng=random.Random(7))
    address = Address("udp", "127.0.0.1", 5060)
    ua.add_listener(address)
    return Peer("alice", ua, address)


def registered_alice() -> tuple[Peer, Registrars]:
    net = Registrars(home=(HOME, Registrar()), work=(WORK, Registrar()))
    alice = alice_with(account("home", HOME))
    alice.ua.register("home", 0.0)
    net.exchange(alice, 0.0)
    assert alice.of(ev.Registered) == [
        ev.Registered(account="home", expires=3600, contact="sip:alice@127.0.0.1:5060")
    ]
    alice.events.clear()
    return alice, net


def test_an_added_account_registers_at_once_and_the_others_are_left_alone() -> None:
    alice, net = registered_alice()
    before = len(net.sent_to(HOME))
    changes = alice.ua.update_accounts([account("home", HOME), account("work", WORK)], 1.0)
    assert changes == AccountChanges(added=("work",), registering=("work",))
    net.exchange(alice, 1.0)
    assert alice.of(ev.Registered) == [
        ev.Registered(account="work", expires=3600, contact="sip:alice@127.0.0.1:5060")
    ]
    assert len(net.sent_to(HOME)) == before  # home's binding is untouched
    assert [a.name for a in alice.ua.accounts] == ["home", "work"]
    assert alice.ua.registration_state("work") is RegState.REGISTERED


def test_a_removed_account_unregisters_and_its_name_can_come_back() -> None:
    alice, net = registered_alice()
    alice.ua.update_accounts([account("home", HOME), account("work", WORK)], 1.0)
    net.exchange(alice, 1.0)
    changes = alice.ua.update_accounts([account("home", HOME)], 2.0)
    assert changes == AccountChanges(removed=("work",), unregistering=("work",))
    net.exchange(alice, 2.0)
    last = net.sent_to(WORK)[-1]
    assert last.headers.get("Expires") == "0"
    assert last.call_id == net.sent_to(WORK)[0].call_id  # the binding that was made (§10.2.2)
    assert alice.of(ev.Unregistered) == [ev.Unregistered(account="work")]
    assert alice.ua.registration_state("work") is RegState.IDLE
    with pytest.raises(LocalProtocolError, match="no account named 'work'"):
        alice.ua.account("work")
    # Added again, it is a new binding (a new Call-ID), not the retired one.
    alice.events.clear()
    alice.ua.update_accounts([account("home", HOME), account("work", WORK)], 3.0)
    net.exchange(alice, 3.0)
    assert [e.account for e in alice.of(ev.Registered)] == ["work"]
    assert net.sent_to(WORK)[-1].call_id != last.call_id


def test_a_corrected_password_registers_the_same_binding_again() -> None:
    net = Registrars(home=(HOME, Registrar()))
    alice = alice_with(account("home", HOME, password="typo"))
    alice.ua.register("home", 0.0)
    net.exchange(alice, 0.0)
    (failed,) = alice.of(ev.RegistrationFailed)
    assert failed.status == 403 and failed.retry_in_s == 30.0
    sent = len(net.sent_to(HOME))
    changes = alice.ua.update_accounts([account("home", HOME)], 5.0)  # long before the retry
    assert changes == AccountChanges(changed=("home",), registering=("home",))
    net.exchange(alice, 5.0)
    assert [e.account for e in alice.of(ev.Registered)] == ["home"]
    again = net.sent_to(HOME)[sent:]
    # §10.2.4: the same Call-ID, CSeq going up; the new password answers a fresh challenge.
    assert {r.call_id for r in again} == {net.sent_to(HOME)[0].call_id}
    assert [r.cseq.seq for r in again] == [again[0].cseq.seq, again[0].cseq.seq + 1]
    assert "Authorization" not in again[0].headers and "Authorization" in again[1].headers
    # No retry of the old failure comes later: the deadline went with it.
    alice.events.clear()
    while (at := alice.ua.get_timer()) is not None and at < 100.0:
        alice.events += alice.ua.handle_timer(at)
        net.exchange(alice, at)
    assert alice.of(ev.RegistrationFailed) == [] and len(net.sent_to(HOME)) == sent + 2


def test_a_new_registrar_removes_the_old_binding_and_makes_a_new_one() -> None:
    alice, net = registered_alice()
    old_call_id = net.sent_to(HOME)[0].call_id
    changes = alice.ua.update_accounts([account("home", WORK)], 1.0)
    assert changes == AccountChanges(changed=("home",), registering=("home",), unregistering=())
    net.exchange(alice, 1.0)
    gone = net.sent_to(HOME)[-1]
    assert gone.call_id == old_call_id and gone.headers.get("Expires") == "0"
    new = net.sent_to(WORK)
    assert new and all(r.call_id != old_call_id for r in new)
    # The account lives on: its old binding leaves without an Unregistered for it.
    assert alice.of(ev.Unregistered) == []
    assert [e.account for e in alice.of(ev.Registered)] == ["home"]
    assert alice.ua.registration_state("home") is RegState.REGISTERED


def test_an_account_that_stops_registering_unregisters() -> None:
    alice, net = registered_alice()
    no_registrar = replace(account("home", HOME), registrar=None, outbound=None)
    changes = alice.ua.update_accounts([no_registrar], 1.0)
    assert changes == AccountChanges(changed=("home",), unregistering=("home",))
    net.exchange(alice, 1.0)
    assert net.sent_to(HOME)[-1].headers.get("Expires") == "0"
    assert alice.of(ev.Unregistered) == [ev.Unregistered(account="home")]


def test_a_change_while_a_register_is_out_answers_only_the_latest() -> None:
    net = Registrars(home=(HOME, Registrar()))
    alice = alice_with(account("home", HOME, password="typo"))
    alice.ua.register("home", 0.0)
    first = alice.ua.messages_to_send()  # out, not answered yet
    alice.ua.update_accounts([account("home", HOME)], 0.1)
    net.exchange(alice, 0.1)  # the new REGISTER, challenged, then authorized: 200
    assert [e.account for e in alice.of(ev.Registered)] == ["home"]
    # The first REGISTER's 401 comes late: no second authorized REGISTER for it.
    ((data, dest),) = first
    alice.events += alice.ua.receive_message(net.by_address[HOME].respond(data), dest, 0.2)
    assert alice.ua.messages_to_send() == []
    assert alice.of(ev.RegistrationFailed) == []


def test_no_accounts_at_all_is_refused() -> None:
    alice, _ = registered_alice()
    with pytest.raises(LocalProtocolError, match="at least one account"):
        alice.ua.update_accounts([], 1.0)
    assert [a.name for a in alice.ua.accounts] == ["home"]


def test_calls_stay_up_while_accounts_are_added_and_removed() -> None:
    """A call on one account survives the others changing, and one on a removed account goes
    on until it is hung up (its BYE still goes out)."""
    caller = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    net = Network(caller, bob)
    local = caller.ua.account()
    work = replace(local, name="work", aor=SipUri(user="alice", host="127.0.0.1", port=5060))
    caller.ua.update_accounts([local, work], net.now)
    first = caller.ua.invite(
        "alice", SipUri(user="bob", host="127.0.0.2", port=5060), sdp=OFFER, now=net.now
    )
    second = caller.ua.invite(
        "work", SipUri(user="bob", host="127.0.0.2", port=5060), sdp=OFFER, now=net.now
    )
    net.flush()
    for incoming in bob.of(ev.IncomingCall):
        bob.ua.answer(incoming.call_id, sdp=OFFER, now=net.now)
    net.flush()
    assert {e.call_id for e in caller.of(ev.CallAnswered)} == {first, second}
    caller.ua.update_accounts([local], net.now)  # "work" goes, with its call up
    net.run_until(net.now + 60.0)
    assert caller.of(ev.CallEnded) == [] and sorted(caller.ua.active_calls()) == sorted(
        [first, second]
    )
    caller.ua.hangup(second, net.now)
    net.flush()
    (ended,) = caller.of(ev.CallEnded)
    assert ended.call_id == second and ended.by == "local"
    assert caller.ua.active_calls() == [first]
    assert [e.call_id for e in bob.of(ev.CallEnded)] == [
        i.call_id for i in bob.of(ev.IncomingCall)
    ][1:]


# --- a registrar or proxy that never answers -----------------------------------------------------
def walk(peer: Peer, until: float) -> None:
    while (at := peer.ua.get_timer()) is not None and at <= until:
        peer.events += peer.ua.handle_timer(at)
        peer.ua.messages_to_send()  # lost


def test_a_silent_registrar_is_told_about_at_2_s_then_fails_at_32_s() -> None:
    alice = alice_with(account("home", HOME))
    alice.ua.register("home", 0.0)
    alice.ua.messages_to_send()
    walk(alice, 1.9)
    assert alice.events == []
    walk(alice, 2.0)
    assert alice.events == [
        ev.RegistrationNotAnswered(
            account="home",
            server="127.0.0.10:5070",
            transport="udp",
            waited_s=2.0,
            gives_up_in_s=30.0,
        )
    ]
    walk(alice, 40.0)
    assert alice.events[1:] == [
        ev.RegistrationFailed(
            account="home",
            status=0,
            reason="no answer from 127.0.0.10:5070 over udp in 32 s",
            retry_in_s=30.0,
        )
    ]
    # The retry at 62 s is told about again at 64 s: each REGISTER that goes unanswered.
    walk(alice, 64.0)
    assert [type(e) for e in alice.events[2:]] == [ev.RegistrationNotAnswered]


def test_a_registrar_that_answers_at_all_is_not_called_silent() -> None:
    net = Registrars(home=(HOME, Registrar(password="other")))
    alice = alice_with(account("home", HOME))
    alice.ua.register("home", 0.0)
    net.exchange(alice, 0.0)  # 401, then 403: answers, both
    walk(alice, 10.0)
    assert [type(e) for e in alice.events] == [ev.RegistrationFailed]


def test_an_unanswered_invite_is_told_about_at_2_s_and_an_answered_one_is_not() -> None:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    call_id = alice.ua.invite(None, SipUri(user="bob", host="127.0.0.9"), sdp=OFFER, now=0.0)
    alice.ua.messages_to_send()
    walk(alice, 40.0)
    assert alice.events[0] == ev.InviteNotAnswered(
        call_id=call_id, server="127.0.0.9:5060", transport="udp", waited_s=2.0, gives_up_in_s=30.0
    )
    (failed,) = alice.of(ev.CallFailed)
    assert failed.reason == "no answer from 127.0.0.9:5060 over udp in 32 s"
    # A peer that rings: nothing to tell, however long it rings.
    caller, bob = make_peer("alice", "127.0.0.1", seed=1), make_peer("bob", "127.0.0.2", seed=2)
    net = Network(caller, bob)
    caller.ua.invite(None, SipUri(user="bob", host="127.0.0.2"), sdp=OFFER, now=0.0)
    net.flush()
    bob.ua.ring(bob.of(ev.IncomingCall)[0].call_id, net.now)
    net.run_until(30.0)
    assert caller.of(ev.InviteNotAnswered) == [] and caller.of(ev.CallProgressed)


def test_a_registrar_that_never_answered_gets_no_unregister_to_wait_for() -> None:
    """No answer, no binding of ours there: stopping (the phone quitting, the account removed)
    sends nothing and waits for nothing, and a late answer to the REGISTER is dropped."""
    alice = alice_with(account("home", HOME))
    alice.ua.register("home", 0.0)
    ((late, dest),) = alice.ua.messages_to_send()
    walk(alice, 3.0)
    assert alice.ua.unregister("home", 3.0) is False
    assert alice.ua.messages_to_send() == []
    assert alice.ua.registration_state("home") is RegState.IDLE
    answer = Registrar().respond(late)  # a 401, long after we stopped
    assert alice.ua.receive_message(answer, dest, 4.0) == []
    assert alice.ua.messages_to_send() == []
    # Removed rather than stopped: the same.
    alice.ua.register("home", 5.0)
    alice.ua.messages_to_send()
    changes = alice.ua.update_accounts([account("work", WORK)], 5.5)
    assert changes.unregistering == () and changes.removed == ("home",)
    assert all(d == WORK for _, d in alice.ua.messages_to_send())
