"""The runner protocol, spoken directly to each language's example runner.

The same scenarios run against the Python, Go and TypeScript examples (the
`runner` fixture is parametrized over the three), through real channels to
real processes.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import values_pb2
from runner_kit import RunnerProcess, assert_observations_are_real, wait_for

pytestmark = pytest.mark.timeout(60)
TIMEOUT_S = 10.0
_trial_indices = itertools.count()


@pytest.fixture(scope="module")
def stub(runner: RunnerProcess) -> Iterator[pb_grpc.RunnerServiceStub]:
    channel = grpc.insecure_channel(runner.address)
    try:
        yield pb_grpc.RunnerServiceStub(channel)
    finally:
        channel.close()


def make_trial(
    arms: list[dict[str, object]],
    metrics: list[str],
    *,
    batch: bool = False,
    experiment_id: str = "protocol",
) -> pb.RunnerTrial:
    index = next(_trial_indices)
    trial = pb.RunnerTrial(
        experiment_id=experiment_id,
        trial_index=index,
        kind=pb.TRIAL_KIND_BATCH if batch else pb.TRIAL_KIND_SINGLE_ARM,
        metric_names=metrics,
    )
    for arm_index, parameters in enumerate(arms):
        arm = trial.arms.add(name=f"{index}_{arm_index}", weight=1.0)
        for name, value in parameters.items():
            if isinstance(value, float):
                arm.parameters[name].CopyFrom(
                    values_pb2.ParameterValue(float_value=value)
                )
            elif isinstance(value, int):
                arm.parameters[name].CopyFrom(
                    values_pb2.ParameterValue(int_value=value)
                )
            else:
                arm.parameters[name].CopyFrom(
                    values_pb2.ParameterValue(string_value=str(value))
                )
    return trial


def run(
    stub: pb_grpc.RunnerServiceStub, trial: pb.RunnerTrial, key: str
) -> pb.RunnerTrial:
    """Calls Run and returns the trial with the metadata the server would store."""
    response = stub.Run(
        pb.RunRequest(trial=trial, deployment_key=key), timeout=TIMEOUT_S
    )
    deployed = pb.RunnerTrial()
    deployed.CopyFrom(trial)
    deployed.run_metadata.CopyFrom(response.run_metadata)
    return deployed


def poll_until_done(stub: pb_grpc.RunnerServiceStub, trial: pb.RunnerTrial) -> int:
    def finished() -> int | None:
        state = stub.PollTrialStatus(
            pb.PollTrialStatusRequest(trial=trial), timeout=TIMEOUT_S
        ).state
        done = (pb.RUNNER_TRIAL_STATE_COMPLETED, pb.RUNNER_TRIAL_STATE_FAILED)
        return state if state in done else None

    return wait_for(finished)


def test_staging_is_not_required_by_default(stub: pb_grpc.RunnerServiceStub) -> None:
    response = stub.StagingRequired(pb.StagingRequiredRequest(), timeout=TIMEOUT_S)
    assert response.staging_required is False


def test_run_returns_at_once_and_fetch_gives_the_real_branin_value(
    runner: RunnerProcess, stub: pb_grpc.RunnerServiceStub
) -> None:
    params = {"x1": 0.25, "x2": 0.75}
    trial = run(stub, make_trial([params], ["branin"]), key=uuid.uuid4().hex)
    name = json_format.MessageToDict(trial.run_metadata)["name"]
    assert isinstance(name, str) and name.startswith("protocol-")

    assert poll_until_done(stub, trial) == pb.RUNNER_TRIAL_STATE_COMPLETED

    data = stub.FetchTrialData(pb.FetchTrialDataRequest(trial=trial), timeout=TIMEOUT_S)
    arms = {trial.arms[0].name: params}
    assert_observations_are_real(data.observations, arms, ["branin"], every_step=True)


def test_batch_trial_evaluates_hartmann6_for_every_arm(
    stub: pb_grpc.RunnerServiceStub,
) -> None:
    arms = [
        {f"x{i}": round(0.1 * i + 0.05 * arm, 3) for i in range(1, 7)}
        for arm in range(3)
    ]
    trial = run(stub, make_trial(arms, ["hartmann6"], batch=True), key=uuid.uuid4().hex)
    assert poll_until_done(stub, trial) == pb.RUNNER_TRIAL_STATE_COMPLETED

    data = stub.FetchTrialData(
        pb.FetchTrialDataRequest(trial=trial, metric_names=["hartmann6"]),
        timeout=TIMEOUT_S,
    )
    by_arm = {arm.name: params for arm, params in zip(trial.arms, arms, strict=True)}
    assert_observations_are_real(
        data.observations, by_arm, ["hartmann6"], every_step=True
    )


def test_two_objective_trial_reports_branin_and_currin(
    stub: pb_grpc.RunnerServiceStub,
) -> None:
    params = {"x1": 0.5, "x2": 0.0}  # x2 = 0 is Currin's limit case
    trial = run(
        stub,
        make_trial([params], ["branin", "currin", "unknown"]),
        key=uuid.uuid4().hex,
    )
    assert poll_until_done(stub, trial) == pb.RUNNER_TRIAL_STATE_COMPLETED

    data = stub.FetchTrialData(pb.FetchTrialDataRequest(trial=trial), timeout=TIMEOUT_S)
    assert_observations_are_real(
        data.observations,
        {trial.arms[0].name: params},
        ["branin", "currin"],
        every_step=True,
    )


def test_repeated_run_with_the_same_key_starts_one_job(
    runner: RunnerProcess, stub: pb_grpc.RunnerServiceStub
) -> None:
    key = uuid.uuid4().hex
    trial = make_trial([{"x1": 0.1, "x2": 0.2}], ["branin"])
    first = run(stub, trial, key)
    second = run(stub, trial, key)
    assert second.run_metadata == first.run_metadata
    assert len(runner.seen_jobs_with_key(key)) == 1

    other = run(stub, trial, uuid.uuid4().hex)
    assert other.run_metadata["name"] != first.run_metadata["name"]


def test_concurrent_repeats_of_a_slow_run_start_one_job(
    runner: RunnerProcess, stub: pb_grpc.RunnerServiceStub
) -> None:
    key = uuid.uuid4().hex
    trial = make_trial([{"x1": 0.3, "x2": 0.4, "run_delay_s": 0.5}], ["branin"])
    calls = [
        stub.Run.future(
            pb.RunRequest(trial=trial, deployment_key=key), timeout=TIMEOUT_S
        )
        for _ in range(3)
    ]
    answers = [call.result() for call in calls]
    assert all(a.run_metadata == answers[0].run_metadata for a in answers)
    assert len(runner.seen_jobs_with_key(key)) == 1


def test_run_returns_while_the_job_runs_and_stop_ends_it_before_final_data(
    stub: pb_grpc.RunnerServiceStub,
) -> None:
    # A long job, so it is surely running when the stop arrives.
    arm = {"x1": 0.5, "x2": 0.5, "job_seconds": 30.0}
    trial = run(stub, make_trial([arm], ["branin"]), key=uuid.uuid4().hex)
    running = stub.PollTrialStatus(
        pb.PollTrialStatusRequest(trial=trial), timeout=TIMEOUT_S
    )
    assert running.state == pb.RUNNER_TRIAL_STATE_RUNNING  # Run did not wait for it
    response = stub.StopTrial(
        pb.RunnerServiceStopTrialRequest(trial=trial, reason="enough"),
        timeout=TIMEOUT_S,
    )
    assert json_format.MessageToDict(response.run_metadata)["stop_reason"] == "enough"

    state = stub.PollTrialStatus(
        pb.PollTrialStatusRequest(trial=trial), timeout=TIMEOUT_S
    )
    assert state.state == pb.RUNNER_TRIAL_STATE_STOPPED
    data = stub.FetchTrialData(pb.FetchTrialDataRequest(trial=trial), timeout=TIMEOUT_S)
    assert all(o.HasField("step") for o in data.observations)  # no final data


def test_run_missing_a_needed_parameter_is_invalid_argument_and_starts_nothing(
    runner: RunnerProcess, stub: pb_grpc.RunnerServiceStub
) -> None:
    key = uuid.uuid4().hex
    trial = make_trial([{"x1": 0.5, "x2": 0.5}], ["hartmann6"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.Run(pb.RunRequest(trial=trial, deployment_key=key), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x3" in caught.value.details()
    assert runner.jobs_with_key(key) == []


def test_run_without_deployment_key_is_invalid_argument(
    stub: pb_grpc.RunnerServiceStub,
) -> None:
    trial = make_trial([{"x1": 0.5, "x2": 0.5}], ["branin"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.Run(pb.RunRequest(trial=trial), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "deployment_key" in caught.value.details()


def test_poll_of_an_unknown_job_is_not_found(stub: pb_grpc.RunnerServiceStub) -> None:
    trial = make_trial([{"x1": 0.5, "x2": 0.5}], ["branin"])
    trial.run_metadata.update({"name": "no-such-job"})
    with pytest.raises(grpc.RpcError) as caught:
        stub.PollTrialStatus(pb.PollTrialStatusRequest(trial=trial), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
