"""The phone's one error type, in a module of its own so front ends can catch it with a light
import (``softphone.phone.phone`` pulls in sockets, numpy and the codecs)."""

from __future__ import annotations

__all__ = ["PhoneError"]


class PhoneError(Exception):
    """An action could not be done; the message says why in words a person understands."""
