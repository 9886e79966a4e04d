"""How a call ended, from its direction, final status and whether a response came: the outcome
each front end shows (and ``softphone dial`` exits by), and the line a person reads."""

from __future__ import annotations

import pytest

from softphone.phone import events as pe
from softphone.phone.outcome import OUTCOMES, call_outcome
from softphone.phone.text import describe
from softphone.report import ExitCode

OUTGOING = [
    # (status, no response came, outcome)
    (486, False, "busy"),
    (600, False, "busy"),
    (603, False, "declined"),
    (404, False, "not_found"),
    (410, False, "not_found"),
    (604, False, "not_found"),
    (408, False, "no_answer"),  # a proxy's: nobody picked up
    (480, False, "no_answer"),
    (408, True, "network"),  # Timer B's: nothing came back at all
    (503, True, "network"),  # the transport failed
    (503, False, "network"),
    (502, False, "network"),
    (504, False, "network"),
    (487, False, "cancelled"),
    (488, False, "failed"),
    (403, False, "failed"),
]


@pytest.mark.parametrize(("status", "no_response", "outcome"), OUTGOING)
def test_outcome_of_our_call(status: int, no_response: bool, outcome: str) -> None:
    assert (
        call_outcome(direction="outgoing", answered=False, status=status, no_response=no_response)
        == outcome
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(486, "rejected"), (603, "rejected"), (487, "missed"), (480, "missed"), (500, "failed")],
)
def test_outcome_of_their_call(status: int, outcome: str) -> None:
    assert call_outcome(direction="incoming", answered=False, status=status) == outcome


def test_an_answered_call_is_answered_whatever_ended_it() -> None:
    for direction in ("outgoing", "incoming"):
        assert call_outcome(direction=direction, answered=True, status=408) == "answered"


def test_every_outcome_has_an_exit_code_and_the_classes_differ() -> None:
    codes = {outcome: ExitCode.for_outcome(outcome) for outcome in OUTCOMES}  # type: ignore[arg-type]
    assert codes["answered"] is ExitCode.OK
    distinct = ["busy", "declined", "not_found", "no_answer", "network"]
    assert len({codes[o] for o in distinct} | {ExitCode.OK, ExitCode.FAILED}) == len(distinct) + 2


def ended(status: int, reason: str, outcome: str, phrase: str = "") -> pe.CallEnded:
    return pe.CallEnded(
        call_id="c",
        status=status,
        reason=reason,
        phrase=phrase,
        outcome=outcome,  # type: ignore[arg-type]
        duration_s=0.0,
        answered=False,
    )


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            ended(603, "603 Decline (declined)", "declined", "Decline"),
            "call failed: declined (SIP 603 Decline)",
        ),
        (
            ended(486, "486 Busy Here (busy)", "busy", "Busy Here"),
            "call failed: busy (SIP 486 Busy Here)",
        ),
        (
            ended(408, "no response from 192.0.2.1:5060 (INVITE timed out)", "network"),
            "call failed: network problem: no response from 192.0.2.1:5060 (INVITE timed out)",
        ),
        (ended(487, "cancelled", "cancelled", "Request Terminated"), "call cancelled"),
        (
            ended(487, "caller cancelled", "missed", "Request Terminated"),
            "missed call: caller cancelled",
        ),
        (
            ended(486, "486 Busy Here (busy)", "rejected", "Busy Here"),
            "call rejected (SIP 486 Busy Here)",
        ),
    ],
)
def test_the_line_says_the_outcome_first_and_the_status_in_brackets(
    event: pe.CallEnded, line: str
) -> None:
    assert describe(event) == line
