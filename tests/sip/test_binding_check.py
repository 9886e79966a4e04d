"""Binding checks (RFC 3261 §10.2.3): a registrar that restarted and forgot our binding is
found out by asking it for our bindings, and we register again at once."""

from __future__ import annotations

import pytest
from sip_support import Registrar, exchange, registering_alice

from softphone.sip import events as ev


def run_to(alice_registrar: tuple[object, Registrar], until: float) -> None:
    """Walk alice's clock to ``until``, answering whatever she sends."""
    alice, registrar = alice_registrar
    while (at := alice.ua.get_timer()) is not None and at <= until:  # type: ignore[attr-defined]
        alice.events += alice.ua.handle_timer(at)  # type: ignore[attr-defined]
        exchange(alice, registrar, at)  # type: ignore[arg-type]


def test_a_binding_the_registrar_still_has_is_only_asked_about() -> None:
    alice, registrar = registering_alice(binding_check_s=20.0), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    before = len(registrar.requests)
    run_to((alice, registrar), 45.0)
    checks = registrar.requests[before:]
    assert [r.contacts for r in checks] == [[], []]  # at 20 s and 40 s: no Contact, no Expires
    assert all("Expires" not in r.headers for r in checks)
    assert all(r.call_id == registrar.requests[0].call_id for r in checks)  # §10.2.4
    assert [r.cseq.seq for r in checks] == [
        registrar.requests[before - 1].cseq.seq + n for n in (1, 2)
    ]
    assert len(alice.of(ev.Registered)) == 1  # nothing changed, nothing to tell


def test_a_registrar_that_forgot_us_gets_our_binding_again_at_the_next_check() -> None:
    alice, registrar = registering_alice(binding_check_s=20.0), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    registrar.restart()  # its location table was in memory: our binding is gone
    assert registrar.bindings == {}
    run_to((alice, registrar), 21.0)
    assert list(registrar.bindings) == ["sip:alice@127.0.0.1:5060"]
    assert len(alice.of(ev.Registered)) == 2
    again = registrar.requests[-1]
    assert again.contacts and again.headers.get("Expires") == "3600"


def test_no_checks_when_the_registrar_does_not_list_bindings_or_none_were_asked_for() -> None:
    quiet = Registrar()
    quiet.lists_bindings = False  # a registrar that ignores §10.3 step 8: checks would lie
    for alice, registrar in (
        (registering_alice(binding_check_s=20.0), quiet),
        (registering_alice(), Registrar()),
    ):
        alice.ua.register("alice", 0.0)
        exchange(alice, registrar, 0.0)
        sent = len(registrar.requests)
        run_to((alice, registrar), 600.0)
        assert len(registrar.requests) == sent  # the refresh is due only at 3540 s


def test_a_check_that_is_challenged_answers_the_challenge() -> None:
    alice, registrar = registering_alice(binding_check_s=20.0), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    registrar.issued.clear()  # the nonce we cached is no longer good
    before = len(registrar.requests)
    run_to((alice, registrar), 21.0)
    challenged, answered = registrar.requests[before:]
    assert not challenged.contacts and not answered.contacts
    assert "Authorization" in answered.headers
    assert len(alice.of(ev.Registered)) == 1 and not alice.of(ev.RegistrationFailed)


@pytest.mark.parametrize("every", [3540.0, 4000.0])
def test_no_check_when_the_refresh_comes_first(every: float) -> None:
    alice, registrar = registering_alice(binding_check_s=every), Registrar()
    alice.ua.register("alice", 0.0)
    exchange(alice, registrar, 0.0)
    run_to((alice, registrar), 3539.0)
    assert all(r.contacts for r in registrar.requests[1:])
