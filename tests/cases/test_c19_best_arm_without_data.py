"""c19: best arm (and Pareto frontier) before any data."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import result_service_pb2 as rs
from polytrial_testkit import Api, error_info, experiment, rpc_error

pytestmark = pytest.mark.timeout(60)


def test_best_arm_without_data_is_failed_precondition_saying_so(api: Api) -> None:
    api.create(experiment("c19"))
    api.suggest("c19", 2)
    error = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, lambda: api.best_arm("c19"))
    assert "no trial" in error.details() and "'loss'" in error.details()
    assert error_info(error).reason == "NO_DATA"


def test_pareto_frontier_without_data_is_failed_precondition(api: Api) -> None:
    api.create(experiment("c19", objectives=[("a", True), ("b", False)]))
    api.suggest("c19", 2)
    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.results.GetParetoFrontier(
            rs.GetParetoFrontierRequest(parent="experiments/c19")
        ),
    )
    assert "no trial" in error.details()
    assert error_info(error).reason == "NO_DATA"
