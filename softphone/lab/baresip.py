"""baresip 1.0.0 as the lab's far-end phone, driven through its ``ctrl_tcp`` module.

:class:`Baresip` writes a config directory of its own and starts ``baresip -f DIR``. With a
:class:`~softphone.lab.kamailio.Kamailio` it registers there as ``sip:<user>@lab.test`` (UDP,
TCP or TLS, digest password ``<user>pw``); without one it registers nowhere and is reachable
directly at :attr:`Baresip.uri` (``sip:<user>@127.0.0.1:<port>``). The microphone is an endless
440 Hz tone (module ``ausine``) or a WAV file (``aufile``: baresip hangs up when the file ends);
``record=True`` loads the ``sndfile`` filter, which writes what it hears to
``dump-*-dec.wav`` in the working directory.

:class:`BaresipCtrl` speaks ``ctrl_tcp``'s protocol: netstrings (``<length>:<payload>,``)
carrying JSON commands ``{"command", "params", "token"}``, their responses (same token) and
events (``CALL_INCOMING``, ``CALL_ESTABLISHED``, ``CALL_CLOSED``, ...). A thread reads the
socket; every event is kept in ``events`` so that a wait can count past ones too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal

from softphone.lab.kamailio import USERS, Kamailio, Transport
from softphone.lab.netns import entered, netns_argv
from softphone.lab.pki import DOMAIN
from softphone.lab.process import (
    HOST,
    LabError,
    LabProcess,
    find_binary,
    free_port_pair,
    free_tcp_port,
    hostport,
    retry_taken_port,
)

__all__ = [
    "Audio",
    "Baresip",
    "BaresipConsole",
    "BaresipCtrl",
    "Event",
    "MediaEnc",
    "MediaNat",
    "NetstringDecoder",
    "strip_ansi",
]

MODULE_DIR: Final = Path("/usr/lib/baresip/modules")
OPUS_AS_SOFTPHONE: Final = "opus_bitrate\t\t32000\nopus_stereo\t\tno\nopus_sprop_stereo\tno\n"
"""baresip config lines that make it encode Opus as softphone does: 32 kbit/s mono. Left to
itself, baresip 1.0 sends stereo CELT at about 100 kbit/s (libopus's own rate for stereo),
a different codec mode with a different cost, which no comparison with us should rest on."""

Event = dict[str, Any]
Audio = Literal["tone"] | Path | str
# baresip 1.0's media encryption names (account parameter ``mediaenc``).
MediaEnc = Literal["srtp", "srtp-mand", "srtp-mandf", "dtls_srtp", "dtls_srtpf"]
# baresip 1.0's media NAT traversal (account parameter ``medianat``, each its own module).
MediaNat = Literal["stun", "turn", "ice"]


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --------------------------------------------------------------------------- ctrl_tcp


def netstring(payload: bytes) -> bytes:
    """``payload`` framed as a netstring (http://cr.yp.to/proto/netstrings.txt)."""
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringDecoder:
    """Cuts a byte stream into netstring payloads, wherever the reads happen to split it."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payloads it completed (LabError on a malformed frame)."""
        self._buffer += data
        payloads: list[bytes] = []
        while (colon := self._buffer.find(b":")) >= 0:
            digits = bytes(self._buffer[:colon])
            if not digits.isdigit():
                raise LabError(f"ctrl_tcp: bad netstring length {digits[:20]!r}")
            end = colon + 1 + int(digits)
            if len(self._buffer) < end + 1:
                break
            if self._buffer[end : end + 1] != b",":
                raise LabError(
                    f"ctrl_tcp: bad netstring terminator {self._buffer[end : end + 1]!r}"
                )
            payloads.append(bytes(self._buffer[colon + 1 : end]))
            del self._buffer[: end + 1]
        if self._buffer and not self._buffer[:1].isdigit():
            raise LabError(f"ctrl_tcp: bad netstring length {bytes(self._buffer[:20])!r}")
        return payloads


class BaresipCtrl:
    """A connection to baresip's ``ctrl_tcp``: commands with their responses, and its events."""

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

    def _reader(self) -> None:
        decoder = NetstringDecoder()
        try:
            while chunk := self._sock.recv(65536):
                for payload in decoder.feed(chunk):
                    message: Event = json.loads(payload.decode("utf-8", "replace"))
                    with self._cond:
                        if message.get("response"):
                            self._responses[str(message.get("token", ""))] = message
                        elif message.get("event"):
                            self.events.append(message)
                        self._cond.notify_all()
        except (OSError, ValueError, LabError):
            pass  # closed, or not ctrl_tcp's protocol: either way nothing more will come
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def command(self, name: str, params: str = "", timeout_s: float = 5.0) -> Event:
        """Send one menu command; return its response (``{"response":true,"ok":...,"data":...}``)."""
        token = f"lab{next(self._tokens)}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        if self.closed:
            raise LabError(f"{self.name}: ctrl_tcp is closed; {name!r} not sent")
        try:
            with self._send_lock:
                self._sock.sendall(netstring(body))
        except OSError as exc:
            raise LabError(f"{self.name}: sending {name!r} failed: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise LabError(f"{self.name}: no response to {name!r} {params!r}")
                self._cond.wait(remaining)
            return self._responses.pop(token)

    def find_event(
        self,
        type: str,
        timeout_s: float = 5.0,
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event | None:
        """First event of ``type`` in ``events[since:]`` (past ones count), waiting up to
        ``timeout_s``; None when the time passes, LabError when the connection ends first."""
        deadline = time.monotonic() + timeout_s
        index = since
        with self._cond:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event.get("type") == type and (predicate is None or predicate(event)):
                        return event
                if self.closed:
                    raise LabError(f"{self.name}: ctrl_tcp closed while waiting for {type}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_event(
        self,
        type: str,
        timeout_s: float = 5.0,
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event:
        """Like :meth:`find_event`, but LabError when the time passes."""
        event = self.find_event(type, timeout_s, predicate, since)
        if event is None:
            raise LabError(
                f"{self.name}: no {type} event within {timeout_s}s; events: {self.event_types()}"
            )
        return event

    def event_types(self) -> list[str]:
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(2.0)


class BaresipConsole:
    """A connection to baresip's ``cons`` module: what baresip says to its user (``ui_output``)
    and logs, as text. baresip 1.0 shows a received instant message only there (``menu``
    prints ``<peer>: "<text>"``); ctrl_tcp sends no event for it."""

    def __init__(self, port: int, name: str, host: str = HOST) -> None:
        self.name = name
        self._sock = socket.create_connection((host, port), timeout=5.0)
        self._sock.settimeout(None)
        self._cond = threading.Condition()
        self._text = ""
        self._thread = threading.Thread(target=self._reader, name=f"lab-cons-{name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        try:
            while chunk := self._sock.recv(65536):
                with self._cond:
                    self._text += strip_ansi(chunk.decode("utf-8", "replace"))
                    self._cond.notify_all()
        except OSError:
            pass

    @property
    def text(self) -> str:
        with self._cond:
            return self._text

    def wait_for(self, pattern: str, timeout_s: float = 5.0) -> re.Match[str]:
        """The first match of ``pattern`` in what the console said (past output counts)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while (found := re.search(pattern, self._text)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LabError(f"{self.name}: console never said {pattern!r}: {self._text!r}")
                self._cond.wait(remaining)
            return found

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(2.0)


# --------------------------------------------------------------------------- the phone


def wav_format(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of a PCM WAV (aufile needs the file's own format)."""
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels()


class Baresip:
    """A baresip 1.0.0 far-end phone: registered to ``kamailio``, or standalone without one."""

    def __init__(
        self,
        workdir: Path,
        *,
        kamailio: Kamailio | None = None,
        user: str = "bob",
        transport: Transport = "udp",
        register: bool = True,
        auto_answer: bool = False,
        audio: Audio = "tone",
        record: bool = False,
        codecs: str | None = None,
        video_codecs: str | None = None,
        password: str | None = None,
        extra_config: str = "",
        display_name: str | None = None,
        contacts: tuple[str, ...] = (),
        console: bool = False,
        max_calls: int = 4,
        host: str = HOST,
        netns: str | None = None,
        mediaenc: MediaEnc | None = None,
        rtcp_mux: bool = False,
        presence: bool = False,
        publish_s: int = 60,
        medianat: MediaNat | None = None,
        stun_server: str | None = None,
        stun_user: str | None = None,
        stun_password: str | None = None,
        jack_client: str | None = None,
        env: dict[str, str] | None = None,
        jitter_frames: tuple[int, int] = (5, 10),
    ) -> None:
        """``host``: the address it listens and advertises on, inside ``netns`` when given
        (:mod:`softphone.lab.netns`). ``codecs``: baresip's ``audio_codecs`` (its internal
        names, e.g. ``opus/48000/1``; default: every codec module loaded). ``video_codecs``: its
        ``video_codecs`` (codec names; baresip 1.0 takes the first codec of each name, so
        ``H264`` is avcodec's packetization-mode 0 alone). ``register`` only
        matters with a registrar. ``display_name``: the name its From carries, as most phones
        send one. ``contacts``: URIs for its contacts file (module ``contact``), the only
        parties baresip 1.0 can send an instant message to (:meth:`send_message`).
        ``console``: load ``cons`` and read it (:attr:`console`), where baresip shows the
        instant messages it receives. ``max_calls``: calls it takes at once
        (``call_max_calls``; the load benchmarks raise it). ``mediaenc``: the account's media
        encryption (module ``srtp``: ``srtp`` offers SDES inside RTP/AVP, ``srtp-mand``
        RTP/SAVP; module ``dtls_srtp``: ``dtls_srtp`` UDP/TLS/RTP/SAVP). ``rtcp_mux``: offer
        and accept rtcp-mux (RFC 5761). ``presence``: load the ``presence`` module: it publishes
        its own state every ``publish_s`` (open, or closed after :meth:`presence_offline`) and
        subscribes to the presence of each of ``contacts`` (:meth:`contact_status` reads what it
        learnt). ``medianat``: media NAT traversal through ``stun_server`` (``stun:HOST:PORT``,
        or ``turn:HOST:PORT`` with ``stun_user`` and ``stun_password``, long-term credentials):
        ``stun`` puts the server-reflexive address in the SDP, ``turn`` a relayed one, ``ice``
        offers ICE candidates (RFC 8445; host, server-reflexive, and relayed with a ``turn:``
        server) and checks them. ``jack_client``: microphone and speaker are JACK ports (module
        ``jack``, mono float at 48 kHz) of clients of that name on the server its environment
        names (``JACK_DEFAULT_SERVER``), left unconnected (``jack_connect_ports no``); the
        ``audio`` source is then unused. ``env``: variables added to its environment (the JACK
        server's, :meth:`softphone.lab.jack.JackServer.client_env`). ``jitter_frames``: its jitter
        buffer's (min, max) in packets (``jitter_buffer_delay``; 5-10 is baresip 1.0's own
        default, the one its config template writes)."""
        self.workdir = workdir
        self.host = host
        self.netns = netns
        self.kamailio = kamailio
        self.user = user
        self.password = password if password is not None else USERS.get(user, f"{user}pw")
        self.transport: Transport = transport
        self.register = register and kamailio is not None
        self.auto_answer = auto_answer
        self.audio = audio
        self.record = record
        self.codecs = codecs
        if video_codecs is not None and re.search(r'[\s;"<>]', video_codecs):
            raise LabError(f"video codecs the accounts file can hold, not {video_codecs!r}")
        self.video_codecs = video_codecs
        self.extra_config = extra_config
        if display_name is not None and any(c in display_name for c in '"\\\r\n'):
            raise LabError(f"a display name the accounts file can hold, not {display_name!r}")
        self.display_name = display_name
        self.max_calls = max_calls
        if any(c in uri for uri in contacts for c in "<>\r\n"):
            raise LabError(f"contacts are bare URIs, not {contacts!r}")
        self.contacts = contacts
        self.presence = presence
        self.publish_s = publish_s
        self.with_console = console
        self.mediaenc = mediaenc
        self.rtcp_mux = rtcp_mux
        if medianat is not None and stun_server is None:
            raise LabError(f"medianat={medianat} needs a stun_server")
        for value in (stun_server, stun_user, stun_password):
            if value is not None and re.search(r'[\s;"<>]', value):
                raise LabError(f"a STUN/TURN setting the accounts file can hold, not {value!r}")
        self.medianat: MediaNat | None = medianat
        self.stun_server = stun_server
        self.stun_user = stun_user
        self.stun_password = stun_password
        if jack_client is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", jack_client):
            raise LabError(f"a JACK client name of letters, digits, - and _, not {jack_client!r}")
        self.jack_client = jack_client
        self.env = dict(env or {})
        if not 1 <= jitter_frames[0] <= jitter_frames[1]:
            raise LabError(f"a jitter buffer of 1 <= min <= max packets, not {jitter_frames}")
        self.jitter_frames = jitter_frames
        self.cons_port = 0
        self._console: BaresipConsole | None = None
        self.sip_port = 0
        self.ctrl_port = 0
        self._process: LabProcess | None = None
        self._ctrl: BaresipCtrl | None = None

    @property
    def aor(self) -> str:
        """Its address of record at the registrar."""
        return f"sip:{self.user}@{DOMAIN}"

    @property
    def uri(self) -> str:
        """Where it listens, to be called without a registrar."""
        return f"sip:{self.user}@{hostport(self.host, self.sip_port)}"

    @property
    def ctrl(self) -> BaresipCtrl:
        if self._ctrl is None:
            raise LabError(f"baresip {self.user} is not running")
        return self._ctrl

    @property
    def console(self) -> BaresipConsole:
        if self._console is None:
            raise LabError(f"baresip {self.user} runs without a console (console=True)")
        return self._console

    @property
    def events(self) -> list[Event]:
        return self.ctrl.events

    @property
    def pid(self) -> int:
        if self._process is None:
            raise LabError(f"baresip {self.user} was never started")
        return self._process.pid

    # -- configuration

    def account_line(self) -> str:
        answer = f"answermode={'auto' if self.auto_answer else 'manual'}"
        if self.codecs:  # the account's own list is what its answers choose from, too
            answer += f";audio_codecs={self.codecs}"
        if self.video_codecs:
            answer += f";video_codecs={self.video_codecs}"
        if self.mediaenc is not None:
            answer += f";mediaenc={self.mediaenc}"
        if self.medianat is not None:
            answer += f';medianat={self.medianat};stunserver="{self.stun_server}"'
            if self.stun_user is not None:
                answer += f";stunuser={self.stun_user}"
            if self.stun_password is not None:
                answer += f";stunpass={self.stun_password}"
        # The account is a name-addr (baresip's accounts file): a display name goes before it.
        name = "" if self.display_name is None else f'"{self.display_name}" '
        if self.kamailio is None:
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"{name}<sip:{self.user}@{host};transport={self.transport}>;{answer};regint=0\n"
        params = [
            f"auth_pass={self.password}",
            f'outbound="{self.kamailio.outbound_uri(self.transport, ipv6=":" in self.host)}"',
            answer,
            f"regint={300 if self.register else 0}",
            *([f"pubint={self.publish_s}"] if self.presence else []),
        ]
        return (
            f"{name}<sip:{self.user}@{DOMAIN};transport={self.transport}>;"
            + ";".join(params)
            + "\n"
        )

    def config_text(self) -> str:
        codecs = ["opus.so", "g722.so", "g711.so"]
        if MODULE_DIR.is_dir():  # g722 is optional: load only what is there
            codecs = [m for m in codecs if (MODULE_DIR / m).is_file()]
        player = ""
        sample_format = "s16"
        if self.jack_client is not None:
            # baresip 1.0's jack module takes float samples only, at the server's rate.
            source = (
                "audio_source\t\tjack\nausrc_srate\t\t48000\nausrc_channels\t\t1\n"
                "auplay_srate\t\t48000\nauplay_channels\t\t1\n"
                f"jack_client_name\t{self.jack_client}\njack_connect_ports\tno\n"
            )
            player, sample_format = "jack", "float"
            audio_modules = ["jack.so"]
        elif self.audio == "tone":
            # ausine only makes 48 kHz: with a G.711 or G.722 call baresip must resample to
            # it, or the source fails and baresip closes the call.
            source = "audio_source\t\tausine,440\nausrc_srate\t\t48000\nausrc_channels\t\t2\n"
            audio_modules = ["ausine.so"]
        else:
            wav = Path(str(self.audio)).resolve()
            rate, channels = wav_format(wav)
            source = f"audio_source\t\taufile,{wav}\nausrc_srate\t\t{rate}\nausrc_channels\t\t{channels}\n"
            audio_modules = ["aufile.so"]
        filters = ["sndfile.so"] if self.record else []
        if self.mediaenc is not None:
            filters.append("dtls_srtp.so" if self.mediaenc.startswith("dtls") else "srtp.so")
        if self.medianat is not None:
            filters.append(f"{self.medianat}.so")
        tls = (
            f"sip_cafile\t\t{self.kamailio.ca_file}\n"
            f"sip_certificate\t\t{self.kamailio.pki.good.combined}\n"
            if self.kamailio is not None
            else ""
        )
        lines = [
            "poll_method\t\tepoll\n",
            f"sip_listen\t\t{hostport(self.host, self.sip_port)}\n",
            tls,
            f"call_local_timeout\t120\ncall_max_calls\t\t{self.max_calls}\n",
            source,
            f"audio_player\t\t{player}\naudio_alert\t\t\n",
            f"ausrc_format\t\t{sample_format}\nauplay_format\t\t{sample_format}\n",
            f"rtp_tos\t\t\t0\nrtcp_mux\t\t{'yes' if self.rtcp_mux else 'no'}\n",
            f"jitter_buffer_delay\t{self.jitter_frames[0]}-{self.jitter_frames[1]}\n",
            f"audio_codecs\t\t{self.codecs}\n" if self.codecs else "",
            f"net_interface\t\t{self.host}\n",
            f"dns_server\t\t{hostport(self.host, 53)}\n",
            f"module_path\t\t{MODULE_DIR}\n",
            *[f"module\t\t\t{m}\n" for m in [*codecs, *filters, *audio_modules]],
            "module_tmp\t\taccount.so\n",
            "module_app\t\tctrl_tcp.so\nmodule_app\t\tmenu.so\n",
            "module_app\t\tcontact.so\n" if self.contacts else "",
            "module_app\t\tpresence.so\n" if self.presence else "",
            f"module\t\t\tcons.so\ncons_listen\t\t{hostport(self.host, self.cons_port)}\n"
            if self.with_console
            else "",
            f"ctrl_tcp_listen\t\t{hostport(self.host, self.ctrl_port)}\n",
            "statmode_default\toff\n",
            "menu_bell\t\tno\n",
            "ringback_disabled\tyes\n",
            f"snd_path\t\t{self.workdir}\n",
            self.extra_config,
        ]
        return "".join(lines)

    # -- life cycle

    def start(self, timeout_s: float = 10.0) -> Baresip:
        """Start it (inside ``netns`` when given: its ports, control connections and
        readiness checks are the namespace's) and wait until it is registered.

        Its ports are free ones found by binding to port 0 and letting go; another process
        (a test run beside this one) may take one in between, and baresip then quits with
        "Address already in use": it is started again on other ports, a bounded number of
        times."""
        with contextlib.ExitStack() as stack:
            if self.netns is not None:
                stack.enter_context(entered(self.netns))
            return retry_taken_port(lambda: self._start(timeout_s))

    def _start(self, timeout_s: float) -> Baresip:
        binary = find_binary("baresip", "baresip")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port_pair(self.host)
        self.ctrl_port = free_tcp_port(self.host)
        if self.with_console:
            self.cons_port = free_port_pair(self.host)  # cons listens on UDP and TCP
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(self.account_line())
        watch = ";presence=p2p" if self.presence else ""  # what the presence module subscribes to
        (self.workdir / "contacts").write_text(
            "".join(f"<{uri}>{watch}\n" for uri in self.contacts)
        )
        # -t: baresip quits by itself after 15 min even if whoever started it is killed hard.
        argv = [binary, "-f", str(self.workdir), "-t", "900"]
        if (stdbuf := shutil.which("stdbuf")) is not None:  # line-buffer its log through the pipe
            argv = [stdbuf, "-oL", "-eL", *argv]
        process = self._process = LabProcess(
            netns_argv(self.netns, argv),
            name=f"baresip-{self.user}",
            cwd=self.workdir,
            env={**os.environ, **self.env} if self.env else None,
            log_path=self.workdir / "baresip.log",
        )
        deadline = time.monotonic() + timeout_s
        try:
            process.wait_port(self.ctrl_port, timeout_s, host=self.host)
            self._ctrl = BaresipCtrl(self.ctrl_port, name=f"baresip-{self.user}", host=self.host)
            if self.with_console:
                process.wait_port(self.cons_port, timeout_s, host=self.host)
                self._console = BaresipConsole(
                    self.cons_port, name=f"baresip-{self.user}", host=self.host
                )
            if self.register:
                self._wait_registered(deadline)
        except (LabError, OSError) as exc:
            tail = process.tail()
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
        return self._process is not None and self._process.alive()

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """``quit`` over ctrl (baresip unregisters), then SIGTERM/SIGKILL by pid, bounded."""
        if self._process is None:
            return None
        if self._ctrl is not None:
            if self.alive() and not self._ctrl.closed:
                with contextlib.suppress(LabError, OSError):
                    self._ctrl.command("quit", timeout_s=1.0)
            self._ctrl.close()
        if self._console is not None:
            self._console.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.proc.wait(timeout=timeout_s)
        return self._process.stop()

    # -- output

    def lines(self) -> list[str]:
        return self._process.lines() if self._process is not None else []

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        if self._process is None:
            raise LabError("baresip was never started")
        return self._process.wait_for(pattern, timeout_s, since)

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

    def send_message(self, text: str, to: str | None = None) -> Event:
        """Send ``text`` as an instant message (SIP MESSAGE) to the contact ``to`` (default: the
        first of ``contacts``). baresip 1.0 sends only to its "current contact", which
        ``contact_next`` moves through the contacts file in order."""
        wanted = to or (self.contacts[0] if self.contacts else None)
        if wanted is None or wanted not in self.contacts:
            raise LabError(f"baresip {self.user} can only message its contacts {self.contacts}")
        for _ in range(len(self.contacts) + 1):
            current = strip_ansi(str(self.command("contact_next").get("data", "")))
            if wanted in current:
                return self.command("message", text)
        raise LabError(f"baresip {self.user}: contact {wanted} never became current")

    def list_calls(self) -> str:
        return strip_ansi(str(self.command("listcalls").get("data", "")))

    # -- presence (module ``presence``: baresip 1.0 publishes only open or closed)

    def presence_online(self) -> Event:
        return self.command("presence_online")

    def presence_offline(self) -> Event:
        return self.command("presence_offline")

    def contact_status(self, uri: str) -> str | None:
        """What baresip's ``contacts`` list says of ``uri`` (``Online``, ``Offline``, ``Busy``,
        ``Unknown``), None when the contact is not listed."""
        listing = strip_ansi(str(self.command("contacts").get("data", "")))
        for line in listing.splitlines():
            if f"<{uri}>" in line:
                words = line.replace(">", " ", 1).split()
                return words[0] if words else None
        return None
