"""TLS contexts, certificate error sentences, and SipTransport over TLS on loopback.

Certificates come from a throwaway CA made once per session with the ``openssl`` command
(the ``cryptography`` package is not installed in the project's environment).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from softphone.sip.address import Address
from softphone.transport.sip import SipTransport
from softphone.transport.tls import client_context, describe_tls_error, server_context

TIMEOUT_S = 2.0
SERVER_NAME = "sip.example.test"

CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
unique_subject = no
default_md = sha256
policy = any
[any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::SAN
"""

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certs:
    ca: str
    key: str
    valid: str
    expired: str
    wrong_name: str
    self_signed: str


def openssl(workdir: Path, *args: str, san: str = "") -> None:
    done = subprocess.run(
        ["openssl", *args],
        cwd=workdir,
        env={"SAN": san, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"openssl {args[0]} failed: {done.stderr}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.cnf").write_text(CA_CONFIG)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    openssl(
        d, "req", "-x509", *EC_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=Softphone Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        d, "req", "-new", *EC_KEY, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf"
    )

    def sign(out: str, san: str, *dates: str) -> str:
        openssl(
            d, "ca", "-batch", "-config", "ca.cnf", "-extensions", "leaf", "-notext",
            "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "leaf.csr", "-out", out, *dates,
            san=san,
        )  # fmt: skip
        return str(d / out)

    valid = sign("valid.pem", f"DNS:{SERVER_NAME}", "-days", "30")
    expired = sign(
        "expired.pem", f"DNS:{SERVER_NAME}", "-startdate", "20200101000000Z",
        "-enddate", "20210101000000Z",
    )  # fmt: skip
    wrong = sign("wrong.pem", "DNS:other.example.test", "-days", "30")
    openssl(
        d, "req", "-x509", "-key", "leaf.key", "-out", "self.pem", "-days", "30",
        "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}",
    )  # fmt: skip
    return Certs(
        ca=str(d / "ca.pem"),
        key=str(d / "leaf.key"),
        valid=valid,
        expired=expired,
        wrong_name=wrong,
        self_signed=str(d / "self.pem"),
    )


class FakeCore:
    """Records inputs; answers every message with ``reply`` sent back to its source."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.received: list[tuple[bytes, Address]] = []
        self.errors: list[tuple[Address, str]] = []
        self.closed_flows: list[tuple[Address, str]] = []
        self.outbox: list[tuple[bytes, Address]] = []
        self.reply = reply
        self.changed = asyncio.Event()

    def receive_message(self, data: bytes, source: Address, now: float) -> list[object]:
        self.received.append((data, source))
        if self.reply is not None:
            self.outbox.append((self.reply, source))
        self.changed.set()
        return []

    def messages_to_send(self) -> list[tuple[bytes, Address]]:
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[object]:
        return []

    def transport_error(self, dest: Address, reason: str, now: float) -> list[object]:
        self.errors.append((dest, reason))
        self.changed.set()
        return [reason]

    def flow_closed(self, dest: Address, reason: str, now: float) -> list[object]:
        self.closed_flows.append((dest, reason))
        self.changed.set()
        return []

    async def until(self, cond: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT_S):
            while not cond():
                self.changed.clear()
                await self.changed.wait()


def sip(method: str) -> bytes:
    return (
        f"{method} sip:bob@{SERVER_NAME} SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK74bf9\r\n"
        "Call-ID: tls1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@dataclass
class Pair:
    server: FakeCore
    client: FakeCore
    client_transport: SipTransport
    dest: Address


@pytest.fixture
async def tls_pair(request: pytest.FixtureRequest, certs: Certs) -> AsyncIterator[Pair]:
    """A TLS server presenting ``request.param`` (a Certs field) and a client trusting our CA."""
    cert_name, trust_ca = request.param
    server_core, client_core = FakeCore(reply=sip("RESPONSE")), FakeCore()
    server = SipTransport(
        server_core,
        lambda events: None,
        tls_server_context=server_context(getattr(certs, cert_name), certs.key),
    )
    client = SipTransport(
        client_core,
        lambda events: None,
        tls_context=lambda dest: client_context(certs.ca if trust_ca else None),
    )
    try:
        local = await server.listen("tls", "127.0.0.1", 0)
        dest = Address("tls", "127.0.0.1", local.port, server_name=SERVER_NAME)
        yield Pair(server_core, client_core, client, dest)
    finally:
        await client.close()
        await server.close()


@pytest.mark.parametrize("tls_pair", [("valid", True)], indirect=True)
async def test_tls_round_trip(tls_pair: Pair) -> None:
    tls_pair.client.outbox.append((sip("OPTIONS"), tls_pair.dest))
    tls_pair.client_transport.pump()
    await tls_pair.client.until(lambda: len(tls_pair.client.received) == 1)
    assert tls_pair.client.received == [(sip("RESPONSE"), tls_pair.dest)]
    assert [data for data, _ in tls_pair.server.received] == [sip("OPTIONS")]
    assert tls_pair.server.received[0][1].transport == "tls"
    assert tls_pair.client.errors == []


@pytest.mark.parametrize(
    ("tls_pair", "expected"),
    [
        (("expired", True), ["has expired", SERVER_NAME]),
        (("wrong_name", True), [f"expected name '{SERVER_NAME}'"]),
        (("valid", False), ["unknown certificate authority"]),
        (("self_signed", True), ["unknown certificate authority", "self-signed"]),
    ],
    indirect=["tls_pair"],
)
async def test_tls_verification_failure_is_a_transport_error(
    tls_pair: Pair, expected: list[str]
) -> None:
    tls_pair.client.outbox.append((sip("OPTIONS"), tls_pair.dest))
    tls_pair.client_transport.pump()
    await tls_pair.client.until(lambda: len(tls_pair.client.errors) == 1)
    dest, reason = tls_pair.client.errors[0]
    assert dest == tls_pair.dest
    for part in [*expected, 'tls_ca_file = "/path/ca.pem"']:
        assert part in reason
    assert tls_pair.server.received == []


def verification_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


DEST = Address("tls", "192.0.2.7", 5061, server_name="pbx.example.test")


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (10, "certificate has expired", "the certificate of pbx.example.test has expired"),
        (9, "certificate is not yet valid", "is not yet valid (check this computer's clock)"),
        (62, "Hostname mismatch", "not valid for the expected name 'pbx.example.test'"),
        (18, "self-signed certificate", "unknown certificate authority (self-signed certificate)"),
        (19, "self-signed certificate in certificate chain", "unknown certificate authority"),
        (20, "unable to get local issuer certificate", "unknown certificate authority"),
        (21, "unable to verify the first certificate", "unknown certificate authority"),
        (23, "certificate revoked", "was rejected (certificate revoked)"),
    ],
)
def test_describe_tls_error_names_the_problem(code: int, message: str, expected: str) -> None:
    text = describe_tls_error(verification_error(code, message), DEST)
    assert text.startswith("TLS connection to tls:192.0.2.7:5061 failed: ")
    assert expected in text
    assert text.endswith('set tls_ca_file = "/path/ca.pem" on the account.')


def test_describe_tls_error_without_server_name_expects_the_ip() -> None:
    text = describe_tls_error(
        verification_error(64, "IP address mismatch"), Address("tls", "::1", 5061)
    )
    assert "expected name '::1'" in text and "tls:[::1]:5061" in text


def test_describe_other_errors() -> None:
    assert describe_tls_error(ConnectionResetError("reset by peer"), DEST) == (
        "TLS connection to tls:192.0.2.7:5061 failed: reset by peer"
    )
    assert "tls_ca_file" not in describe_tls_error(ssl.SSLError(1, "wrong version"), DEST)


def test_client_context_always_verifies(certs: Certs) -> None:
    for context in (client_context(None), client_context(certs.ca)):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    trusted = client_context(certs.ca).get_ca_certs()
    assert any("Softphone Test CA" in str(ca["subject"]) for ca in trusted)


def test_server_context_loads_the_chain(certs: Certs) -> None:
    assert server_context(certs.valid, certs.key).minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        server_context(certs.valid, certs.ca)  # a key that does not match


async def test_unreadable_ca_file_is_a_transport_error(tmp_path: Path) -> None:
    core = FakeCore()
    missing = str(tmp_path / "missing-ca.pem")
    transport = SipTransport(
        core, lambda events: None, tls_context=lambda d: client_context(missing)
    )
    dest = Address("tls", "127.0.0.1", 5061, server_name=SERVER_NAME)
    try:
        core.outbox.append((sip("OPTIONS"), dest))
        transport.pump()
        await core.until(lambda: len(core.errors) == 1)
    finally:
        await transport.close()
    assert core.errors[0][0] == dest
    assert "no such file or directory" in core.errors[0][1]
