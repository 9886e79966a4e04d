"""Subscriptions in the user agent core (RFC 6665) against a scripted presence server: the
SUBSCRIBE we send, challenges, NOTIFY before and after the 2xx, refresh times on a walked
clock, 481 and the Subscription-State reasons, Timer N, unsubscribing, the NOTIFY checks (489,
481, 400, 415, CSeq) that change nothing when they refuse, unsolicited message waiting, and the
dialog package's version order."""

from __future__ import annotations

from pathlib import Path

import pytest
from presence_support import ALICE, BOB, SERVER, Answer, Bench

from softphone.sip import events as ev
from softphone.sip.dialog_info import DialogInfo
from softphone.sip.message_summary import MessageCounts, MessageSummary
from softphone.sip.pidf import PresenceDocument
from softphone.sip.subscription_state import SubState
from softphone.sip.uri import SipUri

DATA = Path(__file__).resolve().parent.parent / "data" / "presence"
PIDF = "application/pidf+xml"
DIALOG = "application/dialog-info+xml"
MWI = "application/simple-message-summary"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def active(bench: Bench, package: str = "presence", expires: int = 600) -> str:
    """A subscription that got its 2xx and first NOTIFY (active, no body)."""
    bench.server.expires = expires
    sub_id = bench.subscribe(package)
    bench.server.notify(bench.server.dialog(), f"active;expires={expires}")
    bench.flush()
    assert bench.ua.subscriptions.state(sub_id) is SubState.ACTIVE
    return sub_id


def notifications(bench: Bench) -> list[ev.NotificationReceived]:
    return [e for e in bench.events if isinstance(e, ev.NotificationReceived)]


def changes(bench: Bench) -> list[ev.SubscriptionChanged]:
    return [e for e in bench.events if isinstance(e, ev.SubscriptionChanged)]


def waits(bench: Bench) -> list[float | None]:
    return [e.retry_in_s for e in changes(bench) if e.state == "waiting"]


def subscribes(bench: Bench) -> list[str]:
    """Call-ID of each SUBSCRIBE the server got, and whether it was in a dialog."""
    return [
        f"{r.call_id}{'+' if r.to.tag else ''}"
        for r in bench.server.requests
        if r.method == "SUBSCRIBE"
    ]


# --- SUBSCRIBE and the first NOTIFY ---------------------------------------------------------------
def test_the_initial_subscribe_names_the_package_and_starts_a_dialog() -> None:
    bench = Bench()
    bench.subscribe("dialog", expires=900)
    sent = bench.server.last("SUBSCRIBE")
    assert sent.uri == BOB and sent.to.uri == BOB and not sent.to.tag
    assert sent.from_.uri == ALICE and sent.from_.tag
    assert sent.headers.get("Event") == "dialog"
    assert sent.headers.get("Accept") == DIALOG
    assert sent.headers.get("Expires") == "900"
    assert sent.contacts and sent.contacts[0].uri.host == "127.0.0.1"  # type: ignore[union-attr]
    assert bench.states() == ["subscribing"]  # 2xx alone: the first NOTIFY is still awaited


def test_a_challenged_subscribe_is_sent_again_once_with_credentials() -> None:
    bench = Bench()
    bench.server.script = [bench.server.challenge(407)]
    bench.subscribe()
    first, second = [r for r in bench.server.requests if r.method == "SUBSCRIBE"]
    assert "Proxy-Authorization" not in first.headers
    assert 'username="alice"' in (second.headers.get("Proxy-Authorization") or "")
    assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
    bench.server.notify(bench.server.dialog(), "active;expires=3600")
    bench.flush()
    assert bench.states() == ["subscribing", "active"]


def test_a_notify_with_state_makes_it_active_and_tells_the_document() -> None:
    bench = Bench()
    sub_id = bench.subscribe()
    bench.server.notify(
        bench.server.dialog(), "active;expires=600", load("baresip_open.pidf"), PIDF
    )
    bench.flush()
    assert bench.last_answer().status == 200
    (note,) = notifications(bench)
    assert (note.subscription_id, note.account, note.target) == (sub_id, "alice", str(BOB))
    assert isinstance(note.document, PresenceDocument) and note.document.summary() == "available"
    assert bench.states() == ["subscribing", "active"]


def test_a_notify_before_the_2xx_makes_the_dialog_and_refreshes_go_in_it() -> None:
    bench = Bench()
    bench.server.expires = 600
    bench.server.hold = True  # the 2xx is late: the NOTIFY overtakes it
    bench.subscribe()
    sent, dialog = bench.server.last("SUBSCRIBE"), bench.server.dialog()
    bench.server.notify(dialog, "pending;expires=600")
    bench.flush()
    assert bench.states() == ["subscribing", "pending"]
    bench.server.release()
    bench.flush()
    assert bench.states() == ["subscribing", "pending"]  # the 2xx changes nothing now
    bench.walk(539.9)
    assert len(subscribes(bench)) == 1
    bench.walk(540.0)  # a refresh goes in the dialog the NOTIFY made
    refresh = bench.server.last("SUBSCRIBE")
    assert refresh.call_id == sent.call_id and refresh.to.tag == dialog.to_tag


def test_no_notify_within_timer_n_after_the_2xx_is_a_failure_retried_later() -> None:
    bench = Bench()
    bench.subscribe()
    bench.walk(31.9)
    assert bench.states() == ["subscribing"]
    bench.walk(32.0)  # 64*T1 (§4.1.2.4)
    changed = changes(bench)[-1]
    assert changed.state == "waiting" and changed.retry_in_s == 30.0
    assert "no NOTIFY" in (changed.reason or "")
    bench.walk(62.0)
    assert len(set(subscribes(bench))) == 2  # a new dialog


# --- refreshes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("granted", "refresh_at"), [(600, 540.0), (120, 60.0), (3600, 3540.0)])
def test_the_refresh_goes_out_before_the_subscription_runs_out(
    granted: int, refresh_at: float
) -> None:
    bench = Bench()
    active(bench, expires=granted)
    bench.walk(refresh_at - 0.5)
    assert subscribes(bench) == [subscribes(bench)[0]]
    bench.walk(refresh_at)
    first, refresh = subscribes(bench)
    assert refresh == first + "+"  # same dialog, To tag set
    assert bench.server.last("SUBSCRIBE").headers.get("Expires") == "3600"  # what we asked


def test_a_notify_with_a_shorter_expires_brings_the_refresh_forward() -> None:
    bench = Bench()
    active(bench, expires=600)
    bench.walk(100.0)
    bench.server.notify(bench.server.dialog(), "active;expires=100")
    bench.flush()
    bench.walk(149.9)
    assert len(subscribes(bench)) == 1
    bench.walk(150.0)  # 100 + 100/2
    assert len(subscribes(bench)) == 2


def test_481_to_a_refresh_starts_a_new_subscription_at_once() -> None:
    bench = Bench()
    active(bench)
    bench.server.script = [Answer(481)]
    bench.walk(540.0)
    old, refresh, fresh = subscribes(bench)
    assert refresh == old + "+" and fresh != old and not fresh.endswith("+")
    assert bench.states()[-1] == "subscribing"


def test_a_failed_refresh_waits_and_backs_off() -> None:
    bench = Bench()
    active(bench)
    bench.server.script = [Answer(503), Answer(503)]
    bench.walk(540.0)
    assert waits(bench) == [30.0]
    bench.walk(570.0)  # the retry fails too: 60 s now
    assert waits(bench) == [30.0, 60.0]
    dialogs = [s for s in subscribes(bench) if not s.endswith("+")]
    assert len(dialogs) == len(set(dialogs)) == 2  # the retry was a new dialog


def test_a_refused_subscribe_is_not_tried_again() -> None:
    bench = Bench()
    bench.server.script = [Answer(403)]
    sub_id = bench.subscribe()
    assert bench.states() == ["subscribing", "terminated"]
    assert "403" in (changes(bench)[-1].reason or "")
    bench.walk(100_000.0)
    assert (
        len(subscribes(bench)) == 1 and bench.ua.subscriptions.state(sub_id) is SubState.TERMINATED
    )


def test_423_is_answered_with_the_servers_minimum() -> None:
    bench = Bench()
    bench.server.script = [Answer(423, [("Min-Expires", "7200")])]
    bench.subscribe()
    first, second = [r for r in bench.server.requests if r.method == "SUBSCRIBE"]
    assert (first.headers.get("Expires"), second.headers.get("Expires")) == ("3600", "7200")


# --- how a subscription ends --------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["deactivated", "timeout"])
def test_deactivated_or_timeout_subscribes_again_at_once(reason: str) -> None:
    bench = Bench()
    active(bench)
    bench.server.notify(bench.server.dialog(), f"terminated;reason={reason}")
    bench.flush()
    assert bench.last_answer().status == 200
    first, again = subscribes(bench)
    assert again != first and not again.endswith("+")  # a new dialog, at once
    assert bench.states() == ["subscribing", "active", "subscribing"]


def test_a_notifier_that_ends_every_subscription_at_once_is_not_hammered() -> None:
    bench = Bench()
    bench.subscribe()
    for _ in range(3):
        bench.server.notify(bench.server.dialog(), "terminated;reason=deactivated")
        bench.flush()
    assert len(subscribes(bench)) == 4
    bench.server.notify(bench.server.dialog(), "terminated;reason=deactivated")
    bench.flush()
    assert len(subscribes(bench)) == 4 and bench.states()[-1] == "waiting"


@pytest.mark.parametrize(
    ("state", "retry_in"),
    [
        ("terminated;reason=probation;retry-after=90", 90.0),
        ("terminated", 30.0),
        ("terminated;reason=whatever", 30.0),
    ],
)
def test_probation_or_no_reason_waits_before_subscribing_again(state: str, retry_in: float) -> None:
    bench = Bench()
    active(bench)
    bench.server.notify(bench.server.dialog(), state)
    bench.flush()
    changed = changes(bench)[-1]
    assert (changed.state, changed.retry_in_s) == ("waiting", retry_in)
    bench.walk(bench.now + retry_in - 0.1)
    assert len(subscribes(bench)) == 1
    bench.walk(bench.now + 0.1)
    assert len(subscribes(bench)) == 2


@pytest.mark.parametrize("reason", ["rejected", "noresource", "giveup", "invariant"])
def test_rejected_noresource_giveup_end_it_for_good(reason: str) -> None:
    bench = Bench()
    sub_id = active(bench)
    bench.server.notify(bench.server.dialog(), f"terminated;reason={reason}")
    bench.flush()
    changed = changes(bench)[-1]
    assert (changed.state, changed.reason) == ("terminated", reason)
    bench.walk(100_000.0)
    assert len(subscribes(bench)) == 1
    assert bench.ua.subscriptions.state(sub_id) is SubState.TERMINATED
    bench.server.notify(bench.server.dialog(), "active")  # the dialog is gone
    bench.flush()
    assert bench.last_answer().status == 481


def test_unsubscribing_sends_expires_0_in_the_dialog_and_ends_on_the_final_notify() -> None:
    bench = Bench()
    sub_id = active(bench)
    bench.add(bench.ua.subscriptions.unsubscribe(sub_id, bench.now))
    removal = bench.server.last("SUBSCRIBE")
    assert removal.headers.get("Expires") == "0" and removal.to.tag
    assert bench.ua.subscriptions.unsubscribing == 1
    bench.server.notify(bench.server.dialog(), "terminated;reason=timeout")
    bench.flush()
    assert bench.states()[-2:] == ["unsubscribing", "terminated"]
    assert bench.ua.subscriptions.unsubscribing == 0
    assert len(subscribes(bench)) == 2  # timeout did not start it again


def test_unsubscribing_ends_after_timer_n_when_no_final_notify_comes() -> None:
    bench = Bench()
    sub_id = active(bench)
    bench.add(bench.ua.subscriptions.unsubscribe(sub_id, bench.now))
    bench.walk(bench.now + 31.9)
    assert bench.ua.subscriptions.unsubscribing == 1
    bench.walk(bench.now + 0.1)
    assert bench.ua.subscriptions.unsubscribing == 0 and bench.states()[-1] == "terminated"


def test_restart_gives_every_subscription_of_the_account_a_new_dialog() -> None:
    bench = Bench()
    active(bench)
    bench.add(bench.ua.subscriptions.restart("alice", bench.now))
    first, again = subscribes(bench)
    assert again != first and not again.endswith("+")
    bench.server.notify(bench.server.dialog(0), "active")  # the old dialog is forgotten
    bench.flush()
    assert bench.last_answer().status == 481


# --- NOTIFYs refused, and nothing changed by them -----------------------------------------------------
def test_an_unknown_event_package_gets_489_with_what_we_take() -> None:
    bench = Bench()
    active(bench)
    bench.server.notify(bench.server.dialog(), "active", event="conference")
    bench.flush()
    answer = bench.last_answer()
    assert answer.status == 489
    allowed = {p.strip() for p in answer.headers.get_lines("Allow-Events")[0].split(",")}
    assert allowed == {"refer", "presence", "dialog", "message-summary"}


def test_a_notify_matching_no_subscription_gets_481() -> None:
    bench = Bench()
    active(bench)
    bench.server.notify(bench.server.dialog(), "active", from_tag="someone-else")
    bench.server.notify(bench.server.dialog(), "active", event="presence;id=7")
    bench.server.notify(bench.server.dialog(), "active", event="dialog")
    bench.flush()
    assert [a.status for a in bench.answers[-3:]] == [481, 481, 481]


@pytest.mark.parametrize(
    ("body", "content_type", "state", "status", "why"),
    [
        (b"<presence", PIDF, "active", 400, "Bad pidf+xml: PIDF: not well-formed"),
        (load("baresip_open.pidf"), "text/plain", "active", 415, ""),
        (load("baresip_open.pidf"), None, "active", 400, "Missing Content-Type"),
        (load("baresip_open.pidf"), PIDF, "", 400, "Missing Subscription-State"),
        (load("rfc4235_full.dialog"), PIDF, "active", 400, "root element is <dialog-info>"),
    ],
)
def test_a_bad_notify_is_refused_with_its_reason_and_changes_nothing(
    body: bytes, content_type: str | None, state: str, status: int, why: str
) -> None:
    bench = Bench()
    active(bench)
    before = list(bench.events)
    bench.server.notify(bench.server.dialog(), state or "", body, content_type)
    bench.flush()
    answer = bench.last_answer()
    assert answer.status == status and why in answer.reason
    if status == 415:
        assert answer.headers.get("Accept") == PIDF
    assert bench.events == before  # no event at all
    # The refused NOTIFY's CSeq was not taken: the next one (CSeq + 1) is in order.
    bench.server.notify(bench.server.dialog(), "active", load("baresip_closed.pidf"), PIDF)
    bench.flush()
    assert bench.last_answer().status == 200
    assert notifications(bench)[-1].document.summary() == "offline"  # type: ignore[union-attr]


def test_a_notify_out_of_cseq_order_gets_500() -> None:
    bench = Bench()
    active(bench)
    dialog = bench.server.dialog()
    bench.server.notify(dialog, "active", cseq=dialog.cseq)  # the same CSeq again
    bench.flush()
    assert bench.last_answer().status == 500


# --- message waiting ------------------------------------------------------------------------------------
def unsolicited(bench: Bench, body: bytes, to: str = "alice", to_tag: str | None = None) -> None:
    from softphone.sip.message import Headers, SipRequest

    headers = Headers()
    headers.add(
        "Via", f"SIP/2.0/UDP {SERVER.host}:{SERVER.port};branch=z9hG4bKmwi{len(bench.answers)}"
    )
    headers.add("From", "<sip:voicemail@lab.test>;tag=vm1")
    headers.add("To", f"<sip:{to}@lab.test>" + (f";tag={to_tag}" if to_tag else ""))
    headers.add("Call-ID", f"mwi-{len(bench.answers)}@pbx")
    headers.add("CSeq", "1 NOTIFY")
    headers.add("Event", "message-summary")
    headers.add("Content-Type", MWI)
    request = SipRequest(
        method="NOTIFY", uri=SipUri(user=to, host="lab.test"), headers=headers, body=body
    )
    bench.server.outbox.append(bytes(request))
    bench.flush()


def test_unsolicited_message_waiting_from_the_pbx_is_taken() -> None:
    bench = Bench()
    unsolicited(bench, load("asterisk_lf.summary"))
    assert bench.last_answer().status == 200
    (note,) = notifications(bench)
    assert (note.subscription_id, note.account, note.package) == (None, "alice", "message-summary")
    assert isinstance(note.document, MessageSummary)
    assert note.document.voice == MessageCounts(1, 0)
    unsolicited(bench, load("rfc3842_example.summary"), to_tag="pbx-tag")  # with a To tag too
    assert bench.last_answer().status == 200 and len(notifications(bench)) == 2


def test_unsolicited_message_waiting_for_someone_else_or_malformed_is_refused() -> None:
    bench = Bench()
    unsolicited(bench, load("asterisk_lf.summary"), to="mallory")
    assert bench.last_answer().status == 404
    unsolicited(bench, b"Voice-Message: 1/2\r\n")
    assert bench.last_answer().status == 400 and "Messages-Waiting" in bench.last_answer().reason
    assert notifications(bench) == []


def test_subscribing_to_our_own_message_summary() -> None:
    bench = Bench()
    bench.subscribe("message-summary", target=ALICE)
    bench.server.notify(
        bench.server.dialog(), "active;expires=3600", load("kamailio_mwi.summary"), MWI
    )
    bench.flush()
    (note,) = notifications(bench)
    assert note.document == MessageSummary.parse(load("kamailio_mwi.summary"))


# --- the dialog package: version order ------------------------------------------------------------------
def test_dialog_notifications_apply_in_version_order_and_a_gap_refreshes() -> None:
    bench = Bench()
    active(bench, "dialog")  # body-less NOTIFY: no dialogs
    assert notifications(bench)[-1].document == DialogInfo(entity=str(BOB), version=0, full=True)
    dialog = bench.server.dialog()
    bench.server.notify(dialog, "active", load("rfc4235_full.dialog"), DIALOG)  # version 3
    bench.server.notify(dialog, "active", load("rfc4235_partial.dialog"), DIALOG)  # 4
    bench.server.notify(dialog, "active", load("rfc4235_full.dialog"), DIALOG)  # 3 again: stale
    bench.flush()
    shown = [n.document for n in notifications(bench)]
    assert [len(d.dialogs) for d in shown] == [0, 2, 1]  # type: ignore[union-attr]
    assert all(d.full for d in shown)  # type: ignore[union-attr]
    assert len(subscribes(bench)) == 1
    skipped = load("rfc4235_partial.dialog").replace(b'version="4"', b'version="6"')
    bench.server.notify(dialog, "active", skipped, DIALOG)
    bench.flush()
    assert len(notifications(bench)) == 3  # not applied...
    assert subscribes(bench)[-1].endswith("+")  # ...and a refresh asks for full state
