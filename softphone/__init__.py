"""softphone: a terminal softphone and RTSP player.

Importing this package must stay cheap and side-effect free: no asyncio, socket, ssl, textual,
sounddevice, av, opuslib or numpy (tests/test_import_hygiene.py checks it). That is also why the version
is a literal here rather than read through importlib.metadata, which imports socket.
"""

from __future__ import annotations

__version__ = "0.1.0"
