"""Attended transfer as the phone sees it (RFC 5589 §7), in all three roles.

- Transferor: :func:`attended_transfer` checks the two calls and sends the REFER with Replaces;
  when the transferee reports success (a final 2xx NOTIFY) both our calls end
  (:func:`transfer_succeeded`, RFC 5589 §7.1).
- Transferee: the core's TransferRequested carries the Replaces the new INVITE must hold
  (:func:`invite_headers`); once the new call is answered the transferor hears of it (NOTIFY
  200) and hangs up the old call; if it does not, sip_events.py ends it after a grace time.
- Target: an INVITE whose Replaces names one of our calls is answered without ringing and the
  replaced call ends in the core once the new one is confirmed (sip/invite_server.py); the phone
  only answers it (sip_events.py).
"""

from __future__ import annotations

from softphone.phone.call_info import CallInfo
from softphone.phone.calls import Calls
from softphone.phone.errors import PhoneError
from softphone.sip.errors import LocalProtocolError
from softphone.sip.ua import UserAgent

__all__ = ["attended_transfer", "calls_to_end", "invite_headers"]

_UP = ("established", "held")


def attended_transfer(
    ua: UserAgent, calls: Calls, call_id: str, other_call_id: str, now: float
) -> None:
    """Ask the peer of ``call_id`` to call the peer of ``other_call_id`` in our place."""
    info, other = calls.require(call_id), calls.require(other_call_id)
    if info is other:
        raise PhoneError("an attended transfer needs two different calls")
    for leg in (info, other):
        if leg.state not in _UP:
            raise PhoneError(f"the call with {leg.remote} is not established ({leg.state})")
    try:
        ua.refer_replacing(call_id, other_call_id, now)
    except LocalProtocolError as exc:
        raise PhoneError(str(exc)) from None
    info.attended_with = other_call_id


def calls_to_end(calls: Calls, info: CallInfo) -> list[str]:
    """Our REFER on ``info`` succeeded: the calls we leave, that one and, for an attended
    transfer, the call with the target (which the target usually ends itself first)."""
    ids = [info.call_id]
    if info.attended_with is not None:
        other = calls.get(info.attended_with)
        info.attended_with = None
        if other is not None:
            ids.append(other.call_id)
    return [i for i in ids if (c := calls.get(i)) is not None and c.state != "ended"]


def invite_headers(replaces: str | None, referred_by: str | None) -> list[tuple[str, str]]:
    """The headers of the INVITE a REFER asks for (RFC 5589 §7.1, RFC 3892)."""
    headers: list[tuple[str, str]] = []
    if replaces is not None:
        headers.append(("Replaces", replaces))
    if referred_by:
        headers.append(("Referred-By", referred_by))
    return headers
