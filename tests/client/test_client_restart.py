"""Ask, restart the server process, tell (case c02) through the client."""

from __future__ import annotations

from pathlib import Path

import pytest
from polytrial.client import Client, RangeParameter, TrialStatus
from polytrial.examples.local_server import local_server

pytestmark = pytest.mark.timeout(120)


def test_a_trial_asked_before_a_restart_is_told_after_it(tmp_path: Path) -> None:
    db_path = tmp_path / "offline.db"
    log_path = tmp_path / "server.log"

    # Ask, then the server goes away.
    with local_server(db_path, log_path=log_path) as address, Client(address) as client:
        client.create_experiment(
            "offline",
            parameters=[RangeParameter("x", 0.0, 1.0), RangeParameter("y", 0.0, 1.0)],
            objectives={"loss": "minimize"},
            generation_strategy="sobol",
        )
        asked = client.suggest("offline")

    # A new server process on the same file; a new client knows only the index.
    with local_server(db_path, log_path=log_path) as address, Client(address) as client:
        told = client.complete_trial(("offline", asked.index), 0.25)
        following = client.suggest("offline")
        stored = client.get_trial(("offline", asked.index))

    assert told.status is TrialStatus.COMPLETED
    assert stored.parameters == asked.parameters
    assert [(o.metric_name, o.mean) for o in stored.observations] == [("loss", 0.25)]
    assert following.index == asked.index + 1 == 1
