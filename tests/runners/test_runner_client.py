"""The server's runner client and deployment edge cases, against in-process runners.

These runners are written with the Python SDK and served over real loopback
channels; each one misbehaves in one specific way that the example runners
do not (flaky, oversized metadata, no optional methods, failing jobs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from polytrial.runner import (
    Observation,
    Runner,
    Trial,
    TrialRefused,
    TrialState,
    TrialStatus,
    Unavailable,
    make_server,
)
from polytrial.server.runners import (
    MAX_RUN_METADATA_BYTES,
    ChannelPool,
    RetryPolicy,
    RunnerCallError,
    RunnerClient,
    RunnerTarget,
)
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import RPC_TIMEOUT_S, Api, experiment, violated_fields

pytestmark = pytest.mark.timeout(60)
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)


class ScriptedRunner(Runner):
    """Fails the first `failures` Runs with UNAVAILABLE; records every call."""

    def __init__(
        self,
        *,
        failures: int = 0,
        metadata: Mapping[str, Any] | None = None,
        refuse: str = "",
        polled: TrialStatus | None = None,
        data: Sequence[Observation] = (),
        delay_s: float = 0.0,
    ) -> None:
        self.failures = failures
        self.delay_s = delay_s
        self.metadata = dict(metadata or {"name": "job-1"})
        self.refuse = refuse
        self.polled = polled
        self.data = list(data)
        self.keys: list[str] = []
        self.stops: list[str] = []
        self._lock = threading.Lock()

    def run(self, trial: Trial, deployment_key: str) -> Mapping[str, Any]:
        with self._lock:
            self.keys.append(deployment_key)
            if len(self.keys) <= self.failures:
                raise Unavailable("cluster scheduler restarting")
        if self.refuse:
            raise TrialRefused(self.refuse)
        time.sleep(self.delay_s)
        return self.metadata

    def poll(self, trial: Trial) -> TrialStatus:
        if self.polled is None:
            return super().poll(trial)
        return self.polled

    def stop(self, trial: Trial, reason: str) -> Mapping[str, Any] | None:
        assert trial.run_metadata.get("name") == self.metadata["name"]
        self.stops.append(reason)
        return {"stopped": True}

    def fetch_data(
        self, trial: Trial, metric_names: Sequence[str]
    ) -> Sequence[Observation]:
        if not self.data:
            return super().fetch_data(trial, metric_names)
        return self.data


@pytest.fixture
def serve_runner() -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def serve(runner: Runner) -> str:
        server, port = make_server(runner)
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.stop(None)


@pytest.fixture
def client() -> Iterator[RunnerClient]:
    runner_client = RunnerClient(ChannelPool(), FAST)
    yield runner_client
    runner_client.pool.close()


def trial_message() -> pb.RunnerTrial:
    trial = pb.RunnerTrial(experiment_id="e", trial_index=0, metric_names=["loss"])
    trial.arms.add(name="0_0", weight=1.0)
    return trial


def test_channel_pool_reuses_one_channel_per_address() -> None:
    pool = ChannelPool()
    try:
        first = pool.get("127.0.0.1:1")
        assert pool.get("127.0.0.1:1") is first
        assert pool.get("127.0.0.1:2") is not first
        assert len(pool) == 2
    finally:
        pool.close()
    assert len(pool) == 0


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=0.5, multiplier=2.0)
    for retry, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        waits = {policy.backoff_s(retry) for _ in range(50)}
        assert all(base * 0.5 <= w <= base for w in waits)
        assert len(waits) > 1  # jittered, not lockstep


def test_unavailable_run_is_retried_with_the_same_key(
    serve_runner: Any, client: RunnerClient
) -> None:
    runner = ScriptedRunner(failures=2)
    target = RunnerTarget(serve_runner(runner), timeout_s=5.0)
    response = client.run(target, trial_message(), "key-7")
    assert response.run_metadata["name"] == "job-1"
    assert runner.keys == ["key-7"] * 3


def test_retries_are_bounded_and_the_last_error_is_kept(
    serve_runner: Any, client: RunnerClient
) -> None:
    runner = ScriptedRunner(failures=10)
    target = RunnerTarget(serve_runner(runner), timeout_s=5.0)
    with pytest.raises(RunnerCallError) as caught:
        client.run(target, trial_message(), "key-8")
    error = caught.value
    assert (error.code, error.attempts, error.transient) == (
        grpc.StatusCode.UNAVAILABLE,
        3,
        True,
    )
    assert "cluster scheduler restarting" in str(error)
    assert len(runner.keys) == 3


def test_refusal_is_not_retried(serve_runner: Any, client: RunnerClient) -> None:
    runner = ScriptedRunner(refuse="quota exceeded")
    target = RunnerTarget(serve_runner(runner), timeout_s=5.0)
    with pytest.raises(RunnerCallError) as caught:
        client.run(target, trial_message(), "key-9")
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert not caught.value.transient
    assert len(runner.keys) == 1


def test_missing_optional_method_is_reported_as_unimplemented(
    serve_runner: Any, client: RunnerClient
) -> None:
    target = RunnerTarget(serve_runner(ScriptedRunner()), timeout_s=5.0)
    with pytest.raises(RunnerCallError) as caught:
        client.poll(target, trial_message())
    assert caught.value.unimplemented
    assert caught.value.attempts == 1


# Through the server, on SQLite and on PostgreSQL ------------------------------


def runner_experiment(api: Api, experiment_id: str, address: str) -> tpb.Trial:
    message = experiment(experiment_id, objectives=[("loss", True)], runner=address)
    message.runner.timeout_s = 5.0
    message.metric_sources.add(metric_name="loss", kind=epb.METRIC_SOURCE_KIND_RUNNER)
    api.create(message)
    [candidate] = api.suggest(experiment_id)
    return candidate


def deploy(api: Api, trial: tpb.Trial) -> tpb.Trial:
    return api.trials.DeployTrial(
        ts.DeployTrialRequest(name=trial.name), timeout=RPC_TIMEOUT_S
    )


def refresh(api: Api, trial: tpb.Trial) -> tpb.Trial:
    return api.trials.RefreshTrial(
        ts.RefreshTrialRequest(name=trial.name), timeout=RPC_TIMEOUT_S
    )


def test_oversized_run_metadata_fails_the_trial_and_stops_the_job(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner(
        metadata={"name": "big", "blob": "x" * MAX_RUN_METADATA_BYTES}
    )
    candidate = runner_experiment(api, "big-metadata", serve_runner(runner))

    failed = deploy(api, candidate)
    assert failed.status == tpb.TRIAL_STATUS_FAILED
    assert str(MAX_RUN_METADATA_BYTES) in failed.status_reason
    assert len(failed.run_metadata) == 0  # nothing of it was stored
    assert len(runner.stops) == 1


def test_runner_without_poll_and_fetch_leaves_the_trial_running_for_its_client(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    candidate = runner_experiment(api, "no-optional", serve_runner(ScriptedRunner()))
    running = deploy(api, candidate)
    assert running.status == tpb.TRIAL_STATUS_RUNNING

    refreshed = refresh(api, running)
    assert refreshed.status == tpb.TRIAL_STATUS_RUNNING
    assert refreshed.deployed_name == "job-1"
    assert api.complete(refreshed, {"loss": 1.5}).status == tpb.TRIAL_STATUS_COMPLETED


def test_job_that_fails_on_the_runner_fails_the_trial_with_its_reason(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner(polled=TrialStatus(TrialState.FAILED, "out of memory"))
    candidate = runner_experiment(api, "job-fails", serve_runner(runner))
    deploy(api, candidate)

    failed = refresh(api, candidate)
    assert failed.status == tpb.TRIAL_STATUS_FAILED
    assert "out of memory" in failed.status_reason


def test_fetched_data_of_unknown_metrics_and_arms_is_dropped_and_the_rest_kept(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner(
        polled=TrialStatus(TrialState.COMPLETED),
        data=[
            Observation("0_0", "loss", 0.25, sem=0.0),
            Observation("0_0", "accuracy", 0.9),
            Observation("9_9", "loss", 0.1),
        ],
    )
    candidate = runner_experiment(api, "unknown-metric", serve_runner(runner))
    deploy(api, candidate)

    completed = refresh(api, candidate)
    assert completed.status == tpb.TRIAL_STATUS_COMPLETED
    assert [(o.arm_name, o.metric_name, o.mean) for o in completed.observations] == [
        ("0_0", "loss", 0.25)
    ]
    # Fetching again adds nothing: observations are not duplicated.
    assert len(refresh(api, candidate).observations) == 1


def test_completed_job_without_objective_data_stays_running(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner(
        polled=TrialStatus(TrialState.COMPLETED),
        data=[Observation("0_0", "loss", 0.5, step=3)],
    )
    candidate = runner_experiment(api, "no-final-data", serve_runner(runner))
    deploy(api, candidate)

    refreshed = refresh(api, candidate)
    assert refreshed.status == tpb.TRIAL_STATUS_RUNNING
    assert [(o.metric_name, o.step) for o in refreshed.observations] == [("loss", 3)]


def test_deploying_a_trial_that_is_not_candidate_is_failed_precondition(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    candidate = runner_experiment(api, "not-candidate", serve_runner(ScriptedRunner()))
    api.trials.AbandonTrial(
        ts.AbandonTrialRequest(name=candidate.name), timeout=RPC_TIMEOUT_S
    )
    with pytest.raises(grpc.RpcError) as caught:
        deploy(api, candidate)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ABANDONED" in caught.value.details()


def test_runner_override_without_address_is_invalid_argument_and_stores_nothing(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    candidate = runner_experiment(api, "bad-override", serve_runner(ScriptedRunner()))
    with pytest.raises(grpc.RpcError) as caught:
        api.trials.DeployTrial(
            ts.DeployTrialRequest(
                name=candidate.name, runner=epb.RunnerConfig(timeout_s=1.0)
            ),
            timeout=RPC_TIMEOUT_S,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "runner.address: a runner needs an address"
    assert violated_fields(caught.value) == ["runner.address"]
    kept = api.get_trial("bad-override", 0)
    assert kept.status == tpb.TRIAL_STATUS_CANDIDATE
    assert not kept.HasField("runner")


def test_refresh_of_a_running_job_renews_the_trials_time_to_live(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner(polled=TrialStatus(TrialState.RUNNING))
    message = experiment("ttl-renewed", objectives=[("loss", True)])
    message.runner.address = serve_runner(runner)
    api.create(message)
    [candidate] = api.suggest("ttl-renewed", ttl_s=3600.0)
    deployed = deploy(api, candidate)
    assert deployed.HasField("expire_time")

    time.sleep(0.05)
    refreshed = refresh(api, candidate)
    assert refreshed.status == tpb.TRIAL_STATUS_RUNNING
    assert refreshed.expire_time.ToDatetime() > deployed.expire_time.ToDatetime()


def test_stop_of_a_trial_without_data_asks_the_runner_and_abandons_it(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner()
    candidate = runner_experiment(api, "stop-no-data", serve_runner(runner))
    deploy(api, candidate)

    stopped = api.trials.StopTrial(
        ts.StopTrialRequest(name=candidate.name, reason="no longer needed"),
        timeout=RPC_TIMEOUT_S,
    )
    assert stopped.status == tpb.TRIAL_STATUS_ABANDONED
    assert stopped.status_reason == "no longer needed"
    assert runner.stops == ["no longer needed"]
    assert json_format.MessageToDict(stopped.run_metadata) == {
        "name": "job-1",
        "stopped": True,
    }


def test_stop_of_a_candidate_is_failed_precondition_and_calls_no_runner(
    any_api: Api, serve_runner: Any
) -> None:
    api = any_api
    runner = ScriptedRunner()
    candidate = runner_experiment(api, "stop-candidate", serve_runner(runner))
    with pytest.raises(grpc.RpcError) as caught:
        api.trials.StopTrial(
            ts.StopTrialRequest(name=candidate.name), timeout=RPC_TIMEOUT_S
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CANDIDATE" in caught.value.details()
    assert runner.stops == []
    assert api.get_trial("stop-candidate", 0).status == tpb.TRIAL_STATUS_CANDIDATE


def test_concurrent_deploys_of_one_trial_start_one_job_and_agree(
    any_api: Api, serve_runner: Any
) -> None:
    runner = ScriptedRunner(delay_s=0.3)
    candidate = runner_experiment(any_api, "concurrent", serve_runner(runner))
    results: list[tpb.Trial] = []
    threads = [
        threading.Thread(target=lambda: results.append(deploy(any_api, candidate)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [r.status for r in results] == [tpb.TRIAL_STATUS_RUNNING] * 2
    assert results[0].run_metadata == results[1].run_metadata
    assert len(runner.keys) == 1


def test_runners_long_refusal_is_stored_cut_to_the_reason_limit(
    api: Api, serve_runner: Any
) -> None:
    from polytrial.server.service.lifecycle import MAX_REASON_CHARS

    runner = ScriptedRunner(refuse="traceback line " * 330)  # ~5 KB
    candidate = runner_experiment(api, "long-refusal", serve_runner(runner))

    failed = deploy(api, candidate)

    assert failed.status == tpb.TRIAL_STATUS_FAILED
    for text in (failed.status_reason, failed.deployment_error):
        assert len(text) == MAX_REASON_CHARS
        assert text.endswith("[truncated]")
        assert "traceback line" in text
