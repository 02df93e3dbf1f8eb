"""c17: the same parameterization twice is a replicate, not an error."""

from __future__ import annotations

import pytest
from polytrial_testkit import Api, experiment, py_values

pytestmark = pytest.mark.timeout(60)


def test_replicates_are_stored_apart_and_pooled_in_the_best_arm(any_api: Api) -> None:
    api = any_api
    api.create(experiment("c17"))
    params = {"x1": 0.25, "x2": 0.75}
    first = api.attach("c17", params)
    api.complete(first, {"loss": 1.0})
    second = api.attach("c17", params)
    api.complete(second, {"loss": 3.0})

    assert [t.observations[0].mean for t in api.all_trials("c17")] == [1.0, 3.0]
    suggested = api.suggest("c17")[0]
    assert py_values(suggested.arms[0].arm.parameters) != params

    best = api.best_arm("c17")
    assert py_values(best.arm.parameters) == params
    assert list(best.trial_indices) == [0, 1]
    (loss,) = best.metrics
    assert (loss.mean, loss.count) == (2.0, 2)
    assert not loss.HasField("sem")  # unknown sems stay unknown when pooled
