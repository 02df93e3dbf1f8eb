"""Stored data is never replaced, and a trial's data has a size limit that
keeps every response readable by a client with gRPC's default 4 MiB."""

from __future__ import annotations

import grpc
import pytest
from polytrial.server.service.observations import MAX_OBSERVATIONS_PER_TRIAL
from polytrial.v1 import trial_service_pb2 as ts
from polytrial.v1 import values_pb2 as vpb
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    error_info,
    experiment,
    obs,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(180)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _log(api: Api, name: str, observations: list[vpb.Observation]) -> None:
    api.trials.LogTrialData(
        ts.LogTrialDataRequest(name=name, observations=observations),
        timeout=RPC_TIMEOUT_S,
    )


@pytest.mark.parametrize("step", [1, None])
def test_logging_an_arm_metric_step_the_trial_holds_is_invalid_argument(
    api: Api, step: int | None
) -> None:
    api.create(experiment("rep"))
    [trial] = api.suggest("rep")
    arm = f"{trial.index}_0"
    _log(api, trial.name, [obs(arm, "loss", 1.0, step=step)])
    before = snapshot(api, "rep")

    error = rpc_error(
        INVALID, lambda: _log(api, trial.name, [obs(arm, "loss", 2.0, step=step)])
    )

    assert violated_fields(error) == ["observations[0]"]
    assert "already holds" in error.details()
    assert snapshot(api, "rep") == before
    if step is None:
        # The final value logged before counts for the completion, once.
        done = api.trials.CompleteTrial(
            ts.CompleteTrialRequest(name=trial.name), timeout=RPC_TIMEOUT_S
        )
        assert [(o.mean, o.HasField("step")) for o in done.observations] == [
            (1.0, False)
        ]


def test_completing_with_a_final_value_the_trial_holds_is_invalid_argument(
    api: Api,
) -> None:
    api.create(experiment("rep"))
    [trial] = api.suggest("rep")
    _log(api, trial.name, [obs(f"{trial.index}_0", "loss", 1.0)])
    before = snapshot(api, "rep")

    error = rpc_error(INVALID, lambda: api.complete(trial, {"loss": 4.0}))

    assert violated_fields(error) == ["observations[0]"]
    assert snapshot(api, "rep") == before


def test_data_past_the_trial_limit_is_refused_and_big_trials_split_list_pages(
    api: Api,
) -> None:
    api.create(experiment("many"))
    first, second = api.suggest("many", 2)
    curve = [
        obs(f"{first.index}_0", "loss", float(i), step=i)
        for i in range(MAX_OBSERVATIONS_PER_TRIAL)
    ]
    _log(api, first.name, curve)
    before = snapshot(api, "many")

    error = rpc_error(
        INVALID, lambda: api.complete(first, {"loss": 1.0})
    )  # one more than the limit

    assert violated_fields(error) == ["observations"]
    assert error_info(error).reason == "LIMIT_EXCEEDED"
    assert snapshot(api, "many") == before

    # Together the two trials pass the page budget: the page ends after the
    # first, and each response stays under the default 4 MiB receive limit.
    _log(
        api,
        second.name,
        [
            obs(f"{second.index}_0", "loss", 0.0, step=i)
            for i in range(MAX_OBSERVATIONS_PER_TRIAL)
        ],
    )
    page = api.trials.ListTrials(
        ts.ListTrialsRequest(parent="experiments/many"), timeout=RPC_TIMEOUT_S
    )
    assert [t.index for t in page.trials] == [first.index]
    rest = api.trials.ListTrials(
        ts.ListTrialsRequest(
            parent="experiments/many", page_token=page.next_page_token
        ),
        timeout=RPC_TIMEOUT_S,
    )
    assert [t.index for t in rest.trials] == [second.index]
    assert rest.next_page_token == ""
