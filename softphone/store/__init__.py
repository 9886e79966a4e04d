"""Persistent records: accounts, contacts, call history. Filled in by the TUI issue."""

from __future__ import annotations
