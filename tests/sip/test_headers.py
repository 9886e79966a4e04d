"""Header values: names (§7.3.3), name-addr (§20.10), Via (§20.42), CSeq (§20.16), Contact."""

from __future__ import annotations

import pytest

from softphone.sip.errors import LocalProtocolError, ParseError
from softphone.sip.headers import (
    COMPACT_FORMS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    parse_contacts,
    split_header_values,
)
from softphone.sip.uri import AbsoluteUri, SipUri, TelUri


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("v", "Via"),
        ("V", "Via"),
        ("call-id", "Call-ID"),
        ("i", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("proxy-authorization", "Proxy-Authorization"),
        ("l", "Content-Length"),
        ("x-my-HEADER", "X-My-Header"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_compact_forms_cover_rfc3261_and_extensions() -> None:
    assert set("imelcfsktvorbu") <= set(COMPACT_FORMS)
    assert COMPACT_FORMS["k"] == "Supported"


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ('"Bell, Alexander" <sip:a@b>, <sip:c@d>', ['"Bell, Alexander" <sip:a@b>', "<sip:c@d>"]),
        ("<sip:a@b;x=1,2>, <sip:c@d>", ["<sip:a@b;x=1,2>", "<sip:c@d>"]),
        ('"esc \\", still" <sip:a@b>,x', ['"esc \\", still" <sip:a@b>', "x"]),
        ("a,,b, ,", ["a", "b"]),
        ("", []),
    ],
)
def test_split_header_values_respects_quotes_and_angle_brackets(
    value: str, parts: list[str]
) -> None:
    assert split_header_values(value) == parts


def test_name_addr_with_quoted_display_name_and_spaced_params() -> None:
    # RFC 4475 §3.1.1.1 wsinv: escaped quote and backslash, spaces around ";" and "="
    na = NameAddr.parse('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ;   tag = 98asjd8')
    assert na.display_name == 'J Rosenberg \\"'
    assert na.uri == SipUri(user="jdrosen", host="example.com")
    assert na.tag == "98asjd8"
    assert str(na) == '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'


def test_name_addr_token_display_name_without_space_before_angle() -> None:
    # RFC 4475 §3.1.1.6 lwsdisp
    na = NameAddr.parse("caller<sip:caller@example.com>;tag=323")
    assert (na.display_name, na.tag) == ("caller", "323")
    assert str(na) == "caller <sip:caller@example.com>;tag=323"


def test_addr_spec_params_belong_to_the_header() -> None:
    # §20.10; RFC 4475 §3.1.1.9 / §3.3.12
    na = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam;tag=33242")
    assert na.uri == SipUri(user="+19725552222", host="gw1.example.net")
    assert na.params == (("unknownparam", None), ("tag", "33242"))
    assert str(na) == "<sip:+19725552222@gw1.example.net>;unknownparam;tag=33242"


def test_angle_form_params_inside_belong_to_the_uri() -> None:
    na = NameAddr.parse("<sip:+19725552222@gw1.example.net;unknownparam>")  # §3.3.13 cparam02
    assert isinstance(na.uri, SipUri) and na.uri.has_param("unknownparam")
    assert na.params == ()


def test_angle_brackets_and_semicolons_inside_quotes_are_display_text() -> None:
    na = NameAddr.parse('"<sip:evil@attacker.example>; tag=x" <sip:real@example.com>;tag=1')
    assert na.display_name == "<sip:evil@attacker.example>; tag=x"
    assert na.uri == SipUri(user="real", host="example.com")
    assert na.tag == "1"


def test_utf8_display_names_and_empty_quotes() -> None:
    assert NameAddr.parse('"Zoë Ünicode" <sip:z@example.com>').display_name == "Zoë Ünicode"
    # non-ASCII is not token text (§25.1), so it goes out quoted
    assert str(NameAddr(uri=SipUri(host="h"), display_name="Zoë")) == '"Zoë" <sip:h>'
    assert NameAddr.parse('"" <sip:z@example.com>').display_name == ""


def test_display_name_needing_quotes_is_quoted_and_never_carries_a_line_break() -> None:
    na = NameAddr(uri=SipUri(user="a", host="b"), display_name='Bell, "Alec"\r\nX: y')
    text = str(na)
    assert text == '"Bell, \\"Alec\\"  X: y" <sip:a@b>'
    assert NameAddr.parse(text).display_name == 'Bell, "Alec"  X: y'


def test_other_uri_schemes_in_name_addr() -> None:
    # RFC 4475 §3.3.4 unksm2
    assert NameAddr.parse("isbn:2983792873").uri == AbsoluteUri("isbn:2983792873")
    assert NameAddr.parse("<http://www.example.com>;tag=3234233").tag == "3234233"
    assert NameAddr.parse("<tel:+1-555-0100>;tag=t").uri == TelUri("+1-555-0100")


def test_quoted_header_param_value_keeps_its_quotes() -> None:
    na = NameAddr.parse('<sip:a@b>;+sip.instance="<urn:uuid:1-2>";reg-id=1;expires=60')
    assert na.param("+sip.instance") == '"<urn:uuid:1-2>"'
    assert str(na) == '<sip:a@b>;+sip.instance="<urn:uuid:1-2>";reg-id=1;expires=60'


def test_name_addr_param_helpers() -> None:
    na = NameAddr.parse("<sip:a@b>;tag=1;x")
    assert na.with_param("tag", "2").params == (("tag", "2"), ("x", None))
    assert na.without_param("TAG").params == (("x", None),)
    assert na.param("x") == "" and na.param("y") is None
    with pytest.raises(LocalProtocolError, match="token"):
        na.with_param("tag", "a b\r\nVia: evil")
    with pytest.raises(LocalProtocolError, match="token"):
        na.with_param("bad name")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "display name must be quoted",
        ),  # baddn
        (
            '"Mr. J. User <sip:j.user@example.com>;tag=ldw22z',
            "unterminated quoted string",
        ),  # quotbal
        ("< sip:t.watson@example.org >", "whitespace inside"),
        (
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "must be enclosed in <>",
        ),  # regbadct
        ('"Joe" <sip:joe@example.org>;;,;', "empty parameter"),  # badinv01
        ('"Bell" <sip:a.g.bell@example.com>;;tag=43', "empty parameter"),
        ("<sip:a@b>;tag=", "empty value"),
        ("<sip:a@b> junk", "unexpected"),
        ("<sip:a@b", "missing '>'"),
        ('"Joe" sip:joe@example.org', "not followed by <URI>"),
        ("", "empty name-addr"),
    ],
)
def test_invalid_name_addrs(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        NameAddr.parse(text)


def test_via_with_rfc4475_whitespace_everywhere() -> None:
    via = Via.parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
    assert (via.transport, via.host, via.port, via.branch) == (
        "TCP",
        "spindle.example.com",
        None,
        "z9hG4bK9ikj8",
    )
    assert str(via) == "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"


def test_via_nat_params_and_ipv6() -> None:
    via = Via.parse(
        "SIP/2.0/udp [2001:db8::9:1] : 5060;received=2001:db8::7;rport=40312;branch=z9hG4bKx"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "2001:db8::9:1", 5060)
    assert (via.received, via.rport, via.sent_by) == ("2001:db8::7", 40312, "[2001:db8::9:1]:5060")
    bare = Via.parse("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1")
    assert bare.rport is None and bare.param("rport") == "" and bare.received is None
    filled = bare.with_param("rport", "4000").with_param("received", "203.0.113.9")
    assert (
        str(filled) == "SIP/2.0/UDP 10.0.0.1:5060;rport=4000;branch=z9hG4bK1;received=203.0.113.9"
    )
    assert filled.without_param("rport").rport is None


@pytest.mark.parametrize("transport", ["UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "UNKNOWN"])
def test_via_transports(transport: str) -> None:
    # RFC 4475 §3.1.1.10 transports
    assert Via.parse(f"SIP/2.0/{transport.lower()} h.example.com").transport == transport


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SIP/2.0 10.0.0.1", "sent-protocol"),
        ("HTTP/1.1/TCP 10.0.0.1", "sent-protocol"),
        ("SIP/2.0/UDP", "transport"),
        ("SIP/2.0/UDP 10.0.0.1:70000", "port out of range"),
        ("SIP/2.0/UDP 10.0.0 .1", "bad host"),
        ("SIP/2.0/UDP 192.0.2.15;;,;,,", "empty parameter"),  # badinv01
        ("SIP/2.0/UDP 10.0.0.1;rport=x", "bad port"),
        ("SIP/2.0/UDP [::1;branch=z9hG4bK", "bad Via sent-by"),
    ],
)
def test_invalid_vias(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        Via.parse(text)


def test_cseq_parses_with_leading_zeros_and_folding_space() -> None:
    assert CSeq.parse("0009 INVITE") == CSeq(seq=9, method="INVITE")
    assert str(CSeq.parse("  101   BYE ")) == "101 BYE"
    assert CSeq.parse("2147483647 X").seq == 2**31 - 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-1 INVITE", "bad CSeq number"),
        ("2147483648 INVITE", "not below 2\\*\\*31"),
        ("36893488147419103232 REGISTER", "bad CSeq number"),  # RFC 4475 §3.1.2.4 scalar02
        ("1", "bad CSeq"),
        ("1 IN VITE", "bad CSeq"),
        ("1 INV;ITE", "bad CSeq method"),
    ],
)
def test_invalid_cseq(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        CSeq.parse(text)


def test_parse_contacts_wildcard_and_lists() -> None:
    assert parse_contacts(" * ") == "*"
    contacts = parse_contacts('"A, B" <sip:a@h1>;q=0.7, sip:b@h2;expires=60')
    assert contacts != "*"
    assert [str(c.uri) for c in contacts] == ["sip:a@h1", "sip:b@h2"]
    assert [c.param("q") for c in contacts] == ["0.7", None]
    with pytest.raises(ParseError, match="empty Contact"):
        parse_contacts(" , ")
