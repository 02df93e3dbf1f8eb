"""Reasons have a length limit, and no error outgrows gRPC's 16 KiB trailers."""

from __future__ import annotations

import grpc
import pytest
from polytrial.server import errors
from polytrial.server.api.errors import to_status
from polytrial.server.service.lifecycle import MAX_REASON_CHARS
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    experiment,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("method", ["FailTrial", "AbandonTrial", "EarlyStopTrial"])
def test_reason_past_the_limit_is_invalid_argument_and_changes_nothing(
    api: Api, method: str
) -> None:
    api.create(experiment("why"))
    [trial] = api.suggest("why")
    before = snapshot(api, "why")
    request = getattr(ts, f"{method}Request")(
        name=trial.name, reason="r" * (MAX_REASON_CHARS + 1)
    )

    error = rpc_error(
        INVALID, lambda: getattr(api.trials, method)(request, timeout=RPC_TIMEOUT_S)
    )

    assert violated_fields(error) == ["reason"]
    assert snapshot(api, "why") == before


def test_heartbeat_of_a_trial_failed_with_the_longest_reason_is_failed_precondition(
    api: Api,
) -> None:
    api.create(experiment("why"))
    [trial] = api.suggest("why", ttl_s=1000.0)
    reason = "é" * MAX_REASON_CHARS  # two UTF-8 bytes, six when percent-encoded
    failed = api.trials.FailTrial(
        ts.FailTrialRequest(name=trial.name, reason=reason), timeout=RPC_TIMEOUT_S
    )
    assert failed.status == tpb.TRIAL_STATUS_FAILED
    assert failed.status_reason == reason

    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.trials.HeartbeatTrial(
            ts.HeartbeatTrialRequest(name=trial.name), timeout=RPC_TIMEOUT_S
        ),
    )
    assert "only a RUNNING trial" in error.details()


def test_a_huge_name_echoed_in_the_error_still_answers_invalid_argument(
    api: Api,
) -> None:
    error = rpc_error(
        INVALID,
        lambda: api.experiments.GetExperiment(
            es.GetExperimentRequest(name="experiments/" + "X" * 100_000),
            timeout=RPC_TIMEOUT_S,
        ),
    )
    assert error.details().endswith("[truncated]")


def test_status_of_a_huge_error_fits_the_trailer_budget() -> None:
    collector = errors.ViolationCollector()
    for i in range(2000):
        collector.add(f"field[{i}]" + "f" * 1000, "d" * 10_000)
    with pytest.raises(errors.InvalidArgument) as caught:
        collector.raise_if_any()
    caught.value.metadata["echo"] = "m" * 100_000

    status = to_status(caught.value)

    assert len(status.message.encode()) <= 1024
    assert status.message.endswith("[truncated]")
    assert status.ByteSize() <= 6 * 1024
    assert len(status.details) == 2  # ErrorInfo and a (shortened) BadRequest
