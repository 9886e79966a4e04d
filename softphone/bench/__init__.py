"""Benchmarks: ``softphone bench jitter`` (the jitter buffer and playout under network traces).

``cli.main(argv)`` is the entry point; ``traces`` generates seeded network profiles, ``jitter``
replays one through the calls' playout, ``oracle`` computes the hindsight references.
"""

from __future__ import annotations
