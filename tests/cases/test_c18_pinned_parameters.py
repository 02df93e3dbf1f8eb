"""c18: pinned parameters are checked, not clamped or ignored."""

from __future__ import annotations

import grpc
import pytest
from polytrial_testkit import (
    Api,
    experiment,
    float_param,
    int_param,
    py_values,
    rpc_error,
    snapshot,
    values,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)


def _create(api: Api) -> None:
    api.create(experiment("c18", [float_param("x", 0, 1), int_param("n", 1, 10)]))


@pytest.mark.parametrize(
    ("pins", "field"),
    [
        ({"x": 1.5}, "pinned_parameters.x"),
        ({"n": 11}, "pinned_parameters.n"),
        ({"nope": 0.5}, "pinned_parameters.nope"),
    ],
    ids=["float_out_of_bounds", "int_out_of_bounds", "unknown_name"],
)
def test_bad_pin_is_invalid_argument_naming_it_and_stores_nothing(
    api: Api, pins: dict[str, object], field: str
) -> None:
    _create(api)
    before = snapshot(api, "c18")
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.suggest("c18", 2, pinned_parameters=values(pins)),
    )
    assert field in violated_fields(error)
    assert snapshot(api, "c18") == before


def test_valid_pin_holds_in_every_arm_from_the_first_trial_on(api: Api) -> None:
    _create(api)
    singles = api.suggest("c18", 4, pinned_parameters=values({"n": 7}))
    batch = api.suggest("c18", 3, batch=True, pinned_parameters=values({"n": 3}))[0]
    assert singles[0].index == 0
    assert [py_values(t.arms[0].arm.parameters)["n"] for t in singles] == [7] * 4
    assert [py_values(a.arm.parameters)["n"] for a in batch.arms] == [3] * 3
    assert len({py_values(t.arms[0].arm.parameters)["x"] for t in singles}) == 4
