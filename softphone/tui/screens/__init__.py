"""Screens of the softphone TUI (one per module)."""
