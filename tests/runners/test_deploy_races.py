"""Deployments racing deletes and each other, and runners sending too much data.

A tiny RunnerService servicer runs on a real gRPC server in the test process,
so a test decides exactly when Run answers: it holds Run open while it deletes
and re-creates the experiment, or while a second DeployTrial arrives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from polytrial.server.runners import fetched_data
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import runner_service_pb2 as rpb
from polytrial.v1 import runner_service_pb2_grpc as rgrpc
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial.v1 import values_pb2 as vpb
from polytrial_testkit import RPC_TIMEOUT_S, Api, error_info, experiment, rpc_error

pytestmark = pytest.mark.timeout(60)
WAIT_S = 20.0


class GatedRunner(rgrpc.RunnerServiceServicer):
    """A runner whose Run waits for `gate`; it records every Run and stop."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.run_started = threading.Event()
        self.runs: list[str] = []
        self.stops: list[str] = []
        self.steps = 0  # step observations FetchTrialData answers per arm
        self.state = rpb.RUNNER_TRIAL_STATE_RUNNING  # what PollTrialStatus answers
        self.finals: list[float] = []  # final values it answers per arm, after

    def Run(self, request: rpb.RunRequest, context: Any) -> rpb.RunResponse:
        self.runs.append(request.deployment_key)
        self.run_started.set()
        self.gate.wait(WAIT_S)
        response = rpb.RunResponse()
        response.run_metadata.update({"name": f"job-{len(self.runs)}"})
        return response

    def StagingRequired(
        self, request: rpb.StagingRequiredRequest, context: Any
    ) -> rpb.StagingRequiredResponse:
        return rpb.StagingRequiredResponse(staging_required=False)

    def PollTrialStatus(
        self, request: rpb.PollTrialStatusRequest, context: Any
    ) -> rpb.PollTrialStatusResponse:
        return rpb.PollTrialStatusResponse(state=self.state)

    def StopTrial(
        self, request: rpb.RunnerServiceStopTrialRequest, context: Any
    ) -> rpb.RunnerServiceStopTrialResponse:
        self.stops.append(request.trial.run_metadata["name"])
        return rpb.RunnerServiceStopTrialResponse()

    def FetchTrialData(
        self, request: rpb.FetchTrialDataRequest, context: Any
    ) -> rpb.FetchTrialDataResponse:
        steps = [
            vpb.Observation(arm_name=arm.name, metric_name="loss", mean=i, step=i)
            for arm in request.trial.arms
            for i in range(self.steps)
        ]
        finals = [
            vpb.Observation(arm_name=arm.name, metric_name="loss", mean=mean)
            for arm in request.trial.arms
            for mean in self.finals
        ]
        return rpb.FetchTrialDataResponse(observations=steps + finals)


def start_gated() -> Iterator[tuple[GatedRunner, str]]:
    servicer = GatedRunner()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rgrpc.add_RunnerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        servicer.gate.set()
        server.stop(grace=1.0)


@pytest.fixture
def gated() -> Iterator[tuple[GatedRunner, str]]:
    yield from start_gated()


@pytest.fixture
def other() -> Iterator[tuple[GatedRunner, str]]:
    yield from start_gated()


def create(api: Api, experiment_id: str, address: str) -> None:
    message = experiment(experiment_id, runner=address)
    message.metric_sources.add(metric_name="loss", kind=epb.METRIC_SOURCE_KIND_RUNNER)
    api.create(message)


def deploy(api: Api, name: str, **kw: Any) -> tpb.Trial:
    return api.trials.DeployTrial(
        ts.DeployTrialRequest(name=name, **kw), timeout=RPC_TIMEOUT_S
    )


def deploy_in_background(
    api: Api, name: str
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["trial"] = deploy(api, name)
        except grpc.RpcError as error:
            outcome["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


def test_deploy_outliving_its_experiment_leaves_the_recreated_trial_untouched(
    polytrial_api: Api, gated: tuple[GatedRunner, str]
) -> None:
    runner, address = gated
    create(polytrial_api, "reborn", address)
    [old] = polytrial_api.suggest("reborn")
    thread, outcome = deploy_in_background(polytrial_api, old.name)
    assert runner.run_started.wait(WAIT_S)

    polytrial_api.experiments.DeleteExperiment(
        es.DeleteExperimentRequest(name="experiments/reborn"), timeout=RPC_TIMEOUT_S
    )
    create(polytrial_api, "reborn", address)
    [new] = polytrial_api.suggest("reborn")
    assert new.name == old.name
    runner.gate.set()
    thread.join(WAIT_S)

    error = outcome["error"]
    assert error.code() == grpc.StatusCode.ABORTED
    assert "experiments/reborn" in error.details()
    assert error_info(error).reason == "EXPERIMENT_REPLACED"
    assert polytrial_api.get_trial("reborn", 0) == new
    assert new.status == tpb.TRIAL_STATUS_CANDIDATE
    # The orphaned job was asked to stop.
    assert runner.stops == ["job-1"]


def test_second_deploy_through_another_runner_while_one_is_in_flight_is_aborted(
    polytrial_api: Api,
    gated: tuple[GatedRunner, str],
    other: tuple[GatedRunner, str],
) -> None:
    runner, address = gated
    second, second_address = other
    create(polytrial_api, "twice", address)
    [candidate] = polytrial_api.suggest("twice")
    thread, outcome = deploy_in_background(polytrial_api, candidate.name)
    assert runner.run_started.wait(WAIT_S)

    error = rpc_error(
        grpc.StatusCode.ABORTED,
        lambda: deploy(
            polytrial_api,
            candidate.name,
            runner=epb.RunnerConfig(address=second_address),
        ),
    )
    assert address in error.details()
    assert second.runs == []
    runner.gate.set()
    thread.join(WAIT_S)

    deployed = outcome["trial"]
    assert deployed.status == tpb.TRIAL_STATUS_RUNNING
    assert deployed.deployed_name == "job-1"
    # The trial keeps the experiment's runner, not the refused override.
    assert not polytrial_api.get_trial("twice", 0).HasField("runner")
    assert len(runner.runs) == 1
    assert runner.stops == []


def refresh(api: Api, name: str) -> tpb.Trial:
    return api.trials.RefreshTrial(
        ts.RefreshTrialRequest(name=name), timeout=RPC_TIMEOUT_S
    )


def test_runner_data_beyond_the_observation_cap_is_dropped_with_a_reason(
    polytrial_api: Api,
    gated: tuple[GatedRunner, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A small cap keeps the test fast; the rule is the same at 100,000.
    monkeypatch.setattr(fetched_data, "MAX_OBSERVATIONS_PER_TRIAL", 10)
    runner, address = gated
    runner.gate.set()
    runner.steps = 25
    create(polytrial_api, "flood", address)
    [candidate] = polytrial_api.suggest("flood")
    deploy(polytrial_api, candidate.name)

    for _ in range(2):
        refreshed = refresh(polytrial_api, candidate.name)
        # One place is kept for the final value, which has not come yet.
        assert len(refreshed.observations) == 9
    assert [o.step for o in refreshed.observations] == list(range(9))
    assert "limit of 10 observations" in refreshed.status_reason
    assert len(polytrial_api.get_trial("flood", 0).observations) == 9

    # The final value arrives after the curve filled the trial: it is stored.
    runner.finals = [3.0]
    refreshed = refresh(polytrial_api, candidate.name)
    assert len(refreshed.observations) == 10
    [final] = [o for o in refreshed.observations if not o.HasField("step")]
    assert final.mean == 3.0


def test_a_final_value_after_more_steps_than_the_cap_is_kept_first(
    polytrial_api: Api,
    gated: tuple[GatedRunner, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As 150,000 steps and then the final value in one fetch, at a cap of 10.
    _, candidate = _deployed_with_a_long_curve(
        polytrial_api, gated, monkeypatch, "curve-then-final"
    )

    refreshed = refresh(polytrial_api, candidate.name)

    finals = [o.mean for o in refreshed.observations if not o.HasField("step")]
    assert finals == [7.0]
    steps = [o.step for o in refreshed.observations if o.HasField("step")]
    assert steps == list(range(9))
    assert "6 fetched observations dropped" in refreshed.status_reason


def test_the_dropped_observations_note_stays_when_the_same_refresh_completes_the_trial(
    polytrial_api: Api,
    gated: tuple[GatedRunner, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a poll of COMPLETED with 150,000 steps and the final value, at a cap of 10.
    runner, candidate = _deployed_with_a_long_curve(
        polytrial_api, gated, monkeypatch, "curve-and-done"
    )
    runner.state = rpb.RUNNER_TRIAL_STATE_COMPLETED

    refreshed = refresh(polytrial_api, candidate.name)

    assert refreshed.status == tpb.TRIAL_STATUS_COMPLETED
    assert "6 fetched observations dropped" in refreshed.status_reason
    stored = polytrial_api.get_trial("curve-and-done", 0)
    assert "6 fetched observations dropped" in stored.status_reason


def test_a_final_value_fetched_twice_is_refused_as_complete_trial_refuses_it(
    polytrial_api: Api,
    gated: tuple[GatedRunner, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner, address = gated
    runner.gate.set()
    runner.steps, runner.finals = 2, [1.0, 2.0]
    create(polytrial_api, "final-twice", address)
    [candidate] = polytrial_api.suggest("final-twice")
    deploy(polytrial_api, candidate.name)
    arm_name = candidate.arms[0].arm.name

    with caplog.at_level(logging.WARNING, logger="polytrial.server.runners"):
        refreshed = refresh(polytrial_api, candidate.name)

    # Neither value is stored; the steps are.
    assert [o.step for o in refreshed.observations] == [0, 1]
    assert refreshed.status == tpb.TRIAL_STATUS_RUNNING
    rule = f"arm {arm_name!r}, metric 'loss': given twice for the final value"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(rule in message and "(1, 2)" in message for message in warnings)
    # CompleteTrial refuses the same data with the same words.
    twice = [
        vpb.Observation(arm_name=arm_name, metric_name="loss", mean=mean)
        for mean in (1.0, 2.0)
    ]
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: polytrial_api.trials.CompleteTrial(
            ts.CompleteTrialRequest(name=candidate.name, observations=twice),
            timeout=RPC_TIMEOUT_S,
        ),
    )
    assert rule in (error.details() or "")


def _deployed_with_a_long_curve(
    api: Api,
    gated: tuple[GatedRunner, str],
    monkeypatch: pytest.MonkeyPatch,
    experiment_id: str,
) -> tuple[GatedRunner, Any]:
    """A deployed trial whose runner sends 15 steps and a final value of 7.0.

    The per-trial cap is 10, standing for 150,000 steps at the real cap.
    """
    monkeypatch.setattr(fetched_data, "MAX_OBSERVATIONS_PER_TRIAL", 10)
    runner, address = gated
    runner.gate.set()
    runner.steps, runner.finals = 15, [7.0]
    create(api, experiment_id, address)
    [candidate] = api.suggest(experiment_id)
    deploy(api, candidate.name)
    return runner, candidate
