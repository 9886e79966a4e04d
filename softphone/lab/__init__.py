"""The peer lab: real Kamailio, baresip, GStreamer RTSP server and JACK on 127.0.0.1 (or, for
NAT, in network namespaces).

One place configures and starts the real peers, for the interop tests (``tests/interop/``
makes fixtures of them) and for ``softphone bench``. Nothing here knows about softphone: the lab
imports none of ``phone``, ``tui``, ``cli`` or ``bench``, and no ``softphone`` command but
``bench`` imports the lab.

- ``process``: children started in a session of their own, dying with us, their output kept and
  logged, stopped by pid; free ports; bounded waits on conditions.
- ``pki``: a throwaway CA and good, expired and wrong-name server certificates (``openssl``).
- ``kamailio`` (+ ``kamailio.cfg.tmpl``): the registrar and proxy for ``lab.test``.
- ``baresip``: baresip 1.0.0 as the far-end phone, driven through ``ctrl_tcp``.
- ``linphone``: Linphone's console client ``linphonec`` (Replaces, 100rel, session timers),
  driven through its stdin.
- ``rtsp_server`` (+ ``gst_rtsp_server.py``, run by Debian's python3): GStreamer's RTSP server.
- ``jack``: a JACK server with the dummy driver, a sound card paced in real time.
- ``netns``: home networks behind nftables NAT routers (one, or two with their own mappings),
  in network namespaces, with the registrar and the far-end phone on a documentation
  "internet" (``NatLab``, ``Router``).
- ``coturn``: coturn as the STUN/TURN server on that "internet", and STUN Binding and TURN
  Allocate probes.
- ``rtpengine``: rtpengine as a provider's media relay beside Kamailio
  (``Kamailio(rtpengine=...)``), and its ng control protocol.

Errors: :class:`LabError` when a peer fails to start, misbehaves, or a wait for it times out;
its subclass :class:`PeerMissing` when a peer is not installed. Whoever uses the lab decides what
a missing peer means (the tests skip outside CI and fail in it; the benchmarks exit with 2).
"""

from __future__ import annotations

from softphone.lab.baresip import Audio, Baresip, BaresipCtrl, Event, strip_ansi
from softphone.lab.coturn import Coturn
from softphone.lab.jack import JackServer
from softphone.lab.kamailio import USERS, Kamailio, Transport
from softphone.lab.linphone import Linphone
from softphone.lab.netns import NatLab, Router
from softphone.lab.pki import DOMAIN, CertKind, CertPair, LabPki, make_pki
from softphone.lab.process import HOST, LabError, LabProcess, PeerMissing, find_binary
from softphone.lab.rtpengine import RtpEngine
from softphone.lab.rtsp_server import MOUNTS, MountSpec, RtspServer, VideoFormat

__all__ = [
    "DOMAIN",
    "HOST",
    "MOUNTS",
    "USERS",
    "Audio",
    "Baresip",
    "BaresipCtrl",
    "CertKind",
    "CertPair",
    "Coturn",
    "Event",
    "JackServer",
    "Kamailio",
    "LabError",
    "LabPki",
    "LabProcess",
    "Linphone",
    "MountSpec",
    "NatLab",
    "PeerMissing",
    "Router",
    "RtpEngine",
    "RtspServer",
    "Transport",
    "VideoFormat",
    "find_binary",
    "make_pki",
    "strip_ansi",
]
