"""RTP/RTCP sans-IO core (RFC 3550): packets, the RTP session with its per-source state and
reports, RTCP feedback, jitter and reorder buffers, depacketisers, DTMF events."""

from __future__ import annotations
