"""c01: completed work survives a SIGKILL of a real `polytrial serve` process."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from polytrial.v1 import trial_pb2 as tpb
from polytrial_testkit import connect, experiment, float_param

pytestmark = pytest.mark.timeout(120)


def test_three_completed_trials_survive_sigkill_and_the_next_index_is_3(
    db_url: str, serve_process: Callable[..., object]
) -> None:
    server = serve_process(db_url)
    api = connect(server.port)  # type: ignore[attr-defined]
    api.create(experiment("c01", [float_param("a", 0, 1), float_param("b", -5, 5)]))
    expected = {}
    for trial in api.suggest("c01", 3):
        api.complete(trial, {"loss": trial.index + 0.5})
        expected[trial.index] = trial.index + 0.5
    api.close()
    server.kill()  # type: ignore[attr-defined]

    restarted = serve_process(db_url)
    api = connect(restarted.port)  # type: ignore[attr-defined]
    try:
        trials = api.all_trials("c01")
        assert [t.index for t in trials] == [0, 1, 2]
        assert all(t.status == tpb.TRIAL_STATUS_COMPLETED for t in trials)
        assert {t.index: t.observations[0].mean for t in trials} == expected
        assert api.suggest("c01")[0].index == 3
    finally:
        api.close()
