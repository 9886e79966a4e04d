"""Fixtures the TUI tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from softphone.phone.book import Book


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Book]:
    """History, contacts and messages in a database of the test's own."""
    opened = Book.open(tmp_path / "softphone.db")
    yield opened
    opened.close()
