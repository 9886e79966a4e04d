"""Widgets of the softphone TUI main screen."""
