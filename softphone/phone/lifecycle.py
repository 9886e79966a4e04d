"""The phone's SIP side from ``start()`` to ``stop()``: :class:`Lifecycle` resolves the
accounts for the SIP core (network.py), builds the user agent, its transport and what reads its
events (sip_events.py), listens and registers; applies another set of accounts while the phone
runs; and stops: the phone's own tasks, every call, subscriptions and publications, then the
registrations, waiting a few seconds for the answers, then the sockets.

It holds what the phone has only from ``start()`` on (:class:`Running`), the accounts as the
core sees them, the address the phone advertises, each account's media encryption and what it
trusts over TLS. The Phone (phone.py) builds it from its own parts and hands ``start``,
``apply_accounts`` and ``stop`` to it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from softphone.config import Account, Config, default_data_dir
from softphone.media.codecs import unavailable_reasons
from softphone.phone import events as pe
from softphone.phone.call_audio import CallAudio
from softphone.phone.calls import Calls
from softphone.phone.errors import PhoneError
from softphone.phone.ice import CallIce
from softphone.phone.messaging import Messaging
from softphone.phone.nat import PublicMedia
from softphone.phone.network import (
    account_config,
    add_tls_listener,
    advertised_host,
    alternate_host,
    listen,
    local_account,
    stable_instance_id,
    unresolved_account,
)
from softphone.phone.offer_answer import OfferAnswer
from softphone.phone.presence import PresenceService, presence_settings
from softphone.phone.registrations import Registrations
from softphone.phone.sip_events import PhoneActions, SipEvents
from softphone.phone.tasks import TaskSet
from softphone.phone.tls import ClientTls, client_tls, listener_context
from softphone.phone.trace import SipTrace
from softphone.sdp import MediaEncryption
from softphone.sip.account import AccountConfig
from softphone.sip.address import Address
from softphone.sip.errors import LocalProtocolError
from softphone.sip.registration import registrar_hop
from softphone.sip.timers import TimerConfig
from softphone.sip.ua import UserAgent
from softphone.transport.resolver import DnsBackend
from softphone.transport.sip import SipTransport

__all__ = ["Lifecycle", "Running"]

logger = logging.getLogger(__name__)

UNREGISTER_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Running:
    """What the phone has from ``start()`` on."""

    ua: UserAgent
    transport: SipTransport
    sip: SipEvents


class Lifecycle:
    """Starts, reconfigures and stops the SIP side of ``phone``, whose parts it is given."""

    def __init__(
        self,
        config: Config,
        *,
        phone: PhoneActions,
        bind_host: str,
        sip_port: int | None,
        tls_port: int | None,
        rng: random.Random,
        dns: DnsBackend,
        timers: TimerConfig,
        instance_id: str | None,
        data_dir: Path | None,
        sdp: OfferAnswer,
        audio: CallAudio,
        calls: Calls,
        ice: CallIce,
        public_media: PublicMedia,
        registrations: Registrations,
        presence: PresenceService,
        messaging: Messaging,
        tasks: TaskSet,
        trace: SipTrace,
        emit: Callable[[pe.PhoneEvent], None],
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._phone = phone
        self._bind_host = bind_host
        self._sip_port = sip_port
        self._tls_port = tls_port
        self._rng = rng
        self._dns = dns
        self._timers = timers
        self._instance_id = instance_id
        self._data_dir = data_dir
        self._sdp = sdp
        self._audio = audio
        self._calls = calls
        self._ice = ice
        self._public_media = public_media
        self._registrations = registrations
        self._presence = presence
        self._messaging = messaging
        self._tasks = tasks
        self._trace = trace
        self._emit = emit
        self._now = clock
        self.encryption: dict[str, MediaEncryption] = {
            a.name: MediaEncryption(a.media_encryption) for a in config.accounts
        }
        self.running: Running | None = None
        self._stopped = False
        self.accounts: dict[str, AccountConfig] = {}
        self.advertised: str = "127.0.0.1"
        self._client_tls = ClientTls()

    def require(self) -> Running:
        if self.running is None:
            raise PhoneError("the phone is not started")
        return self.running

    async def start(self) -> None:
        accounts = self._config.accounts or (local_account(self._bind_host),)
        self._public_media.configure(accounts)
        self._ice.configure(accounts)
        if self._instance_id is None:
            self._instance_id = await asyncio.to_thread(
                stable_instance_id, self._data_dir or default_data_dir()
            )
        resolved = [await self._account_config(a) for a in accounts]
        self.accounts = {a.name: a for a in resolved}
        self._client_tls = client_tls(accounts, resolved)
        self.advertised = self._sdp.address = advertised_host(self._bind_host, resolved)
        self._sdp.alternate_address = alternate_host(self._bind_host, self.advertised)
        self._audio.advertised = self.advertised
        ua = UserAgent(
            accounts=resolved,
            rng=self._rng,
            timers=self._timers,
            # The product name only, unless configured: an exact version tells scanners which
            # known bugs to try.
            user_agent=self._config.user_agent,
        )
        for name, reason in unavailable_reasons().items():
            if name in {c.lower() for c in self._config.codecs}:
                self._emit(pe.Notice(level="warning", text=f"{name} is not offered: {reason}"))
        server = await listener_context(
            accounts, self._data_dir or default_data_dir(), self.advertised, self._emit
        )
        transport = SipTransport(
            ua,
            self._on_ua_events,
            tls_context=self._tls_context,
            tls_server_context=server,
            tap=self._trace_message,
        )
        sip = SipEvents(
            phone=self._phone,
            ua=ua,
            transport=transport,
            calls=self._calls,
            registrations=self._registrations,
            accounts=self.accounts,
            tasks=self._tasks,
            emit=self._emit,
            clock=self._now,
            do_not_disturb=self._config.do_not_disturb,
            messaging=self._messaging,
            presence=self._presence,
            config=self._config,
            rng=self._rng,
        )
        self._presence.bind(ua, self.accounts, sip.handle)
        self.running = Running(ua=ua, transport=transport, sip=sip)
        await listen(
            transport,
            ua,
            accounts=resolved,
            bind_host=self._bind_host,
            port=self._sip_port,
            advertised=self.advertised,
            emit=self._emit,
            tls=server is not None,
            tls_port=self._tls_port,
        )
        for acct in resolved:
            self._registrations.add(acct)
            if acct.registrar is not None:
                ua.register(acct.name, self._now())
                self._registering(acct)
            else:
                self._presence.account_ready(acct.name)
        transport.pump()

    async def apply_accounts(self, accounts: Sequence[Account]) -> None:
        """Phone.apply_accounts: an account whose server cannot be looked up fails its
        registration (RegistrationFailed), and the others are applied all the same."""
        running, wanted = self.require(), tuple(accounts) or (local_account(self._bind_host),)
        self.encryption = {a.name: MediaEncryption(a.media_encryption) for a in wanted}
        running.sip.routing.configure(wanted)
        resolved: list[AccountConfig] = []
        unresolved: dict[str, str] = {}
        for acct in wanted:
            try:
                resolved.append(await self._account_config(acct))
            except PhoneError as exc:
                unresolved[acct.name] = str(exc)
        if not resolved:
            resolved = [await self._account_config(local_account(self._bind_host))]
        await add_tls_listener(
            running.transport,
            running.ua,
            accounts=wanted,
            data_dir=self._data_dir or default_data_dir(),
            bind_host=self._bind_host,
            sip_port=self._sip_port,
            tls_port=self._tls_port,
            advertised=self.advertised,
            emit=self._emit,
        )
        self._client_tls = client_tls(wanted, resolved)
        self._public_media.configure(wanted)
        self._ice.configure(wanted)
        hops_before = {a.outbound for a in self.accounts.values()}
        changes = running.ua.update_accounts(resolved, self._now())
        self.accounts.clear()  # the dict SipEvents reads: changed in place
        self.accounts.update((a.name, a) for a in resolved)
        by_name = {a.name: a for a in resolved}
        self._registrations.set_accounts(
            [by_name.get(a.name) or unresolved_account(a) for a in wanted]
        )
        for hop in hops_before - {a.outbound for a in resolved}:
            if hop is not None:
                running.transport.cancel_keep_alive(hop)
        for name in changes.registering:
            self._registering(self.accounts[name])
        self._presence.accounts_changed(self.accounts, presence_settings(wanted))
        for name, reason in unresolved.items():
            self._registrations.failed(name, reason=reason, retry_in_s=None)
            self._emit(pe.RegistrationFailed(account=name, status=0, reason=reason))
        running.transport.pump()
        logger.info(
            "accounts applied: added %s, removed %s, changed %s, could not resolve %s",
            changes.added,
            changes.removed,
            changes.changed,
            tuple(unresolved),
        )

    async def _account_config(self, acct: Account) -> AccountConfig:
        return await account_config(
            acct, dns=self._dns, rng=self._rng, instance_id=self._instance_id
        )

    def _registering(self, acct: AccountConfig) -> None:
        hop = registrar_hop(acct)
        self._registrations.registering(acct.name, server=hop.host_port)
        self._emit(pe.Registering(account=acct.name, server=hop.host_port, transport=hop.transport))

    async def stop(self) -> None:
        """Phone.stop; a second call, or one before ``start``, does nothing."""
        running = self.running
        if running is None or self._stopped:
            return
        self._stopped = True
        await self._tasks.close()
        ua = running.ua
        for call_id in list(ua.active_calls()):
            try:
                running.sip.handle(ua.hangup(call_id, self._now()))
            except LocalProtocolError:
                pass
        self._presence.close()  # Expires: 0 for subscriptions and publications (RFC 6665, 3903)
        self._registrations.expect_unregister(
            name for name in self.accounts if ua.unregister(name, self._now())
        )
        running.transport.pump()
        left, presence_done, unanswered = await asyncio.gather(
            self._registrations.wait_unregistered(UNREGISTER_TIMEOUT_S),
            self._presence.wait_closed(UNREGISTER_TIMEOUT_S),
            self._calls.wait_ended(UNREGISTER_TIMEOUT_S),
        )
        if left:
            logger.warning("unregister not confirmed for %s", ", ".join(left))
        if not presence_done:
            logger.warning("removal of subscriptions and publications not confirmed")
        for info in unanswered:
            # The far end never answered our BYE or CANCEL: the call is over for us all the
            # same (RFC 3261 §15.1.1), and whoever reads the events learns how it ended.
            answered = info.established_at is not None
            self._calls.finish(
                info,
                200 if answered else 487,
                "hung up: the phone stopped (the far end did not confirm)",
            )
        self._calls.close_all()
        await self._calls.wait_closed()
        self._audio.close()
        await running.transport.close()

    def _on_ua_events(self, events: list[object]) -> None:
        self.require().sip.handle(events)

    def _trace_message(
        self, direction: Literal["sent", "received"], data: bytes, peer: Address
    ) -> None:
        running = self.running
        listeners = running.transport.listeners() if running is not None else []
        port = next((a.port for a in listeners if a.transport == peer.transport), None)
        local = f"{peer.transport}:{self.advertised}" + (f":{port}" if port is not None else "")
        self._trace.add(direction, data, local, f"{peer.transport}:{peer.host}:{peer.port}")

    def _tls_context(self, address: Address) -> ssl.SSLContext:
        """Verification always on; what an account trusts and shows is for its own servers
        (phone/tls.py)."""
        return self._client_tls.context(address)
