"""The store's errors, apart from the modules that raise them so that each can import them.

Errors::

    StoreError              the store cannot do what was asked; the message says why
    └── ContactError        a contact failed validation, or the one asked for does not exist
"""

from __future__ import annotations

__all__ = ["ContactError", "StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked; the message is meant for a person."""


class ContactError(StoreError):
    """A contact failed validation, or the one asked for does not exist."""
