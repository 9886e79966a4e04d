"""Instant messages on the phone façade: two real Phones on 127.0.0.1 message each other outside
and inside a call (over TCP when a message is too big for UDP), a failure carries its status;
the FakePhone publishes the same events for the same story; what a body shows as (charsets,
attachments) and what cannot be sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from phone_fake import FakePhone
from phone_support import port_of, started

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.message_text import (
    attachment_line,
    decode_body,
    encode_text,
    format_size,
    printable,
)
from softphone.phone.phone import Phone


async def until(
    phone: Phone, seen: list[pe.PhoneEvent], cond: Callable[[pe.PhoneEvent], bool]
) -> pe.PhoneEvent:
    """Read ``phone``'s events into ``seen`` until one matches (sockets answer, no sleeps)."""
    async with asyncio.timeout(10.0):
        while not cond(event := await phone.next_event()):
            seen.append(event)
    seen.append(event)
    return event


def status(state: str) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.MessageStatusChanged) and e.state == state


def received(e: pe.PhoneEvent) -> bool:
    return isinstance(e, pe.MessageReceived)


def messages(events: list[pe.PhoneEvent]) -> list[tuple[str, dict[str, object]]]:
    """The message events as front ends read them, ids numbered in order of appearance."""
    ids: dict[str, str] = {}
    out = []
    for event in events:
        if not isinstance(event, (pe.MessageReceived, pe.MessageStatusChanged)):
            continue
        data = event.to_json()
        for key, prefix in (("message_id", "m"), ("call_id", "c")):
            if data.get(key) is not None:
                data[key] = ids.setdefault(str(data[key]), f"{prefix}{len(ids) + 1}")
        out.append((type(event).__name__, data))
    return out


@pytest.fixture
async def real_pair() -> AsyncIterator[tuple[Phone, Phone, str, str]]:
    """Two started phones; the target that reaches the second, and the URI the first sends
    from (its account's: peer to peer, without a port)."""
    a, b = await started(Config(), seed="msg-a"), await started(Config(), seed="msg-b")
    port_of(a)
    yield a, b, f"sip:softphone@127.0.0.1:{port_of(b)}", "sip:softphone@127.0.0.1"
    await a.stop()
    await b.stop()


async def test_a_message_between_real_phones_and_the_fakes_same_story(
    real_pair: tuple[Phone, Phone, str, str],
) -> None:
    sender, receiver, target, sender_uri = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    message_id = await sender.send_message(target, "héllo 👋")
    sending = sender.next_event_nowait()
    assert sending is not None
    a.append(sending)
    assert sending == pe.MessageStatusChanged(
        message_id=message_id,
        state="sending",
        account="local",
        remote=target,
        content_type="text/plain",
        text="héllo 👋",
    )
    await until(sender, a, status("delivered"))
    got = await until(receiver, b, received)
    assert isinstance(got, pe.MessageReceived)
    assert (got.remote, got.local, got.text, got.charset, got.call_id) == (
        sender_uri,
        target,
        "héllo 👋",
        "UTF-8",
        None,
    )
    assert got.body == "héllo 👋".encode() and got.note is None
    assert got.to_json() == {
        "event": "message",
        "from": sender_uri,
        "to": target,
        "content_type": "text/plain",
        "text": "héllo 👋",
    }
    delivered = a[-1]
    assert isinstance(delivered, pe.MessageStatusChanged)
    assert (delivered.message_id, delivered.status, delivered.reason) == (message_id, 200, "OK")

    fake_a, fake_b = FakePhone(), FakePhone()
    await fake_a.start()
    await fake_b.start()
    await fake_a.send_message(target, "héllo 👋")
    fake_a.settle()
    fake_b.remote_message(sender_uri, "héllo 👋", local=target)
    assert messages(fake_a.drain()) == messages(a)
    assert messages(fake_b.drain()) == messages(b)


async def test_a_message_to_nobody_there_fails_with_404_on_both_phones(
    real_pair: tuple[Phone, Phone, str, str],
) -> None:
    sender, _, target, _ = real_pair
    a: list[pe.PhoneEvent] = []
    nobody = target.replace("softphone@", "nobody@")
    await sender.send_message(nobody, "anyone?")
    failed = await until(sender, a, status("failed"))
    assert isinstance(failed, pe.MessageStatusChanged)
    assert (failed.status, failed.reason, failed.no_response) == (404, "Not Found", False)

    fake = FakePhone()
    await fake.start()
    fake.fail_next_message(404)
    await fake.send_message(nobody, "anyone?")
    fake.settle()
    assert messages(fake.drain()) == messages(a)


async def test_messages_in_a_call_go_in_its_dialog_on_real_phones_and_the_fake(
    real_pair: tuple[Phone, Phone, str, str],
) -> None:
    caller, callee, target, caller_uri = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    call_id = await caller.dial(target)
    incoming = await until(callee, b, lambda e: isinstance(e, pe.IncomingCall))
    assert isinstance(incoming, pe.IncomingCall)
    await callee.answer(incoming.call_id)
    await until(
        caller, a, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established"
    )
    await until(
        callee, b, lambda e: isinstance(e, pe.CallStateChanged) and e.state == "established"
    )
    a.clear()
    b.clear()
    await caller.send_message(target, "in the call")
    await until(caller, a, status("delivered"))
    got = await until(callee, b, received)
    assert isinstance(got, pe.MessageReceived) and got.call_id == incoming.call_id
    assert got.to_json()["call_id"] == incoming.call_id
    assert all(e.call_id == call_id for e in a if isinstance(e, pe.MessageStatusChanged))
    # The callee answers the sender (its From URI, the call's remote): the call carries it back.
    assert got.remote == caller_uri == callee.call(incoming.call_id).remote
    await callee.send_message(got.remote, "me too")
    back = await until(caller, a, received)
    assert isinstance(back, pe.MessageReceived) and back.call_id == call_id
    await caller.hangup(call_id)

    fake = FakePhone(autoplay=True)
    await fake.start()
    fake_call = await fake.dial(target)
    fake.drain()
    await fake.send_message(target, "in the call")
    fake.remote_message(target, "me too", call_id=fake_call, local=caller_uri)
    assert messages(fake.drain()) == messages(a)


async def test_a_message_too_big_for_udp_arrives_over_tcp(
    real_pair: tuple[Phone, Phone, str, str],
) -> None:
    sender, receiver, target, _ = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    text = "long " * 400  # 2000 bytes: over the 1300 that may go over UDP (RFC 3428 §4)
    message_id = await sender.send_message(target, text)
    await until(sender, a, status("delivered"))
    got = await until(receiver, b, received)
    assert isinstance(got, pe.MessageReceived) and got.text == text
    flows = [f for f in sender.sip_flows() if f.method == "MESSAGE"]
    assert len(flows) == 1 and flows[0].remote.startswith("tcp:127.0.0.1:")
    assert a[-1] == pe.MessageStatusChanged(
        message_id=message_id,
        state="delivered",
        account="local",
        remote=target,
        content_type="text/plain",
        text=text,
        status=200,
        reason="OK",
    )


@pytest.mark.parametrize(
    ("target", "text", "content_type", "error", "why"),
    [
        ("sip:bob@127.0.0.1", "", "text/plain", PhoneError, "the message is empty"),
        ("sip:bob@127.0.0.1", "hi", "text", PhoneError, "not a content type"),
        ("sip:bob@127.0.0.1", "€", "text/plain;charset=ascii", PhoneError, "cannot be written"),
        ("sip:bob@127.0.0.1", "hi", "text/plain;charset=x-nope", PhoneError, "unknown charset"),
        ("sip:bob@", "hi", "text/plain", AddressError, "not a valid SIP address"),
    ],
    ids=["empty", "bad type", "charset too small", "unknown charset", "bad target"],
)
async def test_what_cannot_be_sent_is_refused_the_same_way_by_both_phones(
    target: str, text: str, content_type: str, error: type[Exception], why: str
) -> None:
    real = await started(Config(), seed="msg-refused")
    fake = FakePhone()
    await fake.start()
    try:
        for phone in (real, fake):
            with pytest.raises(error, match=why):
                await phone.send_message(target, text, content_type=content_type)
        assert not [e for e in fake.drain() if isinstance(e, pe.MessageStatusChanged)]
        while (event := real.next_event_nowait()) is not None:
            assert not isinstance(event, pe.MessageStatusChanged)
    finally:
        await real.stop()


async def test_the_fake_can_fail_without_a_response_and_says_so() -> None:
    fake = FakePhone()
    await fake.start()
    fake.fail_next_message(408, "no answer from 192.0.2.1:5060 over udp in 32 s", no_response=True)
    message_id = await fake.send_message("sip:bob@192.0.2.1", "hi")
    assert fake.pending == [f"{message_id} 408"]
    (failed,) = fake.settle()
    assert isinstance(failed, pe.MessageStatusChanged) and failed.no_response
    assert fake.messages_sent == [("sip:bob@192.0.2.1", "hi")]


# --- what a body shows as ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "charset", "body", "text", "note"),
    [
        ("text/plain", None, "naïve".encode(), "naïve", None),
        ("text/plain", "ISO-8859-1", "café".encode("latin-1"), "café", None),
        ("text/plain", "x-klingon", b"caf\xc3\xa9", "café", "unknown charset 'x-klingon'"),
        ("text/plain", "base64", b"aGk=", "aGk=", "unknown charset 'base64'"),
        ("text/plain", "utf-8", b"caf\xe9!", "caf\ufffd!", "not valid utf-8"),
        ("image/png", None, b"\x89PNG" + bytes(2296), "[image/png, 2.3 kB]", None),
        ("text/html", "utf-8", b"<b>hi</b>", "[text/html, 9 B]", None),
    ],
    ids=["utf-8 default", "latin-1", "unknown", "not text", "undecodable", "png", "html"],
)
def test_bodies_show_as_text_or_an_attachment_line_and_never_fail(
    content_type: str, charset: str | None, body: bytes, text: str, note: str | None
) -> None:
    shown = decode_body(content_type, charset, body)
    assert shown.text == text and shown.is_text == (content_type == "text/plain")
    if note is None:
        assert shown.note is None
    else:
        assert shown.note is not None and shown.note.startswith(note)


def test_sizes_attachments_encoding_and_printable_text() -> None:
    assert [format_size(n) for n in (0, 999, 2300, 1_450_000)] == [
        "0 B",
        "999 B",
        "2.3 kB",
        "1.4 MB",
    ]
    assert attachment_line("application/pdf", 12_345) == "[application/pdf, 12.3 kB]"
    assert encode_text("é", "text/plain") == ("é".encode(), "text/plain;charset=UTF-8")
    assert encode_text("é", "text/plain; charset=latin-1") == (
        b"\xe9",
        "text/plain;charset=latin-1",
    )
    assert encode_text("{}", "application/json") == (b"{}", "application/json")
    assert printable("a\x1b[31mred\x07\r\nb\tc") == "a\ufffd[31mred\ufffd\ufffd\nb\tc"
