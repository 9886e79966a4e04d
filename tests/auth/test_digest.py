"""Tests for softphone.auth.digest (used by SIP and RTSP): Digest challenges, answers and verification."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.auth.digest import (
    Algorithm,
    Challenge,
    Credentials,
    DigestClient,
    NoCredentials,
    make_challenge,
    parse_challenges,
    verify_authorization,
)
from softphone.auth.errors import AuthError, ParseError

# RFC 7616 §3.9.1
RFC7616_CHALLENGE = """Digest
    realm="http-auth@example.org",
    qop="auth, auth-int",
    algorithm={alg},
    nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
MUFASA = Credentials("Mufasa", "Circle of Life")


def params_of(value: str) -> dict[str, str]:
    """A tiny independent reader for the values we emit (no escapes in these tests)."""
    assert value.startswith("Digest ")
    out: dict[str, str] = {}
    for part in value[len("Digest ") :].split(", "):
        name, _, raw = part.partition("=")
        out[name] = raw
    return out


def h(name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.new(name, data).hexdigest()


def client(*creds: Credentials, seed: int = 7) -> DigestClient:
    return DigestClient(creds or (MUFASA,), rng=random.Random(seed))


# --- Published examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_worked_example(alg: str, expected: str) -> None:
    challenge = Challenge.parse(RFC7616_CHALLENGE.format(alg=alg))
    value = client().authorize(
        challenge, method="GET", uri="/dir/index.html", cnonce=RFC7616_CNONCE
    )
    params = params_of(value)
    assert params["response"] == f'"{expected}"'
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"
    assert params["algorithm"] == alg
    assert params["cnonce"] == f'"{RFC7616_CNONCE}"'
    assert params["opaque"] == '"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'


def test_rfc7616_sha256_header_exact() -> None:
    challenge = Challenge.parse(RFC7616_CHALLENGE.format(alg="SHA-256"))
    value = client().authorize(
        challenge, method="GET", uri="/dir/index.html", cnonce=RFC7616_CNONCE
    )
    assert value == (
        'Digest username="Mufasa", realm="http-auth@example.org", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", uri="/dir/index.html", '
        'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
        'algorithm=SHA-256, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
        'nc=00000001, opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )


def test_rfc7616_authorization_verifies() -> None:
    # The Authorization header as RFC 7616 §3.9.1 prints it (other order, line breaks).
    value = """Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
    assert verify_authorization(value, password="Circle of Life", method="GET")
    assert not verify_authorization(value, password="Circle of life", method="GET")
    assert not verify_authorization(value, password="Circle of Life", method="POST")


def test_rfc2617_example() -> None:
    # RFC 2617 §3.5
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.algorithm is Algorithm.MD5  # absent means MD5
    value = client(Credentials("Mufasa", "Circle Of Life")).authorize(
        challenge, method="GET", uri="/dir/index.html", cnonce="0a4f113b"
    )
    assert params_of(value)["response"] == '"6629fae49393a05397450978507c4ef1"'


def test_rfc2069_no_qop() -> None:
    # RFC 2069 / RFC 3261 §22.4 compat: no qop -> response = H(HA1:nonce:HA2), no cnonce/nc.
    challenge = Challenge.parse('Digest realm="testrealm@host.com", nonce="abc"')
    assert challenge.qop == ()
    value = client().authorize(challenge, method="INVITE", uri="sip:bob@example.org")
    params = params_of(value)
    ha1 = h("md5", "Mufasa:testrealm@host.com:Circle of Life")
    ha2 = h("md5", "INVITE:sip:bob@example.org")
    assert params["response"] == f'"{h("md5", f"{ha1}:abc:{ha2}")}"'
    assert "cnonce" not in params and "nc" not in params and "qop" not in params
    assert verify_authorization(value, password="Circle of Life", method="INVITE")


# --- Algorithms and qop -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "hash_name"),
    [
        (Algorithm.MD5_SESS, "md5"),
        (Algorithm.SHA256_SESS, "sha256"),
        (Algorithm.SHA512_256, "sha512_256"),
        (Algorithm.SHA512_256_SESS, "sha512_256"),
    ],
)
def test_algorithm_responses(alg: Algorithm, hash_name: str) -> None:
    challenge = Challenge.parse(
        f'Digest realm="example.org", nonce="n0nce", algorithm={alg.value}, qop="auth"'
    )
    assert challenge.algorithm is alg
    value = client().authorize(challenge, method="REGISTER", uri="sip:example.org", cnonce="c1")
    ha1 = h(hash_name, "Mufasa:example.org:Circle of Life")
    if alg.value.endswith("-sess"):  # RFC 7616 §3.4.2
        ha1 = h(hash_name, f"{ha1}:n0nce:c1")
    ha2 = h(hash_name, "REGISTER:sip:example.org")
    expected = h(hash_name, f"{ha1}:n0nce:00000001:c1:auth:{ha2}")
    assert params_of(value)["response"] == f'"{expected}"'
    assert params_of(value)["algorithm"] == alg.value
    assert verify_authorization(value, password="Circle of Life", method="REGISTER")


def test_sha512_256_is_not_truncated_sha512() -> None:
    assert Algorithm.SHA512_256.hash("abc") == (
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"  # FIPS 180-4 vector
    )


def test_auth_int_hashes_the_body() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-int"')
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
    value = client().authorize(challenge, method="INVITE", uri="sip:b@r", body=body, cnonce="c")
    ha1 = h("md5", "Mufasa:r:Circle of Life")
    ha2 = h("md5", f"INVITE:sip:b@r:{h('md5', body)}")
    assert params_of(value)["qop"] == "auth-int"
    assert params_of(value)["response"] == f'"{h("md5", f"{ha1}:n:00000001:c:auth-int:{ha2}")}"'
    assert verify_authorization(value, password="Circle of Life", method="INVITE", body=body)
    assert not verify_authorization(value, password="Circle of Life", method="INVITE", body=b"x")


def test_auth_preferred_over_auth_int() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-int,auth"')
    value = client().authorize(challenge, method="INVITE", uri="sip:b@r", body=b"sdp")
    assert params_of(value)["qop"] == "auth"


def test_unknown_qop_only_raises_auth_error() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-conf"')
    c = client()
    assert not c.can_answer(challenge)
    with pytest.raises(NoCredentials, match="no supported qop"):
        c.authorize(challenge, method="INVITE", uri="sip:b@r")
    assert c.cached("INVITE", "sip:b@r") == []


def test_userhash() -> None:
    challenge = Challenge.parse(
        'Digest realm="api@example.org", nonce="n", qop="auth", algorithm=SHA-256, userhash=true'
    )
    value = client().authorize(challenge, method="GET", uri="/doe.json")
    params = params_of(value)
    assert params["username"] == f'"{h("sha256", "Mufasa:api@example.org")}"'
    assert params["userhash"] == "true"
    assert verify_authorization(value, password="Circle of Life", method="GET", username="Mufasa")
    assert not verify_authorization(value, password="Circle of Life", method="GET")


# --- Nonce count and client state -------------------------------------------------------------


def test_nc_increments_on_same_nonce_and_resets_on_new_nonce() -> None:
    c = client()
    first = Challenge.parse('Digest realm="r", nonce="n1", qop="auth"')
    v1 = c.authorize(first, method="REGISTER", uri="sip:r")
    v2 = c.authorize(first, method="REGISTER", uri="sip:r")
    assert params_of(v1)["nc"] == "00000001"
    assert params_of(v2)["nc"] == "00000002"
    assert params_of(v1)["cnonce"] == params_of(v2)["cnonce"]
    assert len(params_of(v1)["cnonce"]) - 2 >= 16
    int(params_of(v1)["cnonce"].strip('"'), 16)  # hex
    second = Challenge.parse('Digest realm="r", nonce="n2", qop="auth"')
    v3 = c.authorize(second, method="REGISTER", uri="sip:r")
    assert params_of(v3)["nc"] == "00000001"
    assert params_of(v3)["cnonce"] != params_of(v1)["cnonce"]
    for value in (v1, v2, v3):
        assert verify_authorization(value, password="Circle of Life", method="REGISTER")


def test_cnonce_comes_from_the_injected_rng() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth"')
    a = client(seed=1).authorize(challenge, method="REGISTER", uri="sip:r")
    b = client(seed=1).authorize(challenge, method="REGISTER", uri="sip:r")
    c = client(seed=2).authorize(challenge, method="REGISTER", uri="sip:r")
    assert a == b
    assert params_of(a)["cnonce"] != params_of(c)["cnonce"]


def test_cached_preauthorizes_with_incremented_nc() -> None:
    c = client()
    assert c.cached("REGISTER", "sip:r") == []
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth"')
    c.authorize(challenge, method="REGISTER", uri="sip:r")
    [refresh] = c.cached("REGISTER", "sip:r")
    assert params_of(refresh)["nc"] == "00000002"
    assert verify_authorization(refresh, password="Circle of Life", method="REGISTER")
    [reinvite] = c.cached("INVITE", "sip:bob@r", b"sdp")
    assert params_of(reinvite)["nc"] == "00000003"
    assert verify_authorization(reinvite, password="Circle of Life", method="INVITE", body=b"sdp")
    assert c.cached("INVITE", "sip:bob@r", proxy=True) == []
    c.forget("r")
    assert c.cached("REGISTER", "sip:r") == []


def test_remember_then_cached_starts_at_nc_1_and_separates_proxy() -> None:
    c = client()
    c.remember(Challenge.parse('Digest realm="proxy", nonce="p", qop="auth"'), proxy=True)
    assert c.cached("INVITE", "sip:b@r") == []
    [value] = c.cached("INVITE", "sip:b@r", proxy=True)
    assert params_of(value)["nc"] == "00000001"
    assert params_of(value)["realm"] == '"proxy"'


def test_stale_retries_with_new_nonce_without_asking() -> None:
    c = client()
    first = Challenge.parse('Digest realm="r", nonce="old", qop="auth"')
    sent = c.authorize(first, method="REGISTER", uri="sip:r")
    # The server answers our credentials with a fresh nonce and stale=true.
    stale = Challenge.parse('Digest realm="r", nonce="new", qop="auth", stale=true')
    assert stale.stale
    assert c.can_answer(stale, previous=[sent])
    retry = c.authorize(stale, method="REGISTER", uri="sip:r")
    assert params_of(retry)["nonce"] == '"new"'
    assert params_of(retry)["nc"] == "00000001"
    # Without stale, the same situation means the password was wrong: do not loop.
    rejected = Challenge.parse('Digest realm="r", nonce="newer", qop="auth"')
    assert not c.can_answer(rejected, previous=[retry])
    assert c.can_answer(rejected)  # a fresh request (nothing sent yet) may answer it


def test_realm_matching() -> None:
    c = client(
        Credentials("alice", "pw-a", realm="a.example"),
        Credentials("anyone", "pw-any"),
    )
    only_b = client(Credentials("bob", "pw-b", realm="b.example"))
    a = Challenge.parse('Digest realm="a.example", nonce="n", qop="auth"')
    z = Challenge.parse('Digest realm="z.example", nonce="n", qop="auth"')
    assert params_of(c.authorize(a, method="INVITE", uri="sip:x"))["username"] == '"alice"'
    assert params_of(c.authorize(z, method="INVITE", uri="sip:x"))["username"] == '"anyone"'
    assert only_b.can_answer(Challenge.parse('Digest realm="b.example", nonce="n"'))
    assert not only_b.can_answer(a)
    with pytest.raises(NoCredentials, match=r"a\.example") as excinfo:
        only_b.authorize(a, method="INVITE", uri="sip:x")
    assert isinstance(excinfo.value, AuthError)


def test_realm_checked_by_verifier() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth"')
    value = client().authorize(challenge, method="OPTIONS", uri="sip:r")
    assert verify_authorization(
        value, password="Circle of Life", method="OPTIONS", expected_realm="r"
    )
    assert not verify_authorization(
        value, password="Circle of Life", method="OPTIONS", expected_realm="other"
    )


def test_quotes_and_backslashes_in_username_are_escaped() -> None:
    tricky = Credentials('a"b\\c', "pw")
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth"')
    value = DigestClient([tricky], rng=random.Random(0)).authorize(
        challenge, method="REGISTER", uri="sip:r", cnonce="c"
    )
    assert 'username="a\\"b\\\\c"' in value
    ha1 = h("md5", 'a"b\\c:r:pw')  # hashed unescaped
    ha2 = h("md5", "REGISTER:sip:r")
    assert f'response="{h("md5", f"{ha1}:n:00000001:c:auth:{ha2}")}"' in value
    assert verify_authorization(value, password="pw", method="REGISTER", username='a"b\\c')


# --- Parsing ----------------------------------------------------------------------------------


def test_tolerant_parsing() -> None:
    challenge = Challenge.parse(
        '  digest   nonce = abc/def+== ,opaque="x,y" ,, realm="sip, with \\"commas\\"",'
        'algorithm=sha-256 , QOP="auth-int , auth",stale=TRUE, domain="sip:a sip:b"  '
    )
    assert challenge.scheme == "Digest"
    assert challenge.nonce == "abc/def+=="
    assert challenge.opaque == "x,y"
    assert challenge.realm == 'sip, with "commas"'
    assert challenge.algorithm is Algorithm.SHA256
    assert challenge.qop == ("auth-int", "auth")
    assert challenge.stale is True
    assert challenge.domain == "sip:a sip:b"
    assert challenge.params["qop"] == "auth-int , auth"


def test_folded_header_value() -> None:
    challenge = Challenge.parse('Digest realm="r",\r\n nonce="n",\r\n\tqop=auth')
    assert (challenge.realm, challenge.nonce, challenge.qop) == ("r", "n", ("auth",))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Basic realm="r"', "not a Digest"),
        ("", "no scheme"),
        ('Digest realm="r"', "no nonce"),
        ('Digest nonce="n"', "no realm"),
        ('Digest realm="r, nonce=n', "unterminated"),
        ('Digest realm="r\\', "unterminated"),
        ('Digest realm="r" nonce="n"', "expected ','"),
        ('Digest realm="r", nonce', "no value"),
        ('Digest realm="r", nonce=', "empty value"),
        ('Digest realm="r", realm="s", nonce="n"', "duplicate"),
        ('Digest realm="r", nonce="n", algorithm=SHA-1', "unsupported digest algorithm"),
        ('Digest realm="r", ="n"', "auth-param name"),
        # A control character would be echoed into our Authorization and break the header.
        ('Digest realm="r", nonce="n\x00"', "control character"),
        ('Digest realm="r", nonce="\\\x01n"', "control character"),
        ('Digest realm="r", nonce=n\x7f', "control character"),
    ],
)
def test_malformed_challenges(value: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        Challenge.parse(value)


@given(st.text())
def test_parse_raises_only_parse_error(value: str) -> None:
    try:
        challenge = Challenge.parse(value)
    except ParseError:
        return
    assert challenge.scheme == "Digest"


@given(st.text(alphabet=st.sampled_from('Digest realm="nonce=,\\ qop auth'), max_size=60))
def test_parse_raises_only_parse_error_near_valid(value: str) -> None:
    try:
        Challenge.parse(value)
    except ParseError:
        pass


def test_parse_challenges_prefers_strongest_per_realm() -> None:
    challenges = parse_challenges(
        [
            'Digest realm="a", nonce="1", algorithm=MD5, qop="auth"',
            'Basic realm="a"',
            'Digest realm="a", nonce="2", algorithm=SHA-512-256, qop="auth"',
            'Digest realm="b", nonce="3", qop="auth"',
            'Digest realm="a", nonce="4", algorithm=SHA-256, qop="auth"',
            'Digest realm="b", nonce="5", algorithm=SHA-1',
            "garbage",
        ]
    )
    assert [(c.realm, c.nonce, c.algorithm) for c in challenges] == [
        ("a", "2", Algorithm.SHA512_256),
        ("b", "3", Algorithm.MD5),
    ]


def test_parse_challenges_keeps_topmost_on_tie() -> None:
    challenges = parse_challenges(
        [
            'Digest realm="a", nonce="1", algorithm=SHA-256-sess',
            'Digest realm="a", nonce="2", algorithm=SHA-256',
        ]
    )
    assert [c.nonce for c in challenges] == ["1"]


def test_make_challenge_round_trip() -> None:
    value = make_challenge(
        realm='lab "test"',
        nonce="n/1=",
        algorithm=Algorithm.SHA256,
        qop=("auth", "auth-int"),
        opaque="op",
        stale=True,
    )
    challenge = Challenge.parse(value)
    assert challenge == Challenge(
        scheme="Digest",
        realm='lab "test"',
        nonce="n/1=",
        opaque="op",
        algorithm=Algorithm.SHA256,
        qop=("auth", "auth-int"),
        stale=True,
        params=challenge.params,
    )
    assert hash(challenge) == hash(Challenge.parse(value))


# Quoted strings hold no control characters (RFC 7230 §3.2.6): a challenge with one is refused.
PRINTABLE = st.characters(blacklist_categories=("Cc",))


@given(
    username=st.text(PRINTABLE, min_size=1, max_size=20),
    password=st.text(max_size=20),
    realm=st.text(PRINTABLE, min_size=1, max_size=20),
    nonce=st.text(alphabet="abcdef0123456789+/=", min_size=1, max_size=30),
    algorithm=st.sampled_from(list(Algorithm)),
    qop=st.sampled_from([(), ("auth",), ("auth-int",), ("auth", "auth-int")]),
    body=st.binary(max_size=40),
)
def test_authorize_round_trips_through_verify(
    username: str,
    password: str,
    realm: str,
    nonce: str,
    algorithm: Algorithm,
    qop: tuple[str, ...],
    body: bytes,
) -> None:
    challenge = Challenge.parse(
        make_challenge(realm=realm, nonce=nonce, algorithm=algorithm, qop=qop, opaque="o")
    )
    assert (challenge.realm, challenge.nonce) == (realm, nonce)
    c = DigestClient([Credentials(username, password)], rng=random.Random(0))
    value = c.authorize(challenge, method="INVITE", uri="sip:bob@127.0.0.1", body=body)
    assert verify_authorization(
        value,
        password=password,
        method="INVITE",
        body=body,
        expected_realm=realm,
        username=username,
    )
    assert not verify_authorization(value, password=password + "x", method="INVITE", body=body)


def test_verify_rejects_malformed_credentials() -> None:
    with pytest.raises(ParseError, match="no response"):
        verify_authorization(
            'Digest username="u", realm="r", nonce="n", uri="sip:r"', password="p", method="INVITE"
        )
    with pytest.raises(ParseError, match="not a Digest"):
        verify_authorization("Basic dTpw", password="p", method="INVITE")
