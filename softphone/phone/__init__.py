"""The phone façade every front end (CLI, TUI) uses."""

from __future__ import annotations
