"""Helpers for tests that start `polytrial serve` processes and watch them end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def wait_for(condition: Callable[[], object], what: str, *, timeout_s: float) -> None:
    """Polls `condition` until it holds; fails with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def exited(pid: int) -> bool:
    """Whether `pid` ended; a zombie counts (its new parent may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
