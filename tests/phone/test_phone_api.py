"""The phone façade protocol: the real Phone and the FakePhone both satisfy PhoneApi (for mypy by
typed assignment, at run time by signature), the fake's scripted behaviour, and the fake's event
sequences compared with two real Phones calling each other on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import random
import typing
from collections.abc import AsyncIterator, Callable
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import numpy as np
import pytest
from phone_fake import DEFAULT_STATS, FakeCall, FakePhone
from phone_support import port_of, started

from softphone.config import Config
from softphone.phone import events as pe
from softphone.phone.api import CallFlowState, CallSnapshot, CallView, PhoneApi, TracedMessage
from softphone.phone.audio import NullAudio
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import PhoneError
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.transport.resolver import StubBackend

# --------------------------------------------------------------------------- conformance


def _real_as_api(phone: Phone) -> PhoneApi:
    return phone  # mypy checks Phone against the protocol here


def _fake_as_api(phone: FakePhone) -> PhoneApi:
    return phone


def _threaded_as_api(phone: ThreadedPhone) -> PhoneApi:
    return phone


def _call_as_view(info: CallInfo, fake: FakeCall) -> tuple[CallView, CallView]:
    return info, fake


EXPECTED_MEMBERS = {
    "attended_transfer",
    "join",
    "split",
    "start",
    "config_warning",
    "protect_config",
    "stop",
    "events",
    "next_event",
    "next_event_nowait",
    "calls",
    "call",
    "call_stats",
    "dial",
    "apply_accounts",
    "answer",
    "reject",
    "hangup",
    "hold",
    "set_video",
    "video_picture",
    "resume",
    "transfer",
    "send_dtmf",
    "send_message",
    "mute",
    "echo_cancellation",
    "set_echo_cancellation",
    "record",
    "accounts",
    "registrations",
    "silence",
    "levels",
    "sip_flows",
    "sip_flow",
    "rtp_streams",
    "play_file",
    "stop_playback",
    "set_presence",
    "presence",
    "watch",
    "unwatch",
    "watched",
    "voicemail",
}
CALL_VIEW_RETURNS = {"calls", "call"}  # the protocol says CallView; each phone has its own record


def _members(proto: type) -> list[str]:
    return sorted(n for n in vars(proto) if not n.startswith("_"))


def _flavour(obj: object) -> str:
    if isinstance(obj, property):
        return "property"
    if inspect.isasyncgenfunction(obj):
        return "async iterator"
    if inspect.iscoroutinefunction(obj):
        return "coroutine"
    return "function"


Shape = tuple[str, list[tuple[str, inspect._ParameterKind, object, object]], object]


def _shape(cls: type, name: str) -> Shape:
    """(flavour, [(param, kind, default, type)], return type) of cls.name, with types resolved."""
    member = inspect.getattr_static(cls, name)
    func = member.fget if isinstance(member, property) else member
    assert callable(func), f"{cls.__name__}.{name} is neither a method nor a property"
    hints = typing.get_type_hints(func)
    params = [
        (p.name, p.kind, p.default, hints.get(p.name))
        for p in inspect.signature(func).parameters.values()
        if p.name != "self"
    ]
    flavour = _flavour(member)
    if flavour == "async iterator":  # the protocol spells an async generator as a plain def
        flavour = "function"
    return flavour, params, hints.get("return")


def test_protocol_lists_exactly_what_the_tui_uses() -> None:
    assert set(_members(PhoneApi)) == EXPECTED_MEMBERS
    assert set(_members(CallView)) == {
        "call_id",
        "account",
        "direction",
        "remote",
        "state",
        "started_at",
        "established_at",
        "local_hold",
        "remote_hold",
        "recording_path",
        "display_name",
        "muted",
        "conference",
        "codec",
        "encryption",
        "srtp_suite",
        "has_video",
    }


@pytest.mark.parametrize(
    "impl", [Phone, FakePhone, ThreadedPhone], ids=["Phone", "FakePhone", "ThreadedPhone"]
)
@pytest.mark.parametrize("name", sorted(EXPECTED_MEMBERS))
def test_implementation_has_the_protocols_signature(impl: type, name: str) -> None:
    want_flavour, want_params, want_return = _shape(PhoneApi, name)
    got_flavour, got_params, got_return = _shape(impl, name)
    assert (got_flavour, got_params) == (want_flavour, want_params)
    if name not in CALL_VIEW_RETURNS:
        assert got_return == want_return


@pytest.mark.parametrize("record", [CallInfo, FakeCall], ids=["CallInfo", "FakeCall"])
def test_call_records_fit_the_call_view(record: type) -> None:
    have = {f.name for f in fields(record)}
    for name in _members(CallView):
        member = inspect.getattr_static(CallView, name)
        want = typing.get_type_hints(member.fget)["return"]
        own = inspect.getattr_static(record, name, None)
        if isinstance(own, property):  # a computed member (codec)
            got = typing.get_type_hints(own.fget)["return"]
        else:
            assert name in have, f"{record.__name__} has no {name}"
            got = typing.get_type_hints(record)[name]
        assert got == want, f"{record.__name__}.{name}: {got} != {want}"


def test_phone_calls_and_call_return_call_records() -> None:
    assert typing.get_type_hints(Phone.call)["return"] is CallInfo
    assert typing.get_type_hints(FakePhone.call)["return"] is FakeCall
    prop = inspect.getattr_static(Phone, "calls")
    assert typing.get_type_hints(prop.fget)["return"] == list[CallInfo]


def test_fake_is_a_runtime_phone_api() -> None:
    assert isinstance(FakePhone(), PhoneApi)


# --------------------------------------------------------------------------- the fake, scripted


def states(events: list[pe.PhoneEvent]) -> list[str]:
    return [e.state for e in events if isinstance(e, pe.CallStateChanged)]


async def test_dial_goes_calling_then_ringing_then_established_step_by_step() -> None:
    phone = FakePhone(accounts={"work": "sip:alice@example.test"})
    await phone.start()
    phone.drain()
    call_id = await phone.dial("1002")
    assert phone.drain() == [
        pe.CallStateChanged(
            call_id=call_id, state="calling", direction="outgoing", remote="sip:1002@example.test"
        )
    ]
    assert phone.advance() == [
        pe.CallStateChanged(
            call_id=call_id, state="ringing", direction="outgoing", remote="sip:1002@example.test"
        )
    ]
    assert phone.call(call_id).state == "ringing" and phone.call_stats(call_id) is None
    assert states(phone.advance()) == ["established"]
    assert phone.call(call_id).established_at == 2.0 and phone.pending == []
    assert (
        phone.dialled == ["1002"]
        and ("dial", {"target": "1002", "account": None}) in phone.calls_made
    )


async def test_dial_failure_on_demand_ends_with_the_status() -> None:
    phone = FakePhone()
    await phone.start()
    phone.fail_next_dial(status=486)
    call_id = await phone.dial("sip:bob@127.0.0.1")
    events = phone.settle()
    assert states(events) == ["ringing", "ended"]
    assert events[-1] == pe.CallEnded(
        call_id=call_id,
        status=486,
        reason="486 Busy Here (busy)",
        phrase="Busy Here",
        outcome="busy",
        duration_s=0.0,
        answered=False,
    )
    assert [c.state for c in phone.calls] == ["ended"]


async def test_hangup_while_ringing_cancels_and_after_answer_says_ok() -> None:
    phone = FakePhone()
    await phone.start()
    phone.keep_next_dial_ringing()
    ringing = await phone.dial("bob")
    phone.settle()
    assert phone.call(ringing).state == "ringing"
    await phone.hangup(ringing)
    assert phone.call(ringing).state == "ringing"  # the 487 has not come back yet
    ended = phone.settle()
    assert isinstance(ended[-1], pe.CallEnded) and (ended[-1].status, ended[-1].reason) == (
        487,
        "cancelled",
    )
    talking = await phone.dial("carol")
    phone.settle()
    phone.now += 30.0
    await phone.hangup(talking)
    end = phone.settle()[-1]
    assert isinstance(end, pe.CallEnded) and end.answered and end.status == 200
    assert end.duration_s == 31.0 and end.stats is not None and end.stats["codec"] == "opus"


async def test_incoming_answer_and_call_waiting_and_reject() -> None:
    phone = FakePhone()
    await phone.start()
    phone.drain()
    first = phone.incoming("sip:bob@example.test", display_name="Bob")
    assert phone.drain() == [
        pe.IncomingCall(
            call_id=first,
            account="local",
            remote="sip:bob@example.test",
            display_name="Bob",
            waiting=False,
        ),
        pe.CallStateChanged(
            call_id=first, state="ringing", direction="incoming", remote="sip:bob@example.test"
        ),
    ]
    await phone.answer(first)
    assert states(phone.settle()) == ["established"]
    with pytest.raises(PhoneError, match="not ringing"):
        await phone.answer(first)
    second = phone.incoming("sip:carol@example.test")
    incoming = [e for e in phone.drain() if isinstance(e, pe.IncomingCall)]
    assert [e.waiting for e in incoming] == [True]
    await phone.reject(second)
    assert phone.drain()[-1] == pe.CallEnded(
        call_id=second,
        status=486,
        reason="486 Busy Here (busy)",
        phrase="Busy Here",
        outcome="rejected",
        duration_s=0.0,
        answered=False,
    )
    assert phone.made("reject") == [{"call_id": second, "status": 486}]


async def test_remote_cancel_of_a_ringing_call() -> None:
    phone = FakePhone()
    await phone.start()
    call_id = phone.incoming("sip:bob@example.test")
    phone.remote_hangup(call_id)
    end = phone.drain()[-1]
    assert isinstance(end, pe.CallEnded) and (end.status, end.reason, end.answered) == (
        487,
        "caller cancelled",
        False,
    )


async def test_hold_resume_and_a_refused_reoffer() -> None:
    phone = FakePhone(autoplay=True)
    await phone.start()
    call_id = await phone.dial("bob")
    phone.drain()
    await phone.hold(call_id)
    assert states(phone.drain()) == ["held"] and phone.call(call_id).local_hold
    await phone.resume(call_id)
    assert states(phone.drain()) == ["established"]
    phone.fail_next_reoffer()
    await phone.hold(call_id)
    assert phone.drain() == [
        pe.Notice(level="warning", text="hold/resume failed: 488 Not Acceptable Here")
    ]
    assert phone.call(call_id).state == "established"
    phone.remote_hold(call_id)
    assert states(phone.drain()) == ["held"] and not phone.call(call_id).local_hold


async def test_hold_needs_an_established_call() -> None:
    phone = FakePhone()
    await phone.start()
    call_id = await phone.dial("bob")
    with pytest.raises(PhoneError, match="not established"):
        await phone.hold(call_id)


async def test_dtmf_is_recorded_and_checked() -> None:
    phone = FakePhone(autoplay=True)
    await phone.start()
    call_id = await phone.dial("ivr")
    assert await phone.send_dtmf(call_id, "12#") == "rtp"
    assert await phone.send_dtmf(call_id, "a") == "rtp"
    assert phone.call(call_id).dtmf_sent == "12#A"
    with pytest.raises(PhoneError, match="not DTMF digits"):
        await phone.send_dtmf(call_id, "1x")
    phone.remote_dtmf(call_id, "5")
    assert phone.drain()[-1] == pe.DtmfReceived(
        call_id=call_id, digit="5", method="rtp", duration_ms=100
    )


async def test_transfer_progresses_then_the_call_ends() -> None:
    phone = FakePhone()
    await phone.start()
    call_id = await phone.dial("bob")
    phone.settle()
    phone.drain()
    await phone.transfer(call_id, "carol")
    events = phone.settle()
    progress = [
        (e.status, e.reason, e.final) for e in events if isinstance(e, pe.TransferProgressed)
    ]
    assert progress == [(202, "Accepted", False), (100, "Trying", False), (200, "OK", True)]
    assert states(events) == ["ended"] and phone.made("transfer") == [
        {"call_id": call_id, "target": "carol"}
    ]


async def test_transfer_refused_keeps_the_call() -> None:
    phone = FakePhone(autoplay=True)
    await phone.start()
    call_id = await phone.dial("bob")
    phone.fail_next_transfer(603)
    phone.drain()
    await phone.transfer(call_id, "carol")
    last = phone.drain()[-1]
    assert last == pe.TransferProgressed(call_id=call_id, status=603, reason="Decline", final=True)
    assert phone.call(call_id).state == "established"


async def test_registration_events_and_stop_unregisters() -> None:
    phone = FakePhone(
        accounts={"work": "sip:a@example.test", "home": "sip:a@home.test"},
        registrars=["work"],
        expires=600,
    )
    await phone.start()
    assert phone.drain() == [
        pe.Listening(transport="udp", host="127.0.0.1", port=5060),
        pe.Listening(transport="tcp", host="127.0.0.1", port=5060),
        pe.Registering(account="work"),
    ]
    assert phone.accounts == ["work", "home"]
    assert {n: r.state for n, r in phone.registrations.items()} == {
        "work": "registering",
        "home": "none",
    }
    assert phone.advance() == [pe.Registered(account="work", expires=600)]
    work = phone.registrations["work"]
    assert work.state == "registered" and work.expires_at == phone.wall_clock + phone.now + 600
    phone.fail_registration("home", 403, retry_in_s=30)
    assert phone.drain()[-1] == pe.RegistrationFailed(
        account="home",
        status=403,
        reason="403 Forbidden (refused by the server (wrong password or not allowed))",
        retry_in_s=30,
    )
    home = phone.registrations["home"]
    assert (
        (home.state, home.retry_in_s) == ("failed", 30)
        and home.reason is not None
        and "403" in home.reason
    )
    await phone.stop()
    assert phone.drain()[-1] == pe.Unregistered(account="work")
    assert phone.registrations["work"].state == "none"


async def test_stats_and_recording_reach_call_ended(tmp_path: Path) -> None:
    phone = FakePhone(autoplay=True, recordings_dir=tmp_path)
    await phone.start()
    call_id = await phone.dial("bob")
    with pytest.raises(PhoneError, match="no call"):
        phone.call_stats("nope")
    path = phone.record(call_id, True)
    assert path is not None and path.parent == tmp_path and phone.call(call_id).recording
    assert phone.record(call_id, False) == path and not phone.call(call_id).recording
    stats = phone.emit_stats(call_id, jitter_ms=12.5, mos=3.9)
    assert phone.drain()[-1] == pe.CallStats(call_id=call_id, stats=stats)
    assert phone.call_stats(call_id) == stats and stats["jitter_ms"] == 12.5
    phone.mute(call_id, True)
    assert (
        phone.call(call_id).muted
        and ("mute", {"call_id": call_id, "muted": True}) in phone.calls_made
    )
    await phone.hangup(call_id)
    end = phone.drain()[-1]
    assert isinstance(end, pe.CallEnded) and end.recording == str(path) and end.stats == stats


async def test_failures_on_demand_and_before_start() -> None:
    phone = FakePhone()
    with pytest.raises(PhoneError, match="not started"):
        await phone.dial("bob")
    await phone.start()
    phone.fail_next("dial", "cannot find the server for sip:bob@nowhere.test")
    with pytest.raises(PhoneError, match="cannot find the server"):
        await phone.dial("sip:bob@nowhere.test")
    assert len(phone.made("dial")) == 2 and phone.calls == []
    with pytest.raises(PhoneError, match="no account"):
        await phone.dial("bob", account="nope")
    assert await phone.dial("bob")  # the failure was for one call only


async def test_events_iterator_yields_in_order() -> None:
    phone = FakePhone(autoplay=True)
    await phone.start()
    call_id = await phone.dial("bob")
    stream = phone.events()
    seen = [await anext(stream) for _ in range(5)]
    assert [type(e).__name__ for e in seen] == ["Listening", "Listening"] + ["CallStateChanged"] * 3
    assert states(seen) == ["calling", "ringing", "established"] and seen[-1].call_id == call_id  # type: ignore[attr-defined]
    assert phone.next_event_nowait() is None


# --------------------------------------------------------------------------- fake versus real


def normalized(events: list[pe.PhoneEvent]) -> list[tuple[str, dict[str, object]]]:
    """Events as the TUI sees them, with call ids numbered and timing-dependent fields dropped."""
    ids: dict[str, str] = {}
    out = []
    for event in events:
        if isinstance(event, (pe.Listening, pe.CallStats, pe.Notice)):
            continue
        data = event.to_json()
        if "call_id" in data:
            data["call_id"] = ids.setdefault(str(data["call_id"]), f"call-{len(ids) + 1}")
        for key in ("duration_s", "stats", "event"):
            data.pop(key, None)
        out.append((type(event).__name__, data))
    return out


async def until(
    phone: PhoneApi,
    seen: list[pe.PhoneEvent],
    cond: Callable[[pe.PhoneEvent], bool],
    timeout_s: float = 10.0,
) -> None:
    """Read events into ``seen`` until one matches (the real phones answer over sockets)."""
    async with asyncio.timeout(timeout_s):
        while not cond(event := await phone.next_event()):
            seen.append(event)
        seen.append(event)


def is_state(state: str) -> Callable[[pe.PhoneEvent], bool]:
    return lambda e: isinstance(e, pe.CallStateChanged) and e.state == state


@pytest.fixture
async def real_pair() -> AsyncIterator[tuple[Phone, Phone, str]]:
    caller, callee = await started(Config(), seed="api-a"), await started(Config(), seed="api-b")
    port_of(caller)
    target = f"sip:softphone@127.0.0.1:{port_of(callee)}"
    yield caller, callee, target
    await caller.stop()
    await callee.stop()


async def test_fake_matches_real_phones_for_a_held_call(
    real_pair: tuple[Phone, Phone, str],
) -> None:
    caller, callee, target = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    call_id = await caller.dial(target)
    await until(callee, b, lambda e: isinstance(e, pe.IncomingCall))
    await until(callee, b, is_state("ringing"))
    incoming = next(e for e in b if isinstance(e, pe.IncomingCall))
    await callee.answer(incoming.call_id)
    await until(caller, a, is_state("established"))
    await until(callee, b, is_state("established"))
    await caller.hold(call_id)
    await until(caller, a, is_state("held"))
    await until(callee, b, is_state("held"))
    await caller.resume(call_id)
    await until(caller, a, is_state("established"))
    await until(callee, b, is_state("established"))
    await caller.hangup(call_id)
    await until(caller, a, lambda e: isinstance(e, pe.CallEnded))
    await until(callee, b, lambda e: isinstance(e, pe.CallEnded))

    # Two real phones with the default policy (srtp-optional) encrypt with SDES.
    fake_a, fake_b = FakePhone(media_encryption="sdes"), FakePhone(media_encryption="sdes")
    await fake_a.start()
    await fake_b.start()
    fake_call = await fake_a.dial(target)
    fake_in = fake_b.incoming(incoming.remote)
    await fake_b.answer(fake_in)
    fake_a.settle()
    fake_b.settle()
    await fake_a.hold(fake_call)
    fake_a.settle()
    fake_b.remote_hold(fake_in)
    await fake_a.resume(fake_call)
    fake_a.settle()
    fake_b.remote_hold(fake_in, on=False)
    await fake_a.hangup(fake_call)
    fake_a.settle()
    fake_b.remote_hangup(fake_in)

    assert normalized(fake_a.drain()) == normalized(a)
    assert normalized(fake_b.drain()) == normalized(b)
    assert states(a) == ["calling", "ringing", "established", "held", "established", "ended"]


async def test_fake_matches_real_phones_for_a_rejected_call(
    real_pair: tuple[Phone, Phone, str],
) -> None:
    caller, callee, target = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    await caller.dial(target)
    await until(callee, b, is_state("ringing"))
    await until(caller, a, is_state("ringing"))
    incoming = next(e for e in b if isinstance(e, pe.IncomingCall))
    await callee.reject(incoming.call_id)
    await until(caller, a, lambda e: isinstance(e, pe.CallEnded))
    await until(callee, b, lambda e: isinstance(e, pe.CallEnded))

    fake_a, fake_b = FakePhone(), FakePhone()
    await fake_a.start()
    await fake_b.start()
    fake_a.fail_next_dial(486)
    await fake_a.dial(target)
    fake_a.settle()
    await fake_b.reject(fake_b.incoming(incoming.remote))

    assert normalized(fake_a.drain()) == normalized(a)
    assert normalized(fake_b.drain()) == normalized(b)
    assert normalized(a)[-1][1]["reason"] == "486 Busy Here (busy)"


async def test_fake_matches_real_phones_for_mute_record_silence_levels_and_trace(
    real_pair: tuple[Phone, Phone, str], tmp_path: Path
) -> None:
    """What the TUI relies on beyond call states, on both phones: MuteChanged and
    RecordingChanged once per change, silence() while ringing, levels only with audio, the
    codec once answered, and a SIP trace of the call (real phone: INVITE ... BYE, redacted)."""
    caller, callee, target = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    call_id = await caller.dial(target)
    await until(callee, b, is_state("ringing"))
    incoming = next(e for e in b if isinstance(e, pe.IncomingCall))
    assert callee.levels(incoming.call_id) is None and callee.call(incoming.call_id).codec is None
    callee.silence(incoming.call_id)
    assert (
        callee.call(incoming.call_id).silenced and callee.call(incoming.call_id).state == "ringing"
    )
    await callee.answer(incoming.call_id)
    await until(caller, a, is_state("established"))
    await until(callee, b, is_state("established"))
    caller._config = Config(recordings_dir=tmp_path)
    caller.mute(call_id, True)
    caller.mute(call_id, True)  # no change: no event
    path = caller.record(call_id, True)
    caller.record(call_id, False)
    levels = caller.levels(call_id)
    codec = caller.call(call_id).codec
    await caller.hangup(call_id)
    await until(caller, a, lambda e: isinstance(e, pe.CallEnded))
    await until(callee, b, lambda e: isinstance(e, pe.CallEnded))
    assert levels is not None and all(-200.0 <= v <= 0.0 for v in levels)
    assert codec is not None and caller.call(call_id).codec == codec  # kept after the call
    assert caller.call(call_id).muted

    fake = FakePhone(autoplay=True, recordings_dir=tmp_path)
    await fake.start()
    fake_call = await fake.dial(target)
    fake.mute(fake_call, True)
    fake.mute(fake_call, True)
    fake_path = fake.record(fake_call, True)
    fake.record(fake_call, False)
    assert fake.levels(fake_call) is not None and fake.call(fake_call).codec is not None
    await fake.hangup(fake_call)
    changes = (pe.MuteChanged, pe.RecordingChanged)
    real_changes = [e for e in a if isinstance(e, changes)]
    fake_changes = [e for e in fake.drain() if isinstance(e, changes)]
    assert (
        [type(e) for e in real_changes]
        == [type(e) for e in fake_changes]
        == [pe.MuteChanged, pe.RecordingChanged, pe.RecordingChanged]
    )
    assert real_changes[1] == pe.RecordingChanged(call_id=call_id, path=str(path))
    assert fake_changes[1] == pe.RecordingChanged(call_id=fake_call, path=str(fake_path))

    trace = caller.sip_flow(call_id)
    lines = [
        (
            m.direction,
            m.first_line.split(" ")[0]
            if m.direction == "sent" and not m.first_line.startswith("SIP/")
            else m.first_line,
        )
        for m in trace
    ]
    assert lines[0] == ("sent", "INVITE")
    assert (
        ("received", "SIP/2.0 200 OK") in lines
        and ("sent", "ACK") in lines
        and ("sent", "BYE") in lines
    )
    assert all(
        isinstance(m, TracedMessage) and m.remote.startswith("udp:127.0.0.1:") for m in trace
    )
    assert all(m.local.startswith("udp:127.0.0.1:") for m in trace)
    assert callee.sip_flow(incoming.call_id)[0].first_line.startswith("INVITE ")
    assert caller.sip_flow("no-such-call") == []


async def test_flows_and_streams_of_a_real_call_and_the_fake(
    real_pair: tuple[Phone, Phone, str],
) -> None:
    """Both real phones list the call as one INVITE flow that ends COMPLETED, with its
    messages; their RTP streams mirror each other (our sent SSRC and address are what the other
    receives) while the call is up and stay readable once it has ended. The fake answers the same
    questions the same way: no streams before the answer, PhoneError for an unknown call."""
    caller, callee, target = real_pair
    a: list[pe.PhoneEvent] = []
    b: list[pe.PhoneEvent] = []
    with pytest.raises(PhoneError, match="no call"):
        caller.rtp_streams("no-such-call")
    call_id = await caller.dial(target)
    await until(callee, b, is_state("ringing"))
    incoming = next(e for e in b if isinstance(e, pe.IncomingCall))
    assert callee.rtp_streams(incoming.call_id) == []  # no audio yet
    await callee.answer(incoming.call_id)
    await until(caller, a, is_state("established"))
    up = caller.sip_flows()
    assert [(f.flow_id, f.method, f.call_state) for f in up] == [
        (call_id, "INVITE", CallFlowState.IN_CALL)
    ]
    # Media flows: the callee's first statistics say it has heard the caller.
    await until(
        callee,
        b,
        lambda e: isinstance(e, pe.CallStats) and int(str(e.stats["packets_received"])) > 0,
    )
    sent, received = caller.rtp_streams(call_id)
    their_sent, their_received = callee.rtp_streams(incoming.call_id)
    assert (sent.direction, received.direction) == ("sent", "received")
    assert sent.ssrc == their_received.ssrc and their_sent.ssrc == received.ssrc
    assert sent.local == their_received.remote and sent.remote == their_received.local
    assert sent.local.startswith("127.0.0.1:") and sent.codec == their_received.codec
    assert their_received.packets > 0 and their_received.jitter_buffer_ms is not None
    assert sent.payload_type == their_received.payload_type is not None
    await caller.hangup(call_id)
    await until(caller, a, lambda e: isinstance(e, pe.CallEnded))
    await until(callee, b, lambda e: isinstance(e, pe.CallEnded))
    final_sent, _ = caller.rtp_streams(call_id)  # as they were when the audio closed
    assert final_sent.packets >= sent.packets > 0
    flow = next(f for f in caller.sip_flows() if f.flow_id == call_id)
    assert (flow.method, flow.call_state, flow.last_status) == (
        "INVITE",
        CallFlowState.COMPLETED,
        "200 OK",
    )
    assert flow.message_count == len(caller.sip_flow(call_id)) >= 5  # INVITE 100 180 200 ACK...
    assert flow.to_uri == target and flow.from_uri.startswith("sip:softphone@")
    their = next(f for f in callee.sip_flows() if f.flow_id == incoming.call_id)
    assert their.call_state is CallFlowState.COMPLETED and their.remote.startswith("udp:127.0.0.1:")

    fake = FakePhone()
    await fake.start()
    fake.keep_next_dial_ringing()
    fake_call = await fake.dial(target)
    with pytest.raises(PhoneError, match="no call"):
        fake.rtp_streams("no-such-call")
    fake.set_streams(fake_call, sent, received)
    assert fake.rtp_streams(fake_call) == []  # not answered yet
    fake.remote_answer(fake_call)
    assert fake.rtp_streams(fake_call) == [sent, received]
    for message in caller.sip_flow(call_id):
        fake.add_sip(message.direction, message.text, local=message.local, remote=message.remote)
    (fake_flow,) = fake.sip_flows()
    assert (fake_flow.method, fake_flow.call_state, fake_flow.message_count) == (
        flow.method,
        flow.call_state,
        flow.message_count,
    )
    assert [m.text for m in fake.sip_flow(call_id)] == [m.text for m in caller.sip_flow(call_id)]


async def test_play_file_plays_a_wav_and_stops(
    real_pair: tuple[Phone, Phone, str], tmp_path: Path
) -> None:
    from softphone.media.wav import WavWriter

    caller, _, _ = real_pair
    with pytest.raises(PhoneError, match="cannot play the recording"):
        await caller.play_file(tmp_path / "gone.wav")
    wav = tmp_path / "tone.wav"
    writer = WavWriter(wav, 8000, channels=1)
    writer.write(np.zeros(80, dtype=np.float32))  # 10 ms: plays out in a few engine ticks
    writer.close()
    async with asyncio.timeout(5):
        await caller.play_file(wav)
    long_wav = tmp_path / "long.wav"
    writer = WavWriter(long_wav, 8000, channels=1)
    writer.write(np.zeros(8000 * 60, dtype=np.float32))
    writer.close()
    task = asyncio.ensure_future(caller.play_file(long_wav))
    async with asyncio.timeout(5):
        while caller._playback is None:
            turn = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(turn.set_result, None)
            await turn  # one turn of the loop
        caller.stop_playback()
        await task  # stopping ends play_file without an error


async def test_play_file_without_a_sound_device_says_why(tmp_path: Path) -> None:
    """No sound device: play_file refuses with the reason instead of playing into nothing."""
    from softphone.media.wav import WavWriter
    from softphone.phone.audio import DeviceAudio

    problems: list[str] = []
    missing = "no such sound device 7f3a"
    audio = DeviceAudio(missing, missing, on_problem=problems.append)
    phone = await started(Config(), audio=audio, seed="nodev")
    try:
        wav = tmp_path / "rec.wav"
        writer = WavWriter(wav, 8000, channels=1)
        writer.write(np.zeros(800, dtype=np.float32))
        writer.close()
        with pytest.raises(PhoneError, match=r"^no sound device: ") as raised:
            await phone.play_file(wav)
        assert problems and problems[0].endswith(
            str(raised.value).removeprefix("no sound device: ")
        )
    finally:
        await phone.stop()


async def test_threaded_phone_runs_the_phone_on_its_own_loop_and_thread() -> None:
    """The TUI's phone: every call crosses to the phone's thread and back, events arrive on the
    caller's loop, PhoneError comes back unchanged, and stop() ends the thread."""
    import threading

    from phone_support import started

    callee = await started(Config(), seed="thr-b", auto_answer=True)
    target = f"sip:softphone@127.0.0.1:{port_of(callee)}"
    inner = Phone(
        Config(),
        bind_host="127.0.0.1",
        sip_port=0,
        rng=random.Random("thr-a"),
        dns=StubBackend(),
        audio=NullAudio(),
    )
    phone = ThreadedPhone(inner)
    seen: list[pe.PhoneEvent] = []
    try:
        await phone.start()
        thread = phone._thread
        assert thread is not None and thread.is_alive() and thread is not threading.current_thread()
        assert phone.accounts == ["local"]
        call_id = await phone.dial(target)
        await until(phone, seen, is_state("established"))
        on_loop = phone._sync(lambda: threading.current_thread())
        assert on_loop is thread  # plain methods run on the phone's thread
        phone.mute(call_id, True)
        await until(phone, seen, lambda e: isinstance(e, pe.MuteChanged))
        assert phone.call(call_id).muted and phone.levels(call_id) is not None
        with pytest.raises(PhoneError, match="not DTMF digits"):
            await phone.send_dtmf(call_id, "xyz")
        with pytest.raises(PhoneError, match="no call"):
            phone.call("nope")
        await phone.hangup(call_id)
        await until(phone, seen, lambda e: isinstance(e, pe.CallEnded))
        assert [c.state for c in phone.calls] == ["ended"]
        assert any(m.first_line.startswith("BYE ") for m in phone.sip_flow(call_id))
    finally:
        await phone.stop()
        await callee.stop()
    assert not thread.is_alive() and phone._loop is None


def test_call_snapshots_fit_the_call_view() -> None:
    test_call_records_fit_the_call_view(CallSnapshot)


async def test_threaded_phone_hands_the_ui_snapshots_the_phone_thread_leaves_alone() -> None:
    """What a plain method returns is built on the phone's thread and frozen: a call, the list
    of calls or the registrations the UI took stay as they were while the phone goes on."""
    fake = FakePhone(autoplay=True, registrars=["local"])
    phone = ThreadedPhone(fake)
    await phone.start()
    try:
        call_id = await phone.dial("bob")
        call, calls, registrations = phone.call(call_id), phone.calls, phone.registrations
        stats = phone.call_stats(call_id)
        options = "OPTIONS sip:a SIP/2.0\nCall-ID: o1\nCSeq: 1 OPTIONS\n\n"
        phone._sync(fake.add_sip, "received", options)
        flows = phone.sip_flows()
        assert (call.state, call.muted) == ("established", False)
        assert registrations["local"].state == "registered"

        phone.mute(call_id, True)  # the fake changes its call record on the phone's thread
        await phone.hangup(call_id)
        phone._sync(fake.fail_registration, "local", 403)
        phone._sync(lambda: fake.emit_stats(call_id, jitter_ms=12.5))
        phone._sync(fake.add_sip, "sent", "SIP/2.0 200 OK\nCall-ID: o1\nCSeq: 1 OPTIONS\n\n")

        assert (call.state, call.muted) == ("established", False)
        assert [(c.call_id, c.state, c.muted) for c in calls] == [(call_id, "established", False)]
        assert registrations["local"].state == "registered"
        assert stats == DEFAULT_STATS
        assert [(f.message_count, f.last_status) for f in flows] == [(1, None)]
        assert [(f.message_count, f.last_status) for f in phone.sip_flows()] == [(2, "200 OK")]
        now = phone.call(call_id)
        assert (now.state, now.muted) == ("ended", True) and now is not call
        assert phone.registrations["local"].state == "failed"
        assert isinstance(call, CallSnapshot) and isinstance(calls, tuple)
        with pytest.raises(FrozenInstanceError):
            call.muted = True  # type: ignore[misc]
        with pytest.raises(TypeError):
            registrations["other"] = registrations["local"]  # type: ignore[index]
    finally:
        await phone.stop()


async def test_fake_matches_a_real_phone_for_join_and_split() -> None:
    """From the join on: ConferenceChanged, the held call resumed; split: ConferenceChanged and
    the other call held. Call ids are numbered in order of appearance."""
    alice = await started(Config(), seed="conf-a")
    peers = [await started(Config(), seed=f"conf-{n}", auto_answer=True) for n in "bc"]
    port_of(alice)
    targets = [f"sip:softphone@127.0.0.1:{port_of(p)}" for p in peers]
    try:
        seen: list[pe.PhoneEvent] = []
        to_bob = await alice.dial(targets[0])
        await until(alice, seen, is_state("established"))
        await alice.hold(to_bob)
        await until(alice, seen, is_state("held"))
        to_carol = await alice.dial(targets[1])
        await until(alice, seen, is_state("established"))
        real: list[pe.PhoneEvent] = []
        await alice.join(to_bob, to_carol)
        await until(alice, real, is_state("established"))
        await alice.split(to_carol)
        await until(alice, real, is_state("held"))
    finally:
        for phone in (alice, *peers):
            await phone.stop()

    fake = FakePhone(media_encryption="sdes")
    await fake.start()
    fake_bob = await fake.dial(targets[0])
    fake.settle()
    await fake.hold(fake_bob)
    fake.settle()
    fake_carol = await fake.dial(targets[1])
    fake.settle()
    fake.drain()
    await fake.join(fake_bob, fake_carol)
    fake.settle()
    await fake.split(fake_carol)
    fake.settle()

    def named(events: list[pe.PhoneEvent], bob: str, carol: str) -> list[tuple[str, object]]:
        names = {bob: "bob", carol: "carol"}
        return [
            (type(e).__name__, [names[c] for c in e.call_ids])
            if isinstance(e, pe.ConferenceChanged)
            else (type(e).__name__, (names[e.call_id], e.state))
            for e in events
            if isinstance(e, pe.ConferenceChanged | pe.CallStateChanged)
        ]

    expected = [
        ("ConferenceChanged", ["bob", "carol"]),
        ("CallStateChanged", ("bob", "established")),
        ("ConferenceChanged", []),
        ("CallStateChanged", ("bob", "held")),
    ]
    assert named(real, to_bob, to_carol) == expected
    assert named(fake.drain(), fake_bob, fake_carol) == expected
