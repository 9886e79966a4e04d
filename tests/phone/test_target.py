"""What a person types becomes a SIP URI on the account's domain."""

from __future__ import annotations

import pytest

from softphone.phone.target import TargetError, normalize_target
from softphone.sip.uri import SipUri

AOR = SipUri(user="alice", host="lab.test")


@pytest.mark.parametrize(
    ("typed", "uri"),
    [
        ("1002", "sip:1002@lab.test"),
        ("+1 (555) 123-4567", "sip:+15551234567@lab.test"),
        ("bob", "sip:bob@lab.test"),
        ("bob@example.com", "sip:bob@example.com"),
        ("sip:bob@example.com;transport=tcp", "sip:bob@example.com;transport=tcp"),
        ("sips:bob@example.com", "sips:bob@example.com"),
        ("tel:+1-555-123", "sip:+1555123@lab.test;user=phone"),
        ("127.0.0.1:5070", "sip:127.0.0.1:5070"),
        ("  bob  ", "sip:bob@lab.test"),
    ],
)
def test_targets(typed: str, uri: str) -> None:
    assert str(normalize_target(typed, AOR)) == uri


@pytest.mark.parametrize(
    ("typed", "words"),
    [("", "empty"), ("sip:", "not a valid SIP address"), ("a b@c", "not a valid")],
)
def test_bad_targets_say_why(typed: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        normalize_target(typed, AOR)
