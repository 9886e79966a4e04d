"""The subscription (RFC 6665) and publication (RFC 3903) tables, every (state, input) pair: each
one listed moves where the table says, each one not listed raises LocalProtocolError and leaves
the state alone; and the pairs the RFCs decide are what they say."""

from __future__ import annotations

import itertools

import pytest

from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError
from softphone.sip.publication import PUB_TRANSITIONS, PubInput, Publication, PubState
from softphone.sip.subscription_state import (
    PACKAGES,
    SUB_TRANSITIONS,
    SubInput,
    Subscription,
    SubscriptionState,
    SubState,
)
from softphone.sip.uri import SipUri

ACCOUNT = AccountConfig(name="alice", aor=SipUri(user="alice", host="lab.test"), username="alice")
HOP = Address("udp", "127.0.0.10", 5070)
S, SI = SubState, SubInput
P, PI = PubState, PubInput


def subscription(state: SubState) -> Subscription:
    return Subscription(
        id="s1",
        account=ACCOUNT,
        target=SipUri(user="bob", host="lab.test"),
        package=PACKAGES["presence"],
        expires=600,
        hop=HOP,
        state=state,
    )


@pytest.mark.parametrize(("state", "inp"), list(itertools.product(SubState, SubInput)))
def test_every_subscription_pair_moves_as_listed_or_raises(state: SubState, inp: SubInput) -> None:
    sub = subscription(state)
    expected = SUB_TRANSITIONS.get((state, inp))
    if expected is None:
        with pytest.raises(LocalProtocolError, match=f"{inp.name} in {state.name}"):
            sub.apply(inp)
        assert sub.state is state
    else:
        assert sub.apply(inp) is expected and sub.state is expected


def test_what_rfc_6665_decides() -> None:
    # §4.1.2.2: a 481 to a refresh means the subscription is gone; a new one starts.
    assert SUB_TRANSITIONS[S.ACTIVE, SI.GONE] is S.SUBSCRIBING
    # §4.1.3: deactivated/timeout: subscribe again at once; probation: later; rejected and
    # noresource: never.
    for live in (S.PENDING, S.ACTIVE):
        assert SUB_TRANSITIONS[live, SI.TERMINATED_RETRY_NOW] is S.SUBSCRIBING
        assert SUB_TRANSITIONS[live, SI.TERMINATED_RETRY_LATER] is S.WAITING
        assert SUB_TRANSITIONS[live, SI.TERMINATED_FINAL] is S.TERMINATED
        assert SUB_TRANSITIONS[live, SI.REFRESH_DUE] is live
    # §4.1.2.4: NOTIFY may come before the 2xx, and makes the subscription what it says.
    assert SUB_TRANSITIONS[S.SUBSCRIBING, SI.NOTIFY_ACTIVE] is S.ACTIVE
    assert SUB_TRANSITIONS[S.SUBSCRIBING, SI.NOTIFY_PENDING] is S.PENDING
    assert SUB_TRANSITIONS[S.SUBSCRIBING, SI.TIMER_N] is S.WAITING
    # Nothing leaves TERMINATED: a subscription that ended is a new one if wanted again.
    assert {nxt for (state, _), nxt in SUB_TRANSITIONS.items() if state is S.TERMINATED} == {
        S.TERMINATED
    }


@pytest.mark.parametrize(
    ("header", "inp"),
    [
        ("active;expires=600", SI.NOTIFY_ACTIVE),
        ("pending", SI.NOTIFY_PENDING),
        ("Active", SI.NOTIFY_ACTIVE),
        ("something-new", SI.NOTIFY_ACTIVE),  # §4.1.3: an unknown value is treated as active
        ("terminated;reason=deactivated", SI.TERMINATED_RETRY_NOW),
        ("terminated;reason=timeout", SI.TERMINATED_RETRY_NOW),
        ("terminated;reason=probation;retry-after=30", SI.TERMINATED_RETRY_LATER),
        ("terminated", SI.TERMINATED_RETRY_LATER),
        ("terminated;reason=later-perhaps", SI.TERMINATED_RETRY_LATER),
        ("terminated;reason=rejected", SI.TERMINATED_FINAL),
        ("terminated;reason=noresource", SI.TERMINATED_FINAL),
        ("terminated;reason=giveup", SI.TERMINATED_FINAL),
        ("terminated;reason=invariant", SI.TERMINATED_FINAL),
    ],
)
def test_subscription_state_headers_become_inputs(header: str, inp: SubInput) -> None:
    assert SubscriptionState.parse(header).input(quick_restarts=0) is inp


def test_subscription_state_parameters() -> None:
    state = SubscriptionState.parse('terminated ; reason="Probation" ; retry-after=90')
    assert (state.value, state.reason, state.retry_after, state.expires) == (
        "terminated",
        "probation",
        90,
        None,
    )
    assert SubscriptionState.parse("active;expires=x").expires is None
    restarts = SubscriptionState.parse("terminated;reason=deactivated")
    assert restarts.input(quick_restarts=3) is SI.TERMINATED_RETRY_LATER


def publication(state: PubState) -> Publication:
    return Publication(
        account=ACCOUNT,
        package="presence",
        content_type="application/pidf+xml",
        body=b"<presence/>",
        expires=3600,
        hop=HOP,
        call_id="c",
        from_tag="t",
        cseq=1,
        state=state,
    )


@pytest.mark.parametrize(("state", "inp"), list(itertools.product(PubState, PubInput)))
def test_every_publication_pair_moves_as_listed_or_raises(state: PubState, inp: PubInput) -> None:
    pub = publication(state)
    expected = PUB_TRANSITIONS.get((state, inp))
    if expected is None:
        with pytest.raises(LocalProtocolError, match=f"{inp.name} in {state.name}"):
            pub.apply(inp)
        assert pub.state is state
    else:
        assert pub.apply(inp) is expected and pub.state is expected


def test_what_rfc_3903_decides() -> None:
    # §4.1: a refresh and a modification are new PUBLISHes; §6 step 4: 412 means publish afresh.
    assert PUB_TRANSITIONS[P.PUBLISHED, PI.REFRESH_DUE] is P.PUBLISHING
    assert PUB_TRANSITIONS[P.PUBLISHED, PI.PUBLISH] is P.PUBLISHING
    assert PUB_TRANSITIONS[P.PUBLISHING, PI.CONDITION_FAILED] is P.PUBLISHING
    # §4.5: removal; whatever answers it, the publication is over.
    assert PUB_TRANSITIONS[P.PUBLISHED, PI.REMOVE] is P.REMOVING
    assert PUB_TRANSITIONS[P.REMOVING, PI.REMOVED] is P.IDLE
