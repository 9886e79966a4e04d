"""The Replaces header (RFC 3891 §6.1) and its escaped form inside a Refer-To URI
(RFC 3261 §19.1.1, RFC 5589 §7.1)."""

from __future__ import annotations

import pytest

from softphone.sip.errors import ParseError
from softphone.sip.headers import NameAddr
from softphone.sip.replaces import Replaces, refer_to_target, with_replaces
from softphone.sip.uri import SipUri


def test_parse_and_write_round_trip() -> None:
    text = "425928@bobster.example.org;to-tag=7743;from-tag=6472"
    replaces = Replaces.parse(text)
    assert replaces == Replaces(
        call_id="425928@bobster.example.org", to_tag="7743", from_tag="6472"
    )
    assert str(replaces) == text


def test_parameters_in_any_order_with_early_only_and_extensions() -> None:
    replaces = Replaces.parse("abc ; from-tag=f1 ;early-only; foo=bar ;TO-TAG=t1")
    assert replaces == Replaces(call_id="abc", to_tag="t1", from_tag="f1", early_only=True)
    assert str(replaces) == "abc;to-tag=t1;from-tag=f1;early-only"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ";to-tag=a;from-tag=b",
        "abc;to-tag=a",  # from-tag missing
        "abc;from-tag=b",
        "abc;to-tag=a;from-tag=b;to-tag=c",
        "abc;to-tag=;from-tag=b",
        "a b;to-tag=a;from-tag=b",
        "abc;to-tag=a;from-tag=b;early-only=yes",
        "abc;to-tag=a b;from-tag=b",
        "abc;to-tag=a;from-tag=b;=x",
    ],
)
def test_malformed_replaces_is_refused(text: str) -> None:
    with pytest.raises(ParseError):
        Replaces.parse(text)


def test_refer_to_escapes_the_header_value() -> None:
    """RFC 5589 §7.1's example: ``;``, ``=`` and ``@`` are %-escaped inside the URI."""
    target = SipUri(user="carol", host="192.0.2.3", port=5062, params=(("transport", "udp"),))
    replaces = Replaces(call_id="8a3f@192.0.2.1", to_tag="c7", from_tag="a9")
    refer_to = str(NameAddr(uri=with_replaces(target, replaces)))
    assert refer_to == (
        "<sip:carol@192.0.2.3:5062;transport=udp"
        "?Replaces=8a3f%40192.0.2.1%3Bto-tag%3Dc7%3Bfrom-tag%3Da9>"
    )
    uri, back = refer_to_target(NameAddr.parse(refer_to).uri)  # type: ignore[arg-type]
    assert back == replaces
    assert str(uri) == "sip:carol@192.0.2.3:5062;transport=udp"


def test_refer_to_without_headers_is_a_blind_transfer() -> None:
    uri, replaces = refer_to_target(SipUri.parse("sip:carol@example.org"))
    assert replaces is None and str(uri) == "sip:carol@example.org"


@pytest.mark.parametrize(
    "text",
    [
        "sip:c@h?Replaces=abc%3Bto-tag%3Dt",  # no from-tag
        "sip:c@h?Replaces=a%3Bto-tag%3Dt%3Bfrom-tag%3Df&Replaces=b%3Bto-tag%3Dt%3Bfrom-tag%3Df",
        "sip:c@h?Subject=hi",  # a header we would not copy into the INVITE
    ],
)
def test_bad_refer_to_headers_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        refer_to_target(SipUri.parse(text))
