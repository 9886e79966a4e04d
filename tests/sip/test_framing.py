"""Stream framing (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.sip.errors import ParseError
from softphone.sip.framing import KeepAlivePing, KeepAlivePong, StreamFramer
from softphone.sip.message import SipRequest, parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "sip"
INVITE = (DATA / "msg_invite_baresip.sip").read_bytes()
REGISTER = (DATA / "msg_register_auth.sip").read_bytes()
COMPACT = (DATA / "msg_compact.sip").read_bytes()  # Content-Length written as "l"


def drain(framer: StreamFramer) -> list[bytes | KeepAlivePing | KeepAlivePong]:
    out: list[bytes | KeepAlivePing | KeepAlivePong] = []
    while (event := framer.next_event()) is not None:
        out.append(event)
    return out


@pytest.mark.parametrize(
    "message", [INVITE, REGISTER, COMPACT], ids=["invite", "register", "compact"]
)
def test_message_split_at_every_byte_boundary(message: bytes) -> None:
    for cut in range(len(message) + 1):
        framer = StreamFramer()
        framer.receive_data(message[:cut])
        first = drain(framer)
        framer.receive_data(message[cut:])
        assert first + drain(framer) == [message], cut


def test_message_fed_one_byte_at_a_time() -> None:
    framer = StreamFramer()
    events = []
    for i in range(len(INVITE)):
        framer.receive_data(INVITE[i : i + 1])
        events += drain(framer)
    assert events == [INVITE]
    assert isinstance(parse_message(INVITE), SipRequest)


def test_several_messages_and_keepalives_in_one_chunk() -> None:
    framer = StreamFramer()
    framer.receive_data(b"\r\n\r\n" + INVITE + b"\r\n" + REGISTER + COMPACT + b"\r\n\r\n")
    assert drain(framer) == [
        KeepAlivePing(),
        INVITE,
        KeepAlivePong(),
        REGISTER,
        COMPACT,
        KeepAlivePing(),
    ]
    assert framer.next_event() is None


def test_lone_crlf_is_a_pong_at_once_but_a_partial_ping_waits() -> None:
    framer = StreamFramer()
    framer.receive_data(b"\r\n")
    assert framer.next_event() == KeepAlivePong()
    framer.receive_data(b"\r\n\r")
    assert framer.next_event() is None  # could still become a ping
    framer.receive_data(b"\n")
    assert framer.next_event() == KeepAlivePing()
    framer.receive_data(b"\r")
    assert framer.next_event() is None
    framer.receive_data(b"\n" + INVITE)
    assert drain(framer) == [KeepAlivePong(), INVITE]


def test_body_is_cut_by_content_length_not_by_the_next_bytes() -> None:
    framer = StreamFramer()
    head, _, body = INVITE.partition(b"\r\n\r\n")
    framer.receive_data(head + b"\r\n\r\n" + body[:-1])
    assert framer.next_event() is None
    framer.receive_data(body[-1:] + b"OPTIONS")
    assert framer.next_event() == INVITE
    assert framer.next_event() is None


def test_bare_lf_head_is_framed_too() -> None:
    message = REGISTER.replace(b"\r\n", b"\n")  # no body, so Content-Length stays right
    framer = StreamFramer()
    framer.receive_data(message)
    assert drain(framer) == [message]


def test_missing_content_length_on_a_stream_is_an_error_and_the_stream_stays_dead() -> None:
    framer = StreamFramer()
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
    with pytest.raises(ParseError, match="without Content-Length"):
        framer.next_event()
    framer.receive_data(REGISTER)
    with pytest.raises(ParseError, match="stream unusable"):
        framer.next_event()


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\n", "more than one"),
        (b"\r\x00", "stray CR"),
    ],
)
def test_bad_framing_raises(head: bytes, reason: str) -> None:
    framer = StreamFramer()
    framer.receive_data(head)
    with pytest.raises(ParseError, match=reason):
        framer.next_event()


def test_folded_content_length_is_understood() -> None:
    message = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length:\r\n 3\r\n\r\nabc"
    framer = StreamFramer()
    framer.receive_data(message + message)
    assert drain(framer) == [message, message]


def test_oversize_body_and_endless_head_hint_513() -> None:
    framer = StreamFramer(max_message_size=1000)
    framer.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2000\r\n\r\n")
    with pytest.raises(ParseError, match="exceeds 1000") as info:
        framer.next_event()
    assert info.value.status_hint == 513
    endless = StreamFramer(max_message_size=1000)
    endless.receive_data(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 200)
    with pytest.raises(ParseError, match="head over 1000") as info:
        endless.next_event()
    assert info.value.status_hint == 513
