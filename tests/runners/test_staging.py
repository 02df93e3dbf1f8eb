"""Runners that need staging: trials start STAGED and move on when polled.

A module of its own because staging is a property of the runner process:
`staged_runner` starts each language's example with a staging period.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import RPC_TIMEOUT_S, Api, experiment, py_values
from runner_kit import (
    LANGUAGES,
    RunnerProcess,
    assert_observations_are_real,
    start_runner,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", params=LANGUAGES)
def staged_runner(
    request: pytest.FixtureRequest, runner_build_dir: Path
) -> Iterator[RunnerProcess]:
    yield from start_runner(request, runner_build_dir, job_s=0.4, staging_s=0.4)


def test_runner_with_a_staging_period_says_staging_is_required(
    staged_runner: RunnerProcess,
) -> None:
    with grpc.insecure_channel(staged_runner.address) as channel:
        response = pb_grpc.RunnerServiceStub(channel).StagingRequired(
            pb.StagingRequiredRequest(), timeout=RPC_TIMEOUT_S
        )
    assert response.staging_required is True


def test_staged_trial_is_polled_to_running_and_then_completed(
    polytrial_api: Api, staged_runner: RunnerProcess
) -> None:
    experiment_id = f"staged-{staged_runner.language}"
    message = experiment(experiment_id, objectives=[("branin", True)])
    message.runner.address = staged_runner.address
    message.metric_sources.add(metric_name="branin", kind=epb.METRIC_SOURCE_KIND_RUNNER)
    polytrial_api.create(message)
    [candidate] = polytrial_api.suggest(experiment_id)

    staged = polytrial_api.trials.DeployTrial(
        ts.DeployTrialRequest(name=candidate.name), timeout=RPC_TIMEOUT_S
    )
    assert staged.status == tpb.TRIAL_STATUS_STAGED
    assert staged.HasField("stage_time") and not staged.HasField("run_time")

    seen: list[int] = []

    def completed() -> tpb.Trial | None:
        trial = polytrial_api.trials.RefreshTrial(
            ts.RefreshTrialRequest(name=candidate.name), timeout=RPC_TIMEOUT_S
        )
        seen.append(trial.status)
        return trial if trial.status == tpb.TRIAL_STATUS_COMPLETED else None

    done = wait_for(completed, every_s=0.05)
    assert done.HasField("run_time")
    arms = {done.arms[0].arm.name: py_values(done.arms[0].arm.parameters)}
    assert_observations_are_real(done.observations, arms, ["branin"], every_step=False)
    # Every status the refreshes saw is one the lifecycle allows, in order.
    order = [
        tpb.TRIAL_STATUS_STAGED,
        tpb.TRIAL_STATUS_RUNNING,
        tpb.TRIAL_STATUS_COMPLETED,
    ]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert len(staged_runner.seen_jobs_of(experiment_id)) == 1
