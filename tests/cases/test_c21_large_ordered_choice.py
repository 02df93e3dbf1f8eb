"""c21: a long ordered choice works and hands out exactly the listed values."""

from __future__ import annotations

import pytest
from polytrial_testkit import Api, choice_param, experiment, py_values

pytestmark = pytest.mark.timeout(60)


def test_grid_of_1001_values_suggests_only_listed_values(api: Api) -> None:
    grid = [round(i * 0.001, 3) for i in range(1001)]
    api.create(experiment("c21", [choice_param("step", grid, ordered=True)]))
    trials = api.suggest("c21", 20)
    got = [py_values(t.arms[0].arm.parameters)["step"] for t in trials]
    assert len(got) == 20 and len(set(got)) == 20
    listed = set(grid)
    assert all(value in listed for value in got), got
    stored = api.all_trials("c21")
    assert [py_values(t.arms[0].arm.parameters)["step"] for t in stored] == got
