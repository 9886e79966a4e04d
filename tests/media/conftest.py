"""Fixtures for the media tests: a paced virtual sound card (JACK's dummy driver).

``jack_server`` starts the peer lab's :class:`~softphone.lab.jack.JackServer` (``jackd -n NAME
-d dummy -r 48000 -p 480``, a private server name, so it never meets anybody else's JACK), which
waits until a client can connect; the fixture yields the name and stops it by pid. Without
``jackd`` it skips, except in CI (``CI=true``) where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import peers_required

from softphone.lab.jack import JackServer


@pytest.fixture
def jack_server(tmp_path: Path) -> Iterator[str]:
    server = JackServer(tmp_path)
    with peers_required():
        server.start()
    try:
        yield server.name
    finally:
        server.stop()
