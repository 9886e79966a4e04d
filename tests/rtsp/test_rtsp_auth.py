"""RTSP authentication (RFC 2326 §D): Basic (softphone/auth/basic.py, RFC 7617) and Digest
(RFC 7616) as the client answers 401s, checked by the server-side verifiers."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.auth.basic import (
    BasicChallenge,
    basic_authorization,
    parse_basic_credentials,
    verify_basic,
)
from softphone.auth.digest import Algorithm, make_challenge, verify_authorization
from softphone.auth.errors import ParseError as AuthParseError
from softphone.rtsp import (
    NEED_DATA,
    AuthenticationFailed,
    Described,
    Event,
    Headers,
    RtspClient,
    RtspConnection,
    RtspRequest,
    RtspResponse,
    RtspUrl,
    State,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:t0\r\n"
WWW = "WWW-Authenticate"

# --------------------------------------------------------------------------------------------
# Basic (RFC 7617)


def test_basic_authorization_rfc7617_example() -> None:
    # RFC 7617 §2: "Aladdin" / "open sesame"
    assert basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_basic_utf8_credentials_rfc7617_2_1() -> None:
    # RFC 7617 §2.1 example: "test" / "123£" in UTF-8
    assert basic_authorization("test", "123\u00a3") == "Basic dGVzdDoxMjPCow=="


def test_basic_challenge_parse_and_str() -> None:
    challenge = BasicChallenge.parse('Basic realm="IP, \\"Camera\\"", charset="UTF-8"')
    assert challenge == BasicChallenge(realm='IP, "Camera"', charset="UTF-8")
    assert BasicChallenge.parse(str(challenge)) == challenge
    assert BasicChallenge.parse("basic realm=cam").realm == "cam"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest realm="x"', "not a Basic auth header (scheme 'Digest')"),
        ('Basic realm="x', "unterminated quoted-string in Basic auth header"),
        ("Basic realm", "bad Basic auth-param 'realm'"),
    ],
)
def test_basic_challenge_errors(value: str, message: str) -> None:
    with pytest.raises(AuthParseError) as info:
        BasicChallenge.parse(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Digest abc", "not Basic credentials (scheme 'Digest')"),
        ("Basic !!!", "Basic credentials are not base64 of UTF-8 text"),
        ("Basic bm9jb2xvbg==", "Basic credentials have no ':' between user-id and password"),
    ],
)
def test_basic_credentials_errors(value: str, message: str) -> None:
    with pytest.raises(AuthParseError) as info:
        parse_basic_credentials(value)
    assert str(info.value) == message


@given(user=st.text(max_size=20).filter(lambda s: ":" not in s), password=st.text(max_size=20))
def test_basic_round_trip(user: str, password: str) -> None:
    value = basic_authorization(user, password)
    assert parse_basic_credentials(value) == (user, password)
    assert verify_basic(value, username=user, password=password)
    assert not verify_basic(value, username=user, password=password + "x")


def test_basic_user_id_with_colon_is_refused() -> None:
    with pytest.raises(AuthParseError, match="cannot contain ':'"):
        basic_authorization("a:b", "c")


# --------------------------------------------------------------------------------------------
# The client answering 401


class Camera:
    def __init__(self, url: str, credentials: tuple[str, str] | None = None) -> None:
        self.client = RtspClient(
            RtspUrl.parse(url),
            rng=random.Random(1),
            credentials=credentials,
            user_agent="t",
            now=0.0,
        )
        self._conn = RtspConnection()
        self.client.start(0.0)
        self.reply(self.request(), 200)  # OPTIONS

    def request(self) -> RtspRequest:
        self._conn.receive_data(self.client.data_to_send())
        item = self._conn.next_event()
        assert isinstance(item, RtspRequest)
        assert self._conn.next_event() is NEED_DATA
        return item

    def reply(
        self,
        request: RtspRequest,
        status: int,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> list[Event]:
        response = RtspResponse(
            status=status,
            reason="x",
            headers=Headers([("CSeq", str(request.cseq)), *headers]),
            body=body,
        )
        return self.client.receive_data(bytes(response), 1.0)


def digest(
    nonce: str, algorithm: Algorithm = Algorithm.MD5, stale: bool = False
) -> tuple[str, str]:
    return (WWW, make_challenge(realm="cam", nonce=nonce, algorithm=algorithm, stale=stale))


@pytest.mark.parametrize("algorithm", [Algorithm.MD5, Algorithm.SHA256])
def test_digest_answer_verifies(algorithm: Algorithm) -> None:
    camera = Camera("rtsp://admin:p%40ss%23@cam/live")  # credentials from the URL, decoded
    describe = camera.request()
    assert "Authorization" not in describe.headers
    assert camera.reply(describe, 401, [digest("abc", algorithm)]) == []
    retry = camera.request()
    value = retry.headers.get("Authorization") or ""
    assert f"algorithm={algorithm.value}" in value and 'uri="rtsp://cam/live"' in value
    assert verify_authorization(value, password="p@ss#", method="DESCRIBE", username="admin")
    assert not verify_authorization(value, password="p@ss", method="DESCRIBE")
    (event,) = camera.reply(retry, 200, [], SDP)
    assert isinstance(event, Described)


def test_sha256_preferred_whatever_the_order() -> None:
    camera = Camera("rtsp://cam/live", credentials=("u", "pw"))
    describe = camera.request()
    camera.reply(
        describe,
        401,
        [
            ("WWW-Authenticate", 'Basic realm="cam"'),
            digest("s", Algorithm.SHA256),
            digest("m", Algorithm.MD5),
        ],
    )
    value = camera.request().headers.get("Authorization") or ""
    assert value.startswith("Digest ") and "algorithm=SHA-256" in value


def test_basic_only_camera() -> None:
    camera = Camera("rtsp://cam/live", credentials=("admin", "12345"))
    describe = camera.request()
    camera.reply(describe, 401, [(WWW, 'Basic realm="Hipcam RealServer/V1.0"')])
    retry = camera.request()
    value = retry.headers.get("Authorization") or ""
    assert verify_basic(value, username="admin", password="12345")
    camera.reply(retry, 200, [], SDP)
    # later requests carry the credentials up front
    camera.client.get_parameter(3.0)
    assert verify_basic(
        camera.request().headers.get("Authorization") or "", username="admin", password="12345"
    )


def test_basic_rejected_twice_fails() -> None:
    camera = Camera("rtsp://cam/live", credentials=("admin", "wrong"))
    camera.reply(camera.request(), 401, [(WWW, 'Basic realm="cam"')])
    assert camera.reply(camera.request(), 401, [(WWW, 'Basic realm="cam"')]) == [
        AuthenticationFailed(method="DESCRIBE", reason="the server rejected the credentials")
    ]
    assert camera.client.state is State.FAILED


def test_same_nonce_again_means_wrong_password() -> None:
    camera = Camera("rtsp://cam/live", credentials=("admin", "wrong"))
    camera.reply(camera.request(), 401, [digest("n1")])
    assert camera.reply(camera.request(), 401, [digest("n1")]) == [
        AuthenticationFailed(method="DESCRIBE", reason="the server rejected the credentials")
    ]
    assert camera.client.state is State.FAILED


def test_stale_nonce_is_retried_with_nc_restarted() -> None:
    camera = Camera("rtsp://cam/live", credentials=("u", "pw"))
    camera.reply(camera.request(), 401, [digest("n1")])
    first = camera.request()
    assert camera.reply(first, 401, [digest("n2", stale=True)]) == []
    second = camera.request()
    value = second.headers.get("Authorization") or ""
    assert 'nonce="n2"' in value and "nc=00000001" in value
    assert verify_authorization(value, password="pw", method="DESCRIBE")


def test_new_nonce_is_retried_but_not_forever() -> None:
    camera = Camera("rtsp://cam/live", credentials=("u", "wrong"))
    camera.reply(camera.request(), 401, [digest("n1")])
    events: list[Event] = []
    for nonce in ("n2", "n3"):
        events = camera.reply(camera.request(), 401, [digest(nonce)])
        assert events == []  # a new nonce gets one more try
    assert camera.reply(camera.request(), 401, [digest("n4")]) == [
        AuthenticationFailed(method="DESCRIBE", reason="the server rejected the credentials")
    ]


def test_no_credentials_given() -> None:
    camera = Camera("rtsp://cam/live")
    assert camera.reply(camera.request(), 401, [digest("n1")]) == [
        AuthenticationFailed(
            method="DESCRIBE", reason="the server asks for credentials and none were given"
        )
    ]


def test_unknown_scheme_only() -> None:
    camera = Camera("rtsp://cam/live", credentials=("u", "p"))
    assert camera.reply(camera.request(), 401, [(WWW, "Negotiate abc")]) == [
        AuthenticationFailed(
            method="DESCRIBE", reason="no supported authentication scheme offered (Negotiate)"
        )
    ]


def test_options_challenged_at_start_is_retried() -> None:
    client = RtspClient(
        RtspUrl.parse("rtsp://cam/live"),
        rng=random.Random(1),
        credentials=("u", "pw"),
        user_agent="t",
        now=0.0,
    )
    conn = RtspConnection()
    client.start(0.0)
    conn.receive_data(client.data_to_send())
    options = conn.next_event()
    assert isinstance(options, RtspRequest)
    challenge = make_challenge(realm="cam", nonce="o1", algorithm=Algorithm.SHA256)
    response = RtspResponse(
        status=401, reason="Unauthorized", headers=Headers([("CSeq", "1"), (WWW, challenge)])
    )
    assert client.receive_data(bytes(response), 0.1) == []
    conn.receive_data(client.data_to_send())
    retry = conn.next_event()
    assert isinstance(retry, RtspRequest) and retry.method == "OPTIONS"
    assert verify_authorization(
        retry.headers.get("Authorization") or "", password="pw", method="OPTIONS"
    )


def test_authorization_is_redacted_in_the_wire_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="softphone.wire")
    camera = Camera("rtsp://cam/live", credentials=("admin", "12345"))
    camera.reply(camera.request(), 401, [(WWW, 'Basic realm="cam"')])
    camera.request()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Authorization: <redacted>" in logged
    assert basic_authorization("admin", "12345").split()[1] not in logged


def test_challenge_with_bytes_that_are_not_utf8_is_not_answered() -> None:
    camera = Camera("rtsp://cam/live", credentials=("u", "p"))
    describe = camera.request()
    raw = (
        f"RTSP/1.0 401 Unauthorized\r\nCSeq: {describe.cseq}\r\n".encode()
        + b'WWW-Authenticate: Digest realm="r", nonce="\x80\xff"\r\n\r\n'
    )
    assert camera.client.receive_data(raw, 1.0) == [
        AuthenticationFailed(
            method="DESCRIBE", reason="no supported authentication scheme offered (Digest)"
        )
    ]
