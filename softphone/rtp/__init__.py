"""RTP/RTCP sans-IO core (RFC 3550). Filled in by the audio media issue."""

from __future__ import annotations
