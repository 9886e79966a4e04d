"""How a headless command stops: Ctrl-C and SIGTERM set a :class:`Stop` (:func:`interrupts`),
which wakes the command so that it hangs up, unregisters or tears down cleanly; and the tasks a
command starts for a wait end with the wait (:func:`end_tasks`). The phone commands (cli.py) and
``play`` (cli_play.py) share them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from softphone.report import ExitCode

__all__ = ["Stop", "end_tasks", "interrupts"]


class Stop:
    """Set by Ctrl-C / SIGTERM (:func:`interrupts`): ``event`` wakes the command, ``signal``
    says which one came first."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: signal.Signals | None = None

    def set(self, sig: signal.Signals) -> None:
        if self.signal is None:
            self.signal = sig
        self.event.set()

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.TERMINATED if self.signal == signal.SIGTERM else ExitCode.INTERRUPTED


@contextlib.contextmanager
def interrupts(stop: Stop) -> Iterator[None]:
    """Ctrl-C / SIGTERM set ``stop`` so the command hangs up and unregisters cleanly."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def end_tasks(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the tasks still running and wait until every one has ended: no task started for
    a wait outlives it."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
