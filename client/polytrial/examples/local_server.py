"""Runs `polytrial serve` as a child process for examples and their tests.

The server is a real process on a real SQLite file, exactly as a user would
start it; the example only picks a free loopback port, waits until the server
answers, and stops it with SIGTERM (graceful) at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polytrial.client import Client, UnavailableError

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
"""How long to wait for the server to answer (it applies migrations first)."""

STOP_TIMEOUT_S = 15.0
"""How long a graceful stop may take before the process is killed."""


class ServerStartError(RuntimeError):
    """The server process exited or did not answer in time."""


def free_port() -> int:
    """A loopback port that was free a moment ago.

    Another process may take it before the server binds it; the server then
    fails to start and says so, which `local_server` reports.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_command() -> list[str]:
    """The command that runs the `polytrial` CLI of this interpreter."""
    script = Path(sys.executable).with_name("polytrial")
    if script.exists():
        return [str(script)]
    found = shutil.which("polytrial")
    if found:
        return [found]
    return [sys.executable, "-c", "from polytrial.server.cli import app; app()"]


@contextmanager
def local_server(db_path: Path, *, log_path: Path) -> Iterator[str]:
    """Starts `polytrial serve` on a SQLite file and yields its address.

    Args:
        db_path: The SQLite database file (created when missing).
        log_path: Where the server's log lines go.

    Raises:
        ServerStartError: the server exited or did not answer in time.
    """
    address = f"127.0.0.1:{free_port()}"
    command = [
        *serve_command(),
        "serve",
        "--db",
        f"sqlite:///{db_path.resolve()}",
        "--address",
        address,
    ]
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
    try:
        _wait_until_serving(process, address, log_path)
        yield address
    finally:
        stop(process)


def _wait_until_serving(
    process: subprocess.Popen[bytes], address: str, log_path: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with Client(address) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerStartError(
                    f"polytrial serve exited with code {process.returncode}; "
                    f"its log is {log_path}:\n{_tail(log_path)}"
                )
            try:
                client.wait_until_ready(timeout_s=0.5)
                return
            except UnavailableError:
                continue
    raise ServerStartError(
        f"polytrial serve did not answer on {address} within "
        f"{STARTUP_TIMEOUT_S:g}s; its log is {log_path}:\n{_tail(log_path)}"
    )


def stop(process: subprocess.Popen[bytes]) -> int:
    """Stops the server gracefully (SIGTERM), killing it only if it hangs.

    Returns:
        The process's exit code.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning(
                "polytrial serve (pid %d) did not stop within %gs; killing it",
                process.pid,
                STOP_TIMEOUT_S,
            )
            process.kill()
            process.wait()
    return process.returncode


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
