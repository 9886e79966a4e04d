"""URIs: RFC 3261 §19.1 syntax, §19.1.4 comparison, RFC 4475 escaping cases, RFC 3966 tel."""

from __future__ import annotations

import pytest

from softphone.sip.errors import ParseError
from softphone.sip.uri import AbsoluteUri, SipUri, TelUri, parse_uri


def test_full_sip_uri_parses_into_every_component() -> None:
    uri = SipUri.parse(
        "sips:alice:secret@Atlanta.Example.com:5061;transport=TCP;lr?subject=hi%20there&priority=urgent"
    )
    assert uri == SipUri(
        scheme="sips",
        user="alice",
        password="secret",
        host="Atlanta.Example.com",
        port=5061,
        params=(("transport", "TCP"), ("lr", None)),
        headers=(("subject", "hi there"), ("priority", "urgent")),
    )
    assert uri.transport == "tcp"
    assert uri.param("LR") == "" and uri.has_param("lr") and not uri.has_param("maddr")
    assert uri.host_port == "Atlanta.Example.com:5061"
    assert uri.aor == SipUri(scheme="sips", user="alice", host="Atlanta.Example.com")


def test_scheme_is_case_insensitive_and_normalised() -> None:
    assert SipUri.parse("SIP:bob@example.com").scheme == "sip"
    assert SipUri.parse("SiPs:bob@example.com").scheme == "sips"


def test_ipv6_host_is_stored_without_brackets() -> None:
    uri = SipUri.parse("sip:alice@[2001:db8::9:1]:5060;transport=udp")
    assert (uri.host, uri.port) == ("2001:db8::9:1", 5060)
    assert uri.host_port == "[2001:db8::9:1]:5060"
    assert str(uri) == "sip:alice@[2001:db8::9:1]:5060;transport=udp"
    assert SipUri(host="::1").host_port == "[::1]"


def test_rfc4475_intmeth_user_and_password_keep_their_odd_characters() -> None:
    # RFC 4475 §3.1.1.2: user holds ";", "?", "/" unescaped; the password "&", "=", ","
    text = (
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com"
    )
    uri = SipUri.parse(text)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.params == ()
    assert str(uri) == text


def test_rfc4475_semiuri_semicolon_in_user_is_not_a_parameter() -> None:
    # RFC 4475 §3.1.1.9
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.params == ()
    assert str(uri) == "sip:user;par=u%40example.net@example.com"


def test_rfc4475_esc01_escapes_are_undone_in_user_and_params() -> None:
    # RFC 4475 §3.1.1.3
    uri = SipUri.parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "caller"
    assert uri.params == (("lr", None), ("name", "value%41"))
    assert str(uri) == "sip:caller@host5.example.net;lr;name=value%2541"
    assert SipUri.parse("sip:sips%3Auser%40example.com@example.net").user == "sips:user@example.com"


def test_rfc4475_escnull_nul_octet_survives_a_round_trip() -> None:
    # RFC 4475 §3.1.1.4
    uri = SipUri.parse("sip:null-%00-null@example.com")
    assert uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.com"


def test_non_utf8_escape_round_trips_octet_for_octet() -> None:
    uri = SipUri.parse("sip:%FF%fe@example.com")
    assert str(uri) == "sip:%FF%FE@example.com"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:user@example.com",
        "sip:example.com:5060;lr",
        "sips:a%20b@[::1]:5061;maddr=239.255.255.1;ttl=15?h=v%26w",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@192.0.2.4",
        "sip:alice:@host.example",
    ],
)
def test_str_then_parse_gives_the_same_uri(text: str) -> None:
    uri = SipUri.parse(text)
    assert SipUri.parse(str(uri)) == uri
    assert str(uri) == text


def test_user_characters_that_would_change_meaning_are_escaped() -> None:
    uri = SipUri(user="a@b:c d", host="example.com", params=(("x", "1;2"),))
    assert str(uri) == "sip:a%40b%3Ac%20d@example.com;x=1%3B2"
    assert SipUri.parse(str(uri)) == uri


def test_param_helpers_replace_append_and_remove() -> None:
    uri = SipUri.parse("sip:bob@example.com;Transport=udp;lr")
    changed = uri.with_param("transport", "tcp")
    assert changed.params == (("transport", "tcp"), ("lr", None))
    assert uri.with_param("ob").params[-1] == ("ob", None)
    assert uri.without_param("LR").params == (("Transport", "udp"),)
    assert uri.replace(port=5080).port == 5080
    assert uri.port is None  # frozen: the original is untouched


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sip:", "empty host"),
        ("sip:@example.com", "empty user"),
        ("sip:user@", "empty host"),
        ("sip:user@exa mple.com", "whitespace"),
        ("sip:user@example.com:99999", "port out of range"),
        ("sip:user@example.com:", "bad port"),
        ("sip:user@example.com:5o60", "bad port"),
        ("sip:user@[2001:db8::1", "unterminated IPv6"),
        ("sip:user@[not:v6]", "bad IPv6"),
        ("sip:user@[::1]x", "junk after IPv6"),
        ("sip:user@256.1.1.1", "bad IPv4"),
        ("sip:user@exa_mple..com", "bad host"),
        ("sip:%Z%45@example.com", "bad %-escape"),
        ("sip:us<er@example.com", "invalid character"),
        ("sip:user@example.com;;lr", "empty URI parameter"),
        ("sip:user@example.com;lr=", "bad URI parameter"),
        ("sip:user@example.com?novalue", "bad URI header"),
        ("<sip:user@example.com>", "no scheme"),
        ("http:", "not an absolute URI"),
    ],
)
def test_invalid_uris_raise_parse_error_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_uri(text)


# RFC 3261 §19.1.4: the section's own examples.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # and the rules stated in the text
    ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
    ("sip:bob@biloxi.com", "sip:biloxi.com"),
    ("sip:bob:pw@biloxi.com", "sip:bob:PW@biloxi.com"),
    ("sip:bob@biloxi.com;user=phone", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;maddr=192.0.2.1", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;ttl=1", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;method=INVITE", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;newparam=5", "sip:bob@biloxi.com;newparam=6"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris_match_both_ways(a: str, b: str) -> None:
    ua, ub = SipUri.parse(a), SipUri.parse(b)
    assert ua.matches(ub) and ub.matches(ua)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_non_equivalent_uris_do_not_match(a: str, b: str) -> None:
    ua, ub = SipUri.parse(a), SipUri.parse(b)
    assert not ua.matches(ub) and not ub.matches(ua)


def test_ipv6_hosts_compare_by_address() -> None:
    assert SipUri.parse("sip:a@[2001:DB8::1]").matches(SipUri.parse("sip:a@[2001:db8:0::1]"))
    assert not SipUri.parse("sip:a@[::1]").matches("sip:a@[::1]")  # not a SipUri


def test_tel_uri_parses_and_compares_ignoring_visual_separators() -> None:
    uri = TelUri.parse("tel:+1-201-555-0123;ext=1234;Phone-Context=example.com")
    assert uri.number == "+1-201-555-0123"
    assert uri.param("phone-context") == "example.com"
    assert str(uri) == "tel:+1-201-555-0123;ext=1234;Phone-Context=example.com"
    assert uri.matches(TelUri.parse("tel:+12015550123;phone-context=EXAMPLE.com;ext=1234"))
    assert not uri.matches(TelUri.parse("tel:+12015550123;ext=1234"))
    assert TelUri.parse("tel:*67#;phone-context=home").number == "*67#"


@pytest.mark.parametrize("text", ["tel:", "tel:+", "tel:+1x2", "tel:12 34", "tel:+1;;ext=1"])
def test_invalid_tel_uris_raise(text: str) -> None:
    with pytest.raises(ParseError):
        TelUri.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "nobodyknows:this-is-here",  # RFC 4475 §3.3.2 unkscm
        "soap.beep://192.0.2.103:3002",  # RFC 4475 §3.3.3 novelsc
        "isbn:2983792873",
        "http://www.example.com",
        "urn:service:sos",
    ],
)
def test_unknown_schemes_are_kept_verbatim(text: str) -> None:
    uri = parse_uri(text)
    assert uri == AbsoluteUri(text)
    assert str(uri) == text
    assert uri.matches(AbsoluteUri(text)) and not uri.matches(AbsoluteUri(text + "x"))


def test_parse_uri_dispatches_on_scheme_case_insensitively() -> None:
    assert isinstance(parse_uri("SIPS:a@b.example"), SipUri)
    assert isinstance(parse_uri("TEL:+123"), TelUri)
    assert isinstance(parse_uri("mailto:a@b.example"), AbsoluteUri)
