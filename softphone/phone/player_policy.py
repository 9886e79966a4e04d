"""What the RTSP player does around its sessions, as pure functions: when a playing session counts
as broken, which refusals end the command, and what follows a session's end (reconnect with
back-off, fall back to TCP, follow a redirect, ask a busy server again, or give up). Outcomes,
counters and times go in by argument; decisions come out. phone/player_session.py reports how a
session ended, phone/player.py carries the decisions out.

- ``--transport auto`` starts with UDP and switches to TCP interleaved when a SETUP is answered
  461 (or 400, which cameras send instead), or when no media arrives within ``UDP_NO_MEDIA_S``
  after PLAY: NAT and firewalls drop UDP silently (gortsplib switches the same way).
- Refusals before anything played (unreachable, 401 after the credentials were tried, 404, no
  supported codec, 461 with a forced transport) end the player with a clear reason, and within
  ``STARTUP_LIMIT_S`` of the player starting (``Player.run``; ``softphone play`` starts it at
  once): a person waiting for a picture learns why within 15 s, and a script gets its exit code.
  Each player counts from its own start: a stream opened in the TUI long after the command
  started gets the whole limit.
- A session that played and then broke (network loss, media stopped for ``MEDIA_TIMEOUT_S``) is
  reconnected with exponential back-off (1, 2, 4 … 30 s), saying so.
- A server that closed the connection, or refuses new ones, is up and restarting (its host
  answers): it is asked again after 0.25, 0.5, 1, then every 2 s for about a minute, so the
  picture is back within ~2 s of the server, not up to 4-8 s later as with the back-off above;
  a connection refused on the LAN costs nothing. After that minute the slow back-off applies.
- 503 before anything played is asked again after 0.25, 0.5, 0.75 and 1 s: servers answer it
  while starting up or still tearing down a session.
- 3xx redirects are followed, at most ``MAX_REDIRECTS`` in a row.

The records are NamedTuples, not dataclasses: they load with the player on the way to PLAY, where
a frozen dataclass costs ~0.5 ms to make and a NamedTuple a tenth of that (phone/preload.py).
"""

from __future__ import annotations

import dataclasses
from enum import Enum, auto
from typing import Final, Literal, NamedTuple, TypeAlias, assert_never

from softphone.rtsp.status import explain
from softphone.rtsp.url import RtspUrl

TransportChoice: TypeAlias = Literal["auto", "udp", "tcp"]
TransportName: TypeAlias = Literal["udp", "tcp"]

STARTUP_LIMIT_S: Final = 14.0  # refusals are reported within 15 s of the player starting
UDP_NO_MEDIA_S: Final = 3.0  # auto transport: UDP silent this long after PLAY -> TCP
MEDIA_TIMEOUT_S: Final = 10.0  # a playing session with no media this long is broken
MAX_REDIRECTS: Final = 5
MAX_BUSY_RETRIES: Final = 4  # 503 before anything played: ask again after 0.25, 0.5, 0.75, 1 s
BUSY_RETRY_S: Final = 0.25
BACKOFF_S: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
RESTART_BACKOFF_S: Final = (0.25, 0.5, 1.0, 2.0)  # then 2 s, while the server is restarting
RESTART_ATTEMPTS: Final = 32  # ~a minute of those; a server away longer is not restarting


class Outcome(Enum):
    """How a session ended."""

    ENDED = auto()  # the server ended the presentation (RTCP BYE on every stream, TEARDOWN)
    REFUSED = auto()  # a refusal: no point in asking the same again
    BROKEN = auto()  # the connection or the media broke: worth reconnecting if it had played
    CLOSED = auto()  # the server closed the connection or refused a new one: it is restarting
    BUSY = auto()  # 503: the server is starting up or still tearing down; ask again soon
    USE_TCP = auto()  # UDP is not usable (461, or no UDP media): ask again over TCP
    REDIRECT = auto()  # 3xx: ask ``location`` instead


class SessionEnd(NamedTuple):
    """A session's outcome, with the reason a person reads and the RTSP status behind it."""

    outcome: Outcome
    reason: str
    status: int | None = None
    location: RtspUrl | None = None  # where a REDIRECT sends us


class Progress(NamedTuple):
    """What the policy carries from one session to the next."""

    url: RtspUrl
    transport: TransportName
    played: bool = False  # something played since the player started
    attempt: int = 0  # reconnects since the last session that played
    busy_retries: int = 0
    redirects: int = 0


class Finish(NamedTuple):
    """Stop: the server ended the presentation. Not a failure."""

    reason: str


class GiveUp(NamedTuple):
    """Stop and say why: a refusal, or too many redirects."""

    reason: str
    status: int | None = None


class Retry(NamedTuple):
    """Start the next session with ``progress`` (its URL and transport) after ``delay_s``.
    ``notice`` is said at once (a redirect, the switch to TCP); ``reconnecting`` is the reason a
    session that played broke, announced as a reconnect (attempt ``progress.attempt``)."""

    progress: Progress
    delay_s: float = 0.0
    notice: str | None = None
    reconnecting: str | None = None


Step: TypeAlias = Finish | GiveUp | Retry


def first_progress(url: RtspUrl, choice: TransportChoice) -> Progress:
    """Before the first session: ``auto`` starts with UDP."""
    return Progress(url=url, transport="tcp" if choice == "tcp" else "udp")


def backoff_s(attempt: int) -> float:
    """The wait before reconnect number ``attempt + 1``: 1, 2, 4, 8, 16, then 30 s each."""
    return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]


def restart_backoff_s(attempt: int) -> float:
    """The wait before reconnect number ``attempt + 1`` to a server that closed the connection or
    refused it: 0.25, 0.5, 1, then 2 s for the first ``RESTART_ATTEMPTS``, then as
    :func:`backoff_s`."""
    if attempt < RESTART_ATTEMPTS:
        return RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
    return backoff_s(attempt)


def startup_left_s(progress: Progress, elapsed_s: float) -> float | None:
    """How long the next session may take to play before it counts as a refusal, ``elapsed_s``
    after the player started; None once something played (then no limit applies)."""
    if progress.played:
        return None
    return max(STARTUP_LIMIT_S - elapsed_s, 0.0)


def startup_expired(progress: Progress) -> GiveUp:
    """Nothing played within STARTUP_LIMIT_S: the reason given."""
    url = progress.url
    return GiveUp(reason=f"no answer from {url.host}:{url.port} within {STARTUP_LIMIT_S:.0f} s")


def next_step(
    end: SessionEnd, progress: Progress, *, session_played: bool, choice: TransportChoice
) -> Step:
    """What follows a session that ended with ``end``; ``session_played`` when its PLAY was
    answered, ``choice`` the transport the user asked for."""
    played = progress.played or session_played
    progress = progress._replace(played=played, attempt=0 if session_played else progress.attempt)
    match end.outcome:
        case Outcome.ENDED:
            return Finish(reason=end.reason)
        case Outcome.REDIRECT:
            assert end.location is not None  # SessionEnd of a REDIRECT carries it
            if progress.redirects >= MAX_REDIRECTS:
                return GiveUp(reason=f"too many redirects (last to {end.location})")
            url = follow_redirect(progress.url, end.location)
            return Retry(
                progress=progress._replace(url=url, redirects=progress.redirects + 1),
                notice=f"redirected to {end.location}",
            )
        case Outcome.USE_TCP:
            if choice != "auto" or progress.transport == "tcp":
                return GiveUp(reason=end.reason, status=end.status)
            return Retry(
                progress=progress._replace(transport="tcp"),
                notice=f"{end.reason}: switching to TCP",
            )
        case Outcome.BUSY if not played and progress.busy_retries < MAX_BUSY_RETRIES:
            # quirk: GStreamer answers 503 to a DESCRIBE that follows a TEARDOWN of the same
            # shared media at once; cameras do it while booting.
            busy_retries = progress.busy_retries + 1
            return Retry(
                progress=progress._replace(busy_retries=busy_retries),
                delay_s=BUSY_RETRY_S * busy_retries,
            )
        case Outcome.REFUSED | Outcome.BROKEN | Outcome.CLOSED | Outcome.BUSY:
            if not played:
                return GiveUp(reason=end.reason, status=end.status)
            wait = restart_backoff_s if end.outcome is Outcome.CLOSED else backoff_s
            return Retry(
                progress=progress._replace(attempt=progress.attempt + 1),
                delay_s=wait(progress.attempt),
                reconnecting=end.reason,
            )
        case _:
            assert_never(end.outcome)


def follow_redirect(url: RtspUrl, location: RtspUrl) -> RtspUrl:
    """The URL to ask next: ``location``, with the credentials of ``url`` when it names the same
    host without credentials of its own (a camera redirecting to another path of itself)."""
    if location.username is None and location.host == url.host:
        return dataclasses.replace(location, username=url.username, password=url.password)
    return location


# --- inside a session ----------------------------------------------------------------------------


def refused_before_play(end: SessionEnd, *, played: bool) -> SessionEnd:
    """Before anything played, a broken or closed connection is a refusal of this URL, not a
    reason to reconnect."""
    if end.outcome in (Outcome.BROKEN, Outcome.CLOSED) and not played:
        return SessionEnd(Outcome.REFUSED, end.reason, end.status)
    return end


def after_refusal(
    method: str, status: int, reason: str, *, transport: TransportName, played: bool
) -> SessionEnd | Literal["ignore", "warn"]:
    """A request answered with an error ``status`` in a session that has ``played`` (or not):
    how the session ends, or whether it goes on with a warning ("warn") or without a word."""
    if method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER") and played:
        return "ignore"  # keep-alives that a camera does not like: not a reason to stop
    if status == 461 or (method == "SETUP" and status == 400 and transport == "udp"):
        return SessionEnd(
            Outcome.USE_TCP, f"the server refuses RTP over UDP ({status} {reason})", status
        )
    if method == "PAUSE":
        return "warn"
    text = refusal_text(method, status)
    if status == 503:
        return SessionEnd(Outcome.BUSY, text, status)
    if status == 454 and played:
        return SessionEnd(Outcome.BROKEN, "the server forgot the session (454)", status)
    return SessionEnd(Outcome.REFUSED, text, status)


def refusal_text(method: str, status: int) -> str:
    return f"{method} refused: {explain(status)}"


# --- statistics -----------------------------------------------------------------------------------


class Tally(NamedTuple):
    """Where a rate counts from: the time and the pictures counted by then."""

    at: float
    frames: int


def frame_rate(since: Tally, now: float, frames: int) -> tuple[float, float]:
    """Seconds since ``since`` and pictures a second over them, ``frames`` counted by ``now``.
    A session counts from its own PLAY answer: the player's count carries what earlier sessions
    played, and the wait before a reconnect is not playing time."""
    elapsed_s = now - since.at
    return elapsed_s, (frames - since.frames) / max(elapsed_s, 1e-3)


def media_deadline(play_at: float, last_media: float | None) -> float:
    """When :func:`check_media` has something to say next."""
    if last_media is None:
        return play_at + UDP_NO_MEDIA_S
    return last_media + MEDIA_TIMEOUT_S


def check_media(
    now: float,
    *,
    play_at: float,
    last_media: float | None,
    transport: TransportName,
    choice: TransportChoice,
) -> SessionEnd | None:
    """The media watchdog of a playing session (not paused), PLAY answered at ``play_at`` and
    the last media at ``last_media``: None while all is well."""
    if last_media is None:
        if now - play_at < UDP_NO_MEDIA_S:
            return None
        if transport == "udp" and choice == "auto":
            return SessionEnd(Outcome.USE_TCP, f"no media over UDP within {UDP_NO_MEDIA_S:.0f} s")
        if now - play_at >= MEDIA_TIMEOUT_S:
            return SessionEnd(Outcome.BROKEN, f"no media within {MEDIA_TIMEOUT_S:.0f} s of PLAY")
        return None
    if now - last_media >= MEDIA_TIMEOUT_S:
        return SessionEnd(Outcome.BROKEN, f"no media for {MEDIA_TIMEOUT_S:.0f} s")
    return None
