"""The media layer's one error type, in a module of its own so that code which only catches it
(the RTSP player) does not import PyAV to do so."""

from __future__ import annotations


class MediaError(Exception):
    """A codec, picture or file operation that cannot be done (PyAV's errors end up here)."""
