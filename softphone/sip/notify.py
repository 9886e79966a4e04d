"""NOTIFY (RFC 6665 §4.1.3), routed by its event package, sans-IO: the one dispatcher.

Parts register the event packages they take in the MethodTable
(``register_event_package``): transfer.py takes ``refer`` inside a call's dialog (the implicit
subscription of RFC 3515), subscription.py takes ``presence``, ``dialog`` and
``message-summary`` in the dialogs of its subscriptions and outside any dialog. This part owns
the NOTIFY method and hands each request to the package's handler for where it came:

- in a call's dialog: the package's ``in_call`` handler;
- in another dialog (a To tag matching no call) or outside any: its ``elsewhere`` handler.

A NOTIFY without an Event header is answered 400 (§8.2.1 makes it mandatory); one whose package
nobody registered, 489 Bad Event with ``Allow-Events`` (§8.2.2); one of a known package where
that package takes none (a ``refer`` NOTIFY outside a call), 481: there is no such
subscription.
"""

from __future__ import annotations

from softphone.sip import events as ev
from softphone.sip.call import Call
from softphone.sip.context import EventPackageSpec, MethodTable, UaContext
from softphone.sip.message import SipRequest
from softphone.sip.transaction import ServerTransaction

__all__ = ["NotifyRouter", "parse_event"]


def parse_event(value: str) -> tuple[str, str | None]:
    """``Event: presence;id=7`` -> ("presence", "7"): the package in lower case (§8.2.1 compares
    it without case in practice; RFC 3515's own examples differ) and the id parameter."""
    package, *params = value.split(";")
    event_id = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "id":
            event_id = param_value.strip()
    return package.strip().lower(), event_id


class NotifyRouter:
    def __init__(self, ctx: UaContext) -> None:
        self._ctx = ctx
        self._methods: MethodTable | None = None

    def install(self, methods: MethodTable) -> None:
        self._methods = methods
        methods.register_method(
            "NOTIFY",
            in_dialog=self._in_call,
            out_of_dialog=self._elsewhere,
            other_dialog=self._elsewhere,
        )

    def _in_call(
        self, req: SipRequest, tx: ServerTransaction, call: Call, now: float
    ) -> list[ev.Event]:
        spec, refused = self._spec(req, tx, now)
        if spec is None:
            return refused
        if spec.in_call is None:
            return self._ctx.reply(tx, req, 481, now, reason="No Such Subscription In This Call")
        return spec.in_call(req, tx, call, now)

    def _elsewhere(self, req: SipRequest, tx: ServerTransaction, now: float) -> list[ev.Event]:
        spec, refused = self._spec(req, tx, now)
        if spec is None:
            return refused
        if spec.elsewhere is None:
            return self._ctx.reply(tx, req, 481, now)
        return spec.elsewhere(req, tx, now)

    def _spec(
        self, req: SipRequest, tx: ServerTransaction, now: float
    ) -> tuple[EventPackageSpec | None, list[ev.Event]]:
        """The package's handlers, or None and the refusal already sent (module docstring)."""
        assert self._methods is not None, "NotifyRouter used before install()"
        value = req.headers.get("Event")
        if value is None or not value.strip():
            return None, self._ctx.reply(tx, req, 400, now, reason="Missing Event Header")
        package, _ = parse_event(value)
        spec = self._methods.event_package(package)
        if spec is None:
            known = ", ".join(self._methods.event_packages)
            return None, self._ctx.reply(tx, req, 489, now, extra=[("Allow-Events", known)])
        return spec, []
