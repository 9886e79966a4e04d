"""Property tests: the parsers raise nothing but ParseError, whatever they are fed (h11 contract)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from softphone.sip.errors import ParseError
from softphone.sip.framing import StreamFramer
from softphone.sip.headers import CSeq, NameAddr, Via, parse_contacts
from softphone.sip.message import parse_message
from softphone.sip.uri import SipUri, parse_uri

T = TypeVar("T")
DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
FIXTURES = [p.read_bytes() for p in sorted(DATA.glob("msg_*.sip"))]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text built from the characters that matter to SIP parsers, so examples get past the first check.
SIP_ALPHABET = st.sampled_from(
    [*"sipSIP:@;=?&<>\"\\,/[]%. \t-_+0123456789abcdefxyz*#!~'()", "é", "\x00", "\r", "\n"]
)
SIP_TEXT = st.one_of(st.text(), st.text(SIP_ALPHABET, max_size=60))


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [b"\r\n", b" ", b":", b";", b",", b"<", b'"', b"\\", b"%", b"\xff", b"9" * 20]
                )
            )
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            del data[pos:]
    return bytes(data)


def only_parse_errors(fn: Callable[[T], object], arg: T) -> None:
    try:
        fn(arg)
    except ParseError:
        pass


@FAST
@given(st.binary(max_size=600))
@example(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
@example(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: " + b"9" * 5000 + b" OPTIONS\r\n\r\n")
def test_parse_message_on_arbitrary_bytes(data: bytes) -> None:
    only_parse_errors(parse_message, data)


@FAST
@given(mutated_fixture())
def test_parse_message_on_mutated_fixtures(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    # Whatever parsed must serialize and parse again to the same headers and body
    # (serializing adds a Content-Length when the datagram had none).
    again = parse_message(bytes(message))
    assert again.body == message.body
    again.headers.remove("Content-Length")
    message.headers.remove("Content-Length")
    assert again.headers == message.headers


@FAST
@given(SIP_TEXT)
@example("sip:a@[::1]:" + "9" * 5000)
@example("sip:a@" + "1." * 3 + "9" * 5000)
def test_uri_parsers_on_arbitrary_text(text: str) -> None:
    only_parse_errors(SipUri.parse, text)
    only_parse_errors(parse_uri, "sip:" + text)
    only_parse_errors(parse_uri, text)


@FAST
@given(SIP_TEXT)
def test_header_parsers_on_arbitrary_text(text: str) -> None:
    only_parse_errors(NameAddr.parse, text)
    only_parse_errors(NameAddr.parse, "<sip:" + text)
    only_parse_errors(Via.parse, text)
    only_parse_errors(Via.parse, "SIP/2.0/UDP " + text)
    only_parse_errors(CSeq.parse, text)
    only_parse_errors(parse_contacts, text)


@FAST
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            mutated_fixture(),
            st.sampled_from([b"\r\n", b"\r\n\r\n", b"\r"]),
        ),
        max_size=6,
    )
)
def test_stream_framer_on_arbitrary_chunks(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_message_size=4096)
    try:
        for chunk in chunks:
            framer.receive_data(chunk)
            while (event := framer.next_event()) is not None:
                if isinstance(event, bytes):
                    only_parse_errors(parse_message, event)
    except ParseError:
        pass


USER = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
TOKENISH = st.text(
    st.sampled_from(list("abcXYZ019-_.!~*'()&+$:/[]=;?@% ")), min_size=1, max_size=10
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    host = draw(st.sampled_from(["example.com", "192.0.2.1", "2001:db8::1", "h-1.example.org."]))
    params = draw(st.lists(st.tuples(TOKENISH, st.one_of(st.none(), TOKENISH)), max_size=3))
    headers = draw(st.lists(st.tuples(TOKENISH, st.text(max_size=8)), max_size=2))
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=draw(st.one_of(st.none(), USER)),
        password=draw(st.one_of(st.none(), st.text(max_size=6))),
        host=host,
        port=draw(st.one_of(st.none(), st.integers(0, 65535))),
        params=tuple(params),
        headers=tuple(headers),
    )


@FAST
@given(sip_uris())
def test_any_sip_uri_survives_str_then_parse(uri: SipUri) -> None:
    if uri.user is None:
        uri = uri.replace(password=None)
    parsed = SipUri.parse(str(uri))
    assert parsed == uri
    assert parsed.matches(uri)
