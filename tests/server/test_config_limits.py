"""Experiment configurations the engine refuses end to end, and what it survives.

Each refusal is checked over a real server: the status code, the field path,
the reason, that nothing was stored, and that the server still answers.
"""

from __future__ import annotations

import grpc
import pytest
from polytrial.server.engine.parsing import (
    MAX_DIGITS,
    MAX_METRIC_SOURCES,
    MAX_TRACKING_METRICS,
)
from polytrial.server.service.config import load_config
from polytrial.server.storage import ExperimentRecord
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    Api,
    error_info,
    experiment,
    experiment_ids,
    float_param,
    int_param,
    obs,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(180)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PARAMS = "experiment.search_space.parameters"
OPT = "experiment.optimization_config"


def assert_refused_and_nothing_stored(
    api: Api, message: epb.Experiment, fields: list[str], reason: str
) -> grpc.RpcError:
    error = rpc_error(INVALID, lambda: api.create(message))
    assert violated_fields(error) == fields
    assert error_info(error).reason == reason
    assert experiment_ids(api) == []
    return error


def test_huge_digits_are_invalid_argument_and_the_server_keeps_answering(
    api: Api,
) -> None:
    # 2**31 - 1 digits used to freeze every RPC of the server (10**digits).
    for digits in (2**31 - 1, 400, MAX_DIGITS + 1):
        error = assert_refused_and_nothing_stored(
            api,
            experiment("d", [float_param("x", 0, 1, digits=digits)]),
            [f"{PARAMS}[0].range.digits"],
            "INVALID_ARGUMENT",
        )
        assert f"between 0 and {MAX_DIGITS}" in error.details()
    api.create(experiment("fine", [float_param("x", 0, 1, digits=MAX_DIGITS)]))
    assert experiment_ids(api) == ["fine"]


def test_int_bounds_beyond_2_to_53_are_invalid_argument_naming_each_bound(
    api: Api,
) -> None:
    assert_refused_and_nothing_stored(
        api,
        experiment("n", [int_param("x", -1e300, 1e300)]),
        [f"{PARAMS}[0].range.lower", f"{PARAMS}[0].range.upper"],
        "INVALID_ARGUMENT",
    )


def test_float_range_wider_than_the_largest_double_is_invalid_argument(
    api: Api,
) -> None:
    assert_refused_and_nothing_stored(
        api,
        experiment("w", [float_param("x", -1e308, 1e308)]),
        [f"{PARAMS}[0].range.upper"],
        "INVALID_ARGUMENT",
    )


def test_100k_tracking_metrics_are_limit_exceeded_and_nothing_is_stored(
    api: Api,
) -> None:
    names = [f"t{i}" for i in range(100_000)]
    error = assert_refused_and_nothing_stored(
        api,
        experiment("trk", tracking=names),
        [f"{OPT}.tracking_metrics"],
        "LIMIT_EXCEEDED",
    )
    assert f"{MAX_TRACKING_METRICS:,}" in error.details()


def test_more_metric_sources_than_the_limit_are_limit_exceeded(api: Api) -> None:
    message = experiment("src")
    message.metric_sources.extend(
        epb.MetricSource(metric_name="loss", kind=epb.METRIC_SOURCE_KIND_CLIENT)
        for _ in range(MAX_METRIC_SOURCES + 1)
    )
    assert_refused_and_nothing_stored(
        api, message, ["experiment.metric_sources"], "LIMIT_EXCEEDED"
    )


def test_duplicate_tracking_metrics_and_constraints_on_objectives_are_refused(
    api: Api,
) -> None:
    message = experiment(
        "dup",
        tracking=["acc", "acc", "loss", "cost"],
        outcome_constraints=[
            epb.OutcomeConstraint(
                metric_name="loss", op=epb.COMPARISON_OP_LESS_EQUAL, bound=1
            ),
            epb.OutcomeConstraint(
                metric_name="cost", op=epb.COMPARISON_OP_LESS_EQUAL, bound=1
            ),
        ],
    )
    assert_refused_and_nothing_stored(
        api,
        message,
        [
            f"{OPT}.outcome_constraints[0].metric_name",
            f"{OPT}.tracking_metrics[1]",
            f"{OPT}.tracking_metrics[2]",
        ],
        "INVALID_ARGUMENT",
    )


def test_metric_name_with_a_newline_is_invalid_argument(api: Api) -> None:
    assert_refused_and_nothing_stored(
        api,
        experiment("nl", objectives=[("a b/\n\u2603", True)]),
        [f"{OPT}.objectives[0].metric_name"],
        "INVALID_ARGUMENT",
    )


def test_config_stored_by_an_older_server_is_still_read() -> None:
    # Accepted before the rules above existed; Get, List and Delete must work.
    old = experiment(
        "old",
        [int_param("n", -1e300, 1e300), float_param("x", 0, 1, digits=300)],
        tracking=["t", "t", "loss", "a b"],
    )
    old.ClearField("experiment_id")
    config = load_config(ExperimentRecord("old", old.SerializeToString()))
    assert config.optimization.tracking_metrics == ("t", "loss", "a b")
    assert config.search_space.parameter_names == ("n", "x")


@pytest.mark.bo
def test_means_of_1e308_make_bayesian_suggestions_fall_back_not_fail(
    api: Api,
) -> None:
    pytest.importorskip("botorch")
    api.create(experiment("huge", kind=epb.GENERATOR_KIND_BAYESIAN))
    for i, trial in enumerate(api.suggest("huge", 5)):
        arm_name = trial.arms[0].arm.name
        mean = 1e308 if i % 2 else -1e308
        api.trials.CompleteTrial(
            ts.CompleteTrialRequest(
                name=trial.name, observations=[obs(arm_name, "loss", mean, 1e308)]
            ),
            timeout=60,
        )

    (suggested,) = api.suggest("huge")

    assert suggested.generation.generator == "sobol_fallback"
    reason = suggested.generation.details["fallback_reason"]
    assert "too large to model" in reason
    assert (
        api.experiments.GetExperiment(
            es.GetExperimentRequest(name="experiments/huge"), timeout=30
        ).trial_counts["RUNNING"]
        == 1
    )
