"""c11: a refused request changes nothing."""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import experiment_service_pb2 as es
from polytrial_testkit import Api, experiment, rpc_error, snapshot

pytestmark = pytest.mark.timeout(60)


def test_second_completion_is_failed_precondition_and_keeps_the_first_value(
    any_api: Api,
) -> None:
    api = any_api
    api.create(experiment("c11"))
    trial = api.suggest("c11")[0]
    api.complete(trial, {"loss": 1.0})
    before = snapshot(api, "c11")
    rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.complete(trial, {"loss": 999.0}),
    )
    assert snapshot(api, "c11") == before
    assert [o.mean for o in api.get_trial("c11", 0).observations] == [1.0]


def test_suggest_on_a_deleted_experiment_creates_no_trial(api: Api) -> None:
    api.create(experiment("c11"))
    api.experiments.DeleteExperiment(es.DeleteExperimentRequest(name="experiments/c11"))
    rpc_error(grpc.StatusCode.NOT_FOUND, lambda: api.suggest("c11"))
    api.create(experiment("c11"))
    assert api.all_trials("c11") == []


def test_refused_attach_creates_no_trial_and_uses_up_no_index(api: Api) -> None:
    api.create(experiment("c11"))
    api.attach("c11", {"x1": 0.1, "x2": 0.1})
    before = snapshot(api, "c11")
    rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.attach("c11", {"x1": 7.0, "x2": 0.1}),
    )
    assert snapshot(api, "c11") == before
    assert api.attach("c11", {"x1": 0.2, "x2": 0.2}).index == 1
