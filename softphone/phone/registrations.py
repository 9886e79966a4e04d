"""Each account's registration as front ends see it (:class:`~softphone.phone.api.Registration`
records), and the two waits of the phone's lifecycle: ``wait_registered`` (every account with a
registrar registered or failed once) and ``stop`` (the unregistrations were confirmed).

The accounts may change while the phone runs (:meth:`Registrations.set_accounts`): a removed
account's record goes at once, and a late event about it (its ``Unregistered``) changes nothing
here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from softphone.phone.api import Registration, RegistrationState
from softphone.sip.account import AccountConfig

__all__ = ["Registrations"]


class Registrations:
    """The accounts' registration states, in the accounts' order."""

    def __init__(self) -> None:
        self._records: dict[str, Registration] = {}
        self._accounts: dict[str, AccountConfig] = {}
        self._registered: dict[str, bool] = {}
        self._settled: dict[str, asyncio.Event] = {}
        self._pending_unregister: set[str] = set()
        self._unregistered = asyncio.Event()

    def records(self) -> dict[str, Registration]:
        """A copy: account name -> its registration now."""
        return dict(self._records)

    def add(self, account: AccountConfig) -> None:
        """A new account: not registered; one with a registrar is waited for."""
        self._accounts[account.name] = account
        self._registered.pop(account.name, None)
        self._set(account.name, "none")
        if account.registrar is not None:
            self._settled[account.name] = asyncio.Event()

    def set_accounts(self, accounts: Sequence[AccountConfig]) -> None:
        """The accounts are now ``accounts``: removed ones are forgotten, new ones added, and
        changed ones start over (not registered: their next Registered is a first one, so that
        the keep-alive goes to their new hop)."""
        wanted = {a.name: a for a in accounts}
        for name in [n for n in self._accounts if n not in wanted]:
            del self._accounts[name]
            self._records.pop(name, None)
            self._registered.pop(name, None)
            settled = self._settled.pop(name, None)
            if settled is not None:
                settled.set()  # nobody waits for an account that is gone
        for acct in accounts:
            if self._accounts.get(acct.name) != acct:
                self.add(acct)
        self._records = {name: self._records[name] for name in wanted}

    def registering(self, account: str, *, server: str | None = None) -> None:
        if account in self._accounts:
            self._set(account, "registering", server=server)

    def no_answer(self, account: str) -> None:
        """The registrar has not answered the REGISTER at all yet."""
        record = self._records.get(account)
        if record is not None and record.state == "registering":
            self._set(account, "registering", server=record.server, no_answer=True)

    def registered(self, account: str, *, expires_at: float) -> bool:
        """The registrar accepted the binding; True the first time (or after a failure)."""
        if account not in self._accounts:
            return False
        first = not self._registered.get(account)
        self._registered[account] = True
        self._settle(account)
        self._set(account, "registered", expires_at=expires_at)
        return first

    def failed(self, account: str, *, reason: str, retry_in_s: float | None) -> None:
        if account not in self._accounts:
            return
        self._registered[account] = False
        self._settle(account)
        self._set(account, "failed", reason=reason, retry_in_s=retry_in_s)

    def unregistered(self, account: str) -> None:
        self._pending_unregister.discard(account)
        if not self._pending_unregister:
            self._unregistered.set()
        if account in self._accounts:
            self._registered[account] = False
            self._set(account, "none")

    async def wait_settled(self, timeout_s: float) -> dict[str, bool]:
        """Wait (at most ``timeout_s``) until every account with a registrar has registered or
        failed once; returns which are registered."""
        try:
            async with asyncio.timeout(timeout_s):
                for settled in list(self._settled.values()):
                    await settled.wait()
        except TimeoutError:
            pass
        return dict(self._registered)

    def expect_unregister(self, accounts: Iterable[str]) -> None:
        """These accounts were sent an unregistration; :meth:`wait_unregistered` waits for them."""
        self._pending_unregister = set(accounts)

    async def wait_unregistered(self, timeout_s: float) -> set[str]:
        """Wait (at most ``timeout_s``) for the expected unregistrations; returns the accounts
        whose unregistration was not confirmed."""
        if self._pending_unregister:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._unregistered.wait()
            except TimeoutError:
                pass
        return set(self._pending_unregister)

    def _settle(self, account: str) -> None:
        settled = self._settled.get(account)
        if settled is not None:
            settled.set()

    def _set(
        self,
        account: str,
        state: RegistrationState,
        *,
        expires_at: float | None = None,
        reason: str | None = None,
        retry_in_s: float | None = None,
        server: str | None = None,
        no_answer: bool = False,
    ) -> None:
        acct = self._accounts[account]
        self._records[account] = Registration(
            account=account,
            aor=str(acct.aor),
            transport=acct.transport,
            state=state,
            expires_at=expires_at,
            reason=reason,
            retry_in_s=retry_in_s,
            server=server,
            no_answer=no_answer,
        )
