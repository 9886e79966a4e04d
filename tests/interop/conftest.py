"""Fixtures for the interop lab: a real Kamailio, real baresip phones and a GStreamer RTSP
server on 127.0.0.1. The peers themselves are ``softphone.lab``'s; this file makes fixtures of
them, and ``tests/lab_support.py`` says what a missing peer means. How to use them::

    import pytest
    from lab_support import BaresipFactory

    from softphone import lab

    pytestmark = pytest.mark.interop

    def test_softphone_calls_bob(kamailio: lab.Kamailio, baresip_factory: BaresipFactory) -> None:
        bob = baresip_factory(user="bob", transport="udp", auto_answer=True)
        mark = kamailio.mark()
        # ... our UA registers as alice (password "alicepw", realm "lab.test") to
        #     kamailio.outbound_uri("udp") == "sip:127.0.0.1:<kamailio.udp_port>;transport=udp"
        kamailio.wait_for(r"LAB REGISTERED alice expires=\\d+", timeout_s=5, since=mark)
        # ... our UA calls sip:bob@lab.test
        incoming = bob.wait_event("CALL_INCOMING", timeout_s=5)
        assert incoming["peeruri"].startswith("sip:alice@lab.test")
        bob.wait_event("CALL_ESTABLISHED", timeout_s=5)
        bob.hangup()                                   # or hold() / resume() / transfer(uri)
        bob.wait_event("CALL_CLOSED", timeout_s=5)

Fixtures:

- ``lab_pki`` (session): :class:`lab.LabPki` with ``ca_file`` plus good / expired / wrong-name
  server certificates (SAN of the good one: IP 127.0.0.1, IP ::1, DNS lab.test, DNS localhost).
- ``kamailio`` (session): :class:`lab.Kamailio` for ``lab.test`` with ``udp_port``/``tcp_port``
  (same number), ``tls_port`` (= that + 1), ``udp6_port`` ([::1], or None), ``ca_file``,
  ``domain``, ``lines()``, ``lab_lines()``, ``mark()``,
  ``wait_for(regex, timeout_s, since=0) -> re.Match``.
  Users alice/bob/carol/dave with passwords ``<user>pw``; REGISTER is challenged with 401,
  other requests from local users with 407; a wrong password gets 403; Expires below 60 gets
  423 with ``Min-Expires: 60``; bindings last at most 3600 s (default 3600).
- ``kamailio_factory`` (function): ``kamailio_factory(tls_cert="expired" | "wrong_name" | "good",
  presence=False)`` starts another, independent Kamailio (fresh ports) serving that TLS
  certificate; ``presence=True`` makes it the presence server too (PUBLISH/SUBSCRIBE for
  presence, dialog and message-summary; ``restart()`` forgets them).
- ``baresip_factory`` (function): ``baresip_factory(user="bob", transport="udp", register=True,
  auto_answer=False, audio="tone", record=False, kamailio=None, display_name=None, contacts=(),
  console=False, presence=False, publish_s=60) -> lab.Baresip``, registered (when
  ``register``) before it returns;
  ``display_name`` goes into its From; ``contacts`` are the URIs it can ``send_message`` to;
  ``host="::1"`` runs it on the IPv6 loopback, registered through Kamailio's ``[::1]`` UDP
  listener; ``console=True`` reads its ``cons`` console (``console.wait_for``), where it shows the
  instant messages it receives; ``presence=True`` loads its presence module (it publishes
  open/closed every ``publish_s`` and watches ``contacts``: ``contact_status(uri)``). ``audio``
  is ``"tone"`` (endless 440 Hz) or a WAV path (baresip
  hangs up when the file ends). ``record=True`` loads the sndfile filter (``recordings()``).
  ``events`` holds every ctrl_tcp event; ``wait_event(type, timeout_s, predicate, since)`` counts
  past events too, so pass ``since=phone.mark()`` to wait only for new ones.
- ``linphone_factory`` (function): ``linphone_factory(user="bob", auto_answer=False,
  rel100="no" | "optional" | "mandatory", session_expires_s=None, sip_trace=False,
  video=False) ->
  lab.Linphone``: Linphone's console client registered to the session ``kamailio`` (UDP) before
  it returns; ``call(uri)``, ``answer(id)``, ``terminate(id)``, ``calls()``, ``command(line)``;
  ``wait_event(CallEventKind.X, timeout_s, peer=, since=mark())`` over the call events it
  prints; ``sip_trace=True`` puts every SIP message it sends or receives in ``lines()``;
  ``video=True`` offers and takes video (VP8, H.264) headless, ``snapshot(path)`` saves the next
  picture it decoded.
- ``rtsp_lab`` (session): one shared :class:`lab.RtspServer` with every mount of ``lab.MOUNTS``:
  ``url(mount, user=, password=, scheme=)``, ``port``, ``user``/``password``, ``lines()``,
  ``mark()``, ``wait_for(regex, timeout_s, since)`` over its ``LAB <METHOD> <path> ...`` lines.
- ``rtsp_lab_private`` (function): a server of its own, for tests that restart() or stop() it.
  Parametrize it indirectly for TLS or a short session timeout:
  ``@pytest.mark.parametrize("rtsp_lab_private", [{"tls": True, "session_timeout_s": 10}],
  indirect=True)`` (TLS uses ``lab_pki.good``: SAN 127.0.0.1, CA in ``lab_pki.ca_file``).

Missing peers skip the tests (``pytest.skip``), or fail them when ``CI=true`` or
``SOFTPHONE_REQUIRE_INTEROP=1`` (see ``lab_support.in_ci``). When a test fails, the tail of
every peer's log (and the RTSP server's output during that test) is printed in the teardown
section of the report.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import sys
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import (
    BaresipFactory,
    KamailioFactory,
    LinphoneFactory,
    dump,
    peers_required,
    skip_or_fail,
)

from softphone import lab
from softphone.config import Account, Config
from softphone.lab.baresip import MediaEnc, MediaNat
from softphone.lab.linphone import Rel100
from softphone.lab.netns import entered
from softphone.phone.audio import AudioProvider
from softphone.phone.phone import Phone
from softphone.phone.video import VideoSettings
from softphone.transport.resolver import StubBackend

# The helpers beside this file (tmux_term.py, test_softphone_sip.py's) import by module name.
sys.path.insert(0, str(Path(__file__).parent))

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
NAT_UDP_TIMEOUT_S = 6  # the router forgets an idle UDP mapping after this long
NAT_FLOW_TIMER_S = 4  # what the registrar asks for: keep-alives come before the router forgets
_NAT_TAGS = itertools.count(1)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> lab.LabPki:
    with peers_required():
        return lab.make_pki(tmp_path_factory.mktemp("lab-pki"))


@pytest.fixture(scope="session")
def kamailio(
    tmp_path_factory: pytest.TempPathFactory, lab_pki: lab.LabPki
) -> Iterator[lab.Kamailio]:
    with peers_required():
        proxy = lab.Kamailio(tmp_path_factory.mktemp("kamailio"), lab_pki).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(autouse=True)
def _fresh_location_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that used the shared Kamailio leaves it without bindings: one left behind
    (a phone killed with -9 never unregisters) names a port that a later test's phone may hold,
    and calls to that user would be forked to it."""
    yield
    if "kamailio" in request.fixturenames:
        proxy = request.getfixturevalue("kamailio")
        if proxy.alive():
            proxy.forget_bindings()


@pytest.fixture
def kamailio_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, lab_pki: lab.LabPki
) -> Iterator[KamailioFactory]:
    started: list[lab.Kamailio] = []

    def make(
        tls_cert: lab.CertKind = "good", presence: bool = False, client_certificates: bool = False
    ) -> lab.Kamailio:
        proxy = lab.Kamailio(
            tmp_path_factory.mktemp(f"kamailio-{tls_cert}"),
            lab_pki,
            tls_cert=tls_cert,
            presence=presence,
            client_certificates=client_certificates,
        )
        started.append(proxy)
        with peers_required():
            return proxy.start()

    try:
        yield make
    finally:
        for proxy in started:
            if _failed(request):
                dump(f"kamailio ({proxy.tls_cert} cert)", proxy.lines())
            proxy.stop()


@contextlib.contextmanager
def _baresips(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    default: lab.Kamailio,
    *,
    where: str,
    after_failure: Callable[[], None],
    **placed: str,
) -> Iterator[BaresipFactory]:
    """The baresip factories' one body: each phone made, started, and stopped at the end (its
    output, and ``after_failure``'s, printed when the test failed). ``placed``: the lab.Baresip
    arguments that put every phone of this factory somewhere (a host, a namespace)."""
    started: list[lab.Baresip] = []

    def make(
        user: str = "bob",
        transport: lab.Transport = "udp",
        register: bool = True,
        auto_answer: bool = False,
        audio: lab.Audio = "tone",
        record: bool = False,
        kamailio: lab.Kamailio = default,
        extra_config: str = "",
        display_name: str | None = None,
        contacts: tuple[str, ...] = (),
        console: bool = False,
        presence: bool = False,
        publish_s: int = 60,
        mediaenc: MediaEnc | None = None,
        rtcp_mux: bool = False,
        host: str = lab.HOST,
        codecs: str | None = None,
        medianat: MediaNat | None = None,
        stun_server: str | None = None,
        stun_user: str | None = None,
        stun_password: str | None = None,
    ) -> lab.Baresip:
        phone = lab.Baresip(
            tmp_path_factory.mktemp(f"baresip-{where}-{user}"),
            kamailio=kamailio,
            user=user,
            transport=transport,
            register=register,
            auto_answer=auto_answer,
            audio=audio,
            record=record,
            extra_config=extra_config,
            display_name=display_name,
            contacts=contacts,
            console=console,
            presence=presence,
            publish_s=publish_s,
            mediaenc=mediaenc,
            rtcp_mux=rtcp_mux,
            codecs=codecs,
            medianat=medianat,
            stun_server=stun_server,
            stun_user=stun_user,
            stun_password=stun_password,
            host=placed.get("host", host),
            netns=placed.get("netns"),
        )
        started.append(phone)
        with peers_required():
            return phone.start()

    try:
        yield make
    finally:
        failed = _failed(request)
        for phone in started:
            if failed:
                dump(f"baresip {phone.user} ({phone.transport}, {where})", phone.lines())
                if phone.alive():
                    print(f"baresip {phone.user} events: {phone.ctrl.event_types()}")
            phone.stop()
        if failed:
            after_failure()


@pytest.fixture
def baresip_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kamailio: lab.Kamailio
) -> Iterator[BaresipFactory]:
    with _baresips(
        request,
        tmp_path_factory,
        kamailio,
        where="lo",
        after_failure=lambda: dump("kamailio LAB lines", kamailio.lab_lines()),
    ) as make:
        yield make


@pytest.fixture
def linphone_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kamailio: lab.Kamailio
) -> Iterator[LinphoneFactory]:
    """linphonec phones registered to the session Kamailio (``lab.Linphone``)."""
    started: list[lab.Linphone] = []

    def make(
        user: str = "bob",
        *,
        auto_answer: bool = False,
        rel100: Rel100 = "no",
        session_expires_s: int | None = None,
        sip_trace: bool = False,
        video: bool = False,
    ) -> lab.Linphone:
        phone = lab.Linphone(
            tmp_path_factory.mktemp(f"linphonec-{user}"),
            kamailio=kamailio,
            user=user,
            auto_answer=auto_answer,
            rel100=rel100,
            session_expires_s=session_expires_s,
            sip_trace=sip_trace,
            video=video,
        )
        started.append(phone)
        with peers_required():
            return phone.start()

    try:
        yield make
    finally:
        failed = _failed(request)
        for phone in started:
            if failed:
                dump(f"linphonec {phone.user}", phone.lines(), n=150)
            phone.stop()
        if failed:
            dump("kamailio LAB lines", kamailio.lab_lines())


@pytest.fixture(scope="session")
def rtsp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.RtspServer]:
    with peers_required():
        server = lab.RtspServer(tmp_path_factory.mktemp("rtsp-lab")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _rtsp_lab_output_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print what the shared RTSP server logged during a failed test that used it."""
    if "rtsp_lab" not in request.fixturenames:
        yield
        return
    server: lab.RtspServer = request.getfixturevalue("rtsp_lab")
    mark = server.mark()
    yield
    if _failed(request):
        dump("rtsp lab (during this test)", server.lines()[mark:])


@pytest.fixture
def rtsp_lab_private(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[lab.RtspServer]:
    options: dict[str, object] = dict(getattr(request, "param", None) or {})
    tls: lab.CertPair | None = None
    if options.pop("tls", False):
        pki: lab.LabPki = request.getfixturevalue("lab_pki")
        tls = pki.good
    timeout = options.pop("session_timeout_s", None)
    if options:
        raise ValueError(f"rtsp_lab_private: unknown options {sorted(options)}")
    server = lab.RtspServer(
        tmp_path_factory.mktemp("rtsp-lab-private"),
        tls=tls,
        session_timeout_s=int(str(timeout)) if timeout is not None else None,
    )
    try:
        with peers_required():
            server.start()
        yield server
    finally:
        if _failed(request):
            dump("rtsp lab (private)", server.lines())
        server.stop()


# --------------------------------------------------------------------------- behind a NAT router


def _netns_permitted() -> str | None:
    """None when this process may make network namespaces, else why not."""
    if not Path("/proc/thread-self/ns/net").exists():
        return "no network namespaces on this system"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    try:
        lab.find_binary("nft", "nftables")
        lab.find_binary("ip", "iproute2")
    except lab.PeerMissing as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def nat_lab(request: pytest.FixtureRequest) -> Iterator[lab.NatLab]:
    """A home network behind an nftables masquerade router (``softphone.lab.netns``): the wan
    namespace holds the registrar (203.0.113.10), the far-end phone (203.0.113.20) and the
    STUN/TURN server's address (203.0.113.30), the home namespace the softphone (192.168.1.100).
    Endpoint-independent mapping, UDP conntrack timeout 6 s. Parametrize it indirectly for
    router A's ``mapping``, a second router (``second_router``: its mapping; its home is
    192.168.2.100 behind 203.0.113.2) and the routers' ``udp_timeout_s``:
    ``@pytest.mark.parametrize("nat_lab", [{"second_router": "random"}], indirect=True)``.
    Skipped where namespaces cannot be made, failed in CI."""
    options: dict[str, object] = dict(getattr(request, "param", None) or {})
    mapping = options.pop("mapping", "endpoint-independent")
    second = options.pop("second_router", None)
    udp_timeout_s = int(str(options.pop("udp_timeout_s", NAT_UDP_TIMEOUT_S)))
    if options:
        raise ValueError(f"nat_lab: unknown options {sorted(options)}")
    why = _netns_permitted()
    if why is not None:
        skip_or_fail(f"the NAT lab cannot run here: {why}")
    with peers_required():
        topology = lab.NatLab.create(
            udp_timeout_s=udp_timeout_s,
            tag=next(_NAT_TAGS),
            mapping=mapping,  # type: ignore[arg-type]  # checked by NatLab.create
            second_router=second,  # type: ignore[arg-type]
        )
    try:
        yield topology
    finally:
        topology.close()


@pytest.fixture(scope="module")
def nat_kamailio(
    request: pytest.FixtureRequest,
    nat_lab: lab.NatLab,
    tmp_path_factory: pytest.TempPathFactory,
    lab_pki: lab.LabPki,
) -> Iterator[lab.Kamailio]:
    """Kamailio on the wan side, answering STUN on its UDP port, telling clients to keep their
    flows alive every ``NAT_FLOW_TIMER_S`` (below the router's UDP timeout), and not patching
    the Contacts of TCP/TLS dialogs with nathelper aliases. Parametrize it indirectly with
    ``{"nat_contacts": True}`` to have it reach UDP phones whose Contact names a private address
    (baresip behind a router) where their packets came from."""
    options: dict[str, object] = dict(getattr(request, "param", None) or {})
    nat_contacts = bool(options.pop("nat_contacts", False))
    if options:
        raise ValueError(f"nat_kamailio: unknown options {sorted(options)}")
    proxy = lab.Kamailio(
        tmp_path_factory.mktemp("kamailio-nat"),
        lab_pki,
        host=nat_lab.registrar_host,
        netns=nat_lab.wan,
        flow_timer_s=NAT_FLOW_TIMER_S,
        nat_aliases=False,  # the phone must name an address it is reached at (test_nat.py)
        nat_contacts=nat_contacts,
    )
    with peers_required():
        proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def nat_baresip_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
) -> Iterator[BaresipFactory]:
    """``baresip_factory`` for the wan side: bob at 203.0.113.20, registered to nat_kamailio."""

    def after_failure() -> None:
        dump("kamailio (wan) LAB lines", nat_kamailio.lab_lines())
        print(f"router dropped {nat_lab.dropped()} packets; mappings: {nat_lab.udp_mappings()}")

    with _baresips(
        request,
        tmp_path_factory,
        nat_kamailio,
        where="wan",
        after_failure=after_failure,
        host=nat_lab.far_host,
        netns=nat_lab.wan,
    ) as make:
        yield make


@pytest.fixture(scope="module")
def nat_coturn(
    request: pytest.FixtureRequest, nat_lab: lab.NatLab, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[lab.Coturn]:
    """coturn on the wan, on a host of its own (namespace ``nat_lab.relay``, address
    ``nat_lab.turn_host`` 203.0.113.30), port 3478, UDP and TCP: STUN, and TURN with long-term
    credentials in realm ``lab.test`` (the lab's SIP users: alice/alicepw, bob/bobpw,
    carol/carolpw, dave/davepw), relayed ports 50000-50099."""
    server = lab.Coturn(
        tmp_path_factory.mktemp("coturn"), host=nat_lab.turn_host, netns=nat_lab.relay
    )
    with peers_required():
        server.start()
    try:
        yield server
    finally:
        if _failed(request):
            dump("coturn", server.lines())
        server.stop()


def _home_baresips(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
    router: lab.Router,
    where: str,
) -> contextlib.AbstractContextManager[BaresipFactory]:
    def after_failure() -> None:
        dump("kamailio (wan) LAB lines", nat_kamailio.lab_lines())
        for r in nat_lab.routers:
            print(f"router {r.wan_address} dropped {r.dropped()}; mappings: {r.udp_mappings()}")

    return _baresips(
        request,
        tmp_path_factory,
        nat_kamailio,
        where=where,
        after_failure=after_failure,
        host=router.home_host,
        netns=router.home,
    )


@pytest.fixture
def home_baresip_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
) -> Iterator[BaresipFactory]:
    """``baresip_factory`` behind router A: at 192.168.1.100 in ``nat_lab.home``, registered to
    nat_kamailio (through the router: its Contact names its private address)."""
    with _home_baresips(
        request, tmp_path_factory, nat_lab, nat_kamailio, nat_lab.router, "home"
    ) as make:
        yield make


@pytest.fixture
def home2_baresip_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    nat_lab: lab.NatLab,
    nat_kamailio: lab.Kamailio,
) -> Iterator[BaresipFactory]:
    """``baresip_factory`` behind router B (nat_lab parametrized with ``second_router``): at
    192.168.2.100 in ``nat_lab.second.home``, registered to nat_kamailio."""
    if nat_lab.second is None:
        raise ValueError('home2_baresip_factory needs nat_lab with {"second_router": ...}')
    with _home_baresips(
        request, tmp_path_factory, nat_lab, nat_kamailio, nat_lab.second, "home2"
    ) as make:
        yield make


@pytest.fixture
async def home_phone(nat_lab: lab.NatLab) -> AsyncIterator[Callable[..., Any]]:
    """Phones in the home namespace: this thread enters it for the test (the phone's sockets,
    made now or later, are the home network's), and leaves it after the phones stopped."""
    phones: list[Phone] = []
    with entered(nat_lab.home):

        async def make(
            acct: Account,
            audio: AudioProvider,
            *,
            auto_answer: bool = False,
            video: VideoSettings | None = None,
        ) -> Phone:
            phone = Phone(
                Config(accounts=(acct,), codecs=("PCMU",)),
                bind_host="0.0.0.0",  # the advertised address is the route's source, as at home
                sip_port=0,
                rng=random.Random(len(phones)),
                dns=StubBackend(a={lab.DOMAIN: [nat_lab.registrar_host]}),
                auto_answer=auto_answer,
                audio=audio,
                instance_id=f"00000000-0000-4000-8000-{len(phones) + 1:012d}",
                video=video,
            )
            await phone.start()
            phones.append(phone)
            return phone

        yield make
        for phone in phones:
            await phone.stop()
