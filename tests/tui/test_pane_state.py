"""The side pane's life cycle table: every (state, input) pair either moves or is refused, and a
new stream is opened only when no player runs."""

from __future__ import annotations

import itertools

import pytest

from softphone.tui.widgets.pane_state import (
    RUNNING,
    TRANSITIONS,
    PaneInput,
    PaneState,
    PaneStateError,
    next_state,
)


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PaneState, PaneInput)))
def test_every_pair_moves_or_is_refused(state: PaneState, event: PaneInput) -> None:
    if (state, event) in TRANSITIONS:
        assert next_state(state, event) is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(PaneStateError, match=f"{event.name} is not allowed"):
            next_state(state, event)


def test_a_stream_opens_only_when_no_player_runs() -> None:
    opening = {state for (state, event) in TRANSITIONS if event is PaneInput.OPEN}
    assert opening and not opening & RUNNING


def test_a_running_player_is_left_only_by_its_run_ending_once_stopped() -> None:
    for state in (PaneState.OPENING, PaneState.PLAYING):
        assert next_state(state, PaneInput.STOP) is PaneState.CLOSING
    leaving = {to for (state, _), to in TRANSITIONS.items() if state is PaneState.CLOSING} - {
        PaneState.CLOSING
    }
    assert leaving == {PaneState.CLOSED}
    assert next_state(PaneState.CLOSING, PaneInput.RUN_ENDED) is PaneState.CLOSED


def test_a_refused_login_waits_for_credentials_and_a_cancel_is_a_failure() -> None:
    state = next_state(PaneState.IDLE, PaneInput.OPEN)
    state = next_state(state, PaneInput.UNAUTHORIZED)
    assert next_state(state, PaneInput.RUN_ENDED) is PaneState.LOGIN
    assert next_state(state, PaneInput.OPEN) is PaneState.OPENING
    assert next_state(state, PaneInput.LOGIN_CANCELLED) is PaneState.FAILED


def test_every_state_is_reachable_from_idle() -> None:
    seen, todo = {PaneState.IDLE}, [PaneState.IDLE]
    while todo:
        state = todo.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    assert seen == set(PaneState)
