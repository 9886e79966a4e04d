"""The two places the TUI reaches into Textual's internals, kept together so they are easy to
find when Textual changes. Textual 8.2.8 has no public API for either:

- :func:`terminal_driver`: the app's driver (``App._driver``). Its ``write`` is the one queue
  (Textual's writer thread) that Textual's own screen updates go through, so pictures written
  there as kitty or sixel escape sequences keep their order with the screen updates. Textual's
  public output is cells only.
- :func:`runs_in_context_of`: whether code runs in an app's context (``textual._context``'s
  ``active_app``). Callbacks that another thread queued on the loop run outside it, and widget
  methods need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual._context import active_app

if TYPE_CHECKING:
    from textual.app import App
    from textual.driver import Driver

__all__ = ["runs_in_context_of", "terminal_driver"]


def terminal_driver(app: App[object]) -> Driver | None:
    """The driver that writes to the terminal; None before the app runs or after it ends."""
    return app._driver


def runs_in_context_of(app: App[object]) -> bool:
    """The code running now is in ``app``'s context (Textual's active app is ``app``)."""
    return active_app.get(None) is app
