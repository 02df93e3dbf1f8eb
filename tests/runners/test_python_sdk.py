"""The Python runner SDK (`polytrial.runner`) over real loopback channels."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from polytrial.runner import Runner, Trial, TrialKind, TrialRefused, make_server
from polytrial.runner.service import DeploymentKeys
from polytrial.v1 import runner_service_pb2 as pb
from polytrial.v1 import runner_service_pb2_grpc as pb_grpc
from polytrial.v1 import values_pb2

pytestmark = pytest.mark.timeout(30)


class RecordingRunner(Runner):
    """Answers with what it saw; raises `error` when given one."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.seen: list[Trial] = []

    def run(self, trial: Trial, deployment_key: str) -> Mapping[str, Any]:
        self.seen.append(trial)
        if self.error is not None:
            raise self.error
        return {"name": f"job-{len(self.seen)}", "key": deployment_key}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[grpc.Server] = []
    channels: list[grpc.Channel] = []

    def start(runner: Runner) -> pb_grpc.RunnerServiceStub:
        server, port = make_server(runner)
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return pb_grpc.RunnerServiceStub(channel)

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(None)


def request(key: str = "k") -> pb.RunRequest:
    trial = pb.RunnerTrial(
        experiment_id="exp", trial_index=4, kind=pb.TRIAL_KIND_BATCH, metric_names=["m"]
    )
    arm = trial.arms.add(name="4_0", weight=2.0)
    arm.parameters["n"].CopyFrom(values_pb2.ParameterValue(int_value=3))
    arm.parameters["flag"].CopyFrom(values_pb2.ParameterValue(bool_value=True))
    arm.parameters["opt"].CopyFrom(values_pb2.ParameterValue(string_value="adam"))
    trial.run_metadata.update({"note": "kept"})
    return pb.RunRequest(trial=trial, deployment_key=key)


def test_runner_sees_typed_parameters_weights_kind_and_metadata(serve: Any) -> None:
    runner = RecordingRunner()
    response = serve(runner).Run(request(), timeout=5)
    assert json_format.MessageToDict(response.run_metadata) == {
        "name": "job-1",
        "key": "k",
    }
    [trial] = runner.seen
    assert trial.kind is TrialKind.BATCH
    assert (trial.experiment_id, trial.trial_index) == ("exp", 4)
    assert dict(trial.arms[0].parameters) == {"n": 3, "flag": True, "opt": "adam"}
    assert type(trial.arms[0].parameters["n"]) is int
    assert trial.arms[0].weight == 2.0
    assert trial.run_metadata == {"note": "kept"}
    assert list(trial.metric_names) == ["m"]


def test_refusal_keeps_its_code_and_message_and_is_not_remembered(serve: Any) -> None:
    runner = RecordingRunner(TrialRefused("quota exceeded"))
    stub = serve(runner)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Run(request(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == "quota exceeded"
    assert len(runner.seen) == 2


def test_unexpected_exception_is_internal_without_its_text(serve: Any) -> None:
    stub = serve(RecordingRunner(KeyError("secret-path")))
    with pytest.raises(grpc.RpcError) as caught:
        stub.Run(request(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in caught.value.details()


def test_optional_methods_are_unimplemented_by_default(serve: Any) -> None:
    stub = serve(RecordingRunner())
    trial = request().trial
    calls = [
        lambda: stub.PollTrialStatus(pb.PollTrialStatusRequest(trial=trial), timeout=5),
        lambda: stub.StopTrial(
            pb.RunnerServiceStopTrialRequest(trial=trial), timeout=5
        ),
        lambda: stub.FetchTrialData(pb.FetchTrialDataRequest(trial=trial), timeout=5),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_deployment_keys_share_the_first_answer_among_concurrent_repeats() -> None:
    keys = DeploymentKeys()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def start() -> pb.RunResponse:
        calls.append(1)
        started.set()
        release.wait(5)
        return pb.RunResponse()

    answers: list[pb.RunResponse] = []
    threads = [
        threading.Thread(target=lambda: answers.append(keys.run_once("k", start)))
        for _ in range(3)
    ]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert len(answers) == 3 and all(a is answers[0] for a in answers)


def test_deployment_keys_forget_the_oldest_beyond_capacity() -> None:
    keys = DeploymentKeys(capacity=2)
    calls: list[str] = []

    def start_for(key: str) -> pb.RunResponse:
        calls.append(key)
        return pb.RunResponse()

    for key in ["a", "b", "c", "a"]:
        keys.run_once(key, lambda key=key: start_for(key))
    assert calls == ["a", "b", "c", "a"]
    keys.run_once("c", lambda: start_for("c"))
    assert calls == ["a", "b", "c", "a"]


class OddMetadataRunner(Runner):
    """Returns `metadata` from run; records the stops it is asked for."""

    def __init__(self, metadata: Any, *, stoppable: bool = True) -> None:
        self.metadata = metadata
        self.stoppable = stoppable
        self.stops: list[tuple[dict[str, Any], str]] = []

    def run(self, trial: Trial, deployment_key: str) -> Any:
        return self.metadata

    def stop(self, trial: Trial, reason: str) -> Mapping[str, Any] | None:
        if not self.stoppable:
            return super().stop(trial, reason)
        self.stops.append((dict(trial.run_metadata), reason))
        return None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            {"name": "j", "when": datetime.datetime(2026, 1, 1)},
            "run metadata field 'when' is a datetime, which JSON cannot hold",
        ),
        (
            {"name": "j", "deep": {"list": [1, object()]}},
            "run metadata field 'deep.list[1]' is an object, which JSON cannot hold",
        ),
        (
            {"name": "j", "tags": {"a": {1, 2}}},
            "run metadata field 'tags.a' is a set, which JSON cannot hold",
        ),
        (
            {"name": "j", "by_id": {1: "a"}},
            "run metadata field 'by_id' has the key 1 (an int); "
            "JSON object keys are strings",
        ),
        (["j"], "run metadata is a list, not a dict with string keys"),
    ],
)
def test_run_metadata_json_cannot_hold_is_refused_naming_the_field_and_stops_the_job(
    serve: Any, metadata: Any, message: str
) -> None:
    runner = OddMetadataRunner(metadata)

    with pytest.raises(grpc.RpcError) as caught:
        serve(runner).Run(request(), timeout=5)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert message in caught.value.details()
    [(sent, reason)] = runner.stops
    assert reason == message
    # The stop carries the fields JSON can hold, so the job can be found.
    assert sent == ({"name": "j"} if isinstance(metadata, dict) else {})


def test_unjsonable_run_metadata_without_a_stop_hook_is_still_refused(
    serve: Any,
) -> None:
    runner = OddMetadataRunner({"when": datetime.date(2026, 1, 1)}, stoppable=False)

    with pytest.raises(grpc.RpcError) as caught:
        serve(runner).Run(request(), timeout=5)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "run metadata field 'when' is a date" in caught.value.details()


def test_json_run_metadata_of_every_kind_is_answered_unchanged(serve: Any) -> None:
    metadata = {"s": "x", "n": 1.5, "b": True, "z": None, "l": [1.0, "a", [], {}]}
    runner = OddMetadataRunner({**metadata, "t": ("a",), "o": {"k": {"k2": 2.0}}})

    response = serve(runner).Run(request(), timeout=5)

    assert json_format.MessageToDict(response.run_metadata) == {
        **metadata,
        "t": ["a"],
        "o": {"k": {"k2": 2.0}},
    }
    assert runner.stops == []
