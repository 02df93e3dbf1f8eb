"""Out-of-range input the tester found answered INTERNAL: each is refused with
INVALID_ARGUMENT naming the field, and nothing is stored."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from polytrial.server.service.config import MAX_RUNNER_TIMEOUT_S
from polytrial.server.service.experiments import MAX_DESCRIPTION_CHARS
from polytrial.server.service.trials import MAX_TTL_S
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    experiment,
    experiment_ids,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
HUGE = (MAX_TTL_S * 1.5, 1e300)


@pytest.mark.parametrize("ttl_s", HUGE)
def test_suggest_and_attach_with_a_ttl_past_the_maximum_are_invalid_argument(
    api: Api, ttl_s: float
) -> None:
    api.create(experiment("ttl"))
    before = snapshot(api, "ttl")

    suggest = rpc_error(INVALID, lambda: api.suggest("ttl", ttl_s=ttl_s))
    attach = rpc_error(
        INVALID, lambda: api.attach("ttl", {"x1": 0.5, "x2": 0.5}, ttl_s=ttl_s)
    )

    assert violated_fields(suggest) == violated_fields(attach) == ["ttl_s"]
    assert "30 days" in suggest.details()
    assert snapshot(api, "ttl") == before


def test_ttl_of_exactly_the_maximum_is_accepted(api: Api) -> None:
    api.create(experiment("ttl"))
    [trial] = api.suggest("ttl", ttl_s=MAX_TTL_S)
    assert trial.HasField("expire_time")


@pytest.mark.parametrize("ttl_s", HUGE)
def test_heartbeat_and_mark_running_with_a_huge_ttl_are_invalid_argument(
    api: Api, ttl_s: float
) -> None:
    api.create(experiment("hb"))
    [running] = api.suggest("hb", ttl_s=60.0)
    api.create(experiment("mr", runner="127.0.0.1:1"))
    [candidate] = api.suggest("mr")
    before = snapshot(api, "hb"), snapshot(api, "mr")

    heartbeat = rpc_error(
        INVALID,
        lambda: api.trials.HeartbeatTrial(
            ts.HeartbeatTrialRequest(name=running.name, ttl_s=ttl_s),
            timeout=RPC_TIMEOUT_S,
        ),
    )
    mark = rpc_error(
        INVALID,
        lambda: api.trials.MarkTrialRunning(
            ts.MarkTrialRunningRequest(name=candidate.name, ttl_s=ttl_s),
            timeout=RPC_TIMEOUT_S,
        ),
    )

    assert violated_fields(heartbeat) == violated_fields(mark) == ["ttl_s"]
    assert (snapshot(api, "hb"), snapshot(api, "mr")) == before


def _with_number(number: float, nested: bool) -> struct_pb2.Struct:
    properties = struct_pb2.Struct()
    if nested:
        properties.update({"team": "a", "n": {"deep": [1.0, number]}})
    else:
        properties.update({"team": "a", "n": number})
    return properties


@pytest.mark.parametrize(
    ("number", "nested", "field"),
    [
        (float("nan"), False, "experiment.properties.n"),
        (float("inf"), False, "experiment.properties.n"),
        (float("-inf"), True, "experiment.properties.n.deep[1]"),
    ],
)
def test_properties_with_nan_or_infinity_are_invalid_argument_on_create_and_update(
    api: Api, number: float, nested: bool, field: str
) -> None:
    bad = experiment("props")
    bad.properties.CopyFrom(_with_number(number, nested))
    created = rpc_error(INVALID, lambda: api.create(bad))
    assert violated_fields(created) == [field]
    assert experiment_ids(api) == []

    api.create(experiment("props"))
    before = snapshot(api, "props")
    change = epb.Experiment(name="experiments/props")
    change.properties.CopyFrom(_with_number(number, nested))
    for paths in ([], ["properties"]):
        updated = rpc_error(
            INVALID,
            lambda paths=paths: api.experiments.UpdateExperiment(
                es.UpdateExperimentRequest(
                    experiment=change,
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
                timeout=RPC_TIMEOUT_S,
            ),
        )
        assert violated_fields(updated) == [field]
    assert snapshot(api, "props") == before


@pytest.mark.parametrize("timeout_s", [MAX_RUNNER_TIMEOUT_S + 1, 1e300, float("nan")])
def test_runner_timeout_past_the_maximum_or_nan_is_invalid_argument(
    api: Api, timeout_s: float
) -> None:
    message = experiment("slow", runner="127.0.0.1:1")
    message.runner.timeout_s = timeout_s

    error = rpc_error(INVALID, lambda: api.create(message))

    assert violated_fields(error) == ["experiment.runner.timeout_s"]
    assert experiment_ids(api) == []


def test_runner_metric_source_without_a_runner_is_invalid_argument(api: Api) -> None:
    message = experiment("msrn")
    message.metric_sources.add(metric_name="loss", kind=epb.METRIC_SOURCE_KIND_RUNNER)

    error = rpc_error(INVALID, lambda: api.create(message))

    assert violated_fields(error) == ["experiment.metric_sources[0].kind"]
    assert experiment_ids(api) == []


def test_update_with_another_experiment_id_in_the_body_is_invalid_argument(
    api: Api,
) -> None:
    api.create(experiment("upd"))
    before = snapshot(api, "upd")
    change = epb.Experiment(
        name="experiments/upd", experiment_id="other", description="d3"
    )

    error = rpc_error(
        INVALID,
        lambda: api.experiments.UpdateExperiment(
            es.UpdateExperimentRequest(experiment=change), timeout=RPC_TIMEOUT_S
        ),
    )

    assert violated_fields(error) == ["experiment.experiment_id"]
    assert snapshot(api, "upd") == before


def test_description_past_the_maximum_is_invalid_argument_on_create_and_update(
    api: Api,
) -> None:
    long = "d" * (MAX_DESCRIPTION_CHARS + 1)
    message = experiment("desc")
    message.description = long
    created = rpc_error(INVALID, lambda: api.create(message))
    assert violated_fields(created) == ["experiment.description"]
    assert experiment_ids(api) == []

    message.description = "d" * MAX_DESCRIPTION_CHARS
    api.create(message)
    before = snapshot(api, "desc")
    updated = rpc_error(
        INVALID,
        lambda: api.experiments.UpdateExperiment(
            es.UpdateExperimentRequest(
                experiment=epb.Experiment(name="experiments/desc", description=long)
            ),
            timeout=RPC_TIMEOUT_S,
        ),
    )
    assert violated_fields(updated) == ["experiment.description"]
    assert snapshot(api, "desc") == before


def test_a_pinned_parameter_without_a_value_is_named_in_the_message(
    api: Api,
) -> None:
    api.create(experiment("pin"))
    before = snapshot(api, "pin")
    request = ts.SuggestTrialsRequest(parent="experiments/pin")
    request.pinned_parameters["x1"].SetInParent()

    error = rpc_error(
        INVALID,
        lambda: api.trials.SuggestTrials(request, timeout=RPC_TIMEOUT_S),
    )

    assert violated_fields(error) == ["pinned_parameters.x1"]
    assert error.details().startswith("pinned_parameters.x1: ")
    assert snapshot(api, "pin") == before
