"""Fixtures of the orchestration tests: servers and runner processes.

`server` is an in-process Polytrial server on a SQLite temp file with a
Python client; `runners` starts runner processes (the Python example runner,
or `fault_runner.py` in one of its modes) and `servers` starts `polytrial
serve` subprocesses, all stopped after the test.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from polytrial.client import Client, MetricSource, RangeParameter
from polytrial.server.app import PolytrialServer, create_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_RUNNER = ROOT / "runners/python/examples/benchmark_runner.py"
FAULT_RUNNER = Path(__file__).with_name("fault_runner.py")
POLYTRIAL = Path(sys.executable).with_name("polytrial")
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
# Short leases let a restarted server resume without a long wait.
LEASE_S = 2.0


class Process:
    """A child process that prints `listening on HOST:PORT`; output is kept."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.output: list[str] = []
        self._address: str | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            found = _LISTENING.search(line)
            if found is not None and self._address is None:
                self._address = f"127.0.0.1:{found.group(2)}"
                self._ready.set()
        self._ready.set()

    @property
    def address(self) -> str:
        """host:port it listens on (waits for it to start)."""
        if not self._ready.wait(timeout=60) or self._address is None:
            raise AssertionError(
                f"{self.command} did not start:\n" + "".join(self.output)
            )
        return self._address

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._close()

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._close()

    def _close(self) -> None:
        # The reader ends at EOF; then the pipe can be closed without a race.
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def runners() -> Iterator[Callable[..., Process]]:
    """Starts runner processes: `runners("example", job_s=...)` or a fault mode."""
    started: list[Process] = []

    def start(kind: str, *, job_s: float = 0.3) -> Process:
        if kind == "example":
            command = [
                sys.executable,
                str(EXAMPLE_RUNNER),
                "--job-seconds",
                str(job_s),
                "--staging-seconds",
                "0",
            ]
        else:
            command = [sys.executable, str(FAULT_RUNNER), "--mode", kind]
        process = Process([*command, "--address", "127.0.0.1:0"])
        started.append(process)
        assert process.address
        return process

    yield start
    for process in started:
        process.terminate()


@pytest.fixture
def servers() -> Iterator[Callable[[str], Process]]:
    """Starts `polytrial serve` subprocesses on a database URL."""
    started: list[Process] = []

    def start(db_url: str) -> Process:
        command = (
            [str(POLYTRIAL)]
            if POLYTRIAL.exists()
            else [
                sys.executable,
                "-m",
                "polytrial.server.cli",
            ]
        )
        process = Process(
            [
                *command,
                "serve",
                "--db",
                db_url,
                "--address",
                "127.0.0.1:0",
                "--orchestration-lease-s",
                str(LEASE_S),
            ]
        )
        started.append(process)
        assert process.address
        return process

    yield start
    for process in started:
        process.kill()


@dataclass
class Served:
    """An in-process server and a client of it."""

    server: PolytrialServer
    client: Client


def serve_in_process(db_url: str) -> Served:
    """Starts a server on `db_url` in this process (stop it with `stop`)."""
    server, port = create_server(
        db_url, "127.0.0.1:0", max_workers=8, orchestration_lease_s=LEASE_S
    )
    server.start()
    client = Client(f"127.0.0.1:{port}")
    client.wait_until_ready()
    return Served(server, client)


def stop(served: Served) -> None:
    """Closes the client and stops the server."""
    served.client.close()
    served.server.stop(grace_s=1.0)


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Served]:
    """An in-process server on a SQLite temp file."""
    served = serve_in_process(sqlite_url)
    try:
        yield served
    finally:
        stop(served)


def create_hartmann6(
    client: Client, experiment_id: str, runner_address: str | None
) -> None:
    """A Sobol-only Hartmann6 experiment whose objective comes from its runner."""
    client.create_experiment(
        experiment_id,
        parameters=[RangeParameter(f"x{i}", 0.0, 1.0) for i in range(1, 7)],
        objectives={"hartmann6": "minimize"},
        generation_strategy="sobol",
        runner=runner_address,
        metric_sources=(
            [MetricSource("hartmann6", "runner")] if runner_address else []
        ),
    )
