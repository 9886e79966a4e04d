"""Real processes for the call benchmarks: baresip, ``softphone dial``, jackd, and their CPU time.

Everything here runs on 127.0.0.1. Every process is started by us in its own session and
stopped by its pid (SIGTERM, then SIGKILL of the group we created, bounded waits). Waiting is
always for a condition under a deadline (a JSON event line, a ctrl_tcp event, a port that
accepts, jack_lsp succeeding); nothing waits a fixed time and then hopes.

- :func:`cpu_seconds` reads utime+stime of a process (all its threads) from ``/proc/PID/stat``
  (proc(5): fields 14 and 15, in clock ticks).
- :class:`BaresipPeer`: a baresip 1.0.0 with no registrar (``regint=0``), listening on a free
  UDP port, microphone from a WAV (module ``aufile``), codecs limited by ``audio_codecs``, driven
  through ``ctrl_tcp`` (netstring-framed JSON; facts from the project's lab notes).
- :class:`SoftphoneDial`: ``python -m softphone dial URI --json ...`` as a child process whose
  JSON events are read line by line.
- :class:`JackServer`: ``jackd -n NAME -d dummy -r 48000 -p 480``, a paced virtual sound card.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from softphone.media.resample import resample
from softphone.media.wav import WavWriter, read_wav

HOST: Final = "127.0.0.1"
BARESIP_MODULES: Final = Path("/usr/lib/baresip/modules")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")

Event = dict[str, Any]


class PeerError(Exception):
    """A peer is missing, failed to start, or did not do what we waited for in time."""


# --------------------------------------------------------------------------- CPU time


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all threads), in seconds, from /proc/PID/stat.

    proc(5): the command name (field 2) is in parentheses and may hold spaces, so fields are
    counted after the last ')'; utime and stime are fields 14 and 15 (clock ticks).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise PeerError(f"cannot read the CPU time of pid {pid}: {exc}") from exc
    return parse_stat_cpu(text)


def parse_stat_cpu(text: str) -> float:
    """utime + stime in seconds from the text of a /proc/PID/stat file."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime (14) and stime (15) are fields[11] and fields[12].
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --------------------------------------------------------------------------- processes


def which(name: str, package: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).is_file()), None
    )
    if path is None:
        raise PeerError(f"{name} is not installed (sudo apt-get install {package})")
    return path


def start(
    argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout+stderr to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[Any], wait_s: float = 5.0) -> int | None:
    """SIGTERM our child by pid; SIGKILL the group we created after a bounded wait."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=wait_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the session we created
    return proc.returncode


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port
    raise PeerError("no free port on 127.0.0.1")


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_until(
    cond: Callable[[], bool],
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    poll_s: float = 0.02,
) -> None:
    """Wait for ``cond`` (checked every ``poll_s``) until ``timeout_s``; PeerError on timeout."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if alive is not None and not alive():
            raise PeerError(f"the process died while waiting for {what}")
        if time.monotonic() >= deadline:
            raise PeerError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        select.select([], [], [], poll_s)  # a bounded wait between polls of a condition


# --------------------------------------------------------------------------- test audio


def looped_wav(source: Path, out: Path, seconds: float, sample_rate: int = 48000) -> Path:
    """``source`` (any WAV) resampled to ``sample_rate`` mono and looped to ``seconds``."""
    pcm, rate = read_wav(source)
    pcm = resample(pcm, rate, sample_rate)
    if len(pcm) == 0:
        raise PeerError(f"{source} holds no audio")
    total = int(seconds * sample_rate)
    looped = np.resize(pcm, total).astype(np.float32)
    with WavWriter(out, sample_rate, 1) as writer:
        writer.write(looped)
    return out


# --------------------------------------------------------------------------- baresip


class BaresipCtrl:
    """baresip's ``ctrl_tcp``: netstring-framed JSON (``{"command", "params", "token"}``)."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection((HOST, port), timeout=5.0)
        self._buffer = bytearray()
        self._tokens = 0
        self.events: list[Event] = []
        self._responses: dict[str, Event] = {}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def _receive(self, timeout_s: float) -> None:
        """Read what arrives within ``timeout_s`` and file each complete netstring."""
        self._sock.settimeout(max(timeout_s, 0.001))
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            raise PeerError("baresip closed its ctrl_tcp connection")
        self._buffer += chunk
        while (colon := self._buffer.find(b":")) >= 0:
            end = colon + 1 + int(self._buffer[:colon])
            if len(self._buffer) < end + 1:
                break
            message: Event = json.loads(bytes(self._buffer[colon + 1 : end]))
            del self._buffer[: end + 1]
            if message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            elif message.get("event"):
                self.events.append(message)

    def command(self, name: str, params: str = "", timeout_s: float = 5.0) -> Event:
        self._tokens += 1
        token = f"bench{self._tokens}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout_s
        while token not in self._responses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(f"baresip: no response to {name} {params}")
            self._receive(remaining)
        return self._responses.pop(token)

    def find_event(self, kind: str, timeout_s: float) -> Event | None:
        """The first event of type ``kind`` so far, waiting up to ``timeout_s``; None on timeout.
        Raises PeerError if baresip goes away."""
        deadline = time.monotonic() + timeout_s
        index = 0
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if event.get("type") == kind:
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._receive(remaining)

    def wait_event(self, kind: str, timeout_s: float) -> Event:
        event = self.find_event(kind, timeout_s)
        if event is None:
            seen = [e.get("type") for e in self.events]
            raise PeerError(f"baresip: no {kind} within {timeout_s:.0f} s (events: {seen})")
        return event


class BaresipPeer:
    """A baresip without registrar: reachable as ``sip:bench@127.0.0.1:PORT``, auto-answering.

    ``audio`` is the WAV its microphone plays (module ``aufile``; baresip hangs up when the file
    ends, so make it longer than the call); ``codec`` is baresip's internal codec name.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        audio: Path,
        codec: str = "opus/48000/1",
        user: str = "bench",
        extra_config: str = "",
    ) -> None:
        self.workdir = workdir
        self.audio = audio
        self.codec = codec
        self.user = user
        self.extra_config = extra_config
        self.sip_port = 0
        self.ctrl_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._ctrl: BaresipCtrl | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise PeerError("baresip is not running")
        return self.proc.pid

    @property
    def ctrl(self) -> BaresipCtrl:
        if self._ctrl is None:
            raise PeerError("baresip is not running")
        return self._ctrl

    def config_text(self) -> str:
        rate, channels = wav_format(self.audio)
        modules = ["opus.so", "g722.so", "g711.so", "aufile.so"]
        modules = [m for m in modules if (BARESIP_MODULES / m).is_file()]
        return "".join(
            [
                "poll_method\t\tepoll\n",
                f"sip_listen\t\t{HOST}:{self.sip_port}\n",
                "call_local_timeout\t120\ncall_max_calls\t\t4\n",
                f"audio_source\t\taufile,{self.audio.resolve()}\n",
                f"ausrc_srate\t\t{rate}\nausrc_channels\t\t{channels}\n",
                "audio_player\t\t\naudio_alert\t\t\n",
                "ausrc_format\t\ts16\nauplay_format\t\ts16\n",
                "rtp_tos\t\t\t0\nrtcp_mux\t\tno\njitter_buffer_delay\t5-10\n",
                f"audio_codecs\t\t{self.codec}\n",
                f"net_interface\t\t{HOST}\n",
                f"dns_server\t\t{HOST}:53\n",
                f"module_path\t\t{BARESIP_MODULES}\n",
                *[f"module\t\t\t{m}\n" for m in modules],
                "module_tmp\t\taccount.so\n",
                "module_app\t\tctrl_tcp.so\nmodule_app\t\tmenu.so\n",
                f"ctrl_tcp_listen\t\t{HOST}:{self.ctrl_port}\n",
                "statmode_default\toff\nmenu_bell\t\tno\nringback_disabled\tyes\n",
                self.extra_config,
            ]
        )

    def start(self, timeout_s: float = 10.0) -> BaresipPeer:
        binary = which("baresip", "baresip")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_udp_tcp_port()
        self.ctrl_port = free_tcp_port()
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@{HOST};transport=udp>;regint=0;answermode=auto\n"
        )
        (self.workdir / "contacts").write_text("")
        # -t: it quits by itself after 15 min even if the benchmark is killed hard.
        self.proc = start(
            [binary, "-f", str(self.workdir), "-t", "900"],
            cwd=self.workdir,
            log=self.workdir / "baresip.log",
        )
        proc = self.proc
        wait_until(
            lambda: _accepts(self.ctrl_port),
            timeout_s,
            "baresip ctrl_tcp",
            alive=lambda: proc.poll() is None,
        )
        self._ctrl = BaresipCtrl(self.ctrl_port)
        return self

    def stop(self) -> None:
        if self._ctrl is not None:
            with contextlib.suppress(PeerError, OSError):
                self._ctrl.command("quit", timeout_s=1.0)
            self._ctrl.close()
            self._ctrl = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3.0)
            stop(self.proc)
            self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "baresip.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


def wav_format(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of a PCM WAV (aufile needs the file's own format)."""
    import wave

    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels()


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            s.connect((HOST, port))
        except OSError:
            return False
        return True


# --------------------------------------------------------------------------- softphone dial


class SoftphoneDial:
    """``softphone dial URI --json`` in a child process; events read from its stdout."""

    def __init__(
        self,
        workdir: Path,
        uri: str,
        *,
        play: Path | None,
        codecs: tuple[str, ...],
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.uri = uri
        self.play = play
        self.codecs = codecs
        self.extra_args = extra_args
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[Event] = []
        self._partial = b""

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise PeerError("softphone is not running")
        return self.proc.pid

    def start(self) -> SoftphoneDial:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.toml"
        config.write_text("codecs = [" + ", ".join(f'"{c}"' for c in self.codecs) + "]\n")
        argv = [
            sys.executable,
            "-m",
            "softphone",
            "--config",
            str(config),
            "--log-file",
            str(self.workdir / "softphone.log"),
            "dial",
            self.uri,
            "--bind",
            HOST,
            "--sip-port",
            "0",
            "--json",
            *self.extra_args,
        ]
        if self.play is not None:
            argv += ["--play", str(self.play)]
        with (self.workdir / "stderr.log").open("ab") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        return self

    def _read(self, timeout_s: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout: IO[bytes] = self.proc.stdout
        ready, _, _ = select.select([stdout], [], [], max(timeout_s, 0.0))
        if not ready:
            return
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            raise PeerError(f"softphone exited ({self.proc.wait()}): {self.stderr_tail()}")
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def find_event(self, match: Callable[[Event], bool], timeout_s: float) -> Event | None:
        """The first matching event so far, waiting up to ``timeout_s``; None on timeout.
        Raises PeerError if the process exits."""
        deadline = time.monotonic() + timeout_s
        index = 0
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if match(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._read(remaining)

    def wait_event(self, match: Callable[[Event], bool], timeout_s: float, what: str) -> Event:
        event = self.find_event(match, timeout_s)
        if event is None:
            raise PeerError(f"softphone: no {what} within {timeout_s:.0f} s: {self.stderr_tail()}")
        return event

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3.0)
            stop(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def stderr_tail(self, lines: int = 10) -> str:
        path = self.workdir / "stderr.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


# --------------------------------------------------------------------------- jackd


class JackServer:
    """``jackd -n NAME -d dummy -r RATE -p PERIOD``: a virtual sound card paced in real time."""

    CLIENT_ENV: Final = {"JACK_NO_START_SERVER": "1", "JACK_NO_AUDIO_RESERVATION": "1"}

    def __init__(self, workdir: Path, *, rate: int = 48000, period: int = 480) -> None:
        self.workdir = workdir
        self.rate = rate
        self.period = period
        self.name = f"softphone-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def client_env(self) -> dict[str, str]:
        return {**self.CLIENT_ENV, "JACK_DEFAULT_SERVER": self.name}

    def start(self, timeout_s: float = 15.0) -> JackServer:
        jackd = which("jackd", "jackd2")
        lsp = which("jack_lsp", "jackd2")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.CLIENT_ENV}
        self.proc = start(
            [jackd, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            cwd=self.workdir,
            env=env,
            log=self.workdir / "jackd.log",
        )
        proc = self.proc

        def ready() -> bool:
            probe = subprocess.run(
                [lsp, "-s", self.name], env=env, capture_output=True, timeout=10, check=False
            )
            return probe.returncode == 0

        wait_until(ready, timeout_s, f"jackd {self.name}", alive=lambda: proc.poll() is None)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@contextlib.contextmanager
def stopping(*peers: BaresipPeer | SoftphoneDial | JackServer) -> Iterator[None]:
    """Stop every peer on the way out, whatever happened."""
    try:
        yield
    finally:
        for peer in reversed(peers):
            peer.stop()
