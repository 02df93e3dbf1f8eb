"""c12: missing things are NOT_FOUND, naming what is missing."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import result_service_pb2 as rs
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, error_info, experiment, rpc_error

pytestmark = pytest.mark.timeout(60)


def test_every_call_on_a_missing_experiment_is_not_found(api: Api) -> None:
    name = "experiments/ghost"
    calls = {
        "get": lambda: api.experiments.GetExperiment(
            es.GetExperimentRequest(name=name)
        ),
        "list_trials": lambda: api.trials.ListTrials(ts.ListTrialsRequest(parent=name)),
        "suggest": lambda: api.trials.SuggestTrials(
            ts.SuggestTrialsRequest(parent=name)
        ),
        "delete": lambda: api.experiments.DeleteExperiment(
            es.DeleteExperimentRequest(name=name)
        ),
        "attach": lambda: api.attach("ghost", {"x1": 0.5}),
        "best_arm": lambda: api.results.GetBestArm(rs.GetBestArmRequest(parent=name)),
    }
    for label, call in calls.items():
        error = rpc_error(grpc.StatusCode.NOT_FOUND, call)
        assert name in error.details(), label
        assert error_info(error).metadata["resource_name"] == name


def test_a_missing_trial_of_an_existing_experiment_is_not_found(api: Api) -> None:
    api.create(experiment("c12"))
    api.suggest("c12", 3)
    error = rpc_error(grpc.StatusCode.NOT_FOUND, lambda: api.get_trial("c12", 7))
    assert "trial 7" in error.details() and "experiments/c12" in error.details()
    assert error_info(error).metadata["resource_name"] == "experiments/c12/trials/7"
    rpc_error(
        grpc.StatusCode.NOT_FOUND,
        lambda: api.complete("experiments/c12/trials/7", {"loss": 1}),
    )
