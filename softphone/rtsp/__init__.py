"""RTSP 1.0 sans-IO client core (RFC 2326). Filled in by the RTSP issue."""

from __future__ import annotations
