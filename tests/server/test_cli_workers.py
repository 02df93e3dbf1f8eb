"""`polytrial serve --workers N`: N processes on one address act as one service."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polytrial_testkit import connect, experiment
from process_kit import exited, wait_for

pytestmark = pytest.mark.timeout(120)

_SCRIPT = Path(sys.executable).with_name("polytrial")
_LISTENING = re.compile(r"listening on [^\s]+:(\d+)")


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def test_two_workers_share_the_port_and_stop_together(
    sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    command = [str(_SCRIPT), "serve", "--db", sqlite_url]
    command += ["--address", "127.0.0.1:0", "--workers", "2"]
    with log.open("w") as sink:
        parent = subprocess.Popen(command, stderr=sink)
    try:
        wait_for(
            lambda: _LISTENING.search(log.read_text()), "never listened", timeout_s=30
        )
        match = _LISTENING.search(log.read_text())
        assert match is not None
        port = int(match.group(1))
        wait_for(
            lambda: len(_children(parent.pid)) == 1, "no second worker", timeout_s=30
        )
        (child,) = _children(parent.pid)
        wait_for(
            lambda: len(_LISTENING.findall(log.read_text())) == 2,
            "the second worker never listened",
            timeout_s=30,
        )

        # Separate channels are separate connections, spread over the workers.
        apis = [connect(port) for _ in range(6)]
        apis[0].create(experiment("workers"))
        indices = [t.index for api in apis for t in api.suggest("workers", 5)]
        for api in apis:
            api.close()
        assert sorted(indices) == list(range(30))
    finally:
        parent.terminate()
        code = parent.wait(timeout=30)
    assert code == 0
    assert not Path(f"/proc/{child}").exists()


def _start_two_workers(db_url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`serve --workers 2` on a free port: the parent and its port."""
    command = [str(_SCRIPT), "serve", "--db", db_url, "--address", "127.0.0.1:0"]
    command += ["--workers", "2", "--grace-s", "1"]
    with log.open("w") as sink:
        parent = subprocess.Popen(command, stderr=sink)
    wait_for(
        lambda: len(_LISTENING.findall(log.read_text())) == 2,
        "the two workers never listened",
        timeout_s=30,
    )
    match = _LISTENING.search(log.read_text())
    assert match is not None
    return parent, int(match.group(1))


def test_workers_exit_when_their_parent_is_killed(
    sqlite_url: str, tmp_path: Path
) -> None:
    parent, port = _start_two_workers(sqlite_url, tmp_path / "serve.log")
    children = _children(parent.pid)
    try:
        assert len(children) == 1
        parent.kill()  # SIGKILL: the parent runs no shutdown code
        parent.wait(timeout=30)

        deadline = time.monotonic() + 20
        while not all(exited(child) for child in children):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            time.sleep(0.1)
    finally:
        for child in children:
            if not exited(child):
                os.kill(child, signal.SIGKILL)

    # Nothing listens any more: a plain bind (no SO_REUSEPORT) takes the port.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_a_port_held_by_workers_is_refused_before_any_database_is_made(
    sqlite_url: str, tmp_path: Path
) -> None:
    parent, port = _start_two_workers(sqlite_url, tmp_path / "serve.log")
    try:
        for workers in ("1", "2"):
            other = tmp_path / f"other-{workers}.db"
            # SO_REUSEPORT alone would let `--workers 2` share the port, and
            # clients would be spread over two databases.
            command = [str(_SCRIPT), "serve", "--db", str(other), "--address"]
            command += [f"127.0.0.1:{port}", "--workers", workers]
            refused = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert refused.returncode == 1, refused.stderr
            assert "--address" in refused.stderr
            assert "the port is in use" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert not other.exists()
    finally:
        parent.terminate()
        assert parent.wait(timeout=30) == 0
