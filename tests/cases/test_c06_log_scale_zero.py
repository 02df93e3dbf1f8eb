"""c06: log scale needs positive bounds."""

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
    [
        float_param("lr", 0, 1, log_scale=True),
        float_param("lr", -1, 1, log_scale=True),
        int_param("units", 0, 64, log_scale=True),
    ],
    ids=["float_lower_zero", "float_lower_negative", "int_lower_zero"],
)
def test_log_scale_with_non_positive_lower_is_invalid_argument(
    api: Api, parameter: object
) -> None:
    message = experiment("c06", [parameter])  # type: ignore[list-item]
    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: api.create(message))
    assert any(
        f.startswith("experiment.search_space.parameters[0]")
        for f in violated_fields(error)
    )
    assert parameter.name in error.details()  # type: ignore[attr-defined]
    assert experiment_ids(api) == []
