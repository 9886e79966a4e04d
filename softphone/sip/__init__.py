"""SIP sans-IO core (RFC 3261): bytes and ``now`` in, events and bytes out.

Nothing in this package opens a socket, reads a clock or draws a random number on its own.
"""

from __future__ import annotations
