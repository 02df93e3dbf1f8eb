"""c16: completing without the objective is refused and stores nothing.

The rule (documented in observations.py and CompleteTrialRequest): a
completion needs final data for every objective of every arm; otherwise it is
INVALID_ARGUMENT naming the missing objective, and the trial stays RUNNING.
"""

from __future__ import annotations

import grpc
import pytest
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, experiment, obs, rpc_error, snapshot

pytestmark = pytest.mark.timeout(60)


def test_completion_without_the_objective_is_invalid_argument_naming_it(
    api: Api,
) -> None:
    api.create(experiment("c16", tracking=["accuracy"]))
    trial = api.suggest("c16")[0]
    before = snapshot(api, "c16")
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: api.complete(trial, {"accuracy": 0.9})
    )
    assert "'loss'" in error.details()
    assert snapshot(api, "c16") == before
    stored = api.get_trial("c16", 0)
    assert stored.status == tpb.TRIAL_STATUS_RUNNING and not stored.observations
    # The client can still report properly afterwards.
    done = api.complete(trial, {"loss": 0.3, "accuracy": 0.9})
    assert done.status == tpb.TRIAL_STATUS_COMPLETED


def test_batch_completion_needs_the_objective_for_every_arm(api: Api) -> None:
    api.create(experiment("c16"))
    trial = api.suggest("c16", 2, batch=True)[0]
    before = snapshot(api, "c16")
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.trials.CompleteTrial(
            ts.CompleteTrialRequest(
                name=trial.name, observations=[obs("0_0", "loss", 1)]
            )
        ),
    )
    assert "'0_1'" in error.details() and "'loss'" in error.details()
    assert snapshot(api, "c16") == before
