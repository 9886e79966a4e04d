"""HTTP-style authentication (Digest, Basic) shared by SIP and RTSP. Sans-IO: it works on
header value strings, so neither protocol core imports the other."""

from __future__ import annotations
