"""Kamailio 5.6 as the lab's registrar and proxy for ``lab.test``, on 127.0.0.1.

UDP and TCP on one port P, TLS on P+1, and UDP on [::1]:P when the host can bind it. Digest
users alice, bob, carol and dave, password ``<user>pw`` (a db_text ``subscriber`` table, no
database server). The configuration is ``kamailio.cfg.tmpl`` beside this module, with its
``@@PLACEHOLDERS@@`` filled in. Every reply Kamailio sends and every request it sees is one log
line starting with ``LAB``:

  ``LAB REQUEST INVITE alice->bob proto=udp src=127.0.0.1:40000 ci=...``
  ``LAB CHALLENGE 401 REGISTER alice`` / ``LAB CHALLENGE 407 INVITE alice``
  ``LAB REPLY 423 REGISTER alice ci=...`` (every reply Kamailio itself sends, 401/403/404/...)
  ``LAB REGISTERED alice expires=3600 proto=tcp contact=sip:...`` / ``LAB UNREGISTERED alice ...``
  ``LAB RELAYED-REPLY 180 INVITE ci=...`` (replies relayed on INVITE/BYE/REFER/NOTIFY/...)

``Kamailio(..., presence=True)`` is also the presence server (``WITH_PRESENCE`` in the template):
PUBLISH and SUBSCRIBE for ``presence``, ``dialog`` (pua_dialoginfo publishes every call through
it) and ``message-summary``, logged as

  ``LAB PUBLISH presence sip:alice@lab.test expires=3600 etag=<null>``
  ``LAB SUBSCRIBE dialog sip:bob@lab.test from=sip:alice@lab.test expires=600 totag=<null>``

It keeps that state in memory: :meth:`Kamailio.restart` (same ports) forgets every subscription
and publication, as a registrar that restarts does.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from softphone.lab.netns import entered, netns_argv
from softphone.lab.pki import DOMAIN, CertKind, LabPki
from softphone.lab.process import (
    HOST,
    LabError,
    LabProcess,
    can_bind,
    find_binary,
    free_port_pair,
    retry_taken_port,
)

__all__ = ["USERS", "Kamailio", "Transport"]

USERS: Final[dict[str, str]] = {
    "alice": "alicepw",
    "bob": "bobpw",
    "carol": "carolpw",
    "dave": "davepw",
}
TEMPLATE: Final = "kamailio.cfg.tmpl"
# db_text tables the presence modules open (they stay empty: state is kept in memory), copied
# with their column lines from the schema Debian's kamailio package ships.
DBTEXT_SCHEMA: Final = Path("/usr/share/kamailio/dbtext/kamailio")
PRESENCE_TABLES: Final = ("presentity", "active_watchers", "watchers", "xcap", "pua")
MPATH_CANDIDATES: Final = (
    "/usr/lib/x86_64-linux-gnu/kamailio/modules",
    "/usr/lib/aarch64-linux-gnu/kamailio/modules",
    "/usr/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
    "/usr/local/lib/kamailio/modules",
)

Transport = Literal["udp", "tcp", "tls"]


def template_text() -> str:
    """The configuration template, shipped as package data next to this module."""
    return resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")


def _mpath() -> str:
    for candidate in MPATH_CANDIDATES:
        if (Path(candidate) / "tm.so").is_file():
            return candidate + "/"
    raise LabError(f"Kamailio modules not found in any of {MPATH_CANDIDATES}")


class Kamailio:
    """A Kamailio registrar + proxy for ``lab.test`` on 127.0.0.1 (UDP/TCP on P, TLS on P+1)."""

    domain: Final = DOMAIN

    def __init__(
        self,
        workdir: Path,
        pki: LabPki,
        tls_cert: CertKind = "good",
        *,
        host: str = HOST,
        netns: str | None = None,
        flow_timer_s: int = 0,
        nat_aliases: bool = True,
        presence: bool = False,
        client_certificates: bool = False,
        rtpengine: str | None = None,
        nat_contacts: bool = False,
    ) -> None:
        """``host``: the address it listens on (and the one ``netns`` gives it, when it runs
        inside a namespace of :mod:`softphone.lab.netns`). ``flow_timer_s``: the ``Flow-Timer``
        its 200 to REGISTER carries (RFC 5626 §4.4.1), 0 for none. ``nat_aliases=False``: no
        nathelper aliases on the Contacts of TCP/TLS dialogs, so requests inside a dialog go
        where the phone's Contact says (a registrar that relies on the phone to name an address
        it can be reached at). ``presence``: load the presence modules (PUBLISH, SUBSCRIBE and
        NOTIFY for presence, dialog and message-summary; dialog states from the calls it
        proxies), their tables in db_text. ``client_certificates``: its TLS server demands a
        client certificate signed by the lab CA (mutual TLS, as some providers do). ``rtpengine``: the ng socket of an rtpengine
        (``udp:HOST:PORT``, :attr:`softphone.lab.rtpengine.RtpEngine.ng_socket`) that anchors
        the media of every call it proxies (``LAB RTPENGINE OFFER`` / ``ANSWER`` / ``DELETE``
        lines). ``nat_contacts``: a UDP client whose Contact names a private address is reached
        where its packets came from (its binding and its dialogs' Contacts; ``LAB NAT-CONTACT``
        lines), for phones behind a NAT that do not say where they are reached (baresip 1.0)."""
        self.nat_contacts = nat_contacts
        if rtpengine is not None and not re.fullmatch(r"udp6?:[0-9A-Za-z.:\[\]-]+:\d+", rtpengine):
            raise LabError(f"an rtpengine ng socket is udp:HOST:PORT, not {rtpengine!r}")
        self.rtpengine = rtpengine
        self.host = host
        self.netns = netns
        self.flow_timer_s = flow_timer_s
        self.nat_aliases = nat_aliases
        self.workdir = workdir
        self.presence = presence
        self.client_certificates = client_certificates
        self.pki = pki
        self.tls_cert: CertKind = tls_cert
        self.ca_file: Path = pki.ca_file
        self.udp_port = 0
        self.tcp_port = 0
        self.tls_port = 0
        self.udp6_port: int | None = None  # [::1] UDP, when the kernel lets us bind it
        self.config_path = workdir / "kamailio.cfg"
        self._process: LabProcess | None = None

    # -- life cycle

    def render_config(self, port: int | None = None) -> str:
        """The configuration, on ``port`` (UDP/TCP; TLS on the next), else on free ones."""
        port = port if port is not None else free_port_pair(self.host)
        self.udp_port = self.tcp_port = port
        self.tls_port = port + 1
        loopback = self.host == HOST
        self.udp6_port = (
            port if loopback and can_bind(socket.AF_INET6, socket.SOCK_DGRAM, "::1", port) else None
        )
        dbdir = self.workdir / "db"
        dbdir.mkdir(parents=True, exist_ok=True)
        rows = "".join(
            f"{i}:{user}:{DOMAIN}:{pw}\n" for i, (user, pw) in enumerate(USERS.items(), 1)
        )
        (dbdir / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string)\n" + rows
        )
        if self.presence:
            _presence_tables(dbdir)
        server = self.pki.server(self.tls_cert)
        tls_cfg = self.workdir / "tls.cfg"
        tls_cfg.write_text(
            "[server:default]\nmethod = TLSv1.2+\n"
            + (
                f"verify_certificate = yes\nrequire_certificate = yes\nca_list = {self.ca_file}\n"
                if self.client_certificates
                else "verify_certificate = no\nrequire_certificate = no\n"
            )
            + f"certificate = {server.cert}\nprivate_key = {server.key}\n\n"
            f"[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
        )
        v6 = f"listen=udp:[::1]:{port}" if self.udp6_port is not None else "# no [::1] on this host"
        values = {
            "HOST": self.host,
            "FLOW_TIMER": str(self.flow_timer_s),
            "NAT_ALIASES": "1" if self.nat_aliases else "0",
            "PORT": str(port),
            "TLS_PORT": str(port + 1),
            "LISTEN_V6": v6,
            "DOMAIN": DOMAIN,
            "MPATH": _mpath(),
            "TLS_CFG": str(tls_cfg),
            "DBDIR": str(dbdir),
            "CTL": str(self.ctl_path),
            "RTPENGINE_SOCK": self.rtpengine or f"udp:{self.host}:2223",  # unused without it
        }
        text = template_text()
        defines = [
            name
            for name, wanted in (
                ("WITH_PRESENCE", self.presence),
                ("WITH_RTPENGINE", self.rtpengine is not None),
                ("WITH_NAT_CONTACTS", self.nat_contacts),
            )
            if wanted
        ]
        if defines:
            first, _, rest = text.partition("\n")
            text = first + "\n" + "".join(f"#!define {d}\n" for d in defines) + rest
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        if "@@" in text:
            raise LabError(f"{TEMPLATE} has an unreplaced @@placeholder@@")
        return text

    def start(self, timeout_s: float = 15.0, *, port: int | None = None) -> Kamailio:
        """Start it on ``port`` (UDP/TCP; TLS on the next), or on free ports, inside ``netns``
        when given, and wait until it answers on UDP and TCP. Free ports that another process
        takes before Kamailio binds them are replaced by others (:func:`retry_taken_port`); a
        port given is not."""
        with contextlib.ExitStack() as stack:
            if self.netns is not None:
                stack.enter_context(entered(self.netns))  # ports and probes are the namespace's
            if port is not None:
                return self._start(timeout_s, port)
            return retry_taken_port(lambda: self._start(timeout_s, None))

    def _start(self, timeout_s: float, port: int | None) -> Kamailio:
        binary = find_binary("kamailio", "kamailio")
        self.workdir.mkdir(parents=True, exist_ok=True)
        rundir = self.workdir / "run"
        rundir.mkdir(exist_ok=True)
        self.config_path.write_text(self.render_config(port))
        common = ["-f", str(self.config_path), "-Y", str(rundir), "-m", "64", "-M", "8"]
        check = subprocess.run(
            [binary, "-c", *common], capture_output=True, text=True, timeout=60, check=False
        )
        if check.returncode != 0:
            raise LabError(
                f"kamailio -c rejected {self.config_path}:\n{check.stdout}{check.stderr}"
            )
        process = self._process = LabProcess(
            netns_argv(self.netns, [binary, "-DD", "-E", *common]),
            name="kamailio",
            cwd=self.workdir,
            log_path=self.workdir / "kamailio.log",
        )
        deadline = time.monotonic() + timeout_s
        try:
            process.wait_port(self.tcp_port, timeout_s, host=self.host)
            self._wait_udp_ready(process, deadline)
        except LabError as exc:
            tail = process.tail()
            self.stop()
            raise LabError(f"{exc}\nkamailio output:\n{tail}") from None
        return self

    def _wait_udp_ready(self, process: LabProcess, deadline: float) -> None:
        """OPTIONS to the proxy itself until it answers 200: the UDP workers are running."""
        host = self.host
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
            attempts = itertools.count(1)

            def answered() -> bool:
                n = next(attempts)
                probe = (
                    f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-labprobe-{n};rport\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:probe@{DOMAIN}>;tag=probe\r\nTo: <sip:{DOMAIN}>\r\n"
                    f"Call-ID: lab-probe-{port}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                s.sendto(probe, (host, self.udp_port))
                s.settimeout(max(0.05, min(0.25, deadline - time.monotonic())))
                try:
                    return s.recv(65535).startswith(b"SIP/2.0 200")
                except OSError:
                    return False

            process.wait_until(
                answered,
                max(0.0, deadline - time.monotonic()),
                "an answer to OPTIONS over UDP",
                poll_s=0.0,
            )

    @property
    def ctl_path(self) -> Path:
        """Its control socket (module ctl), for kamcmd."""
        return self.workdir / "run" / "kamailio.ctl"

    def forget_bindings(self) -> None:
        """Remove every binding of the lab's users from the location table, as if each had
        unregistered. A binding a test leaves behind (a phone killed with -9 never unregisters)
        points at a port that a later test's phone may be using: calls to that user would be
        forked to it, and the caller would wait on a branch that never ends."""
        binary = find_binary("kamcmd", "kamailio")
        for user in USERS:
            # An AOR without bindings is an error to kamcmd ("AOR not found"): nothing to do.
            subprocess.run(
                [binary, "-s", f"unix:{self.ctl_path}", "ul.rm", "location", user],
                capture_output=True,
                timeout=10,
                check=False,
            )

    def restart(self, timeout_s: float = 15.0) -> Kamailio:
        """Stop it and start it again on the same ports, as a registrar restart does: the
        location table is in memory only, so every binding is gone, and so are subscriptions and
        publications. The log starts over; :meth:`mark` is 0 again."""
        port = self.udp_port
        self.stop()
        return self.start(timeout_s, port=port)

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def stop(self) -> int | None:
        """SIGTERM by pid (SIGKILL after a bounded wait); its output stays readable."""
        return self._process.stop() if self._process is not None else None

    # -- what Kamailio saw

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def lines(self) -> list[str]:
        return self._process.lines() if self._process is not None else []

    def lab_lines(self) -> list[str]:
        """Only the ``LAB ...`` lines, with the log prefix cut off."""
        return [line[line.index("LAB ") :] for line in self.lines() if "LAB " in line]

    def mark(self) -> int:
        """An index to pass as ``since=`` so a wait ignores what was logged before now."""
        return len(self.lines())

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        if self._process is None:
            raise LabError("kamailio was never started")
        return self._process.wait_for(pattern, timeout_s, since)

    # -- addresses

    def port_for(self, transport: Transport) -> int:
        return {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]

    def outbound_uri(self, transport: Transport, *, ipv6: bool = False) -> str:
        """``sip:HOST:P;transport=...``: the outbound proxy URI for that transport; with
        ``ipv6``, its UDP listener on ``[::1]`` (LabError when it has none)."""
        if ipv6:
            if transport != "udp" or self.udp6_port is None:
                raise LabError("kamailio listens on [::1] only for UDP, and only when it can")
            return f"sip:[::1]:{self.udp6_port};transport=udp"
        return f"sip:{self.host}:{self.port_for(transport)};transport={transport}"


def _presence_tables(dbdir: Path) -> None:
    """The presence modules' db_text tables, empty, and the version table they check."""
    try:
        versions = (DBTEXT_SCHEMA / "version").read_text().splitlines()
        for table in PRESENCE_TABLES:
            header = (DBTEXT_SCHEMA / table).read_text().splitlines()[0]
            (dbdir / table).write_text(header + "\n")
    except OSError as exc:
        raise LabError(f"the db_text schema of Kamailio is not in {DBTEXT_SCHEMA}: {exc}") from None
    rows = [
        line
        for line in versions[1:]
        if line.split(":")[1:2] and line.split(":")[1] in PRESENCE_TABLES
    ]
    (dbdir / "version").write_text("".join(f"{line}\n" for line in [versions[0], *rows]))
