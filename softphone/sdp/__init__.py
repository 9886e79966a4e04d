"""SDP (RFC 4566) and offer/answer (RFC 3264). Shared by SIP and RTSP; imports neither."""

from __future__ import annotations
