"""Service limits: each refused with a clear error, and nothing stored."""

from __future__ import annotations

import grpc
import pytest
from polytrial.server.app import MAX_MESSAGE_BYTES
from polytrial.server.service.config import MAX_PARAMETERS
from polytrial.server.service.trials import (
    MAX_ARMS_PER_TRIAL,
    MAX_PAGE_SIZE,
    MAX_REQUEST_ID_LENGTH,
    MAX_SUGGEST_COUNT,
)
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    Api,
    error_info,
    experiment,
    experiment_ids,
    float_param,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_suggesting_more_trials_than_the_limit_is_invalid_argument(api: Api) -> None:
    api.create(experiment("lim"))
    before = snapshot(api, "lim")

    error = rpc_error(INVALID, lambda: api.suggest("lim", MAX_SUGGEST_COUNT + 1))

    assert violated_fields(error) == ["count"]
    assert str(MAX_SUGGEST_COUNT) in error.details()
    assert snapshot(api, "lim") == before


def test_batch_of_more_arms_than_the_limit_is_invalid_argument(api: Api) -> None:
    api.create(experiment("lim"))
    before = snapshot(api, "lim")
    arms = [{"x1": i / 1000, "x2": 0.5} for i in range(MAX_ARMS_PER_TRIAL + 1)]

    error = rpc_error(INVALID, lambda: api.attach("lim", *arms))
    batch = rpc_error(
        INVALID,
        lambda: api.suggest("lim", MAX_ARMS_PER_TRIAL + 1, batch=True),
    )

    assert violated_fields(error) == ["arms"]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert violated_fields(batch) == ["count"]
    assert snapshot(api, "lim") == before


def test_experiment_with_more_parameters_than_the_limit_is_invalid_argument(
    api: Api,
) -> None:
    parameters = [float_param(f"x{i}", 0.0, 1.0) for i in range(MAX_PARAMETERS + 1)]

    error = rpc_error(INVALID, lambda: api.create(experiment("wide", parameters)))

    assert violated_fields(error) == ["experiment.search_space.parameters"]
    assert str(MAX_PARAMETERS) in error.details()
    assert experiment_ids(api) == []


def test_experiment_with_exactly_the_parameter_limit_is_accepted(api: Api) -> None:
    parameters = [float_param(f"x{i}", 0.0, 1.0) for i in range(MAX_PARAMETERS)]
    api.create(experiment("wide", parameters))
    (trial,) = api.suggest("wide")
    assert len(trial.arms[0].arm.parameters) == MAX_PARAMETERS


def test_page_size_above_the_maximum_returns_the_maximum(api: Api) -> None:
    api.create(experiment("pages"))
    for _ in range(MAX_PAGE_SIZE // MAX_SUGGEST_COUNT + 1):
        api.suggest("pages", MAX_SUGGEST_COUNT)

    page = api.trials.ListTrials(
        ts.ListTrialsRequest(parent="experiments/pages", page_size=10 * MAX_PAGE_SIZE),
        timeout=60,
    )

    assert len(page.trials) == MAX_PAGE_SIZE
    assert page.next_page_token


def test_request_larger_than_the_message_limit_is_resource_exhausted(
    api: Api,
) -> None:
    message = experiment("big")
    message.description = "x" * (MAX_MESSAGE_BYTES + 1)

    error = rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        lambda: api.experiments.CreateExperiment(
            es.CreateExperimentRequest(experiment=message), timeout=60
        ),
    )

    assert "larger than max" in (error.details() or "").lower()
    assert experiment_ids(api) == []


def test_request_id_longer_than_the_limit_is_invalid_argument(any_api: Api) -> None:
    any_api.create(experiment("lim"))
    before = snapshot(any_api, "lim")
    long_id = "r" * (MAX_REQUEST_ID_LENGTH + 1)

    error = rpc_error(INVALID, lambda: any_api.suggest("lim", request_id=long_id))

    assert violated_fields(error) == ["request_id"]
    assert snapshot(any_api, "lim") == before
    # The longest allowed id works on every backend.
    any_api.suggest("lim", request_id="r" * MAX_REQUEST_ID_LENGTH)
