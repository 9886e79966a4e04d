"""The interop lab: real Kamailio and baresip peers on 127.0.0.1, driven from pytest.

Nothing here knows about softphone. ``tests/interop/conftest.py`` turns these objects into
fixtures; this module holds the machinery so that it can also be used from a REPL:

- :func:`require_binary` — the peer-discovery policy (skip outside CI, fail with ``CI=true``).
- :class:`LabPki` / :func:`make_pki` — a throwaway CA plus good, expired and wrong-name server
  certificates made with the ``openssl`` command line.
- :class:`Kamailio` — registrar + proxy for domain ``lab.test`` (UDP+TCP on one port, TLS on the
  next), digest users alice/bob/carol/dave (password ``<user>pw``). Every reply it sends and every
  request it sees is one log line starting with ``LAB`` (see ``kamailio.cfg.tmpl``):

  ``LAB REQUEST INVITE alice->bob proto=udp src=127.0.0.1:40000 ci=...``
  ``LAB CHALLENGE 401 REGISTER alice`` / ``LAB CHALLENGE 407 INVITE alice``
  ``LAB REPLY 423 REGISTER alice ci=...`` (every reply Kamailio itself sends, 401/403/404/...)
  ``LAB REGISTERED alice expires=3600 proto=tcp contact=sip:...`` / ``LAB UNREGISTERED alice ...``
  ``LAB RELAYED-REPLY 180 INVITE ci=...`` (replies relayed on INVITE/BYE/REFER/NOTIFY/...)

- :class:`Baresip` — a baresip 1.0.0 far-end phone with its own config dir, controlled through
  ``ctrl_tcp`` (:class:`BaresipCtrl`, netstring-framed JSON); every event it reports is kept in
  ``events`` so tests can assert on the history.

Waiting is always on a condition variable with a deadline; nothing here sleeps for a fixed time.
Every socket and every peer is bound to 127.0.0.1 (Kamailio also to [::1] UDP when it can).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import pytest

HOST: Final = "127.0.0.1"
DOMAIN: Final = "lab.test"
USERS: Final[dict[str, str]] = {
    "alice": "alicepw",
    "bob": "bobpw",
    "carol": "carolpw",
    "dave": "davepw",
}
TEMPLATE: Final = Path(__file__).with_name("kamailio.cfg.tmpl")
KAMAILIO_MPATH_CANDIDATES: Final = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
)

Transport = Literal["udp", "tcp", "tls"]
CertKind = Literal["good", "expired", "wrong_name"]


class LabError(AssertionError):
    """A lab peer failed to start or a wait timed out (an AssertionError, so pytest shows it)."""


# --------------------------------------------------------------------------- discovery policy


def in_ci() -> bool:
    """True when missing peers must fail the run rather than skip (CI, or asked for)."""
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("SOFTPHONE_REQUIRE_INTEROP") == "1"
    )


def require_binary(name: str) -> str:
    """Return the path of ``name``; skip the test when missing, or fail it when in CI."""
    path = shutil.which(name) or next(
        (
            str(p)
            for d in ("/usr/sbin", "/sbin", "/usr/local/sbin")
            if (p := Path(d) / name).is_file() and os.access(p, os.X_OK)
        ),
        None,
    )
    if path is not None:
        return path
    reason = f"interop peer {name!r} not found on PATH (install it with `make peers`)"
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- ports


def _can_bind(family: socket.AddressFamily, kind: socket.SocketKind, host: str, port: int) -> bool:
    with socket.socket(family, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port_pair(host: str = HOST) -> int:
    """A port P with UDP and TCP free on P and TCP free on P+1 (SIP + SIP-over-TLS)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        if (
            _can_bind(socket.AF_INET, socket.SOCK_STREAM, host, port)
            and _can_bind(socket.AF_INET, socket.SOCK_DGRAM, host, port)
            and _can_bind(socket.AF_INET, socket.SOCK_STREAM, host, port + 1)
            and _can_bind(socket.AF_INET, socket.SOCK_DGRAM, host, port + 1)
        ):
            return port
    raise LabError("no free port pair on 127.0.0.1")


def free_tcp_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_tcp_ready(
    port: int, deadline: float, log: ProcessLog, alive: Callable[[], bool], host: str = HOST
) -> None:
    """Poll ``connect()`` until the port accepts, the process dies, or the deadline passes.

    Between attempts it waits for the peer to print something (at most 50 ms), not a fixed sleep.
    """
    while True:
        seen = len(log)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            try:
                s.connect((host, port))
            except OSError:
                pass
            else:
                return
        if not alive():
            raise LabError(f"process died before {host}:{port} was ready")
        if time.monotonic() >= deadline:
            raise LabError(f"{host}:{port} not ready before the deadline")
        log.wait_output(seen, timeout_s=0.05)


# --------------------------------------------------------------------------- processes


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded once here so the child does no dlopen() between fork and exec (other threads may hold locks).
_LIBC: Final = _load_libc()
_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Best effort: have Linux SIGTERM the peer if the pytest process dies (PR_SET_PDEATHSIG)."""
    if _LIBC is not None:
        with contextlib.suppress(AttributeError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class ProcessLog:
    """Lines of a child's stdout+stderr, read by a thread, waited on with a condition variable."""

    def __init__(self, stream: Any, name: str) -> None:
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._closed = False
        self.name = name
        self._thread = threading.Thread(
            target=self._pump, args=(stream,), name=f"lab-log-{name}", daemon=True
        )
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        try:
            for raw in stream:
                line = raw.rstrip("\r\n")
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def __len__(self) -> int:
        with self._cond:
            return len(self._lines)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines()[-n:])

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        """First match of ``pattern`` (re.search) in lines[since:], waiting up to ``timeout_s``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        index = since
        with self._cond:
            while True:
                while index < len(self._lines):
                    if (m := regex.search(self._lines[index])) is not None:
                        return m
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    why = "output closed" if self._closed else f"{timeout_s}s passed"
                    tail = "\n".join(self._lines[-40:])
                    raise LabError(
                        f"{self.name}: no line matching {regex.pattern!r} ({why}); last lines:\n{tail}"
                    )
                self._cond.wait(remaining)

    def wait_output(self, seen: int, timeout_s: float) -> bool:
        """Wait until there are more than ``seen`` lines (or output ends); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._lines) > seen or self._closed, timeout_s)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def start_process(
    argv: list[str], *, name: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], ProcessLog]:
    """Start ``argv`` in its own session/process group with stdout+stderr captured."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return proc, ProcessLog(proc.stdout, name)


def stop_process(
    proc: subprocess.Popen[str], log: ProcessLog | None, term_wait_s: float = 5.0
) -> int | None:
    """SIGTERM our child by pid, SIGKILL its process group after a bounded wait; return its code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=term_wait_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=term_wait_s)
    # Children left behind in the group we created (the group id is our child's pid).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if log is not None:
        log.join(2.0)
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True, slots=True, kw_only=True)
class CertPair:
    cert: Path
    key: Path

    @property
    def combined(self) -> Path:
        """Certificate followed by its key in one PEM (what baresip's sip_certificate wants)."""
        return self.cert.with_name(self.cert.stem + "-combined.pem")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabPki:
    ca_file: Path
    ca_key: Path
    good: CertPair  # SAN IP:127.0.0.1, IP:::1, DNS:lab.test, DNS:localhost
    expired: CertPair  # same names, notAfter in the past
    wrong_name: CertPair  # SAN DNS:wrong.invalid only

    def server(self, kind: CertKind) -> CertPair:
        return {"good": self.good, "expired": self.expired, "wrong_name": self.wrong_name}[kind]


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise LabError(f"openssl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def make_pki(directory: Path) -> LabPki:
    """A throwaway test CA and three server certificates signed by it, via ``openssl``."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.pem"
    ca_key = directory / "ca.key"
    _openssl(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        ca_key.name,
        "-out",
        ca.name,
        "-days",
        "3",
        "-subj",
        "/CN=softphone interop lab CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )

    def issue(stem: str, cn: str, san: str, days: str, serial: str) -> CertPair:
        pair = CertPair(cert=directory / f"{stem}.pem", key=directory / f"{stem}.key")
        ext = directory / f"{stem}.ext"
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl(
            openssl,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            pair.key.name,
            "-out",
            f"{stem}.csr",
            "-subj",
            f"/CN={cn}",
            cwd=directory,
        )
        # A negative -days puts notAfter before notBefore: already expired when issued.
        _openssl(
            openssl,
            "x509",
            "-req",
            "-in",
            f"{stem}.csr",
            "-CA",
            ca.name,
            "-CAkey",
            ca_key.name,
            "-set_serial",
            serial,
            "-days",
            days,
            "-extfile",
            ext.name,
            "-out",
            pair.cert.name,
            cwd=directory,
        )
        pair.combined.write_text(pair.cert.read_text() + pair.key.read_text())
        return pair

    names = f"IP:{HOST},IP:::1,DNS:{DOMAIN},DNS:localhost"
    return LabPki(
        ca_file=ca,
        ca_key=ca_key,
        good=issue("server", DOMAIN, names, "3", "2"),
        expired=issue("expired", DOMAIN, names, "-1", "3"),
        wrong_name=issue("wrong-name", "wrong.invalid", "DNS:wrong.invalid", "3", "4"),
    )


# --------------------------------------------------------------------------- Kamailio


def _kamailio_mpath() -> str:
    for candidate in KAMAILIO_MPATH_CANDIDATES:
        if (Path(candidate) / "tm.so").is_file():
            return candidate + "/"
    raise LabError(f"Kamailio modules not found in any of {KAMAILIO_MPATH_CANDIDATES}")


class Kamailio:
    """A Kamailio registrar + proxy for ``lab.test`` on 127.0.0.1 (UDP/TCP on P, TLS on P+1)."""

    domain: Final = DOMAIN
    host: Final = HOST

    def __init__(self, workdir: Path, pki: LabPki, tls_cert: CertKind = "good") -> None:
        self.workdir = workdir
        self.pki = pki
        self.tls_cert: CertKind = tls_cert
        self.ca_file: Path = pki.ca_file
        self.udp_port = 0
        self.tcp_port = 0
        self.tls_port = 0
        self.udp6_port: int | None = None  # [::1] UDP, when the kernel lets us bind it
        self.config_path = workdir / "kamailio.cfg"
        self._proc: subprocess.Popen[str] | None = None
        self._log: ProcessLog | None = None

    # -- life cycle

    def render_config(self) -> str:
        port = free_port_pair()
        self.udp_port = self.tcp_port = port
        self.tls_port = port + 1
        self.udp6_port = (
            port if _can_bind(socket.AF_INET6, socket.SOCK_DGRAM, "::1", port) else None
        )
        dbdir = self.workdir / "db"
        dbdir.mkdir(parents=True, exist_ok=True)
        rows = "".join(
            f"{i}:{user}:{DOMAIN}:{pw}\n" for i, (user, pw) in enumerate(USERS.items(), 1)
        )
        (dbdir / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string)\n" + rows
        )
        server = self.pki.server(self.tls_cert)
        tls_cfg = self.workdir / "tls.cfg"
        tls_cfg.write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"certificate = {server.cert}\nprivate_key = {server.key}\n\n"
            f"[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
        )
        v6 = f"listen=udp:[::1]:{port}" if self.udp6_port is not None else "# no [::1] on this host"
        values = {
            "PORT": str(port),
            "TLS_PORT": str(port + 1),
            "LISTEN_V6": v6,
            "DOMAIN": DOMAIN,
            "MPATH": _kamailio_mpath(),
            "TLS_CFG": str(tls_cfg),
            "DBDIR": str(dbdir),
        }
        text = TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        if "@@" in text:
            raise LabError("kamailio.cfg.tmpl has an unreplaced @@placeholder@@")
        return text

    def start(self, timeout_s: float = 15.0) -> Kamailio:
        binary = require_binary("kamailio")
        self.workdir.mkdir(parents=True, exist_ok=True)
        rundir = self.workdir / "run"
        rundir.mkdir(exist_ok=True)
        self.config_path.write_text(self.render_config())
        common = ["-f", str(self.config_path), "-Y", str(rundir), "-m", "64", "-M", "8"]
        check = subprocess.run(
            [binary, "-c", *common], capture_output=True, text=True, timeout=60, check=False
        )
        if check.returncode != 0:
            raise LabError(
                f"kamailio -c rejected {self.config_path}:\n{check.stdout}{check.stderr}"
            )
        self._proc, self._log = start_process(
            [binary, "-DD", "-E", *common], name="kamailio", cwd=self.workdir
        )
        deadline = time.monotonic() + timeout_s
        try:
            wait_tcp_ready(self.tcp_port, deadline, self._log, self.alive)
            self._wait_udp_ready(deadline)
        except LabError as exc:
            tail = self._log.tail()
            self.stop()
            raise LabError(f"{exc}\nkamailio output:\n{tail}") from None
        return self

    def _wait_udp_ready(self, deadline: float) -> None:
        """Send OPTIONS to the proxy itself (answered 200) until it answers: the UDP workers run."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
            for n in itertools.count(1):
                branch = f"z9hG4bK-labprobe-{n}"
                probe = (
                    f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {HOST}:{port};branch={branch};rport\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:probe@{DOMAIN}>;tag=probe\r\nTo: <sip:{DOMAIN}>\r\n"
                    f"Call-ID: lab-probe-{port}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                s.sendto(probe, (HOST, self.udp_port))
                s.settimeout(max(0.05, min(0.25, deadline - time.monotonic())))
                try:
                    if s.recv(65535).startswith(b"SIP/2.0 200"):
                        return
                except OSError:
                    pass
                if not self.alive():
                    raise LabError("kamailio exited during start-up")
                if time.monotonic() >= deadline:
                    raise LabError("kamailio did not answer OPTIONS over UDP before the deadline")
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        if self._proc is None:
            return None
        code = stop_process(self._proc, self._log)
        self._proc = None
        return code

    # -- what Kamailio saw

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def lines(self) -> list[str]:
        return self._log.lines() if self._log is not None else []

    def lab_lines(self) -> list[str]:
        """Only the ``LAB ...`` lines, with the log prefix cut off."""
        return [line[line.index("LAB ") :] for line in self.lines() if "LAB " in line]

    def mark(self) -> int:
        """An index to pass as ``since=`` so a wait ignores what was logged before now."""
        return len(self._log) if self._log is not None else 0

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        if self._log is None:
            raise LabError("kamailio was never started")
        return self._log.wait_for(pattern, timeout_s, since)

    # -- addresses

    def port_for(self, transport: Transport) -> int:
        return {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]

    def outbound_uri(self, transport: Transport) -> str:
        """``sip:127.0.0.1:P;transport=...`` — the outbound proxy URI for that transport."""
        return f"sip:{HOST}:{self.port_for(transport)};transport={transport}"


# --------------------------------------------------------------------------- baresip


Event = dict[str, Any]


class BaresipCtrl:
    """Client for baresip's ``ctrl_tcp``: netstring-framed JSON commands, responses and events."""

    def __init__(self, port: int, name: str, host: str = HOST) -> None:
        self.name = name
        self._sock = socket.create_connection((host, port), timeout=5.0)
        self._sock.settimeout(None)
        self._cond = threading.Condition()
        self._tokens = itertools.count(1)
        self._responses: dict[str, Event] = {}
        self.events: list[Event] = []
        self.closed = False
        self._send_lock = threading.Lock()
        self._thread = threading.Thread(target=self._reader, name=f"lab-ctrl-{name}", daemon=True)
        self._thread.start()

    # netstring framing: b"<len>:<payload>," (http://cr.yp.to/proto/netstrings.txt)
    @staticmethod
    def _frames(buffer: bytearray) -> Iterator[bytes]:
        while True:
            colon = buffer.find(b":")
            if colon < 0:
                return
            length = int(buffer[:colon])
            end = colon + 1 + length
            if len(buffer) < end + 1:
                return
            payload = bytes(buffer[colon + 1 : end])
            if buffer[end : end + 1] != b",":
                raise LabError(f"{'ctrl_tcp'}: bad netstring terminator {buffer[end : end + 1]!r}")
            del buffer[: end + 1]
            yield payload

    def _reader(self) -> None:
        buffer = bytearray()
        try:
            while chunk := self._sock.recv(65536):
                buffer += chunk
                for payload in self._frames(buffer):
                    message: Event = json.loads(payload.decode("utf-8", "replace"))
                    with self._cond:
                        if message.get("response"):
                            self._responses[str(message.get("token", ""))] = message
                        elif message.get("event"):
                            self.events.append(message)
                        self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def command(self, name: str, params: str = "", timeout_s: float = 5.0) -> Event:
        """Send one menu command; return its response (``{"response":true,"ok":...,"data":...}``)."""
        token = f"lab{next(self._tokens)}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        with self._send_lock:
            self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise LabError(f"{self.name}: no response to {name!r} {params!r}")
                self._cond.wait(remaining)
            return self._responses.pop(token)

    def wait_event(
        self,
        type: str,
        timeout_s: float = 5.0,
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event:
        """First event of ``type`` in ``events[since:]`` (past ones count), waiting if needed."""
        deadline = time.monotonic() + timeout_s
        index = since
        with self._cond:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event.get("type") == type and (predicate is None or predicate(event)):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    seen = [e.get("type") for e in self.events]
                    raise LabError(
                        f"{self.name}: no {type} event within {timeout_s}s; events: {seen}"
                    )
                self._cond.wait(remaining)

    def event_types(self) -> list[str]:
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(2.0)


Audio = Literal["tone"] | Path | str


class Baresip:
    """A baresip 1.0.0 far-end phone registered to the lab Kamailio, driven over ctrl_tcp."""

    def __init__(
        self,
        *,
        workdir: Path,
        kamailio: Kamailio,
        user: str = "bob",
        transport: Transport = "udp",
        register: bool = True,
        auto_answer: bool = False,
        audio: Audio = "tone",
        record: bool = False,
        password: str | None = None,
        extra_config: str = "",
    ) -> None:
        self.workdir = workdir
        self.kamailio = kamailio
        self.user = user
        self.password = password if password is not None else USERS.get(user, f"{user}pw")
        self.transport: Transport = transport
        self.register = register
        self.auto_answer = auto_answer
        self.audio = audio
        self.record = record
        self.extra_config = extra_config
        self.sip_port = 0
        self.ctrl_port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: ProcessLog | None = None
        self._ctrl: BaresipCtrl | None = None

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{DOMAIN}"

    @property
    def ctrl(self) -> BaresipCtrl:
        if self._ctrl is None:
            raise LabError(f"baresip {self.user} is not running")
        return self._ctrl

    @property
    def events(self) -> list[Event]:
        return self.ctrl.events

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- configuration

    def account_line(self) -> str:
        params = [
            f"auth_pass={self.password}",
            f'outbound="{self.kamailio.outbound_uri(self.transport)}"',
            f"answermode={'auto' if self.auto_answer else 'manual'}",
            f"regint={300 if self.register else 0}",
        ]
        return f"<sip:{self.user}@{DOMAIN};transport={self.transport}>;" + ";".join(params) + "\n"

    def config_text(self) -> str:
        modules = ["ctrl_tcp.so", "menu.so"]
        codecs = ["opus.so", "g722.so", "g711.so"]
        libdir = Path("/usr/lib/baresip/modules")
        if libdir.is_dir():  # g722 is optional: load only what is there
            codecs = [m for m in codecs if (libdir / m).is_file()]
        if self.audio == "tone":
            # ausine only makes 48 kHz: with a G.711 or G.722 call baresip must resample to
            # it, or the source fails and baresip closes the call.
            source = "audio_source\t\tausine,440\nausrc_srate\t\t48000\nausrc_channels\t\t2\n"
            audio_modules = ["ausine.so"]
        else:
            wav = Path(str(self.audio)).resolve()
            with wave.open(str(wav)) as w:  # aufile needs the file's own rate and channels
                rate, channels = w.getframerate(), w.getnchannels()
            source = f"audio_source\t\taufile,{wav}\nausrc_srate\t\t{rate}\nausrc_channels\t\t{channels}\n"
            audio_modules = ["aufile.so"]
        filters = ["sndfile.so"] if self.record else []
        lines = [
            "poll_method\t\tepoll\n",
            f"sip_listen\t\t{HOST}:{self.sip_port}\n",
            f"sip_cafile\t\t{self.kamailio.ca_file}\n",
            f"sip_certificate\t\t{self.kamailio.pki.good.combined}\n",
            "call_local_timeout\t120\ncall_max_calls\t\t4\n",
            source,
            "audio_player\t\t\naudio_alert\t\t\n",
            "ausrc_format\t\ts16\nauplay_format\t\ts16\n",
            "rtp_tos\t\t\t0\nrtcp_mux\t\tno\njitter_buffer_delay\t5-10\n",
            f"net_interface\t\t{HOST}\n",
            f"dns_server\t\t{HOST}:53\n",
            f"module_path\t\t{libdir}\n",
            *[f"module\t\t\t{m}\n" for m in [*codecs, *filters, *audio_modules]],
            "module_tmp\t\taccount.so\n",
            *[f"module_app\t\t{m}\n" for m in modules],
            f"ctrl_tcp_listen\t\t{HOST}:{self.ctrl_port}\n",
            "statmode_default\toff\n",
            "menu_bell\t\tno\n",
            "ringback_disabled\tyes\n",
            f"snd_path\t\t{self.workdir}\n",
            self.extra_config,
        ]
        return "".join(lines)

    # -- life cycle

    def start(self, timeout_s: float = 10.0) -> Baresip:
        binary = require_binary("baresip")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port_pair()
        self.ctrl_port = free_tcp_port()
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(self.account_line())
        (self.workdir / "contacts").write_text("")
        # -t: baresip quits by itself after 15 min even if a test run is killed hard.
        argv = [binary, "-f", str(self.workdir), "-t", "900"]
        if (stdbuf := shutil.which("stdbuf")) is not None:  # line-buffer its log through the pipe
            argv = [stdbuf, "-oL", "-eL", *argv]
        self._proc, self._log = start_process(argv, name=f"baresip-{self.user}", cwd=self.workdir)
        deadline = time.monotonic() + timeout_s
        try:
            wait_tcp_ready(self.ctrl_port, deadline, self._log, self.alive)
            self._ctrl = BaresipCtrl(self.ctrl_port, name=f"baresip-{self.user}")
            if self.register:
                self._wait_registered(deadline)
        except LabError as exc:
            tail = self._log.tail()
            self.stop()
            raise LabError(f"{exc}\nbaresip {self.user} output:\n{tail}") from None
        return self

    def _wait_registered(self, deadline: float) -> None:
        # The ctrl connection is up before we ask, so a REGISTER_OK after this reply reaches us.
        info = self.ctrl.command("reginfo", timeout_s=max(0.1, deadline - time.monotonic()))
        if re.search(r"\bOK\b", strip_ansi(str(info.get("data", "")))):
            return
        remaining = max(0.1, deadline - time.monotonic())
        self.ctrl.wait_event("REGISTER_OK", timeout_s=remaining)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """``quit`` over ctrl (baresip unregisters), then SIGTERM/SIGKILL by pid, bounded."""
        if self._proc is None:
            return None
        if self._ctrl is not None:
            if self.alive() and not self._ctrl.closed:
                with contextlib.suppress(LabError, OSError):
                    self._ctrl.command("quit", timeout_s=1.0)
            self._ctrl.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=timeout_s)
        code = stop_process(self._proc, self._log)
        self._proc = None
        return code

    # -- output

    def lines(self) -> list[str]:
        return self._log.lines() if self._log is not None else []

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        if self._log is None:
            raise LabError("baresip was never started")
        return self._log.wait_for(pattern, timeout_s, since)

    def recordings(self) -> list[Path]:
        """``dump-*-dec.wav`` / ``-enc.wav`` files written by the sndfile filter (record=True)."""
        return sorted(self.workdir.glob("dump-*.wav"))

    # -- commands (names as baresip 1.0.0's menu module lists them in `help`)

    def command(self, name: str, params: str = "", timeout_s: float = 5.0) -> Event:
        response = self.ctrl.command(name, params, timeout_s)
        if not response.get("ok", False):
            raise LabError(f"baresip {self.user}: {name} {params!r} failed: {response}")
        return response

    def wait_event(
        self,
        type: str,
        timeout_s: float = 5.0,
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event:
        return self.ctrl.wait_event(type, timeout_s, predicate, since)

    def mark(self) -> int:
        """An index to pass as ``since=`` so a wait ignores events seen before now."""
        return len(self.ctrl.events)

    def dial(self, uri: str) -> Event:
        return self.command("dial", uri)

    def accept(self) -> Event:
        return self.command("accept")

    def hangup(self) -> Event:
        return self.command("hangup")

    def hold(self) -> Event:
        return self.command("hold")

    def resume(self) -> Event:
        return self.command("resume")

    def transfer(self, uri: str) -> Event:
        return self.command("transfer", uri)

    def list_calls(self) -> str:
        return strip_ansi(str(self.command("listcalls").get("data", "")))


class KamailioFactory(Protocol):
    """The ``kamailio_factory`` fixture: another Kamailio serving the given TLS certificate."""

    def __call__(self, tls_cert: CertKind = "good") -> Kamailio: ...


class BaresipFactory(Protocol):
    """The ``baresip_factory`` fixture; ``kamailio`` defaults to the session ``kamailio``."""

    def __call__(
        self,
        user: str = "bob",
        transport: Transport = "udp",
        register: bool = True,
        auto_answer: bool = False,
        audio: Audio = "tone",
        record: bool = False,
        kamailio: Kamailio = ...,
        extra_config: str = "",
    ) -> Baresip: ...


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
