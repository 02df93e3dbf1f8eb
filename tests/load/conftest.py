"""Fixtures of the load tests: replicas of `polytrial serve` and client processes.

`replicas(db_url, n)` starts n real server processes on one database.
`run_clients(jobs)` starts one real client process per job
(`client_worker.py`), opens a shared start gate once all of them are ready
(then calls `on_start`, if given), and returns what each printed; a worker
that failed fails the test with its message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).with_name("client_worker.py")
Job = dict[str, Any]


@pytest.fixture
def replicas(
    serve_process: Callable[..., Any],
) -> Callable[[str, int], list[str]]:
    """Starts n `polytrial serve` processes on `db_url`; returns their addresses."""

    def start(db_url: str, count: int) -> list[str]:
        # INFO: the fixture reads the bound port from the "listening" line.
        servers = [serve_process(db_url, "INFO") for _ in range(count)]
        return [f"127.0.0.1:{server.port}" for server in servers]

    return start


@pytest.fixture
def run_clients(tmp_path: Path) -> Iterator[Callable[..., list[Job]]]:
    """Runs client processes together and returns their JSON results."""
    started: list[subprocess.Popen[str]] = []

    def run(
        jobs: list[Job],
        timeout_s: float = 240.0,
        on_start: Callable[[], None] | None = None,
    ) -> list[Job]:
        gate = tmp_path / f"gate-{len(started)}"
        gate.mkdir()
        processes = []
        for job in jobs:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    json.dumps({**job, "barrier": str(gate)}),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            started.append(process)
            processes.append(process)

        # Open the gate once every worker has imported and connected.
        deadline = time.monotonic() + timeout_s
        while len(list(gate.glob("ready-*"))) < len(jobs):
            if any(p.poll() not in (None, 0) for p in processes):
                break
            assert time.monotonic() < deadline, "client processes never got ready"
            time.sleep(0.02)
        (gate / "go").touch()
        if on_start is not None:
            on_start()

        results = []
        for process in processes:
            out, err = process.communicate(
                timeout=max(1.0, deadline - time.monotonic())
            )
            lines = out.strip().splitlines()
            result = json.loads(lines[-1]) if lines else {"error": err[-2000:]}
            assert process.returncode == 0 and "error" not in result, (
                f"client process failed: {result.get('error')}\n{err[-2000:]}"
            )
            results.append(result)
        return results

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
