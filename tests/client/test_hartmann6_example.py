"""The README's demo: Hartmann6 through a real `polytrial serve` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from polytrial.client import Client, TrialStatus
from polytrial.examples.hartmann6 import (
    HARTMANN6_ARGMIN,
    HARTMANN6_MINIMUM,
    hartmann6,
)
from polytrial.server.app import create_server

pytestmark = pytest.mark.timeout(180)


def test_hartmann6_has_its_published_minimum() -> None:
    assert hartmann6(HARTMANN6_ARGMIN) == pytest.approx(HARTMANN6_MINIMUM, abs=1e-5)
    assert hartmann6([0.5] * 6) > HARTMANN6_MINIMUM
    with pytest.raises(ValueError, match="6 coordinates"):
        hartmann6([0.5] * 5)


def _run_demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "polytrial.examples.hartmann6", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_demo_starts_a_server_optimizes_and_leaves_the_data_on_disk(
    tmp_path: Path,
) -> None:
    result = _run_demo("--trials", "4", "--experiment-id", "demo", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Best arm" in result.stdout
    assert "regret" in result.stdout
    log = (tmp_path / ".polytrial" / "server.log").read_text()
    assert "received SIGTERM" in log and "stopped" in log

    # The stopped server's file holds the run: open it with a fresh server.
    db_path = tmp_path / ".polytrial" / "demo.db"
    server, port = create_server(f"sqlite:///{db_path}")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}") as client:
            trials = list(client.list_trials("demo"))
            best = client.get_best_arm("demo")
    finally:
        server.stop(grace_s=1.0)
    assert [t.status for t in trials] == [TrialStatus.COMPLETED] * 4
    values = [t.observations[0].mean for t in trials]
    assert best.metrics["hartmann6"].mean == min(values)
    assert f"{min(values) - HARTMANN6_MINIMUM:.5f}" in result.stdout


def test_demo_uses_a_running_server_given_its_address(
    server_address: str, tmp_path: Path
) -> None:
    result = _run_demo(
        "--trials",
        "2",
        "--address",
        server_address,
        "--experiment-id",
        "demo_at_address",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / ".polytrial").exists()
    with Client(server_address) as client:
        assert len(list(client.list_trials("demo_at_address"))) == 2
