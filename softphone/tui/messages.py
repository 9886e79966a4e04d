"""Textual messages the TUI posts to itself (attributes go down to widgets, messages come up).

:class:`PhoneEventReceived` carries one phone event from the bridge worker (``bridge.py``) to the
main screen. Statistics arrive often, so a newer ``CallStats`` for the same call replaces one
still waiting in the queue (``can_replace``, as Toolong's ``PendingLines``).
"""

from __future__ import annotations

from textual.message import Message

from softphone.phone import events as pe

__all__ = ["PhoneEventReceived"]


class PhoneEventReceived(Message):
    """The phone published ``event``."""

    def __init__(self, event: pe.PhoneEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, PhoneEventReceived):
            return False
        new, old = self.event, message.event
        return (
            isinstance(new, pe.CallStats)
            and isinstance(old, pe.CallStats)
            and new.call_id == old.call_id
        )
