"""The Textual interface. It talks only to softphone.phone."""

from __future__ import annotations
