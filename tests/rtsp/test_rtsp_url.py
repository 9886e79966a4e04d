"""RTSP URLs (RFC 2326 §3.2) and control resolution (§C.1.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.rtsp import ParseError, RtspUrl


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "path", "username", "password", "shown"),
    [
        ("rtsp://cam.local/live", "rtsp", "cam.local", 554, "/live", None, None,
         "rtsp://cam.local/live"),
        ("RTSP://cam.local:8554/live?ch=1&sub=0", "rtsp", "cam.local", 8554, "/live?ch=1&sub=0",
         None, None, "rtsp://cam.local:8554/live?ch=1&sub=0"),
        ("rtsps://cam.local/x", "rtsps", "cam.local", 322, "/x", None, None,
         "rtsps://cam.local/x"),
        ("rtsp://u:p%40ss@h/x", "rtsp", "h", 554, "/x", "u", "p@ss", "rtsp://h/x"),
        ("rtsp://admin:a%23b%3Ac%2Fd@h/x", "rtsp", "h", 554, "/x", "admin", "a#b:c/d",
         "rtsp://h/x"),
        # quirk: users type a raw "@" or "#" in the password
        ("rtsp://admin:p@ss#1@10.0.0.5:554/s", "rtsp", "10.0.0.5", 554, "/s", "admin", "p@ss#1",
         "rtsp://10.0.0.5/s"),
        ("rtsp://user@h", "rtsp", "h", 554, "", "user", None, "rtsp://h"),
        ("rtsp://u:@h/", "rtsp", "h", 554, "/", "u", "", "rtsp://h/"),
        ("rtsp://%C3%A9l%C3%A8ve:mot@h/", "rtsp", "h", 554, "/", "élève", "mot", "rtsp://h/"),
        ("rtsp://[::1]:8554/test", "rtsp", "::1", 8554, "/test", None, None,
         "rtsp://[::1]:8554/test"),
        ("rtsp://[fe80::1%25eth0]/t", "rtsp", "fe80::1%25eth0", 554, "/t", None, None,
         "rtsp://[fe80::1%25eth0]/t"),
        ("rtsp://h?x=1", "rtsp", "h", 554, "/?x=1", None, None, "rtsp://h/?x=1"),
        ("rtsp://h:/x", "rtsp", "h", 554, "/x", None, None, "rtsp://h/x"),
    ],
)  # fmt: skip
def test_parse_fields_and_str_without_credentials(
    text: str,
    scheme: str,
    host: str,
    port: int,
    path: str,
    username: str | None,
    password: str | None,
    shown: str,
) -> None:
    url = RtspUrl.parse(text)
    assert (url.scheme, url.host, url.port, url.path) == (scheme, host, port, path)
    assert (url.username, url.password) == (username, password)
    assert str(url) == shown
    if password:
        assert password not in repr(url) and password not in str(url)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://cam/x", "unsupported URL scheme 'http' (expected rtsp or rtsps)"),
        ("cam.local/live", "not an absolute URL (expected rtsp://host/...): 'cam.local/live'"),
        ("rtsp:///live", "RTSP URL has no host: 'rtsp:///live'"),
        ("rtsp://u:secret@/live", "RTSP URL has no host: 'rtsp://***@/live'"),
        ("rtsp://h:99999/x", "port 99999 out of range in 'rtsp://h:99999/x'"),
        ("rtsp://h:0/x", "port 0 out of range in 'rtsp://h:0/x'"),
        ("rtsp://h:80a/x", "bad port '80a' in 'rtsp://h:80a/x'"),
        ("rtsp://u:p%zz@h/x", "bad percent-encoding in the user information of 'rtsp://***@h/x'"),
        ("rtsp://u:%ff@h/x", "user information of 'rtsp://***@h/x' is not UTF-8"),
        ("rtsp://[::1/x", "unterminated IPv6 literal in 'rtsp://[::1/x'"),
        ("rtsp://[zz]/x", "bad IPv6 literal [zz] in 'rtsp://[zz]/x'"),
        ("rtsp://[::1]x/", "junk after the IPv6 literal in 'rtsp://[::1]x/'"),
        ("rtsp://h x/", "RTSP URL contains whitespace or control characters: 'rtsp://h x/'"),
        ("rtsp://h<>/", "bad host 'h<>' in 'rtsp://h<>/'"),
    ],
)
def test_malformed_urls_raise_parse_error_with_exact_text(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        RtspUrl.parse(text)
    assert str(info.value) == message
    assert "secret" not in str(info.value)


BASE = RtspUrl.parse("rtsp://admin:pw@cam.local:8554/live/stream")


@pytest.mark.parametrize(
    ("control", "expected"),
    [
        ("*", "rtsp://cam.local:8554/live/stream"),
        ("", "rtsp://cam.local:8554/live/stream"),
        ("trackID=1", "rtsp://cam.local:8554/live/stream/trackID=1"),  # appended, not merged
        ("/other/track", "rtsp://cam.local:8554/other/track"),
        ("rtsp://cam.local:8554/live/stream/track2", "rtsp://cam.local:8554/live/stream/track2"),
        ("rtsp://10.0.0.9/elsewhere", "rtsp://10.0.0.9/elsewhere"),
        # quirk: scheme-less Content-Base
        ("10.0.0.5:554/live/", "rtsp://10.0.0.5/live/"),
        ("192.168.1.20/ch1/", "rtsp://192.168.1.20/ch1/"),
        ("[2001:db8::5]:8554/x/", "rtsp://[2001:db8::5]:8554/x/"),
    ],
)
def test_join_resolves_controls(control: str, expected: str) -> None:
    assert str(BASE.join(control)) == expected


def test_join_keeps_trailing_slash_base_and_credentials_on_the_same_host() -> None:
    base = RtspUrl.parse("rtsp://u:p%40ss@127.0.0.1:8554/test/")
    track = base.join("stream=0")
    assert str(track) == "rtsp://127.0.0.1:8554/test/stream=0"
    assert (track.username, track.password) == ("u", "p@ss")
    other = base.join("rtsp://10.0.0.1/x")
    assert other.username is None  # never sent to another host


def test_dahua_query_base_gets_control_appended() -> None:
    base = RtspUrl.parse("rtsp://h/cam/realmonitor?channel=1&subtype=0/")
    assert str(base.join("trackID=0")) == "rtsp://h/cam/realmonitor?channel=1&subtype=0/trackID=0"


@given(st.text(max_size=60))
def test_parse_raises_only_parse_error(text: str) -> None:
    try:
        url = RtspUrl.parse(text)
    except ParseError:
        return
    assert RtspUrl.parse(str(url)).without_credentials() == url.without_credentials()


@given(
    user=st.text(min_size=1, max_size=12).filter(lambda s: ":" not in s),
    password=st.text(max_size=12),
)
def test_percent_encoded_credentials_round_trip(user: str, password: str) -> None:
    from urllib.parse import quote

    url = RtspUrl.parse(f"rtsp://{quote(user, safe='')}:{quote(password, safe='')}@h/x")
    assert (url.username, url.password) == (user, password)
    assert str(url) == "rtsp://h/x"


@pytest.mark.parametrize("control", ["track 1", "trackID=\x00", "x\udc80"])
def test_join_refuses_controls_with_junk(control: str) -> None:
    with pytest.raises(ParseError, match="control contains whitespace or control characters"):
        BASE.join(control)
