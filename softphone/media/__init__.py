"""Audio and video media on numpy arrays: the codecs, the playout (jitter buffer, concealment,
time-stretching), resampling, tones, levels, WAV files, the sound device (device.py, the only
sounddevice importer), and video decoding and recording through PyAV (video.py, record.py)."""

from __future__ import annotations
