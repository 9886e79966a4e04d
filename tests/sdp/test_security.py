"""Media security in offer/answer: SDES a=crypto (RFC 4568) for every suite, DTLS-SRTP's
a=fingerprint/a=setup (RFC 5763), the account policies, and the refusals SIP turns into 488."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from softphone.sdp import (
    CodecSpec,
    LocalMedia,
    SdpParseError,
    SessionDescription,
    apply_answer,
    create_answer,
    create_offer,
)
from softphone.sdp.crypto import SUITES, CryptoAttribute, Fingerprint, Setup, usable_crypto
from softphone.sdp.security import (
    WARN_ATTRIBUTE,
    WARN_TRANSPORT,
    LocalSecurity,
    MediaEncryption,
    SecurityRefused,
)

PCMU = CodecSpec("PCMU", 8000, payload_type=0)
ALL_SUITES = list(SUITES)


def keys(seed: int, suites: list[str] = ALL_SUITES) -> tuple[CryptoAttribute, ...]:
    """Distinct, recognisable keys per side and suite (tags from 1, in preference order)."""
    return tuple(
        CryptoAttribute(tag, name, bytes((seed + tag + i) % 256 for i in range(s.key_salt_length)))
        for tag, name in enumerate(suites, start=1)
        for s in [SUITES[name]]
    )


FP_A = Fingerprint("sha-256", bytes(range(32)))
FP_B = Fingerprint("sha-256", bytes(range(32, 64)))


def side(
    policy: MediaEncryption, seed: int, fp: Fingerprint = FP_A, suites: list[str] = ALL_SUITES
) -> LocalMedia:
    return LocalMedia(
        address="192.0.2.1",
        port=40000 + seed,
        codecs=(PCMU,),
        security=LocalSecurity(policy, keys(seed, suites), fp),
    )


def sdp(m_line: str, *attributes: str) -> SessionDescription:
    body = "".join(f"a={a}\r\n" for a in attributes)
    return SessionDescription.parse(
        f"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n{m_line}\r\n{body}"
    )


KEY30 = base64.b64encode(bytes(range(30))).decode()
KEY28 = base64.b64encode(bytes(range(28))).decode()


# -- a=crypto parsing ---------------------------------------------------------------------------


def test_crypto_line_round_trips_with_lifetime_mki_and_params() -> None:
    text = f"7 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}|2^20|1:4 KDR=0 WSH=128"
    attribute = CryptoAttribute.parse(text)
    assert (attribute.tag, attribute.suite, attribute.key) == (
        7,
        "AES_CM_128_HMAC_SHA1_32",
        bytes(range(30)),
    )
    assert (attribute.lifetime, attribute.mki, attribute.mki_length) == (2**20, 1, 4)
    assert attribute.session_params == ("KDR=0", "WSH=128")
    assert str(attribute) == text
    assert usable_crypto(attribute) is None


def test_gcm_key_is_28_bytes() -> None:
    attribute = CryptoAttribute.parse(f"1 AEAD_AES_128_GCM inline:{KEY28}")
    assert len(attribute.key) == 28
    with pytest.raises(SdpParseError, match="needs 28 bytes of key and salt, got 30"):
        CryptoAttribute.parse(f"1 AEAD_AES_128_GCM inline:{KEY30}")


def test_key_never_in_repr() -> None:
    attribute = CryptoAttribute.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")
    assert KEY30 not in repr(attribute) and repr(bytes(range(30))) not in repr(attribute)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag, a suite and a key"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:" + KEY30, "tag is not 1-9 digits"),
        ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30, "tag is not 1-9 digits"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:http://k", "key method must be inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64", "not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30[:-4], "needs 30 bytes of key and salt"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30 + "|1:0", "MKI length 0"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30 + "|soon", "not understood: 'soon'"),
    ],
)
def test_malformed_crypto_lines_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(SdpParseError, match=error):
        CryptoAttribute.parse(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1 F8_128_HMAC_SHA1_80 inline:" + KEY30, "suite F8_128_HMAC_SHA1_80 is not supported"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30 + " UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30 + " KDR=24", "key derivation rate"),
    ],
)
def test_crypto_lines_we_cannot_honour(text: str, why: str) -> None:
    reason = usable_crypto(CryptoAttribute.parse(text))
    assert reason is not None and why in reason


def test_fingerprint_and_setup_parse() -> None:
    fp = Fingerprint.parse("SHA-256 " + bytes(range(32)).hex(":").upper())
    assert fp == FP_A and str(fp) == "sha-256 " + bytes(range(32)).hex(":").upper()
    assert Setup.parse("ActPass") is Setup.ACTPASS
    for bad in ("md5 AB:CD", "sha-256 ABCD", "sha-256 AB:C"):
        with pytest.raises(SdpParseError):
            Fingerprint.parse(bad)
    with pytest.raises(SdpParseError, match="a=setup value not understood"):
        Setup.parse("sometimes")


# -- offers by policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "proto", "attribute"),
    [
        (MediaEncryption.NONE, "RTP/AVP", None),
        (MediaEncryption.SRTP_OPTIONAL, "RTP/AVP", "crypto"),
        (MediaEncryption.SRTP, "RTP/SAVP", "crypto"),
        (MediaEncryption.DTLS_SRTP, "UDP/TLS/RTP/SAVP", "fingerprint"),
    ],
)
def test_offer_profile_follows_the_policy(
    policy: MediaEncryption, proto: str, attribute: str | None
) -> None:
    offer = create_offer(side(policy, 1), session_id=1, session_version=1)
    m = offer.media[0]
    assert m.proto == proto
    names = {n for n, _ in m.attributes}
    assert ("crypto" in names) == (attribute == "crypto")
    assert ("fingerprint" in names) == (attribute == "fingerprint")
    if attribute == "crypto":  # every suite, most preferred first, tags 1..n
        lines = [CryptoAttribute.parse(v or "") for v in m.attribute_all("crypto")]
        assert [(c.tag, c.suite) for c in lines] == list(enumerate(ALL_SUITES, start=1))
    if attribute == "fingerprint":
        assert m.attribute("setup") == "actpass"


# -- SDES offer/answer, every suite --------------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES)
@pytest.mark.parametrize("policy", [MediaEncryption.SRTP, MediaEncryption.SRTP_OPTIONAL])
def test_sdes_round_trip_keys_cross_over(suite: str, policy: MediaEncryption) -> None:
    alice, bob = side(policy, 1, suites=[suite]), side(MediaEncryption.SRTP, 100)
    offer = create_offer(alice, session_id=1, session_version=1)
    answer, bob_media = create_answer(offer, bob, session_id=2, session_version=1)
    alice_media = apply_answer(offer, answer, alice.security)
    a, b = alice_media.security, bob_media.security
    assert a is not None and b is not None
    assert a.method == b.method == "sdes" and a.suite == b.suite == suite
    assert a.local_key == b.remote_key == keys(1, [suite])[0].key
    assert b.local_key == a.remote_key == next(c.key for c in keys(100) if c.suite == suite)
    assert answer.media[0].proto == offer.media[0].proto  # RFC 4568 §7.1.2: same profile
    assert str(b.local_key) not in repr(b)


def test_answerer_takes_the_offers_first_usable_line_keeping_its_tag() -> None:
    offer = sdp(
        "m=audio 5000 RTP/SAVP 0",
        f"crypto:3 F8_128_HMAC_SHA1_80 inline:{KEY30}",
        f"crypto:5 AEAD_AES_128_GCM inline:{KEY28}",
        f"crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}",
    )
    answer, media = create_answer(
        offer, side(MediaEncryption.SRTP, 1), session_id=1, session_version=1
    )
    lines = answer.media[0].attribute_all("crypto")
    assert len(lines) == 1
    chosen = CryptoAttribute.parse(lines[0] or "")
    assert (chosen.tag, chosen.suite) == (5, "AEAD_AES_128_GCM")
    assert media.security is not None and media.security.remote_key == bytes(range(28))


def test_mki_of_the_offer_is_remembered_for_stripping() -> None:
    offer = sdp("m=audio 5000 RTP/SAVP 0", f"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2:4")
    _, media = create_answer(offer, side(MediaEncryption.SRTP, 1), session_id=1, session_version=1)
    assert media.security is not None and media.security.remote_mki_length == 4


# -- refusals (488) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m_line", "attributes", "policy", "message", "code"),
    [
        (
            "m=audio 5000 RTP/SAVP 0",
            [f"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"],
            MediaEncryption.NONE,
            "media encryption is off",
            WARN_TRANSPORT,
        ),
        (
            "m=audio 5000 UDP/TLS/RTP/SAVP 0",
            [f"fingerprint:{FP_B}", "setup:actpass"],
            MediaEncryption.NONE,
            "media encryption is off",
            WARN_TRANSPORT,
        ),
        ("m=audio 5000 RTP/AVP 0", [], MediaEncryption.SRTP, "plain RTP", WARN_TRANSPORT),
        ("m=audio 5000 RTP/AVP 0", [], MediaEncryption.DTLS_SRTP, "plain RTP", WARN_TRANSPORT),
        (
            "m=audio 5000 RTP/SAVP 0",
            [f"crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY30}"],
            MediaEncryption.SRTP,
            "no common SRTP crypto suite (offered: F8_128_HMAC_SHA1_80)",
            WARN_ATTRIBUTE,
        ),
        (
            "m=audio 5000 RTP/SAVP 0",
            ["crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="],
            MediaEncryption.SRTP_OPTIONAL,
            "needs 30 bytes of key and salt",
            WARN_ATTRIBUTE,
        ),
        (
            "m=audio 5000 RTP/SAVP 0",
            [],
            MediaEncryption.SRTP_OPTIONAL,
            "no common SRTP crypto suite",
            WARN_ATTRIBUTE,
        ),
        (
            "m=audio 5000 RTP/AVP 0",
            [f"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTP"],
            MediaEncryption.SRTP,
            "UNENCRYPTED_SRTP is not supported",
            WARN_ATTRIBUTE,
        ),
        (
            "m=audio 5000 UDP/TLS/RTP/SAVP 0",
            ["setup:actpass"],
            MediaEncryption.DTLS_SRTP,
            "no a=fingerprint",
            WARN_ATTRIBUTE,
        ),
        (
            "m=audio 5000 UDP/TLS/RTP/SAVP 0",
            [f"fingerprint:{FP_B}", "setup:holdconn"],
            MediaEncryption.DTLS_SRTP,
            "holdconn",
            WARN_ATTRIBUTE,
        ),
    ],
)
def test_refused_offers_say_why(
    m_line: str, attributes: list[str], policy: MediaEncryption, message: str, code: int
) -> None:
    with pytest.raises(SecurityRefused) as caught:
        create_answer(sdp(m_line, *attributes), side(policy, 1), session_id=1, session_version=1)
    assert message in str(caught.value)
    assert caught.value.warning_code == code


def test_plain_offer_with_crypto_is_answered_plain_when_encryption_is_off() -> None:
    offer = sdp("m=audio 5000 RTP/AVP 0", f"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")
    answer, media = create_answer(
        offer, side(MediaEncryption.NONE, 1), session_id=1, session_version=1
    )
    assert media.security is None and not answer.media[0].has_attribute("crypto")


def test_optional_falls_back_to_plain_rtp() -> None:
    offer = sdp("m=audio 5000 RTP/AVP 0", "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:bad")
    answer, media = create_answer(
        offer, side(MediaEncryption.SRTP_OPTIONAL, 1), session_id=1, session_version=1
    )
    assert media.security is None and answer.media[0].proto == "RTP/AVP"


def test_a_plain_second_stream_is_taken_when_the_first_is_refused() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        "m=audio 5000 RTP/SAVP 0\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}\r\n"
        "m=audio 5002 RTP/AVP 0\r\n"
    )
    answer, media = create_answer(
        offer, side(MediaEncryption.NONE, 1), session_id=1, session_version=1
    )
    assert [m.port for m in answer.media] == [0, 40001]
    assert media.remote_port == 5002 and media.security is None


def test_mandatory_offerer_refuses_a_plain_answer() -> None:
    alice = side(MediaEncryption.SRTP, 1)
    offer = create_offer(alice, session_id=1, session_version=1)
    with pytest.raises(SecurityRefused, match="no usable key"):
        apply_answer(offer, sdp("m=audio 6000 RTP/SAVP 0"), alice.security)


def test_optional_offerer_takes_a_plain_answer() -> None:
    alice = side(MediaEncryption.SRTP_OPTIONAL, 1)
    offer = create_offer(alice, session_id=1, session_version=1)
    assert apply_answer(offer, sdp("m=audio 6000 RTP/AVP 0"), alice.security).security is None


def test_answer_with_a_tag_we_never_offered_is_refused() -> None:
    alice = side(MediaEncryption.SRTP, 1, suites=["AES_CM_128_HMAC_SHA1_80"])
    offer = create_offer(alice, session_id=1, session_version=1)
    answer = sdp("m=audio 6000 RTP/SAVP 0", f"crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")
    with pytest.raises(SecurityRefused, match="matches no line we offered"):
        apply_answer(offer, answer, alice.security)


# -- DTLS-SRTP roles (RFC 5763 §5) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("offered_setup", "answered_setup", "answerer_role", "offerer_role"),
    [
        ("actpass", "active", "client", "server"),
        ("active", "passive", "server", "client"),
        ("passive", "active", "client", "server"),
    ],
)
def test_dtls_setup_roles(
    offered_setup: str, answered_setup: str, answerer_role: str, offerer_role: str
) -> None:
    alice = side(MediaEncryption.DTLS_SRTP, 1, fp=FP_A)
    bob = side(MediaEncryption.SRTP_OPTIONAL, 2, fp=FP_B)
    offer = create_offer(alice, session_id=1, session_version=1)
    offer.media[0].attributes = [
        (n, offered_setup if n == "setup" else v) for n, v in offer.media[0].attributes
    ]
    answer, bob_media = create_answer(offer, bob, session_id=2, session_version=1)
    assert answer.media[0].proto == "UDP/TLS/RTP/SAVP"
    assert answer.media[0].attribute("setup") == answered_setup
    assert answer.media[0].attribute("fingerprint") == str(FP_B)
    assert bob_media.security is not None
    assert bob_media.security.dtls_role == answerer_role
    assert bob_media.security.remote_fingerprint == FP_A
    alice_media = apply_answer(offer, answer, alice.security)
    assert alice_media.security is not None
    assert alice_media.security.dtls_role == offerer_role
    assert alice_media.security.remote_fingerprint == FP_B


def test_session_level_fingerprint_is_read() -> None:
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        f"a=fingerprint:{FP_B}\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 0\r\na=setup:actpass\r\n"
    )
    answer, media = create_answer(
        offer, side(MediaEncryption.DTLS_SRTP, 1), session_id=1, session_version=1
    )
    assert answer.media[0].proto == "UDP/TLS/RTP/SAVPF"
    assert media.security is not None and media.security.remote_fingerprint == FP_B


def test_dtls_answer_without_dtls_profile_is_refused() -> None:
    alice = side(MediaEncryption.DTLS_SRTP, 1)
    offer = create_offer(alice, session_id=1, session_version=1)
    with pytest.raises(SecurityRefused, match="not DTLS-SRTP"):
        apply_answer(offer, sdp("m=audio 6000 RTP/AVP 0"), alice.security)
    with pytest.raises(SecurityRefused, match="not active or passive"):
        apply_answer(
            offer,
            sdp("m=audio 6000 UDP/TLS/RTP/SAVP 0", f"fingerprint:{FP_B}", "setup:actpass"),
            alice.security,
        )


def test_plain_sides_are_untouched() -> None:
    plain = replace(side(MediaEncryption.NONE, 1), security=None)
    offer = create_offer(plain, session_id=1, session_version=1)
    answer, media = create_answer(offer, plain, session_id=2, session_version=1)
    assert offer.media[0].proto == answer.media[0].proto == "RTP/AVP"
    assert media.security is None and apply_answer(offer, answer).security is None
