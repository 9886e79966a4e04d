"""Linphone's console client ``linphonec`` (Debian 12 ``linphone-cli``, liblinphone 5.1) as a
lab phone: the peer that does what baresip 1.0 cannot (Replaces, RFC 3891; reliable
provisional responses, RFC 3262; session timers, RFC 4028).

:class:`Linphone` writes a configuration file (liblinphone's "rc", INI sections) and an ALSA
configuration into a directory of its own, and starts ``linphonec -c RC`` with ``HOME`` set to
that directory, so that nothing of the user's (``~/.linphonerc``, ``~/.asoundrc``, the call
database under ``~/.local/share``) is read or written. It registers to the lab Kamailio over
UDP as ``sip:<user>@lab.test`` and sends every request through it (``reg_route``).

There is no sound card here, and liblinphone must not find one: the ALSA configuration puts
``default`` on a card that does not exist, so liblinphone lists no sound card and runs calls
on mediastreamer's void source and sink (the ALSA ``null`` device is not usable: it opens, but
is not paced in time, and linphonec hangs when a call's streams restart on a re-INVITE).

linphonec is driven through its stdin with the commands of its own prompt (``call``,
``answer``, ``terminate``, ``transfer``, ``calls``, ``autoanswer``, ``proxy list``) and reports
call state changes as lines on stdout (``-S``), which :func:`parse_event` reads:

  ``Receiving new incoming call from sip:alice@lab.test, assigned id 1``
  ``Call 1 to sip:bob@lab.test ringing.`` / ``Call 1 with sip:bob@lab.test connected.``
  ``Media streams established with sip:bob@lab.test for call 1 (audio).``
  ``Call 1 with sip:bob@lab.test ended (Call terminated).``

Video (``video=True``) runs headless too: linphonec's ``-C -D`` (capture and display, without
``-V``'s preview window) with mediastreamer's ``StaticImage`` as the camera (the only one it
lists with no camera here; Debian's "no webcam" picture at 1 picture a second) and
``MSExtDisplay`` as the display, a filter that opens no window. It offers and accepts video on
every call, VP8 and H.264 (OpenH264, Debian ``mediastreamer2-plugin-openh264``). Its
``snapshot FILE`` command saves the next picture it decoded as a JPEG (:meth:`snapshot`), which
is how a test sees what it received. With a display, mediastreamer logs an error line for each
display method the filter lacks, some 100 a second during a call: noise, not a failure.

``sip_trace=True`` raises its log level so that every SIP message it sends or receives is in
its output (belle-sip logs them whole), for tests that assert a header it sent.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final, Literal

from softphone.lab.kamailio import USERS, Kamailio
from softphone.lab.pki import DOMAIN
from softphone.lab.process import (
    HOST,
    PORT_TAKEN,
    LabError,
    LabProcess,
    find_binary,
    free_port_pair,
    retry_taken_port,
)

__all__ = ["CallEvent", "CallEventKind", "Linphone", "Rel100", "parse_event"]

# liblinphone's LinphoneSupportLevel for "100rel" ([sip] 100rel_support_level).
Rel100 = Literal["no", "optional", "mandatory"]
REL100_LEVELS: Final[dict[str, int]] = {"no": 0, "optional": 1, "mandatory": 2}
# linphonec quits by itself after this long even if whoever started it is killed hard.
LIFETIME_S: Final = 900
# ALSA's default PCM on a card that cannot exist: liblinphone then finds no sound card at all
# and runs calls on mediastreamer's void source and sink, paced by its own ticker. (With the
# ``null`` PCM as default, the card opens but is not paced: when a call's streams restart, on
# a hold re-INVITE, linphonec's main loop hangs for good.)
ASOUNDRC: Final = "pcm.!default {\n    type hw\n    card 31\n}\n"


class CallEventKind(Enum):
    """The call state changes linphonec prints (``linphonec_call_state_changed``)."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"
    PROGRESS = "progress"
    RINGING = "ringing"
    EARLY_MEDIA = "early_media"
    CONNECTED = "connected"
    STREAMS_RUNNING = "streams_running"
    PAUSED = "paused"
    PAUSED_BY_REMOTE = "paused_by_remote"
    ENDED = "ended"
    ERROR = "error"


@dataclass(frozen=True)
class CallEvent:
    """One call state change: linphonec's call id (a small integer) and the peer's URI."""

    kind: CallEventKind
    call: int
    peer: str


_PATTERNS: Final[tuple[tuple[CallEventKind, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            CallEventKind.INCOMING,
            r"Receiving new incoming call from (?P<peer>.+?), assigned id (?P<call>\d+)",
        ),
        (
            CallEventKind.OUTGOING,
            r"Establishing call id to (?P<peer>.+?), assigned id (?P<call>\d+)",
        ),
        (CallEventKind.PROGRESS, r"Call (?P<call>\d+) to (?P<peer>.+?) in progress\."),
        (CallEventKind.RINGING, r"Call (?P<call>\d+) to (?P<peer>.+?) ringing\."),
        (CallEventKind.EARLY_MEDIA, r"Call (?P<call>\d+) with (?P<peer>.+?) early media\."),
        (CallEventKind.CONNECTED, r"Call (?P<call>\d+) with (?P<peer>.+?) connected\."),
        (
            CallEventKind.STREAMS_RUNNING,
            r"Media streams established with (?P<peer>.+?) for call (?P<call>\d+)",
        ),
        (CallEventKind.PAUSED, r"Call (?P<call>\d+) with (?P<peer>.+?) is now paused\."),
        (CallEventKind.PAUSED_BY_REMOTE, r"Call (?P<call>\d+) has been paused by (?P<peer>.+?)\.$"),
        (CallEventKind.ENDED, r"Call (?P<call>\d+) with (?P<peer>.+?) ended"),
        (CallEventKind.ERROR, r"Call (?P<call>\d+) with (?P<peer>.+?) error\."),
    )
)


def parse_event(line: str) -> CallEvent | None:
    """The call event a line of linphonec's output reports, None for any other line. The
    prompt (``linphonec> ``) may precede it: linphonec prints no newline after its prompt."""
    for kind, pattern in _PATTERNS:
        if (found := pattern.search(line)) is not None:
            return CallEvent(kind, int(found["call"]), found["peer"])
    return None


def _check_command(line: str) -> str:
    if not line.strip() or any(c in line for c in "\r\n\x00"):
        raise LabError(f"linphonec takes one non-empty command line, not {line!r}")
    return line


class Linphone:
    """linphonec registered to ``kamailio`` as ``sip:<user>@lab.test`` over UDP on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        *,
        kamailio: Kamailio,
        user: str = "bob",
        auto_answer: bool = False,
        rel100: Rel100 = "no",
        session_expires_s: int | None = None,
        sip_trace: bool = False,
        host: str = HOST,
        video: bool = False,
    ) -> None:
        """``auto_answer``: answer every incoming call at once (``-a``). ``rel100``: what it
        says of reliable provisional responses (RFC 3262): ``optional`` puts 100rel in its
        Supported header, ``mandatory`` in Require. ``session_expires_s``: ask for session
        timers (RFC 4028) with this interval; None leaves them off. ``sip_trace``: log every
        SIP message in full to its output. ``video``: offer and accept video on every call
        (see the module docstring)."""
        if user not in USERS:
            raise LabError(f"Kamailio knows users {sorted(USERS)}, not {user!r}")
        if rel100 not in REL100_LEVELS:
            raise LabError(f"rel100 is one of {sorted(REL100_LEVELS)}, not {rel100!r}")
        if session_expires_s is not None and session_expires_s < 90:
            raise LabError(
                f"session timers need at least 90 s (RFC 4028 §4), not {session_expires_s}"
            )
        self.workdir = workdir
        self.kamailio = kamailio
        self.user = user
        self.password = USERS[user]
        self.auto_answer = auto_answer
        self.rel100: Rel100 = rel100
        self.session_expires_s = session_expires_s
        self.sip_trace = sip_trace
        self.host = host
        self.video = video
        self.sip_port = 0
        self._process: LabProcess | None = None

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{DOMAIN}"

    @property
    def rc_path(self) -> Path:
        return self.workdir / "linphonerc"

    # -- configuration

    def rc_text(self) -> str:
        """liblinphone's configuration: one UDP listener on ``host``, no TCP/TLS, video only
        when asked, no echo canceller, the null sound card, one account at the lab Kamailio."""
        proxy = f"sip:{self.host}:{self.kamailio.udp_port};transport=udp"
        expires = self.session_expires_s
        sections: dict[str, dict[str, object]] = {
            "sip": {
                "sip_port": self.sip_port,
                "sip_tcp_port": 0,
                "sip_tls_port": 0,
                "bind_address": self.host,
                "guess_hostname": 0,
                "contact": f"sip:{self.user}@{self.host}",
                "ipv6": 0,
                "register_only_when_network_is_up": 0,
                "default_proxy": 0,
                "inc_timeout": 60,
                # Not "gruu" (in its default): with a GRUU for Contact, requests inside a
                # dialog would go to sip:<user>@lab.test;gr=..., which the lab proxy resolves
                # through DNS and cannot (478).
                "supported": "replaces, outbound",
                "100rel_support_level": REL100_LEVELS[self.rel100],
                "session_expires_enabled": int(expires is not None),
                **({"session_expires_value": expires} if expires is not None else {}),
            },
            "net": {"firewall_policy": 0, "nat_policy_ref": ""},
            "rtp": {
                "audio_rtp_port": f"{self.sip_port + 2}-{self.sip_port + 200}",
                "video_rtp_port": f"{self.sip_port + 202}-{self.sip_port + 400}",
            },
            "sound": {"echocancellation": 0},
            "video": {
                "enabled": int(self.video),
                "capture": int(self.video),
                "display": int(self.video),
                "automatically_initiate": int(self.video),
                "automatically_accept": int(self.video),
                "show_local": 0,
                "self_view": 0,
                "displaytype": "MSExtDisplay",
            },
            "proxy_0": {
                "reg_proxy": f"<{proxy}>",
                # Calls go through the registrar too, not to lab.test's (nonexistent) DNS.
                "reg_route": f"<{proxy};lr>",
                "reg_identity": f'"{self.user}" <{self.aor}>',
                "reg_expires": 3600,
                "reg_sendregister": 1,
                "publish": 0,
                "dial_escape_plus": 0,
            },
            "auth_info_0": {
                "username": self.user,
                "passwd": self.password,
                "realm": DOMAIN,
                "domain": DOMAIN,
            },
        }
        return "".join(
            f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in entries.items()) + "\n"
            for name, entries in sections.items()
        )

    def argv(self, binary: str) -> list[str]:
        """``-S``: print call state changes; ``-d``: 0 (quiet) or 6 (every SIP message)."""
        argv = [binary, "-c", str(self.rc_path), "-S", "-d", "6" if self.sip_trace else "0"]
        if self.auto_answer:
            argv.append("-a")
        if self.video:  # capture and display; -V would add a preview window as well
            argv += ["-C", "-D"]
        timeout = shutil.which("timeout")
        if timeout is not None:  # a hard bound on its life, even if we are killed with -9
            argv = [timeout, "-s", "TERM", str(LIFETIME_S), *argv]
        if (stdbuf := shutil.which("stdbuf")) is not None:  # line-buffered through the pipe
            argv = [stdbuf, "-oL", "-eL", *argv]
        return argv

    def env(self) -> dict[str, str]:
        """A home of its own: liblinphone's database and ZRTP cache, and ALSA's ~/.asoundrc."""
        return {"HOME": str(self.workdir), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

    # -- life cycle

    def start(self, timeout_s: float = 10.0) -> Linphone:
        """Start it and wait until its account is registered, on other free ports when another
        process took its SIP port first (:func:`retry_taken_port`)."""
        return retry_taken_port(lambda: self._start(timeout_s))

    def _start(self, timeout_s: float) -> Linphone:
        binary = find_binary("linphonec", "linphone-cli")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        (self.workdir / ".asoundrc").write_text(ASOUNDRC)
        self.sip_port = free_port_pair(self.host)
        self.rc_path.write_text(self.rc_text())
        process = self._process = LabProcess(
            self.argv(binary),
            name=f"linphonec-{self.user}",
            cwd=self.workdir,
            env=self.env(),
            log_path=self.workdir / "linphonec.log",
            stdin_pipe=True,
        )
        try:
            self._wait_registered(time.monotonic() + timeout_s)
        except LabError as exc:
            tail = process.tail()
            # It does not quit when its port is taken: it logs so once and never registers.
            taken = [f"{line}\n" for line in process.lines() if PORT_TAKEN in line][:1]
            self.stop()
            raise LabError(
                f"{exc}\nlinphonec {self.user} output:\n{''.join(taken)}{tail}"
            ) from None
        return self

    def _wait_registered(self, deadline: float) -> None:
        # linphonec prints no line when a registration succeeds: ask it, a bounded number of times.
        for _ in range(100):
            mark = self.mark()
            self.command("proxy list")
            remaining = max(0.1, deadline - time.monotonic())
            if self.wait_for(r"registered: (yes|no)", remaining, mark).group(1) == "yes":
                return
            if time.monotonic() >= deadline:
                break
            # A short look for new output (a failure it prints) before asking again.
            self.process.log.wait_output(len(self.process.log), 0.2)
        raise LabError(f"linphonec {self.user} did not register in time")

    @property
    def process(self) -> LabProcess:
        if self._process is None:
            raise LabError(f"linphonec {self.user} was never started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """``quit`` on its stdin (it unregisters), then SIGTERM/SIGKILL by pid, bounded."""
        if self._process is None:
            return None
        if self._process.alive():
            with contextlib.suppress(LabError):
                self._process.send_line("quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.proc.wait(timeout=timeout_s)
        return self._process.stop()

    # -- output

    def lines(self) -> list[str]:
        return self._process.lines() if self._process is not None else []

    def mark(self) -> int:
        """An index to pass as ``since=`` so that a wait ignores what was printed before now."""
        return self.process.mark()

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        return self.process.wait_for(pattern, timeout_s, since)

    def events(self, since: int = 0) -> list[CallEvent]:
        return [e for line in self.lines()[since:] if (e := parse_event(line)) is not None]

    def wait_event(
        self,
        kind: CallEventKind,
        timeout_s: float = 5.0,
        *,
        peer: str | None = None,
        since: int = 0,
    ) -> CallEvent:
        """The first ``kind`` event in its output since ``since`` (with a peer URI containing
        ``peer``, when given), waiting up to ``timeout_s``."""

        def match(line: str) -> CallEvent | None:
            event = parse_event(line)
            if event is None or event.kind is not kind:
                return None
            return event if peer is None or peer in event.peer else None

        found = self.process.log.search(match, timeout_s, since)
        if found is None:
            raise LabError(
                f"linphonec {self.user}: no {kind.value} event"
                + (f" with {peer}" if peer else "")
                + f" within {timeout_s}s; events: {[e.kind.value for e in self.events(since)]}"
            )
        return found

    def sip_messages(self, since: int = 0) -> str:
        """Its output since ``since`` as one text: with ``sip_trace``, the SIP messages in it."""
        return "\n".join(self.lines()[since:])

    # -- commands (linphonec's prompt; ``help`` lists them)

    def command(self, line: str) -> None:
        checked = _check_command(line)  # a bad line is refused even before it starts
        self.process.send_line(checked)

    def call(self, uri: str) -> None:
        self.command(f"call {uri}")

    def answer(self, call: int | None = None) -> None:
        self.command("answer" if call is None else f"answer {call}")

    def terminate(self, call: int | None = None) -> None:
        self.command("terminate" if call is None else f"terminate {call}")

    def snapshot(self, path: Path, timeout_s: float = 5.0) -> None:
        """Save the next picture of the current call's received video to ``path`` (JPEG); it
        says so at once, and writes the file when that picture is decoded (the caller waits
        for a whole file)."""
        if any(c.isspace() for c in str(path)):
            raise LabError(f"linphonec takes a snapshot path without blanks, not {str(path)!r}")
        mark = self.mark()
        self.command(f"snapshot {path}")
        self.wait_for(f"Taking video snapshot in file {re.escape(str(path))}", timeout_s, mark)

    def calls(self, timeout_s: float = 5.0) -> str:
        """linphonec's table of calls (``calls``). Its prompt ends no line, so the end of the
        table is marked by the answer to a second command sent after it."""
        mark = self.mark()
        self.command("calls")
        self.command("autoanswer")
        end = self.wait_for(r"Auto answer is (enabled|disabled)", timeout_s, mark)
        lines = self.lines()[mark:]
        upto = next(i for i, line in enumerate(lines) if end.group(0) in line)
        return "\n".join(lines[:upto])
