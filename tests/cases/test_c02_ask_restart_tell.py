"""c02: ask, restart the server, tell; the completion and what follows hold."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import trial_pb2 as tpb
from polytrial_testkit import connect, experiment

pytestmark = pytest.mark.timeout(120)


def test_a_trial_asked_before_a_restart_completes_after_it(
    sqlite_url: str, serve_process: Callable[..., object]
) -> None:
    message = experiment("c02", kind=epb.GENERATOR_KIND_BAYESIAN)
    message.generation_strategy.num_initial_trials = 1
    server = serve_process(sqlite_url)
    api = connect(server.port)  # type: ignore[attr-defined]
    api.create(message)
    asked = api.suggest("c02")[0]
    api.close()
    server.kill()  # type: ignore[attr-defined]

    restarted = serve_process(sqlite_url)
    api = connect(restarted.port)  # type: ignore[attr-defined]
    try:
        done = api.complete("experiments/c02/trials/0", {"loss": 0.75})
        assert done.status == tpb.TRIAL_STATUS_COMPLETED
        stored = api.get_trial("c02", 0)
        assert stored.arms[0].arm == asked.arms[0].arm
        assert [(o.metric_name, o.mean) for o in stored.observations] == [
            ("loss", 0.75)
        ]
        following = api.suggest("c02")[0]
        assert following.index == 1
        # Past its one initial trial, the strategy picks Sobol only while no
        # objective is observed; any other generator means it saw the data
        # stored before the restart.
        assert following.generation.generator != "sobol"
        if following.generation.generator == "botorch":
            assert following.generation.num_observations == 1
    finally:
        api.close()
