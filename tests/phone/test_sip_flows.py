"""SIP flows of the trace (sans-IO: bytes and a clock walked by hand): what each flow's summary
says (method, From/To, messages, how a call went, the latest status), the call-state table, and
the memory bounds over a day of registration refreshes and keep-alive pings."""

from __future__ import annotations

import itertools
import re
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.phone import trace as tr
from softphone.phone.api import CallFlowState, FlowSummary
from softphone.phone.trace import SipTrace
from softphone.phone.trace_flow import TRANSITIONS, FlowInput, _uri, flow_input, parse_head

US = "udp:127.0.0.1:5070"
PROXY = "udp:127.0.0.1:5060"


class Clock:
    """A wall clock the test moves."""

    def __init__(self, at: float = 1_790_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def sip(
    first_line: str,
    call_id: str,
    cseq: str,
    *,
    frm: str = '"Alice" <sip:alice@lab.test>;tag=a1',
    to: str = "<sip:bob@lab.test>",
    compact: bool = False,
    body: str = "",
) -> bytes:
    f, t, i = ("f", "t", "i") if compact else ("From", "To", "Call-ID")
    return (
        f"{first_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq.split()[0]}\r\n"
        f"{f}: {frm}\r\n{t}: {to}\r\n{i}: {call_id}\r\nCSeq: {cseq}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def feed(trace: SipTrace, clock: Clock, *steps: tuple[str, bytes]) -> None:
    for direction, data in steps:
        clock.at += 0.05
        trace.add(direction, data, US, PROXY)  # type: ignore[arg-type]


def registration(trace: SipTrace, clock: Clock, cseq: int, call_id: str = "reg-1") -> None:
    """One REGISTER answered by a 401 challenge, then again with credentials and 200."""
    aor = "<sip:alice@lab.test>"
    feed(
        trace,
        clock,
        ("sent", sip("REGISTER sip:lab.test SIP/2.0", call_id, f"{cseq} REGISTER", to=aor)),
        ("received", sip("SIP/2.0 401 Unauthorized", call_id, f"{cseq} REGISTER", to=aor)),
        ("sent", sip("REGISTER sip:lab.test SIP/2.0", call_id, f"{cseq + 1} REGISTER", to=aor)),
        ("received", sip("SIP/2.0 200 OK", call_id, f"{cseq + 1} REGISTER", to=aor)),
    )


def states(trace: SipTrace, call_id: str, *steps: tuple[str, bytes]) -> list[str | None]:
    """The call's state after each step."""
    out: list[str | None] = []
    for direction, data in steps:
        trace.add(direction, data, US, PROXY)  # type: ignore[arg-type]
        flow = next(f for f in trace.flows() if f.flow_id == call_id)
        out.append(flow.call_state.value if flow.call_state else None)
    return out


def by_id(trace: SipTrace) -> dict[str, FlowSummary]:
    return {f.flow_id: f for f in trace.flows()}


def test_flows_summarise_a_registration_an_options_and_a_call_newest_first() -> None:
    clock = Clock()
    trace = SipTrace(clock)
    registration(trace, clock, 1)
    clock.at += 10
    feed(
        trace,
        clock,
        ("received", sip("OPTIONS sip:alice@127.0.0.1:5070 SIP/2.0", "opt-1", "7 OPTIONS")),
        ("sent", sip("SIP/2.0 200 OK", "opt-1", "7 OPTIONS")),
    )
    clock.at += 10
    invite, call = "INVITE sip:bob@lab.test SIP/2.0", "call-1"
    feed(
        trace,
        clock,
        ("sent", sip(invite, call, "1 INVITE", compact=True)),
        ("received", sip("SIP/2.0 407 Proxy Authentication Required", call, "1 INVITE")),
        ("sent", sip("ACK sip:bob@lab.test SIP/2.0", call, "1 ACK")),
        ("sent", sip(invite, call, "2 INVITE")),
        ("received", sip("SIP/2.0 100 Trying", call, "2 INVITE")),
        ("received", sip("SIP/2.0 180 Ringing", call, "2 INVITE")),
    )
    ringing = by_id(trace)[call]
    assert (ringing.call_state, ringing.last_status) == (CallFlowState.SETUP, "180 Ringing")
    feed(
        trace,
        clock,
        ("received", sip("SIP/2.0 200 OK", call, "2 INVITE")),
        ("sent", sip("ACK sip:bob@10.0.0.2 SIP/2.0", call, "2 ACK")),
    )
    assert by_id(trace)[call].call_state is CallFlowState.IN_CALL
    feed(
        trace,
        clock,
        ("sent", sip("BYE sip:bob@10.0.0.2 SIP/2.0", call, "3 BYE")),
        ("received", sip("SIP/2.0 200 OK", call, "3 BYE")),
    )
    flows = trace.flows()
    assert [(f.flow_id, f.method, f.message_count) for f in flows] == [
        ("call-1", "INVITE", 10),
        ("opt-1", "OPTIONS", 2),
        ("reg-1", "REGISTER", 4),
    ]
    call_flow, options, register = flows
    assert (call_flow.from_uri, call_flow.to_uri) == ("sip:alice@lab.test", "sip:bob@lab.test")
    assert (call_flow.call_state, call_flow.last_status) == (CallFlowState.COMPLETED, "200 OK")
    assert call_flow.is_call and not options.is_call and not register.is_call
    assert (options.call_state, options.last_status) == (None, "200 OK")
    assert (register.to_uri, register.last_status) == ("sip:alice@lab.test", "200 OK")
    assert register.remote == PROXY and register.started_at < register.last_at < options.started_at
    assert call_flow.last_at == clock.at
    assert [m.first_line for m in trace.messages("opt-1")] == [
        "OPTIONS sip:alice@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 200 OK",
    ]


def test_a_request_nobody_answers_has_no_status_and_a_flow_can_start_with_a_response() -> None:
    clock = Clock()
    trace = SipTrace(clock)
    feed(
        trace,
        clock,
        ("sent", sip("MESSAGE sip:bob@lab.test SIP/2.0", "m1", "1 MESSAGE", body="hi")),
        ("received", sip("SIP/2.0 200 OK", "late", "4 NOTIFY", frm="sip:x@y;tag=1")),
    )
    flows = by_id(trace)
    assert (flows["m1"].method, flows["m1"].last_status) == ("MESSAGE", None)
    assert (flows["late"].method, flows["late"].from_uri) == ("NOTIFY", "sip:x@y")


def test_a_later_request_shows_its_provisional_answer_but_a_final_one_is_not_hidden() -> None:
    trace = SipTrace(Clock())
    call = "c-final"
    for direction, data in (
        ("sent", sip("INVITE sip:bob@lab.test SIP/2.0", call, "1 INVITE")),
        ("received", sip("SIP/2.0 200 OK", call, "1 INVITE")),
        ("received", sip("SIP/2.0 180 Ringing", call, "1 INVITE")),  # late, reordered
    ):
        trace.add(direction, data, US, PROXY)  # type: ignore[arg-type]
    assert by_id(trace)[call].last_status == "200 OK"
    trace.add("sent", sip("INVITE sip:bob@lab.test SIP/2.0", call, "2 INVITE"), US, PROXY)
    trace.add("received", sip("SIP/2.0 100 Trying", call, "2 INVITE"), US, PROXY)
    assert by_id(trace)[call].last_status == "100 Trying"


def test_parse_head_reads_compact_forms_and_bare_uris() -> None:
    head = parse_head(
        "SIP/2.0 486 Busy Here\nf: sip:carol@lab.test;tag=9\nt: Bob <sips:bob@lab.test>\n"
        "cseq: 3 invite\n\nbody"
    )
    assert (head.status, head.reason, head.cseq_method) == (486, "Busy Here", "INVITE")
    assert (head.from_uri, head.to_uri, head.method) == (
        "sip:carol@lab.test",
        "sips:bob@lab.test",
        None,
    )
    assert flow_input(head) is FlowInput.BUSY
    junk = parse_head("not a sip message at all")
    assert (junk.method, junk.status, junk.from_uri, junk.cseq_method) == (None, None, "", None)


def test_every_state_and_input_pair_is_in_the_table() -> None:
    pairs = set(itertools.product(CallFlowState, FlowInput))
    assert set(TRANSITIONS) == pairs


@pytest.mark.parametrize(
    ("answers", "want"),
    [
        ([("received", "SIP/2.0 486 Busy Here", "1 INVITE")], ["CALL SETUP", "BUSY"]),
        ([("received", "SIP/2.0 600 Busy Everywhere", "1 INVITE")], ["CALL SETUP", "BUSY"]),
        ([("received", "SIP/2.0 302 Moved Temporarily", "1 INVITE")], ["CALL SETUP", "DIVERTED"]),
        ([("received", "SIP/2.0 603 Decline", "1 INVITE")], ["CALL SETUP", "REJECTED"]),
        (
            [
                ("sent", "CANCEL sip:bob@lab.test SIP/2.0", "1 CANCEL"),
                ("received", "SIP/2.0 200 OK", "1 CANCEL"),
                ("received", "SIP/2.0 487 Request Terminated", "1 INVITE"),
            ],
            ["CALL SETUP", "CALL SETUP", "CALL SETUP", "CANCELLED"],
        ),
        (
            [  # answered; a re-INVITE refused with 491 leaves the call up; then BYE
                ("received", "SIP/2.0 200 OK", "1 INVITE"),
                ("sent", "INVITE sip:bob@10.0.0.2 SIP/2.0", "2 INVITE"),
                ("received", "SIP/2.0 491 Request Pending", "2 INVITE"),
                ("received", "BYE sip:alice@127.0.0.1 SIP/2.0", "1 BYE"),
                ("received", "SIP/2.0 200 OK", "1 INVITE"),  # a late retransmission
            ],
            ["CALL SETUP", "IN CALL", "IN CALL", "IN CALL", "COMPLETED", "COMPLETED"],
        ),
    ],
)
def test_how_a_call_went(answers: list[tuple[str, str, str]], want: list[str]) -> None:
    call = "c-how"
    steps = [("sent", sip("INVITE sip:bob@lab.test SIP/2.0", call, "1 INVITE"))]
    steps += [(d, sip(line, call, cseq)) for d, line, cseq in answers]
    assert states(SipTrace(Clock()), call, *steps) == want


def test_keep_alive_pings_never_push_the_calls_out_nor_calls_the_registration() -> None:
    clock = Clock()
    trace = SipTrace(clock, max_call_flows=3, max_register_flows=1, max_other_flows=3)
    for n in range(3):
        feed(trace, clock, ("received", sip("INVITE sip:a SIP/2.0", f"call-{n}", "1 INVITE")))
    registration(trace, clock, 1)
    for n in range(20):  # a proxy pinging with a new Call-ID each time
        feed(trace, clock, ("received", sip("OPTIONS sip:a SIP/2.0", f"ping-{n}", "1 OPTIONS")))
        if n % 10 == 9:
            registration(trace, clock, 10 + 2 * n)  # a refresh now and then
    for n in range(3, 8):  # more calls than kept: the oldest calls go, the rest stay
        feed(trace, clock, ("received", sip("INVITE sip:a SIP/2.0", f"call-{n}", "1 INVITE")))
    kept = [f.flow_id for f in trace.flows()]
    assert kept == ["call-7", "call-6", "call-5", "ping-19", "ping-18", "ping-17", "reg-1"]
    assert by_id(trace)["reg-1"].message_count == 12  # the first registration and 2 refreshes
    registration(trace, clock, 100, call_id="reg-2")  # another account: the older one goes
    assert [f.flow_id for f in trace.flows() if f.method == "REGISTER"] == ["reg-2"]


def test_a_day_of_refreshes_pings_and_calls_stays_within_the_bounds() -> None:
    """24 hours: a REGISTER refresh every 60 s (challenged each time: 4 messages), the proxy's
    OPTIONS ping every 30 s (a new Call-ID each), a call every 10 minutes. Memory stops growing
    once the bounds are reached (the calls' by hour 9)."""
    clock = Clock()
    trace = SipTrace(clock)
    sizes: dict[int, int] = {}
    tracemalloc.start()
    try:
        for minute in range(24 * 60):
            registration(trace, clock, 1 + 2 * minute)
            for half in range(2):
                ping = f"ping-{2 * minute + half}"
                feed(
                    trace,
                    clock,
                    ("received", sip("OPTIONS sip:alice@127.0.0.1 SIP/2.0", ping, "1 OPTIONS")),
                    ("sent", sip("SIP/2.0 200 OK", ping, "1 OPTIONS")),
                )
            if minute % 10 == 0:
                call = f"call-{minute // 10}"
                feed(
                    trace,
                    clock,
                    ("sent", sip("INVITE sip:bob@lab.test SIP/2.0", call, "1 INVITE")),
                    ("received", sip("SIP/2.0 200 OK", call, "1 INVITE")),
                    ("sent", sip("ACK sip:bob@lab.test SIP/2.0", call, "1 ACK")),
                    ("sent", sip("BYE sip:bob@lab.test SIP/2.0", call, "2 BYE")),
                    ("received", sip("SIP/2.0 200 OK", call, "2 BYE")),
                )
            if minute + 1 in (12 * 60, 24 * 60):
                sizes[minute + 1] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    flows = trace.flows()
    register = next(f for f in flows if f.method == "REGISTER")
    assert register.message_count == 4 * 24 * 60  # one flow for the whole day, counted in full
    assert len(trace.messages(register.flow_id)) == tr.MAX_MESSAGES
    assert [f.flow_id for f in flows if f.is_call][:: tr.MAX_CALL_FLOWS - 1] == [
        "call-143",
        "call-94",
    ]  # the last 50 calls
    assert sum(f.method == "OPTIONS" for f in flows) == tr.MAX_OTHER_FLOWS
    kept_chars = sum(len(m.text) for f in flows for m in trace.messages(f.flow_id))
    assert trace.stored_chars == kept_chars <= tr.MAX_TOTAL_CHARS
    # From hour 12 to hour 24 as many messages again went by; the memory stays put.
    assert sizes[24 * 60] < sizes[12 * 60] * 1.05


def test_the_total_bound_drops_the_least_recently_active_flows_then_old_messages() -> None:
    clock = Clock()
    trace = SipTrace(clock, max_total_chars=3000)
    filler = "x" * 700
    for name in ("a", "b", "c"):
        feed(trace, clock, ("sent", sip("MESSAGE sip:a SIP/2.0", name, "1 MESSAGE", body=filler)))
    feed(trace, clock, ("sent", sip("MESSAGE sip:a SIP/2.0", "a", "2 MESSAGE", body=filler)))
    assert trace.stored_chars <= 3000 and [f.flow_id for f in trace.flows()] == ["c", "a"]
    for n in range(3, 8):  # one flow alone over the bound keeps its newest messages
        feed(trace, clock, ("sent", sip("MESSAGE sip:a SIP/2.0", "a", f"{n} MESSAGE", body=filler)))
    kept = trace.messages("a")
    assert trace.stored_chars <= 3000 and [f.flow_id for f in trace.flows()] == ["a"]
    assert len(kept) == 3 and "CSeq: 7 MESSAGE" in kept[-1].text
    assert trace.stored_chars == sum(len(m.text) for m in kept)
    assert by_id(trace)["a"].message_count == 7


_FROM = re.compile(r"^(?:from|f)[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_TO = re.compile(r"^(?:to|t)[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_CSEQ = re.compile(r"^cseq[ \t]*:[ \t]*\d+[ \t]+(\S+)", re.IGNORECASE | re.MULTILINE)


@given(
    st.lists(
        st.sampled_from(
            [
                "From",
                "f",
                "TO",
                "t",
                "CSeq",
                "cseq ",
                "Via",
                ":",
                " ",
                "\t",
                "\n",
                "\n\n",
                "12",
                " INVITE",
                "bye",
                "<sip:a@b>",
                ";tag=1",
                "sip:c@d",
                "x",
            ]
        ),
        max_size=40,
    ).map(lambda parts: "SIP/2.0 200 OK\n" + "".join(parts))
)
def test_parse_head_reads_what_a_search_per_header_reads(text: str) -> None:
    # parse_head reads the head in one pass; the first From, To and well-formed CSeq line win,
    # as a multi-line search for each would find them.
    head = text.split("\n\n", 1)[0]
    sender, receiver, cseq = _FROM.search(head), _TO.search(head), _CSEQ.search(head)
    parsed = parse_head(text)
    assert parsed.cseq_method == (cseq.group(1).upper() if cseq else None)
    assert parsed.from_uri == (_uri(sender.group(1)) if sender else "")
    assert parsed.to_uri == (_uri(receiver.group(1)) if receiver else "")
