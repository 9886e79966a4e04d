"""asyncio drivers that pump the sans-IO cores. The only home of sockets and loop timers."""

from __future__ import annotations
