"""`polytrial serve` stops on any number of signals, however close together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from process_kit import exited, wait_for

pytestmark = pytest.mark.timeout(600)

_SCRIPT = Path(sys.executable).with_name("polytrial")
_LISTENING = re.compile(r"listening on [^\s]+:(\d+)")
# Each round starts a fresh server; the deadlock this guards against struck
# about one round in five (a group) or in sixteen (a single server).
_ROUNDS = 10
# Far above a clean stop (--grace-s 1), far below "forever".
_STOP_BOUND_S = 30.0


def _workers_of(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def _serve_stops_on_two_signals(
    db_url: str, log: Path, workers: int, send: Callable[[int, int], None]
) -> None:
    """Starts a server in its own session, sends SIGINT then SIGTERM, waits."""
    command = [str(_SCRIPT), "serve", "--db", db_url, "--address", "127.0.0.1:0"]
    command += ["--workers", str(workers), "--grace-s", "1"]
    with log.open("w") as sink:
        parent = subprocess.Popen(command, stderr=sink, start_new_session=True)
    children: list[int] = []
    try:
        wait_for(
            lambda: len(_LISTENING.findall(log.read_text())) == workers,
            f"never listened:\n{log.read_text()}",
            timeout_s=60,
        )
        children = _workers_of(parent.pid)

        # Back to back, as Ctrl-C on a terminal followed by a stop from a
        # supervisor, or the parent forwarding SIGTERM to its workers.
        send(parent.pid, signal.SIGINT)
        send(parent.pid, signal.SIGTERM)

        try:
            code = parent.wait(timeout=_STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {_STOP_BOUND_S} s later:\n{log.read_text()}")
        assert code == 0, log.read_text()
        wait_for(
            lambda: all(exited(child) for child in children),
            "a worker outlived it",
            timeout_s=60,
        )
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(timeout=30)
        for child in children:
            if not exited(child):
                os.kill(child, signal.SIGKILL)


def test_sigint_then_sigterm_stop_a_single_server_every_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    for round_index in range(_ROUNDS):
        _serve_stops_on_two_signals(
            sqlite_url, tmp_path / f"serve-{round_index}.log", 1, os.kill
        )


def test_sigint_then_sigterm_to_the_group_stop_two_workers_every_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Each worker gets SIGINT and SIGTERM from the terminal, and SIGTERM once
    # more from its parent.
    for round_index in range(_ROUNDS):
        _serve_stops_on_two_signals(
            sqlite_url, tmp_path / f"serve-{round_index}.log", 2, os.killpg
        )


def test_a_burst_of_signals_stops_a_server(sqlite_url: str, tmp_path: Path) -> None:
    def burst(pid: int, signum: int) -> None:
        for _ in range(20):
            os.kill(pid, signum)

    _serve_stops_on_two_signals(sqlite_url, tmp_path / "serve.log", 1, burst)
