"""What the RTSP client does with a response that is not a success (RFC 2326 §7.1.1, §11): the
reason a person reads, the target of a redirect, and the answer to a 401.

Authentication (RFC 2326 §D, RFC 7235, RFC 7616): which of the server's challenges to answer is
decided in softphone/auth/challenge.py, shared with SIP (the strongest algorithm we can answer
first). Each request answers at most MAX_AUTH_ATTEMPTS challenges, each nonce once, Basic once:
a server that keeps asking has refused the credentials. Once a scheme has been answered, every
later request carries credentials without waiting to be challenged again. The auth modules load
with the first challenge: most cameras on a LAN never ask.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import TYPE_CHECKING, Final

from softphone.rtsp.errors import ParseError
from softphone.rtsp.message import RtspResponse, reason_phrase
from softphone.rtsp.url import RtspUrl

if TYPE_CHECKING:
    from softphone.auth.digest import Challenge, DigestClient

MAX_AUTH_ATTEMPTS: Final = 3  # answered challenges per request (stale nonces included)


_EXPLANATIONS: Final[dict[int, str]] = {
    301: "the stream has moved",
    302: "the stream is temporarily elsewhere",
    400: "the server did not understand the request",
    401: "the camera rejected the credentials",
    403: "access to this stream is forbidden",
    404: "there is no stream at this URL (check the path)",
    405: "the server does not allow this method here",
    453: "the server has no bandwidth left (too many viewers?)",
    454: "the server no longer knows this session (it expired)",
    455: "the server cannot do that in the current state (e.g. PAUSE on a live stream)",
    457: "the server cannot seek to that position",
    459: "the server does not allow aggregate control here",
    460: "the server only allows aggregate control",
    461: "the server refused the transport (try --transport tcp or udp)",
    500: "the server failed internally",
    501: "the server does not implement this method",
    503: "the server is busy or starting up",
}


def explain(status: int) -> str:
    """A user-facing reason: ``"401 Unauthorized: the camera rejected the credentials"``."""
    phrase = reason_phrase(status)
    text = f"{status} {phrase}" if phrase else f"status {status}"
    detail = _EXPLANATIONS.get(status)
    return f"{text}: {detail}" if detail else text


def redirect_target(url: RtspUrl, response: RtspResponse) -> RtspUrl | None:
    """Where a 3xx sends us (RFC 2326 §11.3): its Location, resolved against ``url``; None
    without a usable one."""
    location = response.headers.get("Location")
    try:
        return url.join(location) if location else None
    except ParseError:
        return None


# --- 401 Unauthorized ---------------------------------------------------------------------------


class _Scheme(Enum):
    NONE = auto()
    BASIC = auto()
    DIGEST = auto()


@dataclass(slots=True)
class AuthAttempts:
    """What one request has answered so far: challenges, Digest nonces, Basic."""

    count: int = 0
    nonces: set[str] = field(default_factory=set)
    basic_tried: bool = False


class Authenticator:
    """The credentials of one RTSP client: what each request carries, and how a 401 is
    answered (see the module docstring)."""

    def __init__(self, credentials: tuple[str, str] | None, *, rng: random.Random) -> None:
        self.credentials = credentials
        self._rng = rng
        self._digest_client: DigestClient | None = None  # made with the first challenge
        self._scheme = _Scheme.NONE
        self._digest_realm: str | None = None

    @property
    def _digest(self) -> DigestClient:
        if self._digest_client is None:
            from softphone.auth.digest import Credentials, DigestClient

            creds = [Credentials(*self.credentials)] if self.credentials else []
            self._digest_client = DigestClient(creds, rng=self._rng)
        return self._digest_client

    def authorization(self, method: str, uri: str, attempts: AuthAttempts) -> str | None:
        """The Authorization value of a request once the server asked (RFC 2326 §D, RFC 7616
        §3.4); the Digest nonce it answers is noted in ``attempts``."""
        if self._scheme is _Scheme.BASIC and self.credentials is not None:
            from softphone.auth.basic import basic_authorization

            return basic_authorization(*self.credentials)
        if self._scheme is _Scheme.DIGEST:
            values = self._digest.cached(method=method, uri=uri)
            if values:
                nonce = re.search(r'nonce="([^"]*)"', values[0])
                if nonce is not None:
                    attempts.nonces.add(nonce.group(1))
                return values[0]
        return None

    def answer(self, response: RtspResponse, attempts: AuthAttempts) -> str | None:
        """A 401 to a request (RFC 2326 §D.1, RFC 7235 §3.1): None when the request is to be
        sent again (with the credentials the strongest challenge asks for), else the reason
        it is refused."""
        if self.credentials is None:
            return "the server asks for credentials and none were given"
        from softphone.auth.challenge import REFUSED, choose_challenge

        if attempts.count >= MAX_AUTH_ATTEMPTS:
            return REFUSED
        values = challenge_values(response)
        choice = choose_challenge(self._digest, values, answered_nonces=attempts.nonces)
        if choice.challenge is not None:
            self._remember(choice.challenge)
            attempts.count += 1
            attempts.nonces.add(choice.challenge.nonce)
            return None
        if choice.offered == 0 and basic_offered(values):
            if attempts.basic_tried:
                return REFUSED
            self._scheme = _Scheme.BASIC
            attempts.basic_tried = True
            attempts.count += 1
            return None
        if choice.offered == 0:
            offered = response.headers.get_all("WWW-Authenticate")
            schemes = ", ".join(v.split(" ")[0] for v in offered) or "none"
            return f"no supported authentication scheme offered ({schemes})"
        return choice.reason

    def refresh(self, response: RtspResponse) -> None:
        """A keep-alive was challenged (the nonce expired): later requests use the new nonce.
        The keep-alive itself is not repeated; the next one carries fresh credentials."""
        from softphone.auth.challenge import choose_challenge

        if self._scheme is not _Scheme.DIGEST:
            return
        best = choose_challenge(self._digest, challenge_values(response)).challenge
        if best is not None:
            if self._digest_realm != best.realm:
                self._digest.forget()
            self._digest.remember(best)
            self._digest_realm = best.realm

    def _remember(self, challenge: Challenge) -> None:
        if self._digest_realm not in (None, challenge.realm):
            self._digest.forget()
        # Remembered here; authorization() computes the value (nc 1 for a new nonce, RFC 7616
        # §3.4).
        self._digest.remember(challenge)
        self._digest_realm = challenge.realm
        self._scheme = _Scheme.DIGEST


def challenge_values(response: RtspResponse) -> list[str]:
    """WWW-Authenticate values; those with bytes that are not UTF-8 cannot be hashed: dropped."""
    values = response.headers.get_all("WWW-Authenticate")
    return [v for v in values if not any("\udc80" <= c <= "\udcff" for c in v)]


def basic_offered(values: Sequence[str]) -> bool:
    from softphone.auth.basic import BasicChallenge
    from softphone.auth.errors import AuthError

    for value in values:
        try:
            BasicChallenge.parse(value)
        except AuthError:
            continue
        return True
    return False
