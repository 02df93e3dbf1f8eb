"""A runner that hangs, talks too much or outlives its trial cannot hurt the server.

The runners here are small RunnerService servicers on real gRPC servers in the
test process, so a test decides when (or whether) they answer; the Polytrial
server is a real one, in process or (to be sent SIGTERM) a `polytrial serve`
subprocess. No test asserts a wall time: the server must answer within each
call's own generous deadline.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from polytrial.server.app import PolytrialServer, create_server
from polytrial.server.runners import MAX_RUN_METADATA_BYTES
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import runner_service_pb2 as rpb
from polytrial.v1 import runner_service_pb2_grpc as rgrpc
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    connect,
    error_info,
    experiment,
    rpc_error,
)
from runner_kit import wait_for

pytestmark = pytest.mark.timeout(90)

# How long a hung runner holds a call before the test lets it go; every server
# call below must end long before, through the server's own bounds.
HANG_S = 120.0
# A generous deadline for calls that must not be stalled by a hung runner.
PROMPT_S = 15.0


class FakeRunner(rgrpc.RunnerServiceServicer):
    """A runner that answers at once, or never (until released) when `hang`.

    Attributes:
        calls: Methods called, in order.
        stops: (reason, run metadata) of each StopTrial received.
    """

    def __init__(
        self,
        *,
        hang: bool = False,
        metadata: dict[str, Any] | None = None,
        stop_metadata: dict[str, Any] | None = None,
    ) -> None:
        self.hang = hang
        self.release = threading.Event()
        self.metadata = metadata or {"name": "job"}
        self.stop_metadata = stop_metadata or {}
        self.calls: list[str] = []
        self.stops: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _enter(self, method: str) -> None:
        with self._lock:
            self.calls.append(method)
        if self.hang:
            self.release.wait(HANG_S)

    def StagingRequired(
        self, request: rpb.StagingRequiredRequest, context: Any
    ) -> rpb.StagingRequiredResponse:
        self._enter("StagingRequired")
        return rpb.StagingRequiredResponse(staging_required=False)

    def Run(self, request: rpb.RunRequest, context: Any) -> rpb.RunResponse:
        self._enter("Run")
        response = rpb.RunResponse()
        response.run_metadata.update(self.metadata)
        return response

    def PollTrialStatus(
        self, request: rpb.PollTrialStatusRequest, context: Any
    ) -> rpb.PollTrialStatusResponse:
        self._enter("PollTrialStatus")
        return rpb.PollTrialStatusResponse(state=rpb.RUNNER_TRIAL_STATE_RUNNING)

    def StopTrial(
        self, request: rpb.RunnerServiceStopTrialRequest, context: Any
    ) -> rpb.RunnerServiceStopTrialResponse:
        self._enter("StopTrial")
        with self._lock:
            metadata = json_format.MessageToDict(request.trial.run_metadata)
            self.stops.append((request.reason, metadata))
        response = rpb.RunnerServiceStopTrialResponse()
        response.run_metadata.update(self.stop_metadata)
        return response


@pytest.fixture
def serve_runner() -> Iterator[Any]:
    """Serves FakeRunners on loopback ports (gRPC's default 4 MiB request limit)."""
    started: list[tuple[grpc.Server, FakeRunner]] = []

    def serve(runner: FakeRunner) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        rgrpc.add_RunnerServiceServicer_to_server(runner, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        started.append((server, runner))
        return f"127.0.0.1:{port}"

    yield serve
    for server, runner in started:
        runner.release.set()
        server.stop(None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[PolytrialServer, Api]]:
    """An in-process server with the default 16 RPC threads."""
    polytrial, port = create_server(
        f"sqlite:///{tmp_path / 'polytrial.db'}", "127.0.0.1:0", max_workers=16
    )
    polytrial.start()
    api = connect(port)
    try:
        yield polytrial, api
    finally:
        api.close()
        polytrial.stop(grace_s=0.5)


def runner_experiment(
    api: Api, experiment_id: str, address: str, *, timeout_s: float = 60.0
) -> None:
    message = experiment(experiment_id, runner=address)
    message.runner.timeout_s = timeout_s
    message.metric_sources.add(metric_name="loss", kind=epb.METRIC_SOURCE_KIND_RUNNER)
    api.create(message)


def deploy(api: Api, name: str, *, timeout_s: float = RPC_TIMEOUT_S) -> tpb.Trial:
    return api.trials.DeployTrial(ts.DeployTrialRequest(name=name), timeout=timeout_s)


# A hung runner -----------------------------------------------------------------


def test_a_hung_runner_leaves_health_checks_and_reads_answering(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    polytrial, api = server
    hung = FakeRunner(hang=True)
    address = serve_runner(hung)
    runner_experiment(api, "hung", address)
    candidates = api.suggest("hung", count=16)

    # Sixteen deployments at once, as many as the server has RPC threads.
    errors: list[grpc.RpcError] = []
    lock = threading.Lock()

    def try_deploy(name: str) -> None:
        try:
            deploy(api, name, timeout_s=HANG_S)
        except grpc.RpcError as error:
            with lock:
                errors.append(error)

    threads = [
        threading.Thread(target=try_deploy, args=(c.name,), daemon=True)
        for c in candidates
    ]
    for thread in threads:
        thread.start()
    # The calls over the per-runner cap are refused at once, naming the runner.
    busy = wait_for(lambda: list(errors) if len(errors) >= 12 else None)
    for error in busy:
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert address in error.details()
        assert error_info(error).reason == "RUNNER_BUSY"
        # The message agrees with the status: it names no other code.
        assert "not called (RUNNER_BUSY)" in error.details()
        assert "RESOURCE_EXHAUSTED" not in error.details()
    assert polytrial.runner_client.in_flight(address) == 4

    # Everything else still answers, within its own deadline.
    health = health_pb2_grpc.HealthStub(api.channel)
    checked = health.Check(health_pb2.HealthCheckRequest(), timeout=PROMPT_S)
    assert checked.status == health_pb2.HealthCheckResponse.SERVING
    read = api.experiments.GetExperiment(
        es.GetExperimentRequest(name="experiments/hung"), timeout=PROMPT_S
    )
    assert read.experiment_id == "hung"
    refused = [api.get_trial("hung", c.index) for c in candidates]
    waiting = [t for t in refused if not t.deployment_error]
    assert len(waiting) == 4  # the four in flight; the rest record why not
    assert all(t.status == tpb.TRIAL_STATUS_CANDIDATE for t in refused)


def test_a_deployment_ends_with_its_callers_deadline_and_frees_the_runner_slot(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    polytrial, api = server
    address = serve_runner(FakeRunner(hang=True))
    runner_experiment(api, "deadline", address, timeout_s=3600.0)
    [candidate] = api.suggest("deadline")

    with pytest.raises(grpc.RpcError) as caught:
        deploy(api, candidate.name, timeout_s=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    # The server stopped waiting too: it recorded why, and holds no call.
    def recorded() -> tpb.Trial | None:
        trial = api.get_trial("deadline", candidate.index)
        return trial if trial.deployment_error else None

    trial = wait_for(recorded)
    assert trial.status == tpb.TRIAL_STATUS_CANDIDATE
    assert address in trial.deployment_error
    assert wait_for(lambda: polytrial.runner_client.in_flight() == 0 or None)


def test_server_stop_cancels_runner_calls_past_grace_and_closes_runner_channels(
    tmp_path: Path, serve_runner: Any
) -> None:
    polytrial, port = create_server(
        f"sqlite:///{tmp_path / 'polytrial.db'}", "127.0.0.1:0", max_workers=4
    )
    polytrial.start()
    api = connect(port)
    hung = FakeRunner(hang=True)
    runner_experiment(api, "stopping", serve_runner(hung), timeout_s=3600.0)
    [candidate] = api.suggest("stopping")
    outcome: list[grpc.RpcError] = []

    def try_deploy() -> None:
        try:
            deploy(api, candidate.name, timeout_s=HANG_S)
        except grpc.RpcError as error:
            outcome.append(error)

    caller = threading.Thread(target=try_deploy, daemon=True)
    caller.start()
    wait_for(lambda: hung.calls or None)

    polytrial.stop(grace_s=0.5)  # returns once the handler has stored its outcome
    caller.join(timeout=30)
    api.close()

    assert [e.code() for e in outcome] == [grpc.StatusCode.UNAVAILABLE]
    assert polytrial.runner_client.in_flight() == 0
    assert len(polytrial.runner_client.pool) == 0


# Oversized metadata --------------------------------------------------------------


def test_oversized_run_metadata_is_stopped_with_the_fields_that_fit(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    _, api = server
    blob = "x" * (8 * 1024 * 1024)  # twice what the runner's server accepts
    runner = FakeRunner(metadata={"name": "big", "blob": blob, "job_id": 7})
    runner_experiment(api, "huge-metadata", serve_runner(runner))
    [candidate] = api.suggest("huge-metadata")

    failed = deploy(api, candidate.name)

    assert failed.status == tpb.TRIAL_STATUS_FAILED
    assert str(MAX_RUN_METADATA_BYTES) in failed.status_reason
    assert len(failed.run_metadata) == 0
    # The stop arrived, carrying what identifies the job but not the blob.
    [(reason, metadata)] = runner.stops
    assert metadata == {"name": "big", "job_id": 7}
    assert "over the limit" in reason


def test_stop_metadata_over_the_limit_is_dropped_and_the_rest_merged(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    _, api = server
    runner = FakeRunner(
        stop_metadata={"stopped": True, "log": "y" * MAX_RUN_METADATA_BYTES}
    )
    runner_experiment(api, "big-stop", serve_runner(runner))
    [candidate] = api.suggest("big-stop")
    deploy(api, candidate.name)

    stopped = api.trials.StopTrial(
        ts.StopTrialRequest(name=candidate.name, reason="enough"),
        timeout=RPC_TIMEOUT_S,
    )

    assert stopped.status == tpb.TRIAL_STATUS_ABANDONED
    assert json_format.MessageToDict(stopped.run_metadata) == {
        "name": "job",
        "stopped": True,
    }


# Metadata JSON cannot hold -------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({"v": math.nan}, "NaN at 'v'"),
        ({"stats": {"loss": [1.0, -math.inf]}}, "-Infinity at 'stats.loss[1]'"),
    ],
)
def test_non_finite_run_metadata_fails_the_trial_and_stops_the_job(
    server: tuple[PolytrialServer, Api],
    serve_runner: Any,
    metadata: dict[str, Any],
    where: str,
) -> None:
    _, api = server
    runner = FakeRunner(metadata={"name": "odd", "job_id": 7, **metadata})
    runner_experiment(api, "nan-metadata", serve_runner(runner))
    [candidate] = api.suggest("nan-metadata")

    failed = deploy(api, candidate.name)

    assert failed.status == tpb.TRIAL_STATUS_FAILED
    assert f"metadata that is not JSON-representable: {where}" in failed.status_reason
    assert len(failed.run_metadata) == 0
    # The stop arrived (the runner could read it), without the bad field.
    [(reason, sent)] = runner.stops
    assert sent == {"name": "odd", "job_id": 7}
    assert where in reason
    # A redeploy is refused as for any FAILED trial, not INTERNAL.
    rpc_error(grpc.StatusCode.FAILED_PRECONDITION, lambda: deploy(api, candidate.name))


def test_non_finite_stop_metadata_is_dropped_and_the_stop_takes_effect(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    _, api = server
    runner = FakeRunner(stop_metadata={"stopped": True, "v": math.inf})
    runner_experiment(api, "inf-stop", serve_runner(runner))
    [candidate] = api.suggest("inf-stop")
    deploy(api, candidate.name)

    stopped = api.trials.StopTrial(
        ts.StopTrialRequest(name=candidate.name, reason="enough"),
        timeout=RPC_TIMEOUT_S,
    )

    assert stopped.status == tpb.TRIAL_STATUS_ABANDONED
    assert json_format.MessageToDict(stopped.run_metadata) == {
        "name": "job",
        "stopped": True,
    }


# Lost trials ---------------------------------------------------------------------


def test_a_lost_runner_trial_has_its_job_stopped_and_an_undeployed_one_not(
    server: tuple[PolytrialServer, Api], serve_runner: Any
) -> None:
    _, api = server
    runner = FakeRunner()
    runner_experiment(api, "lost", serve_runner(runner))
    [deployed] = api.suggest("lost", ttl_s=1.0)
    deploy(api, deployed.name)
    # A trial evaluated by a client: nothing runs on the runner for it.
    [by_hand] = api.suggest("lost", ttl_s=1.0)
    api.trials.MarkTrialRunning(
        ts.MarkTrialRunningRequest(name=by_hand.name, ttl_s=1.0),
        timeout=RPC_TIMEOUT_S,
    )

    # No read of the experiment meanwhile: the periodic sweep must find both.
    [(reason, metadata)] = wait_for(lambda: list(runner.stops) or None)
    assert reason.startswith("lost")
    assert metadata == {"name": "job"}
    trials = {t.index: t for t in api.all_trials("lost")}
    assert trials[deployed.index].status == tpb.TRIAL_STATUS_FAILED
    assert trials[by_hand.index].status == tpb.TRIAL_STATUS_FAILED
    assert len(runner.stops) == 1


def test_a_runner_trial_found_lost_by_a_read_has_its_job_stopped(
    tmp_path: Path, serve_runner: Any
) -> None:
    # The sweep is an hour away: only the read below can find the trial lost.
    polytrial, port = create_server(
        f"sqlite:///{tmp_path / 'polytrial.db'}",
        "127.0.0.1:0",
        sweep_interval_s=3600.0,
    )
    polytrial.start()
    api = connect(port)
    try:
        runner = FakeRunner()
        runner_experiment(api, "read", serve_runner(runner))
        [deployed] = api.suggest("read", ttl_s=1.0)
        deploy(api, deployed.name)

        lost = wait_for(
            lambda: (
                [
                    t
                    for t in api.all_trials("read")
                    if t.status == tpb.TRIAL_STATUS_FAILED
                ]
                or None
            )
        )
        [(reason, metadata)] = wait_for(lambda: list(runner.stops) or None)
    finally:
        api.close()
        polytrial.stop(grace_s=0.5)

    assert [t.index for t in lost] == [deployed.index]
    assert reason.startswith("lost")
    assert metadata == {"name": "job"}


# SIGTERM with a runner call in flight --------------------------------------------

_LISTENING = re.compile(r"listening on [^\s]+:(\d+)")


class Serve:
    """`polytrial serve` as a subprocess; its log is read on a thread."""

    def __init__(self, db_url: str, *, grace_s: float) -> None:
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "polytrial.server.cli",
                "serve",
                "--db",
                db_url,
                "--address",
                "127.0.0.1:0",
                "--grace-s",
                str(grace_s),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._port: int | None = None
        self._ready = threading.Event()
        # Read to the end, so the server never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if self._port is None and (match := _LISTENING.search(line)):
                self._port = int(match.group(1))
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        if not self._ready.wait(60) or self._port is None:
            raise AssertionError("the server did not start:\n" + "".join(self.log))
        return self._port

    def end(self, *, kill: bool = False) -> int:
        """SIGTERM (or SIGKILL); returns the exit code once the process is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code


def test_sigterm_with_a_hung_runner_call_exits_within_grace_and_keeps_the_trial(
    tmp_path: Path, serve_runner: Any
) -> None:
    db_url = f"sqlite:///{tmp_path / 'polytrial.db'}"
    hung = FakeRunner(hang=True)
    address = serve_runner(hung)
    serve = Serve(db_url, grace_s=1.0)
    try:
        api = connect(serve.port)
        runner_experiment(api, "shutdown", address, timeout_s=3600.0)
        [candidate] = api.suggest("shutdown")
        outcome: list[grpc.RpcError] = []

        def try_deploy() -> None:
            try:
                deploy(api, candidate.name, timeout_s=HANG_S)
            except grpc.RpcError as error:
                outcome.append(error)

        caller = threading.Thread(target=try_deploy, daemon=True)
        caller.start()
        wait_for(lambda: hung.calls or None)

        # SIGTERM: the grace period bounds the stop, not the runner's timeout
        # (`end` waits 30 s at most).
        assert serve.end() == 0
        caller.join(timeout=30)
        assert [e.code() for e in outcome] == [grpc.StatusCode.UNAVAILABLE]
        api.close()
    finally:
        serve.end(kill=True)
    assert "stopped" in serve.log[-1]

    # After a restart the trial is an intact CANDIDATE that a healthy runner
    # deploys.
    serve = Serve(db_url, grace_s=1.0)
    try:
        api = connect(serve.port)
        kept = api.get_trial("shutdown", candidate.index)
        assert kept.status == tpb.TRIAL_STATUS_CANDIDATE
        assert address in kept.deployment_error
        healthy = serve_runner(FakeRunner())
        deployed = api.trials.DeployTrial(
            ts.DeployTrialRequest(
                name=candidate.name, runner=epb.RunnerConfig(address=healthy)
            ),
            timeout=RPC_TIMEOUT_S,
        )
        assert deployed.status == tpb.TRIAL_STATUS_RUNNING
        assert deployed.deployed_name == "job"
        api.close()
    finally:
        serve.end()
