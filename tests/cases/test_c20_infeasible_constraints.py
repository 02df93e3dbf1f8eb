"""c20: constraints that leave nothing feasible are refused at creation."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import experiment_pb2 as epb
from polytrial_testkit import Api, experiment, experiment_ids, rpc_error

pytestmark = pytest.mark.timeout(60)

SUM_AT_LEAST_3 = [
    # x1 + x2 >= 3, written as -x1 - x2 <= -3.
    epb.ParameterConstraint(
        linear=epb.LinearConstraint(weights={"x1": -1, "x2": -1}, bound=-3)
    )
]
ORDER_AND_GAP = [
    epb.ParameterConstraint(
        order=epb.OrderConstraint(lower_parameter="x1", upper_parameter="x2")
    ),
    # x2 <= x1 - 0.5, written as x2 - x1 <= -0.5.
    epb.ParameterConstraint(
        linear=epb.LinearConstraint(weights={"x2": 1, "x1": -1}, bound=-0.5)
    ),
]


@pytest.mark.parametrize(
    "constraints", [SUM_AT_LEAST_3, ORDER_AND_GAP], ids=["sum", "order_and_gap"]
)
def test_infeasible_constraints_are_invalid_argument_and_store_nothing(
    api: Api, constraints: list[epb.ParameterConstraint]
) -> None:
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.create(experiment("c20", constraints=constraints)),
    )
    assert "feasible" in error.details()
    assert experiment_ids(api) == []
