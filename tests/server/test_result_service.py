"""ResultService over a real channel: best arm and Pareto frontier."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import result_service_pb2 as rs
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, error_info, experiment, obs, py_values, rpc_error

pytestmark = pytest.mark.timeout(60)
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def _run(api: Api, experiment_id: str, x1: float, metrics: dict[str, float]) -> int:
    trial = api.attach(experiment_id, {"x1": x1, "x2": 0.5})
    api.complete(trial, metrics)
    return int(trial.index)


def test_best_arm_minimizes_and_respects_outcome_constraints(api: Api) -> None:
    api.create(
        experiment(
            "best",
            outcome_constraints=[
                epb.OutcomeConstraint(
                    metric_name="cost", op=epb.COMPARISON_OP_LESS_EQUAL, bound=10
                )
            ],
        )
    )
    _run(api, "best", 0.1, {"loss": 0.5, "cost": 50})  # best loss, infeasible
    _run(api, "best", 0.2, {"loss": 2.0, "cost": 5})
    _run(api, "best", 0.3, {"loss": 1.0, "cost": 10})
    best = api.best_arm("best")
    assert py_values(best.arm.parameters)["x1"] == 0.3
    assert best.trial_indices == [2]
    assert {m.metric_name: m.mean for m in best.metrics} == {"loss": 1.0, "cost": 10}


def test_best_arm_maximizes_when_asked(api: Api) -> None:
    api.create(experiment("max", objectives=[("acc", False)]))
    _run(api, "max", 0.1, {"acc": 0.5})
    _run(api, "max", 0.2, {"acc": 0.9})
    assert py_values(api.best_arm("max").arm.parameters)["x1"] == 0.2


def test_no_feasible_arm_is_failed_precondition(api: Api) -> None:
    api.create(
        experiment(
            "infeasible",
            outcome_constraints=[
                epb.OutcomeConstraint(
                    metric_name="cost", op=epb.COMPARISON_OP_GREATER_EQUAL, bound=10
                )
            ],
        )
    )
    _run(api, "infeasible", 0.1, {"loss": 0.5, "cost": 1})
    error = rpc_error(PRECONDITION, lambda: api.best_arm("infeasible"))
    assert error_info(error).reason == "NO_FEASIBLE_ARM"


def test_best_arm_of_a_multi_objective_experiment_is_failed_precondition(
    api: Api,
) -> None:
    api.create(experiment("mo", objectives=[("a", True), ("b", True)]))
    _run(api, "mo", 0.1, {"a": 1, "b": 1})
    error = rpc_error(PRECONDITION, lambda: api.best_arm("mo"))
    assert "Pareto" in error.details()


def test_pareto_frontier_keeps_only_non_dominated_arms(api: Api) -> None:
    api.create(experiment("mo", objectives=[("a", True), ("b", False)]))
    front_1 = _run(api, "mo", 0.1, {"a": 1.0, "b": 1.0})
    front_2 = _run(api, "mo", 0.2, {"a": 2.0, "b": 3.0})
    _run(api, "mo", 0.3, {"a": 2.5, "b": 2.0})  # beaten by front_2 on both
    front_3 = _run(api, "mo", 0.4, {"a": 0.5, "b": 0.1})
    response = api.results.GetParetoFrontier(
        rs.GetParetoFrontierRequest(parent="experiments/mo")
    )
    assert sorted(i for arm in response.arms for i in arm.trial_indices) == [
        front_1,
        front_2,
        front_3,
    ]


def test_early_stopped_data_counts_for_best_arm(api: Api) -> None:
    api.create(experiment("es"))
    trial = api.attach("es", {"x1": 0.1, "x2": 0.5})
    api.trials.LogTrialData(
        ts.LogTrialDataRequest(
            name=trial.name,
            observations=[
                obs("0_0", "loss", 3.0, step=1),
                obs("0_0", "loss", 2.0, step=2),
            ],
        )
    )
    api.trials.EarlyStopTrial(ts.EarlyStopTrialRequest(name=trial.name))
    best = api.best_arm("es")
    assert best.metrics[0].mean == 2.0


def test_results_of_a_missing_experiment_are_not_found(api: Api) -> None:
    error = rpc_error(grpc.StatusCode.NOT_FOUND, lambda: api.best_arm("ghost"))
    assert "experiments/ghost" in error.details()
