"""What a person reads when a call fails: the explanation and the Warning (RFC 3261 §20.43)."""

from __future__ import annotations


def test_warning_header_is_one_safe_line_and_reads_back() -> None:
    from softphone.sip.status import warning_header, warning_texts

    header = warning_header(302, 'plain RTP refused:\r\n media_encryption = "srtp"')
    assert header == "302 softphone \"plain RTP refused: media_encryption = 'srtp'\""
    assert warning_texts([header, '399 x.example "two", 305 y "three"']) == [
        "plain RTP refused: media_encryption = 'srtp'",
        "two",
        "three",
    ]
    assert warning_texts(["junk"]) == []


def test_explain_prefers_the_warning_text() -> None:
    from softphone.sip.status import explain

    assert explain(488, "Not Acceptable Here", "plain RTP refused") == (
        "488 Not Acceptable Here: plain RTP refused"
    )
    assert explain(488, "Not Acceptable Here") == (
        "488 Not Acceptable Here (no common codec or media format)"
    )
