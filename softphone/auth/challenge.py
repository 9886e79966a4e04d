"""Which challenge to answer, for SIP (RFC 3261 §22.2) and RTSP (RFC 2326 §D, RFC 7235 §3.1).

A 401 or 407 may carry several challenges: one per realm, and per realm one per algorithm
(RFC 8760 §2.4: a server offers SHA-256 beside MD5 so that old clients still get in). Both
protocols answer the same way, decided here once:

- the strongest algorithm we can answer first (SHA-512-256, then SHA-256, then MD5); on a tie
  the one the server listed first (RFC 7616 §3.7);
- a challenge we cannot answer (no credentials for its realm, only ``qop=auth-conf``) is
  passed over for the next one, not fatal while another remains;
- credentials the server already refused for a realm are not sent again, unless the challenge
  says ``stale=true`` (only the nonce was old, RFC 7616 §3.3), which would loop (§22.2);
- RTSP also remembers the nonces it answered: the same nonce challenged twice is a refusal.

The caller turns the choice into a request (SIP adds the header to a new transaction, RTSP
resends its pending request) and counts its attempts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from softphone.auth.digest import Challenge, DigestClient
from softphone.auth.errors import ParseError

__all__ = ["REFUSED", "Choice", "choose_challenge", "strongest_first"]

REFUSED: Final = "the server rejected the credentials"


def strongest_first(challenges: Iterable[Challenge]) -> list[Challenge]:
    """The challenges by algorithm strength, strongest first; stable on ties."""
    return sorted(challenges, key=lambda c: -c.algorithm.strength)


@dataclass(frozen=True, slots=True)
class Choice:
    """The challenge to answer, or why none can be (``challenge`` None, ``reason`` set).

    ``offered`` counts the Digest challenges that parsed: zero means the server offered no
    scheme we speak (RTSP then tries Basic).
    """

    challenge: Challenge | None
    reason: str = ""
    offered: int = 0


def choose_challenge(
    client: DigestClient,
    values: Sequence[str],
    *,
    previous: Sequence[str] = (),
    answered_nonces: Collection[str] = (),
) -> Choice:
    """Pick the Digest challenge to answer among the header values of one response.

    ``previous`` are the Authorization / Proxy-Authorization values the challenged request
    carried; ``answered_nonces`` the nonces already answered for it. Values that do not parse,
    other schemes and unknown algorithms are ignored (the caller may still try Basic).
    """
    parsed: list[Challenge] = []
    for value in values:
        try:
            parsed.append(Challenge.parse(value))
        except ParseError:
            continue
    challenges = strongest_first(parsed)
    if not challenges:
        schemes = ", ".join(v.split(" ")[0] for v in values) or "none"
        return Choice(None, f"no supported authentication scheme offered ({schemes})")
    offered = len(challenges)
    refused = False
    unsupported: list[Challenge] = []
    strangers: list[str] = []
    for challenge in challenges:
        if challenge.nonce in answered_nonces and not challenge.stale:
            refused = True
        elif client.can_answer(challenge, previous=previous):
            return Choice(challenge, offered=offered)
        elif not client.has_credentials(challenge.realm):
            strangers.append(challenge.realm)
        elif challenge.qop and not {"auth", "auth-int"} & set(challenge.qop):
            unsupported.append(challenge)
        else:
            refused = True
    if refused:
        return Choice(None, REFUSED, offered)
    if unsupported:
        qops = ", ".join(dict.fromkeys(q for c in unsupported for q in c.qop))
        return Choice(None, f"unsupported digest challenge (qop {qops})", offered)
    realms = ", ".join(repr(r) for r in dict.fromkeys(strangers))
    return Choice(None, f"no credentials for realm {realms}", offered)
