"""The RTSP client's state machine (RFC 2326 §A.1), as data.

§A.1 gives a client three states (Init, Ready, Playing); the states between a request and its
response are made explicit here, so that the table says which requests may be sent when, and
what each answer leads to. ``RtspClient`` (rtsp/client.py) applies it with :func:`next_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import Final

from softphone.rtsp.errors import LocalProtocolError


class State(Enum):
    INIT = auto()  # nothing sent yet
    QUERYING = auto()  # OPTIONS sent at start (§10.1)
    DESCRIBING = auto()  # DESCRIBE sent (§10.2)
    DESCRIBED = auto()  # SDP known, no SETUP yet (still §A.1 Init)
    SETTING_UP = auto()  # a SETUP is outstanding (§10.4)
    READY = auto()  # §A.1 Ready: set up, not playing
    STARTING = auto()  # PLAY sent from READY (§10.5)
    PLAYING = auto()  # §A.1 Playing
    SEEKING = auto()  # PLAY sent while PLAYING (a new Range, §10.5)
    PAUSING = auto()  # PAUSE sent (§10.6)
    TEARING_DOWN = auto()  # TEARDOWN sent (§10.7)
    CLOSED = auto()  # torn down or redirected: this client is done
    FAILED = auto()  # a blocking request failed or timed out


class Input(Enum):
    SEND_OPTIONS = auto()
    SEND_DESCRIBE = auto()
    RECV_DESCRIBE_OK = auto()
    SEND_SETUP = auto()
    RECV_SETUP_OK = auto()
    SEND_PLAY = auto()
    RECV_PLAY_OK = auto()
    SEND_PAUSE = auto()
    RECV_PAUSE_OK = auto()
    SEND_TEARDOWN = auto()
    RECV_TEARDOWN_REPLY = auto()  # any final response: the session is gone either way
    RECV_FAILURE = auto()  # 4xx/5xx, or 401 after the credentials were tried
    RECV_REDIRECT = auto()  # 3xx with a Location (§11.3); the driver reconnects there
    REQUEST_TIMEOUT = auto()  # no response within REQUEST_TIMEOUT_S


S, In = State, Input
_WAITING: Final = (S.QUERYING, S.DESCRIBING, S.SETTING_UP, S.STARTING, S.SEEKING, S.PAUSING)
# Any pair not listed raises LocalProtocolError (the API was called in the wrong state).
TRANSITIONS: Final[Mapping[tuple[State, Input], State]] = {
    (S.INIT, In.SEND_OPTIONS): S.QUERYING,
    (S.QUERYING, In.SEND_DESCRIBE): S.DESCRIBING,
    (S.DESCRIBING, In.RECV_DESCRIBE_OK): S.DESCRIBED,
    (S.DESCRIBED, In.SEND_SETUP): S.SETTING_UP,
    (S.SETTING_UP, In.RECV_SETUP_OK): S.READY,
    (S.READY, In.SEND_SETUP): S.SETTING_UP,  # the next track of an aggregate (§10.4)
    (S.READY, In.SEND_PLAY): S.STARTING,
    (S.STARTING, In.RECV_PLAY_OK): S.PLAYING,
    (S.PLAYING, In.SEND_PLAY): S.SEEKING,  # §A.1: Playing --PLAY--> Playing
    (S.SEEKING, In.RECV_PLAY_OK): S.PLAYING,
    (S.PLAYING, In.SEND_PAUSE): S.PAUSING,
    (S.PAUSING, In.RECV_PAUSE_OK): S.READY,  # §A.1: Playing --PAUSE--> Ready
    # Failures: a refused SETUP/DESCRIBE ends the attempt (the driver may retry over TCP on a
    # new connection); a refused PLAY/PAUSE/seek leaves the session where it was.
    (S.QUERYING, In.RECV_FAILURE): S.FAILED,
    (S.DESCRIBING, In.RECV_FAILURE): S.FAILED,
    (S.SETTING_UP, In.RECV_FAILURE): S.FAILED,
    (S.STARTING, In.RECV_FAILURE): S.READY,
    (S.SEEKING, In.RECV_FAILURE): S.PLAYING,
    (S.PAUSING, In.RECV_FAILURE): S.PLAYING,
    **{(state, In.RECV_REDIRECT): S.CLOSED for state in _WAITING},
    **{(state, In.REQUEST_TIMEOUT): S.FAILED for state in _WAITING},
    # TEARDOWN (§10.7) from anywhere but CLOSED; without a session nothing is sent and the
    # reply is taken as given at once.
    **{(state, In.SEND_TEARDOWN): S.TEARING_DOWN for state in State if state is not S.CLOSED},
    (S.TEARING_DOWN, In.RECV_TEARDOWN_REPLY): S.CLOSED,
    (S.TEARING_DOWN, In.REQUEST_TIMEOUT): S.CLOSED,
}
del S, In

# While these hold a session, keep-alives run: a session the server does not hear from for its
# timeout is dropped (RFC 2326 §12.37), and so are idle NAT bindings on the way.
KEEPALIVE_STATES: Final = frozenset(
    {
        State.SETTING_UP,
        State.READY,
        State.STARTING,
        State.PLAYING,
        State.SEEKING,
        State.PAUSING,
    }
)


def next_state(state: State, event: Input) -> State:
    """Apply ``TRANSITIONS``; a pair it does not list raises LocalProtocolError."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"{event.name} is not allowed in state {state.name}") from None
