"""Audio/video media: codecs, audio devices, decoding. Filled in by the audio and RTSP issues."""

from __future__ import annotations
