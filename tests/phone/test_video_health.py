"""The far end's picture state (phone/video_health.py): its table, and the times in it."""

from __future__ import annotations

import itertools

from softphone.phone.video_health import (
    TRANSITIONS,
    PictureChange,
    PictureHealth,
    PictureInput,
    PictureState,
)


def test_every_state_and_input_has_a_transition() -> None:
    assert set(TRANSITIONS) == set(itertools.product(PictureState, PictureInput))


def test_after_a_failure_only_a_key_frame_shows_a_picture_again() -> None:
    h = PictureHealth()
    assert h.picture(0.0, keyframe=True)
    assert h.picture(0.1, keyframe=False)
    h.failed(0.2, "a vp8 frame does not decode")
    assert h.changes() == [PictureChange(True, "a vp8 frame does not decode")]
    assert not h.picture(0.3, keyframe=False)  # predicted from a broken reference
    h.failed(0.4, "again")
    assert h.changes() == []  # one note while it lasts
    assert h.picture(0.5, keyframe=True)
    assert h.changes() == [PictureChange(False, "the picture is back")]
    assert h.withheld == 1


def test_a_peer_that_never_sends_a_key_frame_is_shown_after_the_freeze_limit() -> None:
    h = PictureHealth(max_freeze_s=3.0)
    h.picture(0.0, keyframe=True)
    h.failed(1.0, "broken")
    assert not h.picture(3.9, keyframe=False)
    assert h.picture(4.0, keyframe=False)
    assert h.state is PictureState.GOOD


def test_no_key_frame_at_the_start_is_normal_for_a_moment_only() -> None:
    h = PictureHealth(stall_s=1.0)
    h.unusable(0.0)
    h.unusable(0.9)
    assert h.state is PictureState.WAITING and h.changes() == []
    h.unusable(1.0)
    assert h.state is PictureState.BROKEN
    assert h.changes() == [PictureChange(True, "no key frame yet")]
    assert h.picture(1.5, keyframe=True)
