"""The one consumer of the phone's event stream: a worker that posts Textual messages.

``start_bridge(target, phone)`` runs :func:`pump_events` as a worker in group ``"bridge"``. It
never finishes by itself (the phone's stream is endless), so tests never wait for it; it is
cancelled with its node when the app exits.
"""

from __future__ import annotations

from textual.dom import DOMNode
from textual.worker import Worker

from softphone.phone.api import PhoneApi
from softphone.tui.messages import PhoneEventReceived

__all__ = ["BRIDGE_GROUP", "pump_events", "start_bridge"]

BRIDGE_GROUP = "bridge"


async def pump_events(phone: PhoneApi, target: DOMNode) -> None:
    """Post every phone event to ``target`` as :class:`PhoneEventReceived`, forever."""
    async for event in phone.events():
        target.post_message(PhoneEventReceived(event))


def start_bridge(target: DOMNode, phone: PhoneApi) -> Worker[None]:
    """Run :func:`pump_events` as a worker owned by ``target`` (a screen or the app)."""
    return target.run_worker(
        pump_events(phone, target),
        group=BRIDGE_GROUP,
        name="bridge",
        exclusive=True,
        exit_on_error=True,
    )
