"""The player's policy around its RTSP sessions, with no server and no loop: every outcome, the
reconnect back-off (growth, cap, reset after a session that played), the start-up limit and the
fall-back to TCP, on a clock walked by argument."""

from __future__ import annotations

import pytest

from softphone.phone.player_policy import (
    MEDIA_TIMEOUT_S,
    RESTART_ATTEMPTS,
    STARTUP_LIMIT_S,
    UDP_NO_MEDIA_S,
    Finish,
    GiveUp,
    Outcome,
    Progress,
    Retry,
    SessionEnd,
    Step,
    Tally,
    TransportChoice,
    after_refusal,
    backoff_s,
    check_media,
    first_progress,
    frame_rate,
    media_deadline,
    next_step,
    refused_before_play,
    restart_backoff_s,
    startup_expired,
    startup_left_s,
)
from softphone.rtsp.url import RtspUrl

CAM = RtspUrl.parse("rtsp://admin:secret@10.0.0.5:554/live")
START = first_progress(CAM, "auto")
PLAYED = START._replace(played=True)


def step(
    outcome: Outcome,
    progress: Progress = START,
    *,
    session_played: bool = False,
    choice: TransportChoice = "auto",
    status: int | None = None,
    location: RtspUrl | None = None,
) -> Step:
    end = SessionEnd(outcome, f"{outcome.name.lower()} reason", status, location)
    return next_step(end, progress, session_played=session_played, choice=choice)


# --- every outcome --------------------------------------------------------------------------------
def test_the_first_session_uses_udp_unless_tcp_is_asked_for() -> None:
    assert first_progress(CAM, "auto") == Progress(url=CAM, transport="udp")
    assert first_progress(CAM, "udp").transport == "udp"
    assert first_progress(CAM, "tcp").transport == "tcp"


@pytest.mark.parametrize("progress", [START, PLAYED])
def test_the_server_ending_the_presentation_is_not_a_failure(progress: Progress) -> None:
    assert step(Outcome.ENDED, progress) == Finish(reason="ended reason")


@pytest.mark.parametrize("outcome", [Outcome.REFUSED, Outcome.BROKEN, Outcome.CLOSED])
def test_before_anything_played_a_refusal_or_break_ends_the_command(outcome: Outcome) -> None:
    assert step(outcome, status=404) == GiveUp(reason=f"{outcome.name.lower()} reason", status=404)


@pytest.mark.parametrize("outcome", [Outcome.REFUSED, Outcome.BROKEN, Outcome.BUSY])
def test_after_something_played_the_session_is_reconnected(outcome: Outcome) -> None:
    result = step(outcome, PLAYED)
    assert result == Retry(
        progress=PLAYED._replace(attempt=1),
        delay_s=1.0,
        reconnecting=f"{outcome.name.lower()} reason",
    )


def test_the_session_that_just_played_counts_as_played() -> None:
    """PLAY answered, then the media stopped: a reconnect, even on the first session."""
    result = step(Outcome.BROKEN, START, session_played=True)
    assert isinstance(result, Retry) and result.progress.played and result.delay_s == 1.0


def test_a_busy_server_is_asked_again_four_times_then_it_is_a_refusal() -> None:
    progress, delays = START, []
    for _ in range(4):
        result = step(Outcome.BUSY, progress, status=503)
        assert isinstance(result, Retry) and result.notice is None and result.reconnecting is None
        delays.append(result.delay_s)
        progress = result.progress
    assert delays == [0.25, 0.5, 0.75, 1.0]
    assert step(Outcome.BUSY, progress, status=503) == GiveUp(reason="busy reason", status=503)


@pytest.mark.parametrize("choice", ["auto", "udp", "tcp"])
def test_udp_refused_falls_back_to_tcp_only_with_auto(choice: TransportChoice) -> None:
    progress = first_progress(CAM, choice)
    result = step(Outcome.USE_TCP, progress, choice=choice, status=461)
    if choice == "auto":
        assert result == Retry(
            progress=progress._replace(transport="tcp"),
            notice="use_tcp reason: switching to TCP",
        )
        # and TCP refused too is the end, played or not
        assert isinstance(result, Retry)
        again = step(Outcome.USE_TCP, result.progress._replace(played=True), status=461)
        assert again == GiveUp(reason="use_tcp reason", status=461)
    else:
        assert result == GiveUp(reason="use_tcp reason", status=461)


def test_a_redirect_is_followed_with_the_credentials_for_the_same_host() -> None:
    same_host = RtspUrl.parse("rtsp://10.0.0.5:554/other")
    result = step(Outcome.REDIRECT, location=same_host)
    assert isinstance(result, Retry) and result.delay_s == 0.0
    assert result.notice == "redirected to rtsp://10.0.0.5/other"
    assert result.progress.url == RtspUrl.parse("rtsp://admin:secret@10.0.0.5:554/other")
    assert result.progress.redirects == 1

    elsewhere = RtspUrl.parse("rtsp://10.0.0.9/live")
    result = step(Outcome.REDIRECT, location=elsewhere)
    assert isinstance(result, Retry) and result.progress.url == elsewhere  # no credentials there


def test_the_sixth_redirect_in_a_row_is_refused() -> None:
    progress = START
    target = RtspUrl.parse("rtsp://10.0.0.5:554/loop")
    for n in range(5):
        result = step(Outcome.REDIRECT, progress, location=target)
        assert isinstance(result, Retry), n
        progress = result.progress
    assert step(Outcome.REDIRECT, progress, location=target) == GiveUp(
        reason="too many redirects (last to rtsp://10.0.0.5/loop)"
    )


# --- back-off ---------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_30_s_and_restarts_after_a_session_that_plays() -> None:
    """A camera that played, then went away for good; then came back and broke again."""
    progress, attempts = PLAYED, []
    result = step(Outcome.BROKEN, progress, session_played=True)  # it played, then broke
    for _ in range(8):
        assert isinstance(result, Retry) and result.reconnecting == "broken reason"
        progress = result.progress
        attempts.append((progress.attempt, result.delay_s))
        result = step(Outcome.BROKEN, progress)  # the reconnect fails (connect refused)
    assert attempts == list(zip(range(1, 9), [1, 2, 4, 8, 16, 30, 30, 30], strict=True))
    # the camera is back: the session plays, then breaks again; the back-off starts over
    assert isinstance(result, Retry)
    again = step(Outcome.BROKEN, result.progress, session_played=True)
    assert isinstance(again, Retry) and again.delay_s == 1.0 and again.progress.attempt == 1


def test_backoff_table() -> None:
    assert [backoff_s(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    fast = [restart_backoff_s(n) for n in range(RESTART_ATTEMPTS + 2)]
    assert fast[:5] == [0.25, 0.5, 1, 2, 2]
    assert set(fast[4:RESTART_ATTEMPTS]) == {2.0} and fast[RESTART_ATTEMPTS:] == [30, 30]


def reconnect_times(down_at: float, back_at: float, *, breaks: Outcome) -> list[float]:
    """The player's attempts, on a clock walked by the policy's delays, when a server that was
    playing stops at ``down_at`` and listens again at ``back_at``: its connection ends with
    ``breaks``, attempts before ``back_at`` are refused (CLOSED), the first one after plays."""
    result = step(breaks, PLAYED, session_played=True)
    now, attempts = down_at, []
    while isinstance(result, Retry):
        now += result.delay_s
        attempts.append(now)
        if now >= back_at:
            break
        result = step(Outcome.CLOSED, result.progress)  # connection refused
    return attempts


def test_a_restarting_server_is_asked_again_within_3_s_of_listening_again() -> None:
    """The server closed the connection (it stopped) and is away for 0 to 50 s: the player
    connects again within 2 s of its coming back, however long it was away."""
    for tenths in range(0, 500):
        back_at = 100.0 + tenths / 10
        attempts = reconnect_times(100.0, back_at, breaks=Outcome.CLOSED)
        assert attempts[-1] >= back_at
        assert attempts[-1] - back_at <= 2.0, (back_at, attempts)


def test_a_network_that_broke_keeps_the_slow_back_off() -> None:
    """No answer at all (a cable pulled, connects that time out) is not a server restarting:
    1, 2, 4 s as before; a refusal in between is a server, and is asked again sooner."""
    result, delays = step(Outcome.BROKEN, PLAYED, session_played=True), []
    for _ in range(3):
        assert isinstance(result, Retry)
        delays.append(result.delay_s)
        result = step(Outcome.BROKEN, result.progress)
    assert delays == [1.0, 2.0, 4.0]
    assert isinstance(result, Retry)
    refused = step(Outcome.CLOSED, result.progress)
    assert isinstance(refused, Retry) and refused.delay_s == 2.0


# --- statistics, on a walked clock -------------------------------------------------------------------
def test_the_frame_rate_counts_from_where_it_was_told() -> None:
    """A session counts from its own PLAY: whatever the player counted before (earlier
    sessions) and however long the reconnect took, 25 pictures a second are 25 fps."""
    for before in (0, 3, 125, 10_000):
        for play_at in (0.0, 4.1, 1000.0):
            since = Tally(at=play_at, frames=before)
            frames, now = before, play_at
            for tick in range(1, 6):
                frames += 25
                now = play_at + tick
                elapsed, fps = frame_rate(since, now, frames)
                assert elapsed == pytest.approx(1.0) and fps == pytest.approx(25.0)
                since = Tally(at=now, frames=frames)
    # a tick late (a busy loop): the rate is over the time it really covered
    assert frame_rate(Tally(at=10.0, frames=100), 11.5, 130) == (1.5, 20.0)


# --- the start-up limit, on a walked clock -----------------------------------------------------------
def test_the_start_up_limit_counts_from_the_command_start() -> None:
    assert STARTUP_LIMIT_S < 15.0  # refusals are reported within 15 s of the command starting
    assert [startup_left_s(START, t) for t in (0.0, 5.0, 13.5, 14.0, 20.0)] == [
        14.0,
        9.0,
        0.5,
        0.0,
        0.0,
    ]
    assert startup_left_s(PLAYED, 0.0) is None  # once something played, no limit
    assert startup_expired(START) == GiveUp(reason="no answer from 10.0.0.5:554 within 14 s")


def test_a_server_that_stays_busy_is_reported_within_15_s() -> None:
    """503 to every DESCRIBE, each answered 2 s after connecting (a slow, booting camera): the
    retries fit in the start-up limit and the refusal comes before it."""
    now, progress = 0.0, START
    while True:
        left = startup_left_s(progress, now)
        assert left is not None
        session_s = 2.0
        if session_s >= left:  # the limit comes first: the player gives up with it
            now += left
            result: Step = startup_expired(progress)
            break
        now += session_s
        result = step(Outcome.BUSY, progress, status=503)
        if not isinstance(result, Retry):
            break
        progress = result.progress
        now += result.delay_s
    assert result == GiveUp(reason="busy reason", status=503)
    assert now == 5 * 2.0 + 0.25 + 0.5 + 0.75 + 1.0  # 12.5 s
    assert now < 15.0


def test_a_server_that_never_answers_is_reported_at_the_limit() -> None:
    """Each session hangs (no answer at all): the first one is cut at the start-up limit."""
    now, progress = 0.0, START
    left = startup_left_s(progress, now)
    assert left == STARTUP_LIMIT_S
    now += left
    assert startup_expired(progress).reason.startswith("no answer from 10.0.0.5:554")
    assert now < 15.0


# --- in a session: refusals and the media watchdog --------------------------------------------------
@pytest.mark.parametrize(
    ("method", "status", "transport", "played", "expected"),
    [
        ("SETUP", 461, "udp", False, Outcome.USE_TCP),
        ("SETUP", 461, "tcp", False, Outcome.USE_TCP),  # the policy then gives up over TCP
        ("SETUP", 400, "udp", False, Outcome.USE_TCP),  # cameras answer 400 instead of 461
        ("SETUP", 400, "tcp", False, Outcome.REFUSED),
        ("DESCRIBE", 503, "udp", False, Outcome.BUSY),
        ("DESCRIBE", 404, "udp", False, Outcome.REFUSED),
        ("PLAY", 454, "udp", True, Outcome.BROKEN),  # the server forgot a playing session
        ("PLAY", 454, "udp", False, Outcome.REFUSED),
        ("OPTIONS", 501, "udp", False, Outcome.REFUSED),
        ("GET_PARAMETER", 501, "udp", True, "ignore"),  # a keep-alive the camera does not like
        ("SET_PARAMETER", 400, "tcp", True, "ignore"),
        ("PAUSE", 455, "udp", True, "warn"),  # a live stream cannot pause: say so, go on
    ],
)
def test_what_a_refused_request_means(
    method: str, status: int, transport: str, played: bool, expected: object
) -> None:
    verdict = after_refusal(method, status, "Nope", transport=transport, played=played)  # type: ignore[arg-type]
    if isinstance(verdict, SessionEnd):
        assert verdict.outcome is expected and verdict.status == status
    else:
        assert verdict == expected


def test_refusal_reasons_read_well() -> None:
    assert after_refusal("SETUP", 461, "Unsupported Transport", transport="udp", played=False) == (
        SessionEnd(
            Outcome.USE_TCP, "the server refuses RTP over UDP (461 Unsupported Transport)", 461
        )
    )
    refused = after_refusal("DESCRIBE", 404, "Not Found", transport="udp", played=False)
    assert refused == SessionEnd(
        Outcome.REFUSED,
        "DESCRIBE refused: 404 Not Found: there is no stream at this URL (check the path)",
        404,
    )


def test_a_connection_that_breaks_before_anything_played_is_a_refusal() -> None:
    broken = SessionEnd(Outcome.BROKEN, "connection lost", None)
    assert refused_before_play(broken, played=False) == SessionEnd(
        Outcome.REFUSED, "connection lost"
    )
    assert refused_before_play(broken, played=True) == broken
    busy = SessionEnd(Outcome.BUSY, "503", 503)
    assert refused_before_play(busy, played=False) == busy


def test_auto_switches_to_tcp_when_udp_stays_silent_for_3_s() -> None:
    play_at = 50.0
    assert media_deadline(play_at, None) == play_at + UDP_NO_MEDIA_S
    for now in (50.0, 51.0, 52.99):
        assert (
            check_media(now, play_at=play_at, last_media=None, transport="udp", choice="auto")
            is None
        )
    assert check_media(53.0, play_at=play_at, last_media=None, transport="udp", choice="auto") == (
        SessionEnd(Outcome.USE_TCP, "no media over UDP within 3 s")
    )


@pytest.mark.parametrize(("transport", "choice"), [("udp", "udp"), ("tcp", "tcp"), ("tcp", "auto")])
def test_without_auto_udp_silence_is_a_break_after_10_s(transport: str, choice: str) -> None:
    play_at = 50.0
    for now in (53.0, 59.99):
        assert (
            check_media(now, play_at=play_at, last_media=None, transport=transport, choice=choice)  # type: ignore[arg-type]
            is None
        )
    assert check_media(
        60.0,
        play_at=play_at,
        last_media=None,
        transport=transport,  # type: ignore[arg-type]
        choice=choice,  # type: ignore[arg-type]
    ) == SessionEnd(Outcome.BROKEN, "no media within 10 s of PLAY")


def test_media_that_stops_for_10_s_breaks_the_session() -> None:
    last = 80.0
    assert media_deadline(50.0, last) == last + MEDIA_TIMEOUT_S
    assert check_media(89.9, play_at=50.0, last_media=last, transport="udp", choice="auto") is None
    assert check_media(90.0, play_at=50.0, last_media=last, transport="udp", choice="auto") == (
        SessionEnd(Outcome.BROKEN, "no media for 10 s")
    )
