"""c05: bounds the wrong way round are refused at creation."""

from __future__ import annotations

import grpc
import pytest
from polytrial_testkit import (
    Api,
    experiment,
    experiment_ids,
    float_param,
    int_param,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "parameter",
    [int_param("width", 50, 1), float_param("rate", 0.5, 0.5)],
    ids=["int_lower_above_upper", "float_lower_equals_upper"],
)
def test_lower_not_below_upper_is_invalid_argument_and_stores_nothing(
    api: Api, parameter: object
) -> None:
    message = experiment("c05", [float_param("ok", 0, 1), parameter])  # type: ignore[list-item]
    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: api.create(message))
    assert any(
        f.startswith("experiment.search_space.parameters[1]")
        for f in violated_fields(error)
    )
    name = parameter.name  # type: ignore[attr-defined]
    assert name in error.details() and "lower" in error.details()
    assert experiment_ids(api) == []
