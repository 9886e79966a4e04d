"""The one policy SIP and RTSP share for choosing among the challenges of a 401/407."""

from __future__ import annotations

import random

import pytest

from softphone.auth.challenge import REFUSED, choose_challenge, strongest_first
from softphone.auth.digest import (
    Algorithm,
    Challenge,
    Credentials,
    DigestClient,
    make_challenge,
)


def client(*creds: Credentials) -> DigestClient:
    return DigestClient(list(creds) or [Credentials("alice", "pw")], random.Random(1))


def digest(
    nonce: str,
    algorithm: Algorithm = Algorithm.MD5,
    *,
    realm: str = "r",
    qop: tuple[str, ...] = ("auth",),
    stale: bool = False,
) -> str:
    return make_challenge(realm=realm, nonce=nonce, algorithm=algorithm, qop=qop, stale=stale)


@pytest.mark.parametrize(
    "order",
    [
        [Algorithm.MD5, Algorithm.SHA256, Algorithm.SHA512_256],
        [Algorithm.SHA512_256, Algorithm.MD5, Algorithm.SHA256],
        [Algorithm.SHA256, Algorithm.SHA512_256, Algorithm.MD5],
    ],
)
def test_the_strongest_algorithm_wins_whatever_the_order(order: list[Algorithm]) -> None:
    values = [digest(f"n-{a.value}", a) for a in order]
    choice = choose_challenge(client(), values)
    assert choice.challenge is not None
    assert choice.challenge.algorithm is Algorithm.SHA512_256
    assert choice.offered == 3


def test_ties_keep_the_servers_order() -> None:
    ranked = strongest_first(
        Challenge.parse(digest(n, a)) for n, a in [("a", Algorithm.MD5), ("b", Algorithm.MD5_SESS)]
    )
    assert [c.nonce for c in ranked] == ["a", "b"]


def test_a_strong_challenge_we_cannot_answer_gives_way_to_a_weaker_one() -> None:
    values = [digest("strong", Algorithm.SHA256, qop=("auth-conf",)), digest("weak")]
    choice = choose_challenge(client(), values)
    assert choice.challenge is not None and choice.challenge.nonce == "weak"


def test_only_auth_conf_offered_says_so() -> None:
    choice = choose_challenge(client(), [digest("n", qop=("auth-conf",))])
    assert choice.challenge is None
    assert choice.reason == "unsupported digest challenge (qop auth-conf)"


def test_credentials_already_refused_are_not_sent_again_unless_the_nonce_was_stale() -> None:
    c = client()
    first = Challenge.parse(digest("n1"))
    sent = c.authorize(first, method="REGISTER", uri="sip:lab.test")
    again = choose_challenge(c, [digest("n2")], previous=[sent])
    assert again.challenge is None and again.reason == REFUSED
    stale = choose_challenge(c, [digest("n2", stale=True)], previous=[sent])
    assert stale.challenge is not None and stale.challenge.nonce == "n2"


def test_a_nonce_answered_once_is_a_refusal_the_second_time() -> None:
    choice = choose_challenge(client(), [digest("n1")], answered_nonces={"n1"})
    assert choice.challenge is None and choice.reason == REFUSED
    fresh = choose_challenge(client(), [digest("n1"), digest("n2")], answered_nonces={"n1"})
    assert fresh.challenge is not None and fresh.challenge.nonce == "n2"


def test_a_realm_without_credentials_is_named() -> None:
    c = client(Credentials("alice", "pw", realm="home"))
    choice = choose_challenge(c, [digest("n", realm="office")])
    assert choice.challenge is None and choice.reason == "no credentials for realm 'office'"
    other = choose_challenge(c, [digest("n", realm="office"), digest("m", realm="home")])
    assert other.challenge is not None and other.challenge.realm == "home"


def test_nothing_digest_offered_lists_the_schemes() -> None:
    choice = choose_challenge(client(), ["Negotiate abc", 'Basic realm="x"'])
    assert choice.challenge is None and choice.offered == 0
    assert choice.reason == "no supported authentication scheme offered (Negotiate, Basic)"
