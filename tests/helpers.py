"""Small helpers for assertions shared by several test modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` with its bytes: to assert that nothing was written."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def wait_for(condition: Callable[[], T], timeout: float = 60.0, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail after
    ``timeout`` seconds (a deadline, not a sleep: the test goes on as soon as it can)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
