"""The per-call SIP trace: grouping by Call-ID (long and compact form), redaction of
credentials, and the bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from softphone.phone import trace as tr
from softphone.phone.trace import SipTrace, call_id_of, redact

INVITE_WITH_AUTH = (
    b"INVITE sip:bob@example.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"Call-ID: abc@127.0.0.1\r\n"
    b'Proxy-Authorization: Digest username="alice", realm="example.test", nonce="n1", '
    b'uri="sip:bob@example.test", response="0123456789abcdef0123456789abcdef", cnonce="c0ffee", nc=00000001\r\n'
    b"Authorization: Basic YWxpY2U6c2VjcmV0\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_call_id_long_and_compact_form_and_missing() -> None:
    assert call_id_of(INVITE_WITH_AUTH) == "abc@127.0.0.1"
    assert call_id_of(b"SIP/2.0 200 OK\r\ni: x1\r\n\r\n") == "x1"
    assert call_id_of(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\nCall-ID: in-the-body\r\n") is None


def test_redact_hides_digest_response_cnonce_and_basic_credentials() -> None:
    text = redact(INVITE_WITH_AUTH.decode())
    assert (
        "0123456789abcdef" not in text and "c0ffee" not in text and "YWxpY2U6c2VjcmV0" not in text
    )
    assert 'response="<redacted>"' in text and 'cnonce="<redacted>"' in text
    assert "Authorization: Basic <redacted>" in text
    assert 'username="alice"' in text and 'realm="example.test"' in text  # kept: they help


def test_redact_hides_a_password_in_a_sip_uri_and_leaves_other_uris_alone() -> None:
    text = redact(
        "INVITE sip:bob:hunter2@example.test SIP/2.0\r\n"
        "From: <sips:alice:s3cr3t@example.test>;tag=1\r\n"
        "To: <sip:bob@[2001:db8::1]:5060>\r\nContact: <sip:carol@192.0.2.1:5062;transport=tcp>\r\n"
    )
    assert "hunter2" not in text and "s3cr3t" not in text
    assert "sip:bob:<redacted>@example.test" in text and "sips:alice:<redacted>@" in text
    assert "<sip:bob@[2001:db8::1]:5060>" in text and "<sip:carol@192.0.2.1:5062;" in text


def test_trace_groups_by_call_and_redacts_before_storing() -> None:
    clock = iter([100.0, 101.0])
    trace = SipTrace(lambda: next(clock))
    trace.add("sent", INVITE_WITH_AUTH, "udp:127.0.0.1:5070", "udp:127.0.0.1:5060")
    trace.add(
        "received",
        b"SIP/2.0 100 Trying\r\nCall-ID: abc@127.0.0.1\r\n\r\n",
        "udp:127.0.0.1:5070",
        "udp:127.0.0.1:5060",
    )
    trace.add("received", b"\r\n\r\n", "udp:x", "udp:y")  # keep-alive: not a message
    messages = trace.messages("abc@127.0.0.1")
    assert [(m.at, m.direction, m.first_line) for m in messages] == [
        (100.0, "sent", "INVITE sip:bob@example.test SIP/2.0"),
        (101.0, "received", "SIP/2.0 100 Trying"),
    ]
    assert "c0ffee" not in messages[0].text and "\r" not in messages[0].text
    assert trace.messages("other") == []


def test_trace_is_bounded() -> None:
    trace = SipTrace(lambda: 0.0)
    for n in range(tr.MAX_MESSAGES + 5):
        trace.add(
            "sent",
            f"OPTIONS sip:a SIP/2.0\r\nCSeq: {n} OPTIONS\r\nCall-ID: one\r\n\r\n".encode(),
            "l",
            "r",
        )
    kept = trace.messages("one")
    assert len(kept) == tr.MAX_MESSAGES and f"CSeq: {tr.MAX_MESSAGES + 4} OPTIONS" in kept[-1].text
    for n in range(tr.MAX_OTHER_FLOWS):  # flows outside calls, like "one": it goes first
        trace.add("sent", f"BYE sip:a SIP/2.0\r\nCall-ID: c{n}\r\n\r\n".encode(), "l", "r")
    assert trace.messages("one") == [] and trace.messages(f"c{tr.MAX_OTHER_FLOWS - 1}") != []
    assert trace.messages("c0") != []
    big = b"MESSAGE sip:a SIP/2.0\r\nCall-ID: big\r\n\r\n" + b"x" * (tr.MAX_TEXT + 10)
    trace.add("received", big, "l", "r")
    assert trace.messages("big")[0].text.endswith("more characters not kept]")


def _redact_by_search(text: str) -> str:
    """The redaction as two whole-text substitutions, without the cheap pre-checks."""
    text = tr._AUTH_HEADER.sub(
        lambda m: (
            m.group(1)
            + m.group(2)
            + tr._DIGEST_SECRET.sub(lambda d: f'{d.group(1)}="{tr.REDACTED}"', m.group(3))
            if m.group(2).lower() == "digest"
            else f"{m.group(1)}{m.group(2)} {tr.REDACTED}"
        ),
        text,
    )
    return tr._URI_PASSWORD.sub(rf"\1:{tr.REDACTED}@", text)


@given(
    st.lists(
        st.sampled_from(
            [
                "sip:",
                "SIPS:",
                "xsip:",
                "alice",
                ":",
                "@",
                "pw",
                " ",
                "\n",
                "<",
                ">",
                ";",
                "Authorization: ",
                "proxy-AUTHORIZATION:",
                "Digest ",
                "Basic ",
                'response="r"',
                "cnonce=c",
                ",",
                '"',
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_the_pre_checks_never_change_what_is_redacted(text: str) -> None:
    # redact() skips the substitutions when a quick look finds nothing to redact (most SIP
    # messages); the result is the same as always running them.
    assert redact(text) == _redact_by_search(text)


def test_a_password_in_a_uri_is_found_after_uris_without_one() -> None:
    text = "From: <sip:bob@host>;tag=1\nTo: <SIP:carol:pw1@host>\nContact: <sip:x@y>\n"
    assert (
        redact(text)
        == "From: <sip:bob@host>;tag=1\nTo: <SIP:carol:<redacted>@host>\nContact: <sip:x@y>\n"
    )


SDES_OFFER = (
    "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: c1\r\n\r\n"
    "m=audio 4000 RTP/SAVP 0\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    "a=crypto:2 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==\r\n"
)


def test_redact_hides_sdes_keys_in_the_trace_and_the_wire_log() -> None:
    from softphone.sip.ua import redact as wire_redact
    from softphone.tui.screens.trace import redact_for_display

    for shown in (
        redact(SDES_OFFER),
        wire_redact(SDES_OFFER.encode()).decode(),
        redact_for_display(SDES_OFFER),
    ):
        assert "WVNfX19zZW1jdGwg" not in shown and "AAECAwQFBgcICQoL" not in shown
        assert "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^20|1:4" in shown
        assert "a=crypto:2 AEAD_AES_128_GCM inline:<redacted>" in shown
