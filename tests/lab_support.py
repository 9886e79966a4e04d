"""How the tests use the peer lab (``softphone.lab``): what a missing peer means, the fixtures'
factory types, and printing a peer's output when a test failed.

- :func:`in_ci`: missing peers must fail the run rather than skip it (``CI=true``, or
  ``SOFTPHONE_REQUIRE_INTEROP=1``).
- :func:`peers_required`: a ``with`` block in which the lab's ``PeerMissing`` skips the test,
  or fails it in CI; :func:`require_binary` is the same for one executable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NoReturn, Protocol

import pytest

from softphone import lab
from softphone.lab.baresip import MediaEnc, MediaNat
from softphone.lab.linphone import Rel100
from softphone.lab.process import PeerMissing, find_binary


def in_ci() -> bool:
    """True when missing peers must fail the run rather than skip (CI, or asked for)."""
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("SOFTPHONE_REQUIRE_INTEROP") == "1"
    )


def skip_or_fail(reason: str) -> NoReturn:
    """The policy for a missing peer: skip the test outside CI, fail it in CI."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _missing(exc: PeerMissing) -> NoReturn:
    skip_or_fail(f"interop peer missing: {exc} (`make peers` installs every peer)")


@contextlib.contextmanager
def peers_required() -> Iterator[None]:
    """Turn the lab's PeerMissing into a skip (outside CI) or a failure (in CI)."""
    try:
        yield
    except PeerMissing as exc:
        _missing(exc)


def require_binary(name: str) -> str:
    """Return the path of ``name``; skip the test when missing, or fail it when in CI."""
    try:
        return find_binary(name)
    except PeerMissing as exc:
        _missing(exc)


def dump(title: str, lines: list[str], n: int = 60) -> None:
    """Print the last ``n`` lines of a peer's output (shown in the report of a failed test)."""
    print(f"----- {title} (last {min(n, len(lines))} of {len(lines)} lines) -----")
    for line in lines[-n:]:
        print(line)


class KamailioFactory(Protocol):
    """The ``kamailio_factory`` fixture: another Kamailio serving the given TLS certificate."""

    def __call__(
        self,
        tls_cert: lab.CertKind = "good",
        presence: bool = False,
        client_certificates: bool = False,
    ) -> lab.Kamailio: ...


class BaresipFactory(Protocol):
    """The ``baresip_factory`` fixture; ``kamailio`` defaults to the session ``kamailio``."""

    def __call__(
        self,
        user: str = "bob",
        transport: lab.Transport = "udp",
        register: bool = True,
        auto_answer: bool = False,
        audio: lab.Audio = "tone",
        record: bool = False,
        kamailio: lab.Kamailio = ...,
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
    ) -> lab.Baresip: ...


class LinphoneFactory(Protocol):
    """The ``linphone_factory`` fixture: a linphonec registered to the session Kamailio."""

    def __call__(
        self,
        user: str = "bob",
        *,
        auto_answer: bool = False,
        rel100: Rel100 = "no",
        session_expires_s: int | None = None,
        sip_trace: bool = False,
        video: bool = False,
    ) -> lab.Linphone: ...
