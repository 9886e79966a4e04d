"""Publishing our presence (RFC 3903) from the user agent core against a scripted presence
server: the first PUBLISH, refreshes with SIP-If-Match and no body on a walked clock,
modifications, a change while a PUBLISH is out, 412, 423, failures and their back-off,
challenges, restart after the registrar came back, and removal with Expires: 0."""

from __future__ import annotations

from presence_support import ALICE, Answer, Bench

from softphone.sip import events as ev
from softphone.sip.message import SipRequest
from softphone.sip.pidf import build_pidf
from softphone.sip.publication import PubState

PIDF = "application/pidf+xml"
AVAILABLE = build_pidf(str(ALICE), "available", tuple_id="t", person_id="p")
BUSY = build_pidf(str(ALICE), "busy", tuple_id="t", person_id="p")


def publish(bench: Bench, body: bytes = AVAILABLE, **kw: object) -> None:
    bench.add(
        bench.ua.publications.publish(bench.ua.account(), body, PIDF, now=bench.now, **kw)  # type: ignore[arg-type]
    )


def publishes(bench: Bench) -> list[SipRequest]:
    return [r for r in bench.server.requests if r.method == "PUBLISH"]


def changes(bench: Bench) -> list[ev.PublicationChanged]:
    return [e for e in bench.events if isinstance(e, ev.PublicationChanged)]


def test_the_first_publish_carries_the_document_and_gets_an_entity_tag() -> None:
    bench = Bench()
    publish(bench, expires=600)
    (sent,) = publishes(bench)
    assert sent.uri == ALICE and sent.to.uri == ALICE and sent.from_.tag
    assert sent.headers.get("Event") == "presence" and sent.headers.get("Expires") == "600"
    assert sent.headers.get("Content-Type") == PIDF and sent.body == AVAILABLE
    assert "SIP-If-Match" not in sent.headers
    assert changes(bench) == [
        ev.PublicationChanged(account="alice", state="published", expires=600)
    ]
    assert bench.ua.publications.state("alice") is PubState.PUBLISHED


def test_refreshes_carry_the_tag_and_no_body_before_it_runs_out() -> None:
    bench = Bench()
    publish(bench, expires=600)
    bench.walk(539.9)
    assert len(publishes(bench)) == 1
    bench.walk(540.0)
    first, refresh = publishes(bench)
    assert refresh.headers.get("SIP-If-Match") == "etag1" and refresh.body == b""
    assert "Content-Type" not in refresh.headers
    assert refresh.call_id == first.call_id and refresh.cseq.seq == first.cseq.seq + 1
    bench.walk(1080.0)  # the next one carries the tag the refresh got
    assert publishes(bench)[-1].headers.get("SIP-If-Match") == "etag2"


def test_a_new_document_is_a_modification_with_the_tag() -> None:
    bench = Bench()
    publish(bench)
    publish(bench, BUSY)
    modify = publishes(bench)[-1]
    assert modify.body == BUSY and modify.headers.get("SIP-If-Match") == "etag1"


def test_a_document_changed_while_a_publish_is_out_follows_its_answer() -> None:
    bench = Bench()
    bench.server.hold = True
    publish(bench)
    publish(bench, BUSY)
    assert len(publishes(bench)) == 1  # one request at a time
    bench.server.release()
    bench.flush()
    first, second = publishes(bench)
    assert (first.body, second.body) == (AVAILABLE, BUSY)
    assert second.headers.get("SIP-If-Match") == "etag1"


def test_412_publishes_afresh_without_the_tag() -> None:
    bench = Bench()
    publish(bench, expires=600)
    bench.server.script = [Answer(412)]
    bench.walk(540.0)
    _, refresh, fresh = publishes(bench)
    assert "SIP-If-Match" in refresh.headers
    assert "SIP-If-Match" not in fresh.headers and fresh.body == AVAILABLE
    assert bench.ua.publications.state("alice") is PubState.PUBLISHED


def test_423_publishes_again_with_the_minimum() -> None:
    bench = Bench()
    bench.server.script = [Answer(423, [("Min-Expires", "1800")])]
    publish(bench, expires=60)
    assert [p.headers.get("Expires") for p in publishes(bench)] == ["60", "1800"]


def test_a_challenge_is_answered_and_failures_back_off() -> None:
    bench = Bench()
    bench.server.script = [bench.server.challenge(407), Answer(500), Answer(503)]
    publish(bench)
    first, second = publishes(bench)
    assert "Proxy-Authorization" in second.headers and "Proxy-Authorization" not in first.headers
    (failed,) = changes(bench)
    assert (failed.state, failed.status, failed.retry_in_s) == ("failed", 500, 30.0)
    bench.walk(30.0)
    assert [c.retry_in_s for c in changes(bench)] == [30.0, 60.0]
    bench.walk(90.0)
    assert changes(bench)[-1].state == "published"


def test_restart_publishes_afresh() -> None:
    bench = Bench()
    publish(bench)
    bench.add(bench.ua.publications.restart("alice", bench.now))
    again = publishes(bench)[-1]
    assert "SIP-If-Match" not in again.headers and again.body == AVAILABLE


def test_removal_sends_expires_0_with_the_tag_and_reports_removed() -> None:
    bench = Bench()
    publish(bench)
    bench.add(bench.ua.publications.remove("alice", bench.now))
    removal = publishes(bench)[-1]
    assert removal.headers.get("Expires") == "0" and removal.headers.get("SIP-If-Match") == "etag1"
    assert removal.body == b""
    assert changes(bench)[-1] == ev.PublicationChanged(account="alice", state="removed")
    assert bench.ua.publications.state("alice") is PubState.IDLE
    bench.walk(100_000.0)
    assert len(publishes(bench)) == 2  # no refresh after removal


def test_removal_of_nothing_published_is_at_once_and_sends_nothing() -> None:
    bench = Bench()
    bench.server.script = [Answer(500)]
    publish(bench)
    bench.add(bench.ua.publications.remove("alice", bench.now))
    assert changes(bench)[-1].state == "removed" and len(publishes(bench)) == 1


def test_removal_while_the_first_publish_is_out_waits_for_its_tag() -> None:
    bench = Bench()
    bench.server.hold = True
    publish(bench)
    bench.add(bench.ua.publications.remove("alice", bench.now))
    assert bench.ua.publications.removing == 1
    bench.server.release()
    bench.flush()
    _, removal = publishes(bench)
    assert removal.headers.get("Expires") == "0" and removal.headers.get("SIP-If-Match") == "etag1"
    assert bench.ua.publications.removing == 0
    assert [c.state for c in changes(bench)] == ["removed"]
