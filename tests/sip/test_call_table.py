"""The user agent's call table: live calls kept apart from the ended ones it still remembers."""

from __future__ import annotations

from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.call import Call, CallInput, Calls, CallState
from softphone.sip.uri import SipUri

ACCT = AccountConfig(name="a", aor=SipUri(user="a", host="h"), username="a")


def call(call_id: str, state: CallState = CallState.INCOMING) -> Call:
    return Call(
        call_id=call_id,
        account=ACCT,
        outgoing=False,
        state=state,
        invite=None,  # type: ignore[arg-type]
        dest=Address("udp", "127.0.0.1", 5060),
        local_tag="t",
    )


def test_ended_calls_stay_known_but_leave_the_live_list() -> None:
    calls = Calls()
    ringing, talking, gone = call("ringing"), call("talking"), call("gone")
    for c in (ringing, talking, gone):
        calls.add(c)
    talking.apply(CallInput.SEND_2XX)
    gone.apply(CallInput.REJECT)  # INCOMING -> TERMINATED
    assert {c.call_id for c in calls.live()} == {"ringing", "talking"}
    assert "gone" in calls and calls.get("gone") is gone  # still found, for late requests
    talking.apply(CallInput.RECV_BYE)
    assert [c.call_id for c in calls.live()] == ["ringing"]
    calls.remove(ringing)
    assert calls.live() == [] and "ringing" not in calls


def test_a_call_added_already_ended_is_not_live() -> None:
    calls = Calls()
    calls.add(call("over", CallState.TERMINATED))
    assert calls.live() == [] and "over" in calls
