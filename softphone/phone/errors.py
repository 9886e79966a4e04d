"""The phone's errors, in a module of their own so front ends can catch them with a light import
(``softphone.phone.phone`` pulls in sockets, numpy and the codecs).

Errors::

    PhoneError          an action could not be done; the message says why
    ├── AddressError    what was given to call is not a SIP address, number or user name
    └── NetworkError    the network could not take us there (a host name did not resolve)

The subclasses let a front end say which kind of failure it was (``softphone dial``'s exit
codes); the message is always meant for a person.
"""

from __future__ import annotations

__all__ = ["AddressError", "NetworkError", "PhoneError"]


class PhoneError(Exception):
    """An action could not be done; the message says why in words a person understands."""


class AddressError(PhoneError):
    """What was given to call (or to transfer to) is not a SIP address, a number or a user."""


class NetworkError(PhoneError):
    """The network could not take us where we were going (DNS found no server for a host)."""
