"""The lab's RTSP server: GStreamer's RTSP server on 127.0.0.1, run as a child process.

``gst_rtsp_server.py`` (beside this module) is the server. It needs GObject bindings, which
only Debian's ``/usr/bin/python3`` has, so :class:`RtspServer` runs it under that interpreter
and reads its output: ``TLS <port>`` (with TLS), ``READY <port>``, then one ``LAB ...`` line per
RTSP request it receives (see that script's docstring).

Mounts and what they carry are in :data:`MOUNTS` (codec names are FFmpeg's, like
``AccessUnit.codec``). ``/file`` plays an MP4 that :func:`make_media_file` makes with ffmpeg;
leave it out with ``media_file=False`` when nobody needs it.
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
from typing import Final, Literal

from softphone.lab.pki import CertPair
from softphone.lab.process import HOST, LabError, LabProcess, PeerMissing, find_binary

__all__ = [
    "FILE_DURATION_S",
    "MOUNTS",
    "UDP_PORTS",
    "MountSpec",
    "RtspServer",
    "StreamSpec",
    "VideoFormat",
    "make_media_file",
]

SYSTEM_PYTHON: Final = "/usr/bin/python3"  # Debian's, with python3-gi (the venv has no gi)
SERVER_SCRIPT: Final = Path(__file__).with_name("gst_rtsp_server.py")
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


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoFormat:
    """The live mounts' test picture; ``gop``: frames from one key frame to the next."""

    width: int = 320
    height: int = 240
    fps: int = 25
    gop: int = 25  # a key frame (IDR, with SPS/PPS in band) every second at 25 fps


DEFAULT_VIDEO: Final = VideoFormat()


@functools.cache
def gstreamer_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None (asked once per process)."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (sudo apt-get install python3-gi)"
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SERVER_SCRIPT.name} --check did not run: {exc}"
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()[-12:]
        return (
            "the GStreamer RTSP server cannot run (needs python3-gi, gir1.2-gst-rtsp-server-1.0, "
            "gstreamer1.0-plugins-{base,good,bad,ugly}): " + " | ".join(detail)
        )
    return None


def make_media_file(path: Path, duration_s: int = FILE_DURATION_S) -> Path:
    """An H.264 (baseline, no B-frames, GOP 25) + AAC-LC 48 kHz mono MP4 made by ``ffmpeg``."""
    ffmpeg = find_binary("ffmpeg", "ffmpeg")
    video = DEFAULT_VIDEO
    argv = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={video.width}x{video.height}:rate={video.fps}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(duration_s),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(video.gop), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-ac", "1", "-b:a", "64k",
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not path.is_file():
        raise LabError(f"ffmpeg could not make {path}:\n{result.stdout}{result.stderr}")
    return path


class RtspServer:
    """GStreamer's RTSP server on 127.0.0.1 with the mounts of MOUNTS.

    ``start(port=0)`` picks a free port; ``restart()`` comes back on the same port(s); ``stop()``
    is SIGTERM by pid, then SIGKILL after a bounded wait. Give ``tls`` (a certificate and key,
    e.g. ``LabPki.good``) for an RTSPS listener on ``tls_port`` serving the same mounts, and
    ``session_timeout_s`` to change the ``timeout=`` the server puts in ``Session:`` (default 60).
    Its output, over every run, is also in ``workdir/rtsp-server.log``.
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
        tls: CertPair | None = None,
        session_timeout_s: int | None = None,
        video: VideoFormat = DEFAULT_VIDEO,
        media_file: bool = True,
    ) -> None:
        self.workdir = workdir
        self.tls = tls
        self.session_timeout_s = session_timeout_s
        self.video = video
        self.media_file = workdir / "clip.mp4" if media_file else None
        self.port = 0
        self.tls_port: int | None = None
        self.starts = 0
        self._process: LabProcess | None = None
        self._earlier_lines: list[str] = []  # output of runs before the last restart

    # -- life cycle

    def config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "udp_ports": list(UDP_PORTS),
            "width": self.video.width,
            "height": self.video.height,
            "fps": self.video.fps,
            "gop": self.video.gop,
            "user": USER,
            "password": PASSWORD,
            "realm": REALM,
        }
        if self.media_file is not None:
            config["file"] = str(self.media_file)
        if self.session_timeout_s is not None:
            config["session_timeout_s"] = self.session_timeout_s
        if self.tls is not None:
            config["tls"] = {
                "cert": str(self.tls.cert),
                "key": str(self.tls.key),
                "port": self.tls_port or 0,
            }
        return config

    def start(self, port: int = 0, timeout_s: float = 15.0) -> RtspServer:
        """Start the server on ``port`` (0: the kernel picks one) and wait for ``READY``."""
        if self.alive():
            raise LabError("the RTSP server is already running")
        if (problem := gstreamer_problem()) is not None:
            raise PeerMissing(f"GStreamer RTSP server: {problem}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.media_file is not None and not self.media_file.is_file():
            make_media_file(self.media_file)
        config_path = self.workdir / "rtsp-server.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        argv = [
            SYSTEM_PYTHON, "-u", str(SERVER_SCRIPT),
            "--port", str(port), "--config", str(config_path),
        ]  # fmt: skip
        self._earlier_lines = self.lines()
        process = self._process = LabProcess(
            argv, name="rtsp-server", cwd=self.workdir, log_path=self.workdir / "rtsp-server.log"
        )
        self.starts += 1
        try:
            if self.tls is not None:
                self.tls_port = int(process.wait_for(r"^TLS (\d+)$", timeout_s).group(1))
            ready = process.wait_for(r"^READY (\d+)$", timeout_s)
        except LabError as exc:
            tail = process.tail()
            self.stop()
            raise LabError(f"the RTSP server did not start: {exc}\noutput:\n{tail}") from None
        self.port = int(ready.group(1))
        return self

    def stop(self, term_wait_s: float = 5.0) -> int | None:
        """SIGTERM by pid, SIGKILL after ``term_wait_s``; the exit status (0 = clean shutdown)."""
        return self._process.stop(term_wait_s) if self._process is not None else None

    def restart(self, timeout_s: float = 15.0) -> RtspServer:
        """Stop, then start again on the same RTSP (and RTSPS) port: clients must reconnect."""
        if self.port == 0:
            raise LabError("restart() before start()")
        self.stop()
        deadline = time.monotonic() + timeout_s
        while True:  # the old listener is closed; wait (bounded) if the port is briefly busy
            try:
                return self.start(self.port, max(1.0, deadline - time.monotonic()))
            except LabError:
                if time.monotonic() >= deadline:
                    raise

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

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
                raise LabError("this RTSP server has no TLS listener (pass tls=...)")
            port = self.tls_port
        else:
            port = self.port
        if port == 0:
            raise LabError("the RTSP server is not started")
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
        current = self._process.lines() if self._process is not None else []
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
        if self._process is None:
            raise LabError("the RTSP server was never started")
        return self._process.wait_for(pattern, timeout_s, max(0, since - len(self._earlier_lines)))
