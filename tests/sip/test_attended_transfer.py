"""Attended transfer (RFC 5589 §7.1, RFC 3891) between three user agent cores over a fake
network: alice is the transferor, bob the transferee, carol the target. Clock walked by
argument, no sockets, no sleeps."""

from __future__ import annotations

import pytest
from sip_support import ANSWER, OFFER, Network, Peer, make_peer

from softphone.sip import events as ev
from softphone.sip.call import CallState
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message import SipRequest, SipResponse, parse_message
from softphone.sip.replaces import Replaces
from softphone.sip.uri import SipUri


@pytest.fixture
def trio() -> tuple[Network, Peer, Peer, Peer]:
    alice = make_peer("alice", "127.0.0.1", seed=1)
    bob = make_peer("bob", "127.0.0.2", seed=2)
    carol = make_peer("carol", "127.0.0.3", seed=3)
    return Network(alice, bob, carol), alice, bob, carol


def connect(net: Network, caller: Peer, callee: Peer) -> tuple[str, str]:
    """A confirmed call from ``caller`` to ``callee``: (caller's Call-ID, callee's)."""
    target = SipUri(user=callee.name, host=callee.address.host, port=callee.address.port)
    call_id = caller.ua.invite(None, target, sdp=OFFER, now=net.now)
    net.flush()
    incoming = [e for e in callee.of(ev.IncomingCall) if e.call_id == call_id]
    assert incoming, f"{callee.name} got no call"
    callee.ua.answer(call_id, sdp=ANSWER, now=net.now)
    net.flush()
    assert callee.ua.call_state(call_id) is CallState.CONFIRMED
    return call_id, call_id


def sent(peer: Peer, method: str) -> list[SipRequest]:
    """The requests of ``method`` that reached ``peer``."""
    msgs = [parse_message(m) for m in peer.received]
    return [m for m in msgs if isinstance(m, SipRequest) and m.method == method]


def responses(peer: Peer, method: str) -> list[SipResponse]:
    msgs = [parse_message(m) for m in peer.received]
    return [m for m in msgs if isinstance(m, SipResponse) and m.cseq.method == method]


def test_attended_transfer_in_all_three_roles(trio: tuple[Network, Peer, Peer, Peer]) -> None:
    net, alice, bob, carol = trio
    to_bob, _ = connect(net, alice, bob)  # bob is held by the front end meanwhile
    to_carol, _ = connect(net, alice, carol)

    # Transferor: REFER to bob naming carol's Contact with Replaces for the alice-carol dialog.
    alice.ua.refer_replacing(to_bob, to_carol, net.now)
    net.flush()
    (refer,) = sent(bob, "REFER")
    refer_to = refer.headers.get("Refer-To") or ""
    assert refer_to.startswith("<sip:carol@127.0.0.3:5060?Replaces=")
    assert "%3Bto-tag%3D" in refer_to and "%3Bfrom-tag%3D" in refer_to
    assert refer.headers.get("Referred-By") == "<sip:alice@127.0.0.1:5060>"

    # Transferee: asked to call carol with a Replaces whose tags are carol's view (to-tag ours).
    (asked,) = bob.of(ev.TransferRequested)
    assert asked.target == "sip:carol@127.0.0.3:5060"
    assert asked.replaces is not None
    replaces = Replaces.parse(asked.replaces)
    carol_call = carol.ua._calls.require(to_carol)
    assert carol_call.dialog is not None
    assert (replaces.call_id, replaces.to_tag, replaces.from_tag) == carol_call.dialog.id
    new_call = bob.ua.invite(
        None,
        SipUri.parse(asked.target),
        sdp=OFFER,
        now=net.now,
        extra=[("Replaces", asked.replaces), ("Referred-By", asked.referred_by or "")],
    )
    net.flush()

    # Target: the INVITE names its call with alice; it comes up flagged as a replacement.
    invite = next(r for r in sent(carol, "INVITE") if r.call_id == new_call)
    assert invite.headers.get("Replaces") == asked.replaces
    assert "replaces" in ", ".join(invite.headers.get_lines("Supported"))
    (incoming,) = [e for e in carol.of(ev.IncomingCall) if e.call_id == new_call]
    assert incoming.replaces == to_carol
    assert carol.ua.call_state(to_carol) is CallState.CONFIRMED  # not before the new one is up
    carol.ua.answer(new_call, sdp=ANSWER, now=net.now)
    net.flush()

    # Once confirmed, carol hangs up on alice (RFC 3891 §3); bob tells alice it worked.
    assert carol.ua.call_state(new_call) is CallState.CONFIRMED
    assert carol.ua.call_state(to_carol) is CallState.TERMINATED
    assert [e.by for e in alice.of(ev.CallEnded) if e.call_id == to_carol] == ["remote"]
    bob.ua.notify_transfer(to_bob, status=200, reason="OK", now=net.now)
    net.flush()
    assert alice.of(ev.TransferProgressed)[-1] == ev.TransferProgressed(
        call_id=to_bob, status=200, reason="OK", final=True
    )


def test_refer_replacing_needs_two_confirmed_calls(trio: tuple[Network, Peer, Peer, Peer]) -> None:
    net, alice, bob, _carol = trio
    to_bob, _ = connect(net, alice, bob)
    ringing = alice.ua.invite(None, SipUri(user="carol", host="127.0.0.3"), sdp=OFFER, now=0.0)
    net.flush()  # carol rings, not answered
    with pytest.raises(LocalProtocolError):
        alice.ua.refer_replacing(to_bob, ringing, net.now)
    with pytest.raises(LocalProtocolError):
        alice.ua.refer_replacing(to_bob, to_bob, net.now)
    assert sent(bob, "REFER") == []


# --- the target's checks (RFC 3891 §3) ------------------------------------------------------------
def invite_replacing(net: Network, bob: Peer, carol: Peer, replaces: str) -> str:
    call_id = bob.ua.invite(
        None,
        SipUri(user="carol", host="127.0.0.3"),
        sdp=OFFER,
        now=net.now,
        extra=[("Replaces", replaces)],
    )
    net.flush()
    return call_id


def final_status(bob: Peer, call_id: str) -> tuple[int, str]:
    finals = [r for r in responses(bob, "INVITE") if r.call_id == call_id and r.status >= 200]
    assert finals, "the INVITE got no final response"
    return finals[0].status, finals[0].reason


def test_replaces_matching_nothing_is_481(trio: tuple[Network, Peer, Peer, Peer]) -> None:
    net, _alice, bob, carol = trio
    call_id = invite_replacing(net, bob, carol, "nope@x;to-tag=a;from-tag=b")
    assert final_status(bob, call_id)[0] == 481
    assert carol.of(ev.IncomingCall) == []


def test_replaces_with_tags_the_wrong_way_round_is_481(
    trio: tuple[Network, Peer, Peer, Peer],
) -> None:
    """to-tag is the target's own tag; swapped tags name no dialog of the target."""
    net, alice, bob, carol = trio
    to_carol, _ = connect(net, alice, carol)
    dialog = carol.ua._calls.require(to_carol).dialog
    assert dialog is not None
    swapped = Replaces(call_id=to_carol, to_tag=dialog.remote_tag, from_tag=dialog.local_tag)
    call_id = invite_replacing(net, bob, carol, str(swapped))
    assert final_status(bob, call_id)[0] == 481
    assert carol.ua.call_state(to_carol) is CallState.CONFIRMED


@pytest.mark.parametrize("value", ["abc;to-tag=a", "abc;to-tag=a;from-tag=b;early-only=1", ""])
def test_malformed_replaces_is_400(trio: tuple[Network, Peer, Peer, Peer], value: str) -> None:
    net, _alice, bob, carol = trio
    call_id = invite_replacing(net, bob, carol, value)
    status, reason = final_status(bob, call_id)
    assert status == 400 and "Replaces" in reason
    assert carol.of(ev.IncomingCall) == []


def test_early_only_against_a_confirmed_call_is_486(
    trio: tuple[Network, Peer, Peer, Peer],
) -> None:
    net, alice, bob, carol = trio
    to_carol, _ = connect(net, alice, carol)
    dialog = carol.ua._calls.require(to_carol).dialog
    assert dialog is not None
    early_only = Replaces(
        call_id=to_carol, to_tag=dialog.local_tag, from_tag=dialog.remote_tag, early_only=True
    )
    call_id = invite_replacing(net, bob, carol, str(early_only))
    assert final_status(bob, call_id)[0] == 486
    assert carol.ua.call_state(to_carol) is CallState.CONFIRMED


def test_replacing_a_call_still_ringing_here_ends_it_with_487(
    trio: tuple[Network, Peer, Peer, Peer],
) -> None:
    """An early dialog we did not initiate (call pickup's case) may be replaced; the ringing
    call is then refused with 487 once the new one is up."""
    net, alice, bob, carol = trio
    ringing = alice.ua.invite(None, SipUri(user="carol", host="127.0.0.3"), sdp=OFFER, now=0.0)
    net.flush()
    carol.ua.ring(ringing, net.now)
    net.flush()
    local_tag = carol.ua._calls.require(ringing).local_tag
    alice_tag = alice.ua._calls.require(ringing).local_tag
    call_id = invite_replacing(
        net, bob, carol, f"{ringing};to-tag={local_tag};from-tag={alice_tag}"
    )
    (incoming,) = [e for e in carol.of(ev.IncomingCall) if e.call_id == call_id]
    assert incoming.replaces == ringing
    carol.ua.answer(call_id, sdp=ANSWER, now=net.now)
    net.flush()
    assert [e.status for e in alice.of(ev.CallFailed) if e.call_id == ringing] == [487]


def test_our_own_early_dialog_is_not_replaced(trio: tuple[Network, Peer, Peer, Peer]) -> None:
    net, alice, bob, carol = trio
    calling = carol.ua.invite(None, SipUri(user="alice", host="127.0.0.1"), sdp=OFFER, now=0.0)
    net.flush()
    alice.ua.ring(calling, net.now)
    net.flush()
    call = carol.ua._calls.require(calling)
    assert call.dialog is not None
    replaces = f"{calling};to-tag={call.local_tag};from-tag={call.dialog.remote_tag}"
    call_id = invite_replacing(net, bob, carol, replaces)
    assert final_status(bob, call_id)[0] == 481
    assert carol.ua.call_state(calling) is CallState.PROCEEDING


def test_require_replaces_is_understood_and_supported_is_advertised(
    trio: tuple[Network, Peer, Peer, Peer],
) -> None:
    net, _alice, bob, carol = trio
    call_id = bob.ua.invite(
        None,
        SipUri(user="carol", host="127.0.0.3"),
        sdp=OFFER,
        now=net.now,
        extra=[("Require", "replaces")],
    )
    net.flush()
    assert [e.call_id for e in carol.of(ev.IncomingCall)] == [call_id]
    assert [r.status for r in responses(bob, "INVITE") if r.status == 420] == []


# --- the transferee's checks ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("refer_to", "status"),
    [
        ("<sip:carol@127.0.0.3?Replaces=abc%3Bto-tag%3Dt>", 400),  # Replaces without from-tag
        ("<sip:carol@127.0.0.3", 400),  # not even a name-addr
        ("<sip:carol@127.0.0.3?Subject=hello>", 501),
    ],
)
def test_bad_refer_to_is_refused_with_a_reason(
    trio: tuple[Network, Peer, Peer, Peer], refer_to: str, status: int
) -> None:
    net, alice, bob, _carol = trio
    to_bob, _ = connect(net, alice, bob)
    call = alice.ua._calls.require(to_bob)
    assert call.dialog is not None
    request = call.dialog.build_request("REFER")
    request.headers.add("Contact", "<sip:alice@127.0.0.1:5060>")
    request.headers.add("Refer-To", refer_to)
    alice.ua._core.start_client(request, bob.address, call.account, _ignore, net.now)
    net.flush()
    (answer,) = responses(alice, "REFER")
    assert answer.status == status and answer.reason
    assert bob.of(ev.TransferRequested) == []
    assert bob.ua.call_state(to_bob) is CallState.CONFIRMED


def _ignore(*args: object) -> list[ev.Event]:
    return []


def test_replaces_outside_an_invite_is_400(trio: tuple[Network, Peer, Peer, Peer]) -> None:
    net, alice, bob, _carol = trio
    to_bob, _ = connect(net, alice, bob)
    call = alice.ua._calls.require(to_bob)
    assert call.dialog is not None
    request = call.dialog.build_request("INFO")
    request.headers.add("Replaces", f"{to_bob};to-tag=a;from-tag=b")
    alice.ua._core.start_client(request, bob.address, call.account, _ignore, net.now)
    net.flush()
    (answer,) = responses(alice, "INFO")
    assert (answer.status, answer.reason) == (400, "Replaces is only for INVITE")
    assert bob.ua.call_state(to_bob) is CallState.CONFIRMED
