"""What the headless commands print (``softphone dial``, ``listen``, ``play --headless``): a line
a person reads on stderr for every event, and with ``--json`` one JSON object per event on
stdout (the event's ``to_json()``, ``"event"`` naming its kind)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from softphone.phone.events import PhoneEvent

__all__ = ["EXIT_NETWORK", "Reporter"]

# `softphone dial` gave up because the network never answered: the registrar or proxy is down,
# unreachable, or not on that port or transport.
EXIT_NETWORK: Final = 7


class Reporter:
    """Prints events: JSON lines on stdout with --json, and a human line on stderr always."""

    def __init__(
        self, *, as_json: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr
    ) -> None:
        self.as_json = as_json
        self._out, self._err = out, err

    def event(self, event: PhoneEvent) -> None:
        if self.as_json:
            self._out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")
            self._out.flush()
        from softphone.phone.text import describe

        self.say(describe(event))

    def say(self, text: str) -> None:
        if text:
            self._err.write(text + "\n")
            self._err.flush()

    def json(self, payload: dict[str, Any]) -> None:
        if self.as_json:
            self._out.write(json.dumps(payload, separators=(",", ":")) + "\n")
            self._out.flush()
