"""Self-tests of the interop lab: Kamailio and baresip only, no softphone code.

They prove the harness the softphone-vs-peer tests stand on: the registrar's challenges and
replies (raw SIP built by hand over UDP), baresip registering and calling through Kamailio over
UDP, TCP and TLS, and the TLS certificates (good, expired, wrong name) verifying as designed.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import uuid

import pytest
from lab_support import BaresipFactory, KamailioFactory, in_ci

from softphone import lab

pytestmark = pytest.mark.interop

STEP_S = 5.0  # bound for each step that waits on a peer


# --------------------------------------------------------------------------- raw SIP over UDP


def _register(
    *,
    user: str,
    local_port: int,
    call_id: str,
    cseq: int,
    expires: int,
    authorization: str = "",
    host: str = lab.HOST,
) -> bytes:
    via_host = f"[{host}]" if ":" in host else host
    return (
        f"REGISTER sip:{lab.DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host}:{local_port};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{lab.DOMAIN}>;tag=lab{cseq}\r\n"
        f"To: <sip:{user}@{lab.DOMAIN}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@{via_host}:{local_port}>\r\n"
        f"Expires: {expires}\r\n"
        f"{authorization}"
        "User-Agent: lab-self-test\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _transact(sock: socket.socket, data: bytes, dest: tuple[str, int]) -> str:
    """Send one request and return the first final reply (retransmitting like RFC 3261 Timer E)."""
    interval = 0.5
    for _ in range(5):
        sock.sendto(data, dest)
        sock.settimeout(interval)
        try:
            while True:
                reply = sock.recv(65535).decode()
                if not reply.startswith("SIP/2.0 1"):
                    return reply
        except TimeoutError:
            interval = min(interval * 2, 4.0)
    raise AssertionError(f"no final reply from {dest}")


def _header(reply: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*?)\r$", reply, re.MULTILINE | re.IGNORECASE)
    assert m is not None, f"no {name} header in:\n{reply}"
    return m.group(1)


def _digest(reply: str, *, user: str, password: str, method: str, uri: str) -> str:
    """An RFC 2617 (qop=auth) Authorization header answering the challenge in ``reply``."""
    challenge = _header(reply, "WWW-Authenticate")
    realm = re.search(r'realm="([^"]+)"', challenge)
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert realm is not None and nonce is not None
    cnonce, nc = uuid.uuid4().hex[:16], "00000001"

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{user}:{realm.group(1)}:{password}")
    ha2 = md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{nonce.group(1)}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Authorization: Digest username="{user}", realm="{realm.group(1)}", '
        f'nonce="{nonce.group(1)}", uri="{uri}", response="{response}", algorithm=MD5, '
        f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
    )


@pytest.fixture
def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((lab.HOST, 0))
    return sock


def test_unauthenticated_register_gets_401_with_lab_realm(
    kamailio: lab.Kamailio, udp: socket.socket
) -> None:
    mark = kamailio.mark()
    port = udp.getsockname()[1]
    call_id = f"raw-{uuid.uuid4().hex}"
    with udp:
        reply = _transact(
            udp,
            _register(user="dave", local_port=port, call_id=call_id, cseq=1, expires=3600),
            (lab.HOST, kamailio.udp_port),
        )
    assert reply.startswith("SIP/2.0 401 ")
    assert 'realm="lab.test"' in _header(reply, "WWW-Authenticate")
    assert _header(reply, "Call-ID") == call_id
    kamailio.wait_for(r"LAB CHALLENGE 401 REGISTER dave$", STEP_S, since=mark)
    kamailio.wait_for(rf"LAB REPLY 401 REGISTER dave ci={re.escape(call_id)}", STEP_S, since=mark)


@pytest.mark.parametrize(
    ("password", "expires", "status"),
    [("davepw", 30, 423), ("wrong", 3600, 403), ("davepw", 120, 200)],
    ids=["too-brief-423", "wrong-password-403", "ok-200"],
)
def test_authenticated_register_outcomes(
    kamailio: lab.Kamailio, udp: socket.socket, password: str, expires: int, status: int
) -> None:
    mark = kamailio.mark()
    port = udp.getsockname()[1]
    call_id = f"raw-{uuid.uuid4().hex}"
    dest = (lab.HOST, kamailio.udp_port)
    with udp:
        first = _transact(
            udp,
            _register(user="dave", local_port=port, call_id=call_id, cseq=1, expires=expires),
            dest,
        )
        auth = _digest(
            first, user="dave", password=password, method="REGISTER", uri=f"sip:{lab.DOMAIN}"
        )
        reply = _transact(
            udp,
            _register(
                user="dave",
                local_port=port,
                call_id=call_id,
                cseq=2,
                expires=expires,
                authorization=auth,
            ),
            dest,
        )
        assert reply.startswith(f"SIP/2.0 {status} "), reply
        kamailio.wait_for(
            rf"LAB REPLY {status} REGISTER dave ci={re.escape(call_id)}", STEP_S, since=mark
        )
        if status == 423:
            assert _header(reply, "Min-Expires") == "60"
        if status == 200:
            assert re.search(r";expires=120\b", _header(reply, "Contact"))
            kamailio.wait_for(
                rf"LAB REGISTERED dave expires=1[12]\d proto=udp contact=sip:dave@127.0.0.1:{port}$",
                STEP_S,
                since=mark,
            )
            # Clean up the binding so other tests do not fork calls to this socket.
            again = _transact(
                udp,
                _register(user="dave", local_port=port, call_id=call_id, cseq=3, expires=0),
                dest,
            )
            auth = _digest(
                again, user="dave", password=password, method="REGISTER", uri=f"sip:{lab.DOMAIN}"
            )
            bye = _transact(
                udp,
                _register(
                    user="dave",
                    local_port=port,
                    call_id=call_id,
                    cseq=4,
                    expires=0,
                    authorization=auth,
                ),
                dest,
            )
            assert bye.startswith("SIP/2.0 200 ")
            kamailio.wait_for(r"LAB UNREGISTERED dave proto=udp", STEP_S, since=mark)


def test_register_over_ipv6_loopback_is_challenged(kamailio: lab.Kamailio) -> None:
    if kamailio.udp6_port is None:
        if in_ci():
            pytest.fail("Kamailio could not bind [::1] in CI")
        pytest.skip("this host cannot bind [::1]; Kamailio listens on 127.0.0.1 only")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
        reply = _transact(
            sock,
            _register(
                user="carol",
                local_port=port,
                call_id=f"raw6-{uuid.uuid4().hex}",
                cseq=1,
                expires=3600,
                host="::1",
            ),
            ("::1", kamailio.udp6_port),
        )
    assert reply.startswith("SIP/2.0 401 ")
    assert 'realm="lab.test"' in _header(reply, "WWW-Authenticate")


# --------------------------------------------------------------------------- baresip through Kamailio


def test_baresip_registers_after_401_challenge(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory
) -> None:
    mark = kamailio.mark()
    bob = baresip_factory(user="bob", transport="udp")
    kamailio.wait_for(r"LAB CHALLENGE 401 REGISTER bob$", STEP_S, since=mark)
    kamailio.wait_for(
        r"LAB REGISTERED bob expires=(29\d|300) proto=udp contact=sip:bob", STEP_S, since=mark
    )
    assert re.search(r"sip:bob@lab\.test\s+OK\b", lab.strip_ansi(bob.command("reginfo")["data"]))


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_calls_baresip_through_kamailio(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory, transport: lab.Transport
) -> None:
    bob = baresip_factory(user="bob", transport=transport)
    carol = baresip_factory(user="carol", transport=transport)
    mark = kamailio.mark()

    bob.dial(f"sip:carol@{lab.DOMAIN}")
    incoming = carol.wait_event("CALL_INCOMING", STEP_S)
    assert incoming["peeruri"].startswith("sip:bob@lab.test")
    carol.accept()
    out = bob.wait_event("CALL_ESTABLISHED", STEP_S)
    inc = carol.wait_event("CALL_ESTABLISHED", STEP_S)
    assert out["direction"] == "outgoing" and inc["direction"] == "incoming"
    assert out["id"] == inc["id"]  # the same Call-ID on both sides: one dialog through the proxy

    bob.hangup()
    bob.wait_event("CALL_CLOSED", STEP_S)
    closed = carol.wait_event("CALL_CLOSED", STEP_S)
    assert closed["id"] == inc["id"]

    # Kamailio's view: INVITE challenged with 407, then relayed over the same transport; BYE relayed.
    kamailio.wait_for(rf"LAB REQUEST INVITE bob->carol proto={transport} ", STEP_S, since=mark)
    kamailio.wait_for(r"LAB CHALLENGE 407 INVITE bob$", STEP_S, since=mark)
    kamailio.wait_for(
        rf"LAB RELAYED-REPLY 200 INVITE ci={re.escape(out['id'])}", STEP_S, since=mark
    )
    kamailio.wait_for(rf"LAB RELAYED-REPLY 200 BYE ci={re.escape(out['id'])}", STEP_S, since=mark)


def test_call_to_unregistered_user_gets_404(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory
) -> None:
    bob = baresip_factory(user="bob")
    mark = kamailio.mark()
    bob.dial(f"sip:dave@{lab.DOMAIN}")
    closed = bob.wait_event("CALL_CLOSED", STEP_S)
    assert "404" in closed["param"]
    kamailio.wait_for(r"LAB REPLY 404 INVITE bob", STEP_S, since=mark)


def test_forgotten_bindings_are_gone_and_a_call_to_them_gets_404(
    kamailio_factory: KamailioFactory, baresip_factory: BaresipFactory
) -> None:
    """What the fixtures do between tests: a binding left behind is removed, so a call to its
    user is not forked to whoever holds its port now."""
    proxy = kamailio_factory()
    bob = baresip_factory(user="bob", kamailio=proxy)
    carol = baresip_factory(user="carol", kamailio=proxy)
    proxy.forget_bindings()
    mark = proxy.mark()
    bob.dial(f"sip:carol@{lab.DOMAIN}")
    closed = bob.wait_event("CALL_CLOSED", STEP_S)
    assert "404" in closed["param"], closed
    assert not any(e["type"] == "CALL_INCOMING" for e in carol.events)
    proxy.wait_for(r"LAB REPLY 404 INVITE bob", STEP_S, since=mark)


def test_auto_answer_hold_resume_and_blind_transfer(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory
) -> None:
    bob = baresip_factory(user="bob")
    carol = baresip_factory(user="carol", auto_answer=True)
    dave = baresip_factory(user="dave", auto_answer=True)
    mark = kamailio.mark()

    bob.dial(f"sip:carol@{lab.DOMAIN}")
    call = bob.wait_event("CALL_ESTABLISHED", STEP_S)
    carol.wait_event("CALL_ESTABLISHED", STEP_S)  # nobody called accept(): answermode=auto

    # hold/resume are re-INVITEs inside the dialog: carol sees a new SDP offer each time.
    for action in (bob.hold, bob.resume):
        seen = carol.mark()
        action()
        offer = carol.wait_event("CALL_REMOTE_SDP", STEP_S, since=seen)
        assert offer["param"] == "offer"

    # Blind transfer (RFC 3515): bob REFERs carol to dave; carol calls dave through the proxy.
    bob.transfer(f"sip:dave@{lab.DOMAIN}")
    to_dave = dave.wait_event("CALL_ESTABLISHED", STEP_S)
    assert to_dave["peeruri"].startswith("sip:carol@lab.test")
    bob.wait_event("CALL_CLOSED", STEP_S, predicate=lambda e: e["id"] == call["id"])
    kamailio.wait_for(r"LAB REQUEST REFER bob->carol", STEP_S, since=mark)
    kamailio.wait_for(r"LAB REQUEST INVITE carol->dave ", STEP_S, since=mark)
    kamailio.wait_for(r"LAB REQUEST NOTIFY carol->bob", STEP_S, since=mark)
    carol.hangup()
    dave.wait_event("CALL_CLOSED", STEP_S)


# --------------------------------------------------------------------------- TLS material


def _handshake(port: int, ca_file: str, server_hostname: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((lab.HOST, port), timeout=STEP_S)
    try:
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


@pytest.mark.parametrize("name", ["lab.test", "127.0.0.1", "localhost"])
def test_lab_certificate_verifies_against_lab_ca(kamailio: lab.Kamailio, name: str) -> None:
    with _handshake(kamailio.tls_port, str(kamailio.ca_file), name) as tls:
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        cert = tls.getpeercert()
    assert cert is not None
    assert ("DNS", "lab.test") in cert["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("expired", "certificate has expired"), ("wrong_name", "Hostname mismatch")],
)
def test_bad_certificates_fail_verification(
    kamailio_factory: KamailioFactory, kind: lab.CertKind, reason: str
) -> None:
    proxy = kamailio_factory(tls_cert=kind)
    with pytest.raises(ssl.SSLCertVerificationError) as excinfo:
        _handshake(proxy.tls_port, str(proxy.ca_file), lab.DOMAIN).close()
    assert reason in str(excinfo.value)
