"""Human-readable explanations of SIP final statuses (what a person sees when a call fails)."""

from __future__ import annotations

from typing import Final

# What the status usually means for the person making the call (RFC 3261 §21, RFC 3398 practice).
EXPLANATIONS: Final[dict[int, str]] = {
    400: "the other side could not understand our request",
    401: "the server wants a password and the one configured was not accepted",
    403: "refused by the server (wrong password or not allowed)",
    404: "no such user or number",
    405: "the other side does not allow this request",
    407: "the proxy wants a password and the one configured was not accepted",
    408: "no answer in time (nobody reachable)",
    410: "the user is gone (no longer at this address)",
    415: "the other side cannot handle our message body",
    420: "the other side requires an extension we do not support",
    423: "registration interval too short",
    480: "temporarily unavailable (offline or do-not-disturb)",
    481: "the call no longer exists on the other side",
    482: "loop detected",
    483: "too many hops",
    484: "address incomplete",
    485: "ambiguous address",
    486: "busy",
    487: "cancelled",
    488: "no common codec or media format",
    491: "request pending (glare)",
    500: "server error on the other side",
    501: "not implemented by the other side",
    502: "bad gateway",
    503: "service unavailable (or could not reach the server)",
    504: "server time-out",
    505: "SIP version not supported",
    513: "message too large",
    600: "busy everywhere",
    603: "declined",
    604: "does not exist anywhere",
    606: "not acceptable",
}


def explain(status: int, reason: str) -> str:
    """'486 Busy Here (busy)' — the status, the peer's phrase, and what it means for us."""
    if status == 0:
        return reason
    meaning = EXPLANATIONS.get(status) or EXPLANATIONS.get(status // 100 * 100)
    text = f"{status} {reason}".strip()
    if meaning and meaning.lower() != reason.lower():
        return f"{text} ({meaning})"
    return text
