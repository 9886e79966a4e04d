"""The RTSP half of the interop lab: a real GStreamer RTSP server on 127.0.0.1, driven from pytest.

``rtsp_server.py`` (beside this file) is the server; it needs GObject bindings, which only
Debian's ``/usr/bin/python3`` has, so :class:`RtspLab` runs it as a child process and reads its
output (``READY <port>``, then one ``LAB ...`` line per RTSP request it receives). Nothing here
knows about softphone. Fixtures (``tests/interop/conftest.py``): ``rtsp_lab`` (one server per
session) and ``rtsp_lab_private`` (a fresh one per test, for restarts, TLS or a short session
timeout)::

    def test_plays(rtsp_lab: rtsp_lab.RtspLab) -> None:
        url = rtsp_lab.url("/digest", user=rtsp_lab.user, password=rtsp_lab.password)
        mark = rtsp_lab.mark()
        ...  # play url
        rtsp_lab.wait_for(r"LAB PLAY /digest/ auth=Digest", timeout_s=5, since=mark)

Mounts and what they carry are in :data:`MOUNTS` (codec names are FFmpeg's, like AccessUnit.codec).
Missing GStreamer pieces skip the tests, or fail them when ``CI=true`` (the ``lab`` policy).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, NoReturn

import lab
import pytest

HOST: Final = lab.HOST
SYSTEM_PYTHON: Final = "/usr/bin/python3"  # Debian's, with python3-gi (the venv has no gi)
SERVER_SCRIPT: Final = Path(__file__).with_name("rtsp_server.py")
USER: Final = "viewer"
PASSWORD: Final = "p@ss#1"  # '@' and '#' must be percent-encoded in URLs (url() does it)
REALM: Final = "softphone-lab"
UDP_PORTS: Final = (20000, 29999)  # RTP/RTCP pool, below Linux's ephemeral range (32768-60999)
FILE_DURATION_S: Final = 20

Scheme = Literal["rtsp", "rtsps"]
Media = Literal["video", "audio"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """One ``m=`` section a mount describes, as the SDP says it (and FFmpeg decodes it)."""

    media: Media
    encoding: str  # rtpmap encoding name as GStreamer writes it
    codec: str  # FFmpeg codec name (= softphone.rtp.depacketize.AccessUnit.codec)
    payload_type: int
    clock_rate: int
    channels: int | None = None  # audio only (Opus is always "/2" in SDP: RFC 7587 §7)


@dataclass(frozen=True, slots=True, kw_only=True)
class MountSpec:
    path: str
    streams: tuple[StreamSpec, ...]
    live: bool = True  # shared live source; False = on-demand, seekable (/file)
    auth: Literal["basic", "digest"] | None = None
    tcp_only: bool = False  # SETUP with a UDP transport is answered 461


def _video(encoding: str, codec: str, payload_type: int) -> StreamSpec:
    return StreamSpec(
        media="video", encoding=encoding, codec=codec, payload_type=payload_type, clock_rate=90000
    )


def _audio(encoding: str, codec: str, payload_type: int, rate: int, channels: int) -> StreamSpec:
    return StreamSpec(
        media="audio",
        encoding=encoding,
        codec=codec,
        payload_type=payload_type,
        clock_rate=rate,
        channels=channels,
    )


_H264 = _video("H264", "h264", 96)
_AAC_48K = _audio("MPEG4-GENERIC", "aac", 97, 48000, 1)  # AAC-hbr, RFC 3640

MOUNTS: Final[dict[str, MountSpec]] = {
    m.path: m
    for m in (
        MountSpec(path="/h264", streams=(_H264, _AAC_48K)),
        MountSpec(path="/h264-latm", streams=(_H264, _audio("MP4A-LATM", "aac", 97, 44100, 2))),
        MountSpec(path="/h265", streams=(_video("H265", "hevc", 96),)),
        MountSpec(path="/mjpeg", streams=(_video("JPEG", "mjpeg", 26),)),
        MountSpec(path="/pcmu", streams=(_audio("PCMU", "pcm_mulaw", 0, 8000, 1),)),
        MountSpec(path="/opus", streams=(_audio("OPUS", "opus", 96, 48000, 2),)),
        MountSpec(path="/l16", streams=(_audio("L16", "pcm_s16be", 96, 16000, 1),)),
        MountSpec(path="/file", streams=(_H264, _AAC_48K), live=False),
        MountSpec(path="/tcp-only", streams=(_H264,), tcp_only=True),
        MountSpec(path="/basic", streams=(_H264,), auth="basic"),
        MountSpec(path="/digest", streams=(_H264,), auth="digest"),
    )
}

VIDEO_SIZE: Final = (320, 240)
VIDEO_FPS: Final = 25
VIDEO_GOP: Final = 25  # a key frame (IDR, with SPS/PPS in band) every second


def _skip_or_fail(reason: str) -> NoReturn:
    """The lab policy for a missing peer: skip outside CI, fail in CI (see lab.require_binary)."""
    if lab.in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@functools.cache
def _gstreamer_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None (asked once per process)."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (install python3-gi with `make peers`)"
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"rtsp_server.py --check did not run: {exc}"
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()[-12:]
        return (
            "the GStreamer RTSP server cannot run (needs python3-gi, gir1.2-gst-rtsp-server-1.0, "
            "gstreamer1.0-plugins-{base,good,bad,ugly}): " + " | ".join(detail)
        )
    return None


def require_gstreamer() -> None:
    """Skip (or fail in CI) unless the GStreamer RTSP server and all its elements are there."""
    if (problem := _gstreamer_problem()) is not None:
        _skip_or_fail(f"interop peer GStreamer RTSP server: {problem}")


def make_media_file(path: Path, duration_s: int = FILE_DURATION_S) -> Path:
    """An H.264 (baseline, no B-frames, GOP 25) + AAC-LC 48 kHz mono MP4 made by ``ffmpeg``."""
    ffmpeg = lab.require_binary("ffmpeg")
    width, height = VIDEO_SIZE
    argv = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={VIDEO_FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(duration_s),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(VIDEO_GOP), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-ac", "1", "-b:a", "64k",
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not path.is_file():
        raise lab.LabError(f"ffmpeg could not make {path}:\n{result.stdout}{result.stderr}")
    return path


class RtspLab:
    """The GStreamer RTSP server of ``rtsp_server.py`` on 127.0.0.1, with every mount of MOUNTS.

    ``start(port=0)`` picks a free port; ``restart()`` comes back on the same port(s); ``stop()``
    is SIGTERM by pid, then SIGKILL after a bounded wait. Give ``tls`` (a certificate and key,
    e.g. ``lab_pki.good``) for an RTSPS listener on ``tls_port`` serving the same mounts, and
    ``session_timeout_s`` to change the ``timeout=`` the server puts in ``Session:`` (default 60).
    """

    host: Final = HOST
    user: Final = USER
    password: Final = PASSWORD
    realm: Final = REALM
    mounts: Final = MOUNTS

    def __init__(
        self,
        workdir: Path,
        *,
        tls: lab.CertPair | None = None,
        session_timeout_s: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.tls = tls
        self.session_timeout_s = session_timeout_s
        self.port = 0
        self.tls_port: int | None = None
        self.media_file = workdir / "clip.mp4"
        self.starts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: lab.ProcessLog | None = None
        self._earlier_lines: list[str] = []  # output of runs before the last restart

    # -- life cycle

    def config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "file": str(self.media_file),
            "udp_ports": list(UDP_PORTS),
            "width": VIDEO_SIZE[0],
            "height": VIDEO_SIZE[1],
            "fps": VIDEO_FPS,
            "gop": VIDEO_GOP,
            "user": USER,
            "password": PASSWORD,
            "realm": REALM,
        }
        if self.session_timeout_s is not None:
            config["session_timeout_s"] = self.session_timeout_s
        if self.tls is not None:
            config["tls"] = {
                "cert": str(self.tls.cert),
                "key": str(self.tls.key),
                "port": self.tls_port or 0,
            }
        return config

    def start(self, port: int = 0, timeout_s: float = 15.0) -> RtspLab:
        """Start the server on ``port`` (0: the kernel picks one) and wait for ``READY``."""
        if self.alive():
            raise lab.LabError("the RTSP lab is already running")
        require_gstreamer()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.media_file.is_file():
            make_media_file(self.media_file)
        config_path = self.workdir / "rtsp-lab.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        argv = [
            SYSTEM_PYTHON, "-u", str(SERVER_SCRIPT),
            "--port", str(port), "--config", str(config_path),
        ]  # fmt: skip
        if self._log is not None:
            self._earlier_lines += self._log.lines()
        self._proc, self._log = lab.start_process(argv, name="rtsp-lab", cwd=self.workdir)
        self.starts += 1
        try:
            if self.tls is not None:
                self.tls_port = int(self._log.wait_for(r"^TLS (\d+)$", timeout_s).group(1))
            ready = self._log.wait_for(r"^READY (\d+)$", timeout_s)
        except lab.LabError as exc:
            tail = self._log.tail()
            self.stop()
            raise lab.LabError(f"RTSP lab did not start: {exc}\noutput:\n{tail}") from None
        self.port = int(ready.group(1))
        return self

    def stop(self, term_wait_s: float = 5.0) -> int | None:
        """SIGTERM by pid, SIGKILL after ``term_wait_s``; the exit status (0 = clean shutdown)."""
        if self._proc is None:
            return None
        code = lab.stop_process(self._proc, self._log, term_wait_s)
        self._proc = None
        return code

    def restart(self, timeout_s: float = 15.0) -> RtspLab:
        """Stop, then start again on the same RTSP (and RTSPS) port: clients must reconnect."""
        if self.port == 0:
            raise lab.LabError("restart() before start()")
        self.stop()
        deadline = time.monotonic() + timeout_s
        while True:  # the old listener is closed; wait (bounded) if the port is briefly busy
            try:
                return self.start(self.port, max(1.0, deadline - time.monotonic()))
            except lab.LabError:
                if time.monotonic() >= deadline:
                    raise

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- addresses

    def url(
        self,
        mount: str,
        *,
        user: str | None = None,
        password: str | None = None,
        scheme: Scheme = "rtsp",
    ) -> str:
        """``rtsp[s]://[user[:password]@]127.0.0.1:PORT/mount`` with credentials percent-encoded."""
        if scheme == "rtsps":
            if self.tls_port is None:
                raise lab.LabError("this RTSP lab has no TLS listener (pass tls=...)")
            port = self.tls_port
        else:
            port = self.port
        if port == 0:
            raise lab.LabError("the RTSP lab is not started")
        userinfo = ""
        if user is not None:
            userinfo = urllib.parse.quote(user, safe="")
            if password is not None:
                userinfo += ":" + urllib.parse.quote(password, safe="")
            userinfo += "@"
        path = mount if mount.startswith("/") else "/" + mount
        return f"{scheme}://{userinfo}{HOST}:{port}{path}"

    # -- output

    def lines(self) -> list[str]:
        """Everything the server printed, over every run (restarts included)."""
        current = self._log.lines() if self._log is not None else []
        return self._earlier_lines + current

    def lab_lines(self) -> list[str]:
        """Only the ``LAB <METHOD> <path> ...`` request lines (and session/client events)."""
        return [line for line in self.lines() if line.startswith("LAB ")]

    def mark(self) -> int:
        """An index to pass as ``since=`` so that a wait ignores what was printed before now."""
        return len(self.lines())

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout_s: float = 5.0, since: int = 0
    ) -> re.Match[str]:
        """First match of ``pattern`` in lines[since:] (of the current run), waiting if needed."""
        if self._log is None:
            raise lab.LabError("the RTSP lab was never started")
        return self._log.wait_for(pattern, timeout_s, max(0, since - len(self._earlier_lines)))
