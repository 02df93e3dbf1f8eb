"""`polytrial serve` as a real process: lifecycle log lines and a clean stop."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import connect, experiment

pytestmark = pytest.mark.timeout(120)


def test_serve_logs_each_lifecycle_event_with_its_ids_and_stops_on_sigterm(
    tmp_path: Path, serve_process: Callable[..., object]
) -> None:
    server = serve_process(str(tmp_path / "cli.db"))  # a plain path is a SQLite file
    api = connect(server.port)  # type: ignore[attr-defined]
    api.create(experiment("cli"))
    first, second = api.suggest("cli", 2)
    api.complete(first, {"loss": 1.0})
    api.trials.FailTrial(ts.FailTrialRequest(name=second.name, reason="oom"))
    api.experiments.DeleteExperiment(es.DeleteExperimentRequest(name="experiments/cli"))
    api.close()
    assert server.terminate() == 0  # type: ignore[attr-defined]

    log = "".join(server.output)  # type: ignore[attr-defined]
    for line in (
        f"listening on 127.0.0.1:{server.port}",  # type: ignore[attr-defined]
        "experiment cli created",
        "experiment cli trial 0 suggested",
        "experiment cli trial 1 suggested",
        "experiment cli trial 0 completed",
        "experiment cli trial 1 failed: oom",
        "experiment cli deleted",
        "stopped",
    ):
        assert line in log, f"{line!r} not in:\n{log}"
    assert (tmp_path / "cli.db").exists()
    assert "DEBUG" not in log


def test_help_names_the_serve_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "polytrial.server.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--db", "--address", "--log-level"):
        assert option in result.stdout


def test_piped_help_shows_every_option_name_whole() -> None:
    # As `polytrial serve --help | cat`: not a terminal, no width set.
    env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")
    }
    result = subprocess.run(
        [sys.executable, "-m", "polytrial.server.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    for option in ("--max-concurrent-generations", "--orchestration-lease-s"):
        assert option in result.stdout
    assert "…" not in result.stdout


def test_help_explains_the_generation_limit_and_zero_is_refused(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-m", "polytrial.server.cli", "serve"]
    # Wide enough that the help table does not shorten the option's name.
    env = {**os.environ, "COLUMNS": "200"}
    shown = subprocess.run(
        [*command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    refused = subprocess.run(
        [
            *command,
            *("--db", str(tmp_path / "refused.db"), "--address", "127.0.0.1:0"),
            *("--max-concurrent-generations", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    assert "--max-concurrent-generations" in shown.stdout
    assert "Bayesian-optimization suggests" in shown.stdout
    assert refused.returncode == 2
    assert "--max-concurrent-generations" in refused.stderr
    assert not (tmp_path / "refused.db").exists()
