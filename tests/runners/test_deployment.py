"""Deploying trials through each language's example runner, via the real server.

Every scenario runs against the Python, Go and TypeScript examples: the server
deploys, polls, fetches, stops and retries through RunnerService exactly as it
would in production. Each test checks the trial's final state, that no job was
started twice, and that nothing stored was lost.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    experiment,
    fixed_param,
    float_param,
    py_values,
    rpc_error,
)
from runner_kit import RunnerProcess, assert_observations_are_real, wait_for

pytestmark = pytest.mark.timeout(90)
S = tpb
RUNNER = epb.METRIC_SOURCE_KIND_RUNNER
SERVICE = epb.METRIC_SOURCE_KIND_SERVICE


def unit_params(dims: int, *extra: epb.Parameter) -> list[epb.Parameter]:
    return [float_param(f"x{i}", 0.0, 1.0) for i in range(1, dims + 1)] + list(extra)


def create(
    api: Api,
    runner: RunnerProcess,
    name: str,
    *,
    objectives: tuple[str, ...],
    dims: int,
    extra: tuple[epb.Parameter, ...] = (),
    sources: dict[str, tuple[int, str]] | None = None,
    address: str | None = None,
    timeout_s: float | None = None,
) -> str:
    """Creates an experiment run by `runner`; returns its id."""
    experiment_id = f"{name}-{runner.language}"
    message = experiment(
        experiment_id,
        unit_params(dims, *extra),
        objectives=[(m, True) for m in objectives],
        runner=address or runner.address,
    )
    if timeout_s is not None:
        message.runner.timeout_s = timeout_s
    if len(objectives) > 1:
        for metric in objectives:
            message.optimization_config.objective_thresholds.add(
                metric_name=metric, bound=1000.0
            )
    for metric, (kind, source_address) in (
        sources or {m: (RUNNER, "") for m in objectives}
    ).items():
        message.metric_sources.add(
            metric_name=metric, kind=kind, address=source_address
        )
    api.create(message)
    return experiment_id


def deploy(api: Api, trial: tpb.Trial, **kw: Any) -> tpb.Trial:
    return api.trials.DeployTrial(
        ts.DeployTrialRequest(name=trial.name, **kw), timeout=RPC_TIMEOUT_S
    )


def refresh_until(api: Api, trial: tpb.Trial, status: int) -> tpb.Trial:
    def reached() -> tpb.Trial | None:
        found = api.trials.RefreshTrial(
            ts.RefreshTrialRequest(name=trial.name), timeout=RPC_TIMEOUT_S
        )
        return found if found.status == status else None

    return wait_for(reached)


def assert_data_is_real(trial: tpb.Trial, metrics: tuple[str, ...]) -> None:
    """Final data equals the benchmark for every arm; intermediate data the curve."""
    arms = {arm.arm.name: py_values(arm.arm.parameters) for arm in trial.arms}
    assert_observations_are_real(trial.observations, arms, metrics, every_step=False)


def assert_only_error_recorded(kept: tpb.Trial, candidate: tpb.Trial) -> None:
    """The failed deployment changed nothing stored but the deployment error."""
    unchanged = tpb.Trial()
    unchanged.CopyFrom(kept)
    unchanged.ClearField("deployment_error")
    assert unchanged == candidate


def test_single_arm_trial_is_deployed_and_completes_with_fetched_branin(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    experiment_id = create(
        polytrial_api, runner, "single", objectives=("branin",), dims=2
    )
    [candidate] = polytrial_api.suggest(experiment_id)
    assert candidate.status == S.TRIAL_STATUS_CANDIDATE

    deployed = deploy(polytrial_api, candidate)
    assert deployed.status == S.TRIAL_STATUS_RUNNING
    metadata = json_format.MessageToDict(deployed.run_metadata)
    assert deployed.deployed_name == metadata["name"]
    assert runner.seen_jobs_of(experiment_id) == [deployed.deployed_name]

    completed = refresh_until(polytrial_api, deployed, S.TRIAL_STATUS_COMPLETED)
    assert_data_is_real(completed, ("branin",))
    assert completed.deployed_name == deployed.deployed_name
    assert len(runner.seen_jobs_of(experiment_id)) == 1


def test_batch_trial_is_deployed_and_completes_with_hartmann6_for_every_arm(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    experiment_id = create(
        polytrial_api, runner, "batch", objectives=("hartmann6",), dims=6
    )
    [candidate] = polytrial_api.suggest(experiment_id, 3, batch=True)

    deployed = deploy(polytrial_api, candidate)
    assert deployed.status == S.TRIAL_STATUS_RUNNING
    completed = refresh_until(polytrial_api, deployed, S.TRIAL_STATUS_COMPLETED)
    assert len(completed.arms) == 3
    assert_data_is_real(completed, ("hartmann6",))
    assert len(runner.seen_jobs_of(experiment_id)) == 1


def test_two_objectives_from_runner_and_metric_service_are_merged(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    # The same process also serves as a separate metric service for currin.
    experiment_id = create(
        polytrial_api,
        runner,
        "two-sources",
        objectives=("branin", "currin"),
        dims=2,
        sources={"branin": (RUNNER, ""), "currin": (SERVICE, runner.address)},
    )
    [candidate] = polytrial_api.suggest(experiment_id)

    completed = refresh_until(
        polytrial_api, deploy(polytrial_api, candidate), S.TRIAL_STATUS_COMPLETED
    )
    assert_data_is_real(completed, ("branin", "currin"))


def test_refresh_stores_intermediate_data_and_stop_keeps_it_as_early_stopped(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    # A long job, so it is surely still running when the stop arrives.
    experiment_id = create(
        polytrial_api,
        runner,
        "stop",
        objectives=("branin",),
        dims=2,
        extra=(fixed_param("job_seconds", 30.0),),
    )
    [candidate] = polytrial_api.suggest(experiment_id)
    deployed = deploy(polytrial_api, candidate)

    def with_data() -> tpb.Trial | None:
        found = polytrial_api.trials.RefreshTrial(
            ts.RefreshTrialRequest(name=deployed.name), timeout=RPC_TIMEOUT_S
        )
        return found if found.observations else None

    running = wait_for(with_data)
    assert running.status == S.TRIAL_STATUS_RUNNING
    assert all(o.HasField("step") for o in running.observations)
    assert_data_is_real(running, ())

    stopped = polytrial_api.trials.StopTrial(
        ts.StopTrialRequest(name=deployed.name, reason="budget cut"),
        timeout=RPC_TIMEOUT_S,
    )
    assert stopped.status == S.TRIAL_STATUS_EARLY_STOPPED
    assert stopped.status_reason == "budget cut"
    assert list(stopped.observations)[: len(running.observations)] == list(
        running.observations
    )
    metadata = json_format.MessageToDict(stopped.run_metadata)
    assert metadata["stop_reason"] == "budget cut"
    assert metadata["name"] == deployed.deployed_name  # merged, not replaced

    # The runner's job is stopped for good: a refresh changes nothing.
    again = polytrial_api.trials.RefreshTrial(
        ts.RefreshTrialRequest(name=deployed.name), timeout=RPC_TIMEOUT_S
    )
    assert again == stopped
    assert len(runner.seen_jobs_of(experiment_id)) == 1


def test_run_retried_after_a_deadline_carries_the_same_key_and_starts_one_job(
    polytrial_api: Api, runner: RunnerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    # Run answers after 1.5 s; the first call gives up after 1 s and the retry,
    # with the same key, gets the first call's answer.
    experiment_id = create(
        polytrial_api,
        runner,
        "retry",
        objectives=("branin",),
        dims=2,
        extra=(fixed_param("run_delay_s", 1.5),),
        timeout_s=1.0,
    )
    [candidate] = polytrial_api.suggest(experiment_id)
    with caplog.at_level(logging.WARNING, logger="polytrial.server.runners"):
        deployed = deploy(polytrial_api, candidate)
    assert deployed.status == S.TRIAL_STATUS_RUNNING
    assert deployed.deployment_error == ""
    assert any("DEADLINE_EXCEEDED" in r.getMessage() for r in caplog.records)
    assert runner.seen_jobs_of(experiment_id) == [deployed.deployed_name]

    repeat = deploy(polytrial_api, candidate)
    assert repeat.status == S.TRIAL_STATUS_RUNNING
    assert repeat.run_metadata == deployed.run_metadata
    assert runner.seen_jobs_of(experiment_id) == [deployed.deployed_name]


def test_runner_that_is_down_leaves_the_trial_candidate_until_one_is_up(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    experiment_id = create(
        polytrial_api, runner, "down", objectives=("branin",), dims=2, address=dead
    )
    [candidate] = polytrial_api.suggest(experiment_id)

    error = rpc_error(
        grpc.StatusCode.UNAVAILABLE, lambda: deploy(polytrial_api, candidate)
    )
    assert dead in error.details()
    kept = polytrial_api.get_trial(experiment_id, candidate.index)
    assert kept.status == S.TRIAL_STATUS_CANDIDATE
    assert "UNAVAILABLE" in kept.deployment_error
    assert_only_error_recorded(kept, candidate)

    # The same trial deploys through a live runner given for this trial only.
    override = epb.RunnerConfig(address=runner.address)
    deployed = deploy(polytrial_api, candidate, runner=override)
    assert deployed.status == S.TRIAL_STATUS_RUNNING
    assert deployed.deployment_error == ""
    assert deployed.runner.address == runner.address
    completed = refresh_until(polytrial_api, deployed, S.TRIAL_STATUS_COMPLETED)
    assert_data_is_real(completed, ("branin",))
    assert len(runner.seen_jobs_of(experiment_id)) == 1


def test_runner_that_refuses_the_trial_fails_it_with_the_runners_message(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    # Hartmann6 needs x1..x6; this search space has only x1 and x2.
    experiment_id = create(
        polytrial_api, runner, "refused", objectives=("hartmann6",), dims=2
    )
    [candidate] = polytrial_api.suggest(experiment_id)

    failed = deploy(polytrial_api, candidate)
    assert failed.status == S.TRIAL_STATUS_FAILED
    assert "INVALID_ARGUMENT" in failed.status_reason
    assert "x3" in failed.status_reason
    assert runner.jobs_of(experiment_id) == []
    counts = polytrial_api.get_experiment(experiment_id).trial_counts
    assert dict(counts) == {"FAILED": 1}


def test_runner_that_hangs_past_the_deadline_leaves_candidate_and_one_job_at_most(
    polytrial_api: Api, runner: RunnerProcess
) -> None:
    experiment_id = create(
        polytrial_api,
        runner,
        "hang",
        objectives=("branin",),
        dims=2,
        extra=(fixed_param("run_delay_s", 2.5),),
        timeout_s=0.3,
    )
    [candidate] = polytrial_api.suggest(experiment_id)

    rpc_error(
        grpc.StatusCode.DEADLINE_EXCEEDED, lambda: deploy(polytrial_api, candidate)
    )
    kept = polytrial_api.get_trial(experiment_id, candidate.index)
    assert kept.status == S.TRIAL_STATUS_CANDIDATE
    assert "DEADLINE_EXCEEDED" in kept.deployment_error
    assert_only_error_recorded(kept, candidate)

    # The slow runner does start the job in the end, once for all attempts;
    # deploying again returns that job instead of starting another.
    [job] = runner.seen_jobs_of(experiment_id)
    deployed = deploy(polytrial_api, candidate)
    assert deployed.status == S.TRIAL_STATUS_RUNNING
    assert deployed.deployed_name == job
    assert runner.seen_jobs_of(experiment_id) == [job]
