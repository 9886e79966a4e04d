"""A GStreamer RTSP server for the peer lab, bound to 127.0.0.1 (run by /usr/bin/python3 + gi).

This is a standalone script: stdlib and PyGObject only, because the project's virtualenv has no
GObject bindings (``softphone/lab/rtsp_server.py`` starts it and reads its output). It is never
imported by the package::

    /usr/bin/python3 gst_rtsp_server.py --port 0 --config '{"file": "/tmp/x/clip.mp4"}'
    /usr/bin/python3 gst_rtsp_server.py --check    # exit 3 + "MISSING ..." when elements lack

Config (JSON text or a path to a JSON file; every key optional):
``file`` (MP4 for ``/file``; the mount is absent without it), ``tls`` ({"cert", "key", "port"}:
an RTSPS listener on a second port with the same mounts), ``udp_ports`` ([lo, hi], the RTP/RTCP
range of the 127.0.0.1 address pool), ``session_timeout_s`` (the ``timeout=`` of every session;
GStreamer reaps a silent session about 5 s after it), ``width``/``height``/``fps``/``gop``,
``video_kbps`` (1000), ``video_mtu`` (600, so that key frames need FU-A/FU fragments),
``user``/``password``/``realm``.

Output on stdout, one line each, flushed: ``TLS <port>`` (when TLS), then ``READY <port>``; then
``LAB <METHOD> <path>`` for every request as it arrives, before any auth check (plus
`` auth=<scheme>``, `` transport=...``, `` session=...``, `` range=...`` when the request has
them), ``LAB SESSION-REMOVED <id>`` when a session ends (TEARDOWN or timeout) and
``LAB CLIENT-CLOSED`` when a connection closes. SIGTERM/SIGINT stop the main loop, print
``LAB STOPPED`` and exit with status 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HOST: Final = "127.0.0.1"
REALM: Final = "softphone-lab"
ROLE_ANONYMOUS: Final = "anonymous"
ROLE_BASIC: Final = "basic-viewer"  # token given by valid Basic credentials
ROLE_DIGEST: Final = "digest-viewer"  # token given by valid Digest credentials

# Elements every mount needs; --check reports the missing ones (timeoverlay is optional: it is in
# Debian's gstreamer1.0-x, and the ball pattern moves without it).
REQUIRED_ELEMENTS: Final = (
    "videotestsrc audiotestsrc videoconvert audioconvert audioresample x264enc x265enc jpegenc "
    "voaacenc mulawenc opusenc rtph264pay rtph265pay rtpjpegpay rtpmp4gpay rtpmp4apay rtppcmupay "
    "rtpopuspay rtpL16pay filesrc qtdemux h264parse aacparse"
).split()

# --------------------------------------------------------------------------- pipelines
# Payload types: 96 = first dynamic video, 97 = its audio companion (RFC 3551 §6 leaves 96-127
# dynamic); PCMU is static PT 0 and JPEG static PT 26 (RFC 3551 table 4/5).

VIDEO = (
    "videotestsrc is-live=true pattern=ball ! "
    "video/x-raw,width={width},height={height},framerate={fps}/1 ! {overlay}videoconvert ! "
    # 4:2:0: RTP/JPEG carries only YUV 4:2:0/4:2:2 (RFC 2435 §3.1.3, or rtpjpegpay stalls the
    # DESCRIBE with "Invalid component"), and x264/x265 would otherwise pick 4:4:4 profiles.
    "video/x-raw,format=I420"
)
H264 = (
    VIDEO + " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} ! "
    "rtph264pay name=pay0 pt=96 config-interval=-1 mtu={mtu} aggregate-mode=zero-latency"
)
H265 = (
    VIDEO + " ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} ! "
    "rtph265pay name=pay0 pt=96 config-interval=-1 mtu={mtu} aggregate-mode=zero-latency"
)
MJPEG = VIDEO + " ! jpegenc quality=60 ! rtpjpegpay name=pay0 pt=26"
SINE = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample"
# AAC-hbr in MPEG4-GENERIC (RFC 3640 §3.3.6) and in MP4A-LATM with cpresent=0 (RFC 6416 §6.1).
AAC_GENERIC = (
    SINE + " ! audio/x-raw,rate=48000,channels=1 ! voaacenc bitrate=64000 ! "
    "rtpmp4gpay name=pay1 pt=97"
)
AAC_LATM = (
    SINE + " ! audio/x-raw,rate=44100,channels=2 ! voaacenc bitrate=96000 ! "
    "rtpmp4apay name=pay1 pt=97"
)
PCMU = SINE + " ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay0 pt=0"
OPUS = SINE + " ! audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay name=pay0 pt=96"
L16 = (
    SINE + " ! audio/x-raw,format=S16BE,rate=16000,channels=1,layout=interleaved ! "
    "rtpL16pay name=pay0 pt=96"
)
FILE = (
    "filesrc location={file} ! qtdemux name=demux "
    "demux.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
    "demux.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    path: str
    launch: str
    shared: bool = True  # live sources: every client joins the same running pipeline
    tcp_only: bool = False  # UDP SETUP answered 461 Unsupported Transport
    auth: str | None = None  # None (anyone), "basic" or "digest"


MOUNTS: Final = (
    Mount(path="/h264", launch=f"{H264} {AAC_GENERIC}"),
    Mount(path="/h264-latm", launch=f"{H264} {AAC_LATM}"),
    Mount(path="/h265", launch=H265),
    Mount(path="/mjpeg", launch=MJPEG),
    Mount(path="/pcmu", launch=PCMU),
    Mount(path="/opus", launch=OPUS),
    Mount(path="/l16", launch=L16),
    Mount(path="/file", launch=FILE, shared=False),
    Mount(path="/tcp-only", launch=H264, tcp_only=True),
    Mount(path="/basic", launch=H264, auth="basic"),
    Mount(path="/digest", launch=H264, auth="digest"),
)


AUTH_OF_MOUNT: Final = {m.path: m.auth for m in MOUNTS}


def say(line: str) -> None:
    print(line, flush=True)


def load_config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if not text.lstrip().startswith("{"):
        text = Path(text).read_text()
    config = json.loads(text)
    if not isinstance(config, dict):
        raise SystemExit("--config must be a JSON object")
    return config


def _import_gi() -> tuple[Any, Any, Any, Any, Any]:
    import gi  # type: ignore[import-not-found,import-untyped,unused-ignore]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
        Gio,
        GLib,
        Gst,
        GstRtsp,
        GstRtspServer,
    )

    Gst.init(None)
    return Gio, GLib, Gst, GstRtsp, GstRtspServer


def missing_elements(gst: Any) -> list[str]:
    return [name for name in REQUIRED_ELEMENTS if gst.ElementFactory.find(name) is None]


class LabServer:
    """Builds the mounts, the auth and one or two RTSPServer listeners on 127.0.0.1."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.Gio, self.GLib, self.Gst, self.GstRtsp, self.GstRtspServer = _import_gi()
        self.config = config
        self.user = str(config.get("user", "viewer"))
        self.password = str(config.get("password", "p@ss#1"))
        self.realm = str(config.get("realm", REALM))
        timeout = config.get("session_timeout_s")
        self.session_timeout_s = int(timeout) if timeout is not None else None
        lo, hi = config.get("udp_ports", [20000, 29999])
        self.pool = self.GstRtspServer.RTSPAddressPool()
        # Unicast range (ttl 0) on loopback: without a pool RTP sockets bind to 0.0.0.0.
        if not self.pool.add_range(HOST, HOST, int(lo), int(hi), 0):
            raise SystemExit(f"bad udp_ports range {lo}-{hi}")
        self.mounts = self.GstRtspServer.RTSPMountPoints()
        self.auth_class = self._auth_class()
        self._add_mounts()
        self.servers: list[Any] = []

    # -- auth

    def _auth_class(self) -> Any:
        """An RTSPAuth that challenges /basic with Basic and /digest with Digest only.

        GstRTSPAuthMethod is a plain enum in GI (BASIC|DIGEST cannot be passed), and one auth
        object serves every mount, so the method is chosen per request from the URL path just
        before the parent writes WWW-Authenticate (and its Digest nonce table).
        """
        server_module = self.GstRtspServer
        rtsp = self.GstRtsp

        class PerMountAuth(server_module.RTSPAuth):  # type: ignore[misc,name-defined]
            def do_generate_authenticate_header(self, ctx: Any) -> None:
                path = ctx.uri.abspath if ctx.uri is not None else ""
                mount = "/" + path.strip("/").split("/")[0]  # "/basic/stream=0" -> "/basic"
                method = (
                    rtsp.RTSPAuthMethod.BASIC
                    if AUTH_OF_MOUNT.get(mount) == "basic"
                    else rtsp.RTSPAuthMethod.DIGEST
                )
                self.set_supported_methods(method)
                server_module.RTSPAuth.do_generate_authenticate_header(self, ctx)

        return PerMountAuth

    def _make_auth(self, tls: dict[str, Any] | None) -> Any:
        srv = self.GstRtspServer
        auth = self.auth_class()
        auth.set_realm(self.realm)
        # Basic is RFC 7617 §2. Digest is RFC 2617 §3.2.2 without qop (the RFC 2069 form): the
        # challenge has only realm and nonce, and GStreamer 1.22 checks MD5 responses only.
        auth.set_default_token(_token(srv, ROLE_ANONYMOUS))
        auth.add_basic(srv.RTSPAuth.make_basic(self.user, self.password), _token(srv, ROLE_BASIC))
        auth.add_digest(self.user, self.password, _token(srv, ROLE_DIGEST))
        if tls is not None:
            cert = self.Gio.TlsCertificate.new_from_files(str(tls["cert"]), str(tls["key"]))
            auth.set_tls_certificate(cert)
        return auth

    # -- mounts

    def _add_mounts(self) -> None:
        srv = self.GstRtspServer
        overlay = (
            'timeoverlay font-desc="Sans 20" ! '
            if self.Gst.ElementFactory.find("timeoverlay") is not None
            else ""
        )
        values = {
            "width": int(self.config.get("width", 320)),
            "height": int(self.config.get("height", 240)),
            "fps": int(self.config.get("fps", 25)),
            "gop": int(self.config.get("gop", 25)),
            "kbps": int(self.config.get("video_kbps", 1000)),
            "mtu": int(self.config.get("video_mtu", 600)),
            "overlay": overlay,
            "file": str(self.config.get("file", "")),
        }
        for mount in MOUNTS:
            if mount.path == "/file" and not values["file"]:
                continue
            factory = srv.RTSPMediaFactory()
            factory.set_launch("( " + mount.launch.format(**values) + " )")
            factory.set_shared(mount.shared)
            factory.set_address_pool(self.pool)
            if mount.tcp_only:
                factory.set_protocols(self.GstRtsp.RTSPLowerTrans.TCP)
            self._permit(factory, mount.auth)
            self.mounts.add_factory(mount.path, factory)

    def _permit(self, factory: Any, auth: str | None) -> None:
        """Who may DESCRIBE/SETUP: everyone, or only the right credentials.

        Every role keeps ``access``, so a refused one is told 401 with a challenge (``construct``
        refused) rather than 404 (``access`` refused); Basic credentials on /digest get 401 too.
        """
        for role in (ROLE_ANONYMOUS, ROLE_BASIC, ROLE_DIGEST):
            construct = auth is None or role == f"{auth}-viewer"
            structure = self.Gst.Structure.new_empty(role)
            structure.set_value("media.factory.access", True)
            structure.set_value("media.factory.construct", construct)
            factory.add_role_from_structure(structure)

    # -- listeners

    def listen(self, port: int, tls: dict[str, Any] | None = None) -> int:
        srv = self.GstRtspServer
        server = srv.RTSPServer()
        server.set_address(HOST)
        server.set_service(str(port))
        server.set_mount_points(self.mounts)
        server.set_auth(self._make_auth(tls))
        server.connect("client-connected", self._on_client)
        pool = server.get_session_pool()
        pool.connect(
            "session-removed", lambda _pool, s: say(f"LAB SESSION-REMOVED {s.get_sessionid()}")
        )
        if server.attach(None) == 0:
            raise SystemExit(f"cannot listen on {HOST}:{port}")
        # Expired sessions are only reaped when someone asks: do it every second.
        self.GLib.timeout_add_seconds(1, lambda: (pool.cleanup(), True)[1])
        self.servers.append(server)
        return int(server.get_bound_port())

    def _on_client(self, _server: Any, client: Any) -> None:
        for method in (
            "options",
            "describe",
            "setup",
            "play",
            "pause",
            "teardown",
            "get-parameter",
            "set-parameter",
        ):
            client.connect(f"pre-{method}-request", self._on_request)
        client.connect("closed", lambda _c: say("LAB CLIENT-CLOSED"))
        if self.session_timeout_s is not None:
            timeout = self.session_timeout_s
            client.connect("new-session", lambda _c, session: session.set_timeout(timeout))

    def _on_request(self, _client: Any, ctx: Any) -> Any:
        """Log each request before it is handled (and before any auth check); let it through."""
        rtsp = self.GstRtsp
        request = ctx.request
        ok, method, uri, _version = request.parse_request()
        if ok != rtsp.RTSPResult.OK:
            return rtsp.RTSPStatusCode.OK
        path = uri.split("://", 1)[-1].partition("/")[2]
        line = f"LAB {rtsp.rtsp_method_as_text(method)} /{path}"
        for name, field in (
            ("auth", rtsp.RTSPHeaderField.AUTHORIZATION),
            ("transport", rtsp.RTSPHeaderField.TRANSPORT),
            ("session", rtsp.RTSPHeaderField.SESSION),
            ("range", rtsp.RTSPHeaderField.RANGE),
        ):
            res, value = request.get_header(field, 0)
            if res == rtsp.RTSPResult.OK:
                line += f" {name}={value.split()[0] if name == 'auth' else value}"
        say(line)
        return rtsp.RTSPStatusCode.OK


def _token(srv: Any, role: str) -> Any:
    token = srv.RTSPToken()
    token.set_string("media.factory.role", role)
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default=None, help="JSON text or the path of a JSON file")
    parser.add_argument("--check", action="store_true", help="report missing elements and exit")
    args = parser.parse_args(argv)
    if args.check:
        _gio, _glib, gst, _rtsp, _srv = _import_gi()
        missing = missing_elements(gst)
        for name in missing:
            say(f"MISSING {name}")
        if gst.ElementFactory.find("timeoverlay") is None:
            say("OPTIONAL-MISSING timeoverlay")
        say(f"GSTREAMER {gst.version_string()}")
        return 3 if missing else 0
    config = load_config(args.config)
    lab = LabServer(config)
    if missing := missing_elements(lab.Gst):
        say("MISSING " + " ".join(missing))
        return 3
    tls = config.get("tls")
    if tls:
        say(f"TLS {lab.listen(int(tls.get('port', 0)), tls)}")
    port = lab.listen(args.port)
    loop = lab.GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        lab.GLib.unix_signal_add(lab.GLib.PRIORITY_HIGH, signum, lambda: (loop.quit(), False)[1])
    say(f"READY {port}")
    loop.run()
    say("LAB STOPPED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
