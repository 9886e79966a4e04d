"""Credentials for the requests the user agent sends (RFC 3261 §22.2), sans-IO.

One DigestClient per account and credentials keeps the nonces it answered, so that later
requests can carry credentials before being challenged (RFC 7616 §3.4). Accounts change at run
time: a new password gets a client of its own (no nonce cached for the old one), while a call
that began under the old account goes on answering challenges with the credentials it began
with.

Pre-emptive credentials go stale without warning: a registrar that restarts, fails over or
rotates its nonce secret answers them with a 401 carrying a new nonce and no ``stale=true``.
Those are not credentials the server refused, so the new challenge is answered once;
credentials sent in answer to a challenge and challenged again are refused (the loop guard of
§22.2). When no challenge can be answered, the cached ones are dropped, so the next attempt
starts without stale credentials.

Which challenge of a 401/407 to answer is decided by ``choose_challenge``, shared with RTSP
(auth/challenge.py). The user agent turns an authorized copy into a new client transaction
(``UaContext.resend_with_credentials``).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Final

from softphone.auth.challenge import choose_challenge
from softphone.auth.digest import Credentials, DigestClient
from softphone.sip.account import AccountConfig
from softphone.sip.compose import copy_request
from softphone.sip.message import SipRequest, SipResponse

MAX_AUTH_ATTEMPTS: Final = 2
PREEMPTIVE_MEMORY: Final = 16  # header values sent from the cache, per client

_Key = tuple[str, str, str | None]


class Authenticator:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._clients: dict[_Key, DigestClient] = {}
        self._preemptive: dict[_Key, deque[str]] = {}

    def _key(self, acct: AccountConfig) -> _Key:
        return (acct.name, acct.username, acct.password)

    def _client(self, acct: AccountConfig) -> DigestClient:
        key = self._key(acct)
        client = self._clients.get(key)
        if client is None:
            credentials = (
                [Credentials(username=acct.username, password=acct.password)]
                if acct.password
                else []
            )
            client = DigestClient(credentials, self._rng)
            self._clients[key] = client
            self._preemptive[key] = deque(maxlen=PREEMPTIVE_MEMORY)
        return client

    def cached(self, acct: AccountConfig, method: str, uri: str) -> list[str]:
        """Credentials from the last challenges, to send before being challenged."""
        values = self._client(acct).cached(method, uri)
        self._preemptive[self._key(acct)].extend(values)
        return values

    def authorized_copy(
        self, acct: AccountConfig, request: SipRequest, resp: SipResponse, attempts: int
    ) -> SipRequest | None:
        """§22.2: ``request`` again, without Via, with credentials for ``resp``'s challenge.
        None after MAX_AUTH_ATTEMPTS unless the nonce was stale, or when no challenge fits."""
        proxy = resp.status == 407
        values = resp.headers.get_lines("Proxy-Authenticate" if proxy else "WWW-Authenticate")
        client = self._client(acct)
        sent = request.headers.get_lines("Proxy-Authorization" if proxy else "Authorization")
        # Only credentials that answered a challenge can have been refused; the pre-emptive ones
        # merely carried an old nonce (module docstring).
        preemptive = self._preemptive[self._key(acct)]
        previous = [value for value in sent if value not in preemptive]
        challenge = choose_challenge(client, values, previous=previous).challenge
        if challenge is None:
            client.forget()
            return None
        if attempts >= MAX_AUTH_ATTEMPTS and not challenge.stale:
            return None
        copy = copy_request(request)
        copy.headers.remove("Via")
        name = "Proxy-Authorization" if proxy else "Authorization"
        copy.headers.remove(name)
        value = client.authorize(
            challenge, method=request.method, uri=str(request.uri), body=request.body, proxy=proxy
        )
        copy.headers.add(name, value)
        return copy
