"""`make demo`: Hartmann6 orchestrated through the Python example runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(150)


def test_demo_orchestrates_through_the_example_runner_and_reports_the_best_arm(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "polytrial.examples.orchestrated",
            "--trials",
            "4",
            "--parallel",
            "2",
            "--job-seconds",
            "0.3",
            "--experiment-id",
            "demo",
        ],
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "Orchestration COMPLETED (COMPLETED 4)" in output
    assert len(re.findall(r"trial +\d+ +sobol +hartmann6", output)) == 4
    assert "regret" in output
    # Both children were started and stopped.
    server_log = (tmp_path / ".polytrial" / "server.log").read_text()
    assert "orchestration" in server_log and "received SIGTERM" in server_log
    runner_log = (tmp_path / ".polytrial" / "runner.log").read_text()
    assert runner_log.count("job started name=demo-") == 4
