"""Presence, busy lamps and message waiting for the phone: :class:`PresenceService` drives the
SIP core's subscriptions (sip/subscription.py) and publications (sip/publication.py) and turns
their events into the phone's (``PresenceChanged``, ``MessageWaiting``, ``OwnPresenceChanged``).

For each account with presence on (its ``presence`` key; by default on when it has a registrar):

- once it is registered (at start for an account without a registrar) our presence is
  published (PUBLISH, PIDF), the account subscribes to its own message summary (RFC 3842), and
  the watched parties are subscribed to (``presence`` and ``dialog``) through the first such
  account;
- a registration that succeeds after a failure starts all of that again, with new dialogs and
  without entity tags: a registrar that restarted lost its subscriptions with its bindings (a
  481 to a refresh does the same for one subscription, in the core);
- subscriptions and the publication last as long as the account's registration (its
  ``expires``) and are refreshed the same way;
- at stop every subscription is removed (Expires: 0) and every publication too; ``wait_closed``
  waits for their answers, bounded like the unregistration.

What we show is the state chosen (``set_presence``; the account's ``presence_state`` at start),
except during a call (established or held): then ``busy`` with RPID's ``on-the-phone``, unless
the choice is ``dnd`` (which also makes the phone refuse calls with 480, as the config's
``do_not_disturb`` does).

A watched party's ``state`` is what its PIDF says (sip/pidf.py); its ``lamp`` is its dialog
state (sip/dialog_info.py), or, when the server gives none (489 to the dialog package),
``busy`` while its PIDF says on-the-phone and ``unknown`` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from softphone.config import Account
from softphone.phone import events as pe
from softphone.phone.api import ContactPresence, OwnPresence, Voicemail
from softphone.phone.call_info import CallInfo
from softphone.phone.errors import AddressError, PhoneError
from softphone.phone.messaging import same_party
from softphone.phone.target import TargetError, normalize_target
from softphone.sip import events as ue
from softphone.sip.account import AccountConfig
from softphone.sip.dialog_info import DialogInfo, lamp
from softphone.sip.errors import LocalProtocolError
from softphone.sip.message_summary import MessageSummary
from softphone.sip.pidf import PIDF_TYPE, PUBLISHED_STATES, PresenceDocument, build_pidf
from softphone.sip.ua import UserAgent
from softphone.sip.uri import SipUri

__all__ = ["AccountPresence", "PresenceService", "presence_settings"]

logger = logging.getLogger(__name__)

TALKING: Final = ("established", "held")
PresenceEvent = ue.SubscriptionChanged | ue.NotificationReceived | ue.PublicationChanged


@dataclass(frozen=True, slots=True)
class AccountPresence:
    """An account's presence settings: whether it publishes and subscribes, and the state it
    starts with."""

    enabled: bool
    initial: pe.PresenceChoice = "available"


def presence_settings(accounts: Iterable[Account]) -> dict[str, AccountPresence]:
    """Each configured account's presence settings (an account without a registrar has presence
    off unless its config turns it on)."""
    return {
        a.name: AccountPresence(enabled=a.presence_enabled, initial=a.presence_state)
        for a in accounts
    }


@dataclass(slots=True)
class _Watched:
    uri: str  # as given to watch()
    target: SipUri
    account: str | None = None  # the account whose subscriptions these are
    presence_sub: str | None = None
    dialog_sub: str | None = None
    state: pe.PresenceStateName = "unknown"
    note: str | None = None
    dialog_lamp: pe.LampName | None = None  # None: no dialog state from the server
    on_the_phone: bool = False  # its PIDF says so

    @property
    def lamp(self) -> pe.LampName:
        if self.dialog_lamp is not None:
            return self.dialog_lamp
        return "busy" if self.on_the_phone else "unknown"

    def record(self) -> ContactPresence:
        return ContactPresence(uri=self.uri, state=self.state, note=self.note, lamp=self.lamp)


class PresenceService:
    """The phone's presence (module docstring). ``bind`` it to the SIP core once started."""

    def __init__(
        self,
        *,
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
        calls: Callable[[], Iterable[CallInfo]],
        settings: Mapping[str, AccountPresence],
    ) -> None:
        self._emit = emit
        self._clock = clock
        self._calls = calls
        self._settings = dict(settings)
        first = next((s for s in self._settings.values() if s.enabled), AccountPresence(True))
        self._chosen: pe.PresenceChoice = first.initial
        self._note: str | None = None
        self._on_the_phone = False
        self._ua: UserAgent | None = None
        self._sink: Callable[[list[ue.Event]], None] = lambda events: None
        self._accounts: dict[str, AccountConfig] = {}
        self._started: set[str] = set()  # accounts whose presence runs
        self._watched: dict[str, _Watched] = {}  # by normalised URI
        self._by_sub: dict[str, tuple[str, str]] = {}  # subscription id -> (kind, key)
        self._voicemail: dict[str, Voicemail] = {}
        self._closing = False
        self._closed = asyncio.Event()

    def bind(
        self,
        ua: UserAgent,
        accounts: Mapping[str, AccountConfig],
        sink: Callable[[list[ue.Event]], None],
    ) -> None:
        """The core to act on, the accounts as resolved, and where the core's events go."""
        self._ua, self._accounts, self._sink = ua, dict(accounts), sink

    # --- what front ends read ---------------------------------------------------------------
    @property
    def do_not_disturb(self) -> bool:
        return self._chosen == "dnd"

    @property
    def own(self) -> OwnPresence:
        return OwnPresence(
            state=self._chosen,
            shown=self._shown,
            note=self._note,
            on_the_phone=self._on_the_phone,
            accounts=tuple(sorted(self._started)),
        )

    @property
    def watched(self) -> dict[str, ContactPresence]:
        return {w.uri: w.record() for w in self._watched.values()}

    @property
    def voicemail(self) -> dict[str, Voicemail]:
        return dict(self._voicemail)

    @property
    def _shown(self) -> pe.PresenceChoice:
        return "busy" if self._on_the_phone and self._chosen != "dnd" else self._chosen

    # --- actions ----------------------------------------------------------------------------
    def set_presence(self, state: str, note: str | None = None) -> None:
        if state not in PUBLISHED_STATES:
            raise PhoneError(f"no presence state {state!r}: use {', '.join(PUBLISHED_STATES)}")
        chosen: pe.PresenceChoice = _choice(state)
        note = note.strip() or None if note is not None else None
        if (chosen, note) == (self._chosen, self._note):
            return
        self._chosen, self._note = chosen, note
        self._publish_all()
        self._tell_own()

    def watch(self, uri: str) -> None:
        target, key = self._key(uri)
        if key in self._watched:
            self._watched[key].uri = uri
            return
        watched = self._watched[key] = _Watched(uri=uri, target=target)
        account = self._watching_account()
        if account is not None:
            self._subscribe_watched(watched, account)

    def unwatch(self, uri: str) -> None:
        try:
            _, key = self._key(uri)
        except AddressError:
            return
        watched = self._watched.pop(key, None)
        if watched is not None:
            self._unsubscribe(watched.presence_sub, watched.dialog_sub)

    def calls_changed(self) -> None:
        """A call changed state: what we show may follow (busy while talking)."""
        on_the_phone = any(c.state in TALKING for c in self._calls())
        if on_the_phone != self._on_the_phone:
            self._on_the_phone = on_the_phone
            if self._started:  # without presence running, nobody sees it
                self._publish_all()
                self._tell_own()

    def accounts_changed(
        self, accounts: Mapping[str, AccountConfig], settings: Mapping[str, AccountPresence]
    ) -> None:
        """The accounts were edited: removed ones stop (their subscriptions and publications
        are removed); the others start on their next registration."""
        ua = self._ua
        for name in list(self._started):
            if name not in accounts or accounts[name] != self._accounts.get(name):
                self._stop_account(name)
        self._accounts, self._settings = dict(accounts), dict(settings)
        if ua is not None:
            for name, acct in accounts.items():
                if acct.registrar is None and self._enabled(name):
                    self.account_ready(name)

    def account_ready(self, account: str, *, again: bool = False) -> None:
        """``account`` is registered (``again``: after a failure), or has no registrar."""
        ua = self._ua
        if ua is None or not self._enabled(account) or self._closing:
            return
        now = self._clock()
        if account in self._started:
            if again:
                self._sink(ua.subscriptions.restart(account, now))
                self._sink(ua.publications.restart(account, now))
            return
        acct = self._accounts.get(account)
        if acct is None:
            return
        self._started.add(account)
        self._publish(acct)
        self._subscribe(acct, acct.aor, "message-summary", ("mwi", account))
        if self._watching_account() == account:
            for watched in self._watched.values():
                if watched.account is None:
                    self._subscribe_watched(watched, account)

    def close(self) -> bool:
        """Remove every subscription and publication; True when answers are awaited."""
        ua = self._ua
        self._closing = True
        if ua is None:
            return False
        now = self._clock()
        for sub_id in list(self._by_sub):
            self._sink(ua.subscriptions.unsubscribe(sub_id, now))
        for account in sorted(self._started):
            self._sink(ua.publications.remove(account, now))
        self._started.clear()
        return not self._settled()

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) for the answers ``close`` awaits; True when all came."""
        if self._settled():
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        except TimeoutError:
            return False
        return True

    # --- the core's events ------------------------------------------------------------------
    def handle(self, event: PresenceEvent) -> None:
        match event:
            case ue.NotificationReceived():
                self._notification(event)
            case ue.SubscriptionChanged():
                self._subscription_changed(event)
            case ue.PublicationChanged(state="failed"):
                self._emit(
                    pe.Notice(
                        level="warning",
                        text=f"presence of {event.account} not published: {event.reason}"
                        + (
                            f" (trying again in {event.retry_in_s:.0f} s)"
                            if event.retry_in_s
                            else ""
                        ),
                    )
                )
            case ue.PublicationChanged():
                logger.info("presence of %s: %s", event.account, event.state)
        if self._closing and self._settled():
            self._closed.set()

    def _notification(self, event: ue.NotificationReceived) -> None:
        document = event.document
        if event.package == "message-summary":
            if isinstance(document, MessageSummary):
                self._message_waiting(event.account, document)
            return
        owner = self._by_sub.get(event.subscription_id or "")
        watched = self._watched.get(owner[1]) if owner is not None else None
        if watched is None:
            return
        before = watched.record()
        if isinstance(document, PresenceDocument):
            watched.state, watched.note = document.summary(), document.note
            watched.on_the_phone = "on-the-phone" in document.activities
        elif document is None and event.package == "presence":
            watched.state, watched.note, watched.on_the_phone = "unknown", None, False
        elif isinstance(document, DialogInfo):
            watched.dialog_lamp = lamp(document.dialogs)
        self._tell(watched, before)

    def _subscription_changed(self, event: ue.SubscriptionChanged) -> None:
        if event.state not in ("terminated", "waiting"):
            return
        logger.info(
            "subscription to %s of %s: %s (%s)",
            event.package,
            event.target,
            event.state,
            event.reason or "no reason given",
        )
        if event.state == "waiting":
            return  # it comes back by itself; what was last known stays shown meanwhile
        owner = self._by_sub.pop(event.subscription_id, None)
        watched = self._watched.get(owner[1]) if owner is not None else None
        if watched is None:
            return
        before = watched.record()
        if event.package == "presence":
            watched.presence_sub = None
            watched.state, watched.note, watched.on_the_phone = "unknown", None, False
        else:
            watched.dialog_sub, watched.dialog_lamp = None, None
        self._tell(watched, before)

    def _message_waiting(self, account: str, summary: MessageSummary) -> None:
        counts = summary.voice
        box = Voicemail(
            account=account,
            waiting=summary.waiting,
            new=counts.new if counts else 0,
            old=counts.old if counts else 0,
            urgent_new=counts.urgent_new if counts else 0,
            urgent_old=counts.urgent_old if counts else 0,
        )
        if self._voicemail.get(account) == box:
            return
        self._voicemail[account] = box
        self._emit(
            pe.MessageWaiting(
                account=account,
                waiting=box.waiting,
                new=box.new,
                old=box.old,
                urgent_new=box.urgent_new,
                urgent_old=box.urgent_old,
            )
        )

    # --- plumbing ---------------------------------------------------------------------------
    def _enabled(self, account: str) -> bool:
        settings = self._settings.get(account)
        return settings is not None and settings.enabled

    def _watching_account(self) -> str | None:
        """The account watched parties are subscribed through: the first that runs presence."""
        return next((name for name in self._accounts if name in self._started), None)

    def _key(self, uri: str) -> tuple[SipUri, str]:
        acct = next(iter(self._accounts.values()), None)
        domain = acct.aor if acct is not None else SipUri(host="invalid")
        try:
            target = normalize_target(uri, domain)
        except TargetError as exc:
            raise AddressError(str(exc)) from None
        for key, watched in self._watched.items():
            if same_party(watched.target, target):
                return target, key
        return target, f"{target.user}@{target.host.lower()}:{target.port or 5060}"

    def _subscribe_watched(self, watched: _Watched, account: str) -> None:
        acct = self._accounts[account]
        key = next(k for k, w in self._watched.items() if w is watched)
        watched.account = account
        watched.presence_sub = self._subscribe(acct, watched.target, "presence", ("watch", key))
        watched.dialog_sub = self._subscribe(acct, watched.target, "dialog", ("watch", key))

    def _subscribe(
        self, acct: AccountConfig, target: SipUri, package: str, owner: tuple[str, str]
    ) -> str | None:
        ua = self._ua
        assert ua is not None
        try:
            sub_id, events = ua.subscriptions.subscribe(
                acct, target, package, now=self._clock(), expires=acct.expires
            )
        except LocalProtocolError as exc:
            self._emit(pe.Notice(level="warning", text=f"cannot watch {target}: {exc}"))
            return None
        self._by_sub[sub_id] = owner
        self._sink(events)
        return sub_id

    def _unsubscribe(self, *sub_ids: str | None) -> None:
        ua = self._ua
        for sub_id in sub_ids:
            if sub_id is not None and ua is not None:
                self._by_sub.pop(sub_id, None)
                self._sink(ua.subscriptions.unsubscribe(sub_id, self._clock()))

    def _stop_account(self, account: str) -> None:
        ua = self._ua
        self._started.discard(account)
        if ua is None:
            return
        now = self._clock()
        for sub_id in ua.subscriptions.of_account(account):
            self._by_sub.pop(sub_id, None)
            self._sink(ua.subscriptions.unsubscribe(sub_id, now))
        self._sink(ua.publications.remove(account, now))
        for watched in self._watched.values():
            if watched.account == account:
                watched.account = watched.presence_sub = watched.dialog_sub = None

    def _publish_all(self) -> None:
        for account in sorted(self._started):
            acct = self._accounts.get(account)
            if acct is not None:
                self._publish(acct)

    def _publish(self, acct: AccountConfig) -> None:
        ua = self._ua
        assert ua is not None
        ident = re.sub(r"[^A-Za-z0-9_.-]", "-", acct.name)
        body = build_pidf(
            str(acct.aor),
            self._shown,
            note=self._note,
            on_the_phone=self._on_the_phone,
            tuple_id=f"t-{ident}",
            person_id=f"p-{ident}",
            contact=str(acct.aor),
        )
        try:
            now = self._clock()
            self._sink(
                ua.publications.publish(acct, body, PIDF_TYPE, now=now, expires=acct.expires)
            )
        except LocalProtocolError as exc:
            self._emit(pe.Notice(level="warning", text=f"cannot publish presence: {exc}"))

    def _settled(self) -> bool:
        ua = self._ua
        return ua is None or (ua.subscriptions.unsubscribing == 0 and ua.publications.removing == 0)

    def _tell(self, watched: _Watched, before: ContactPresence) -> None:
        now = watched.record()
        if now != before:
            self._emit(
                pe.PresenceChanged(uri=now.uri, state=now.state, note=now.note, lamp=now.lamp)
            )

    def _tell_own(self) -> None:
        self._emit(
            pe.OwnPresenceChanged(
                state=self._chosen,
                shown=self._shown,
                note=self._note,
                on_the_phone=self._on_the_phone,
            )
        )


def _choice(state: str) -> pe.PresenceChoice:
    choices: dict[str, pe.PresenceChoice] = {s: s for s in PUBLISHED_STATES}
    return choices[state]
