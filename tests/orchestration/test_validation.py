"""Bad StartOrchestration, GetOrchestration and StopOrchestration requests:
the right code, the field named, and nothing stored."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from conftest import Process, Served, create_hartmann6
from polytrial.client import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    RangeParameter,
)
from polytrial.client.errors import from_rpc_error
from polytrial.v1 import orchestration_service_pb2 as pb
from polytrial.v1 import orchestration_service_pb2_grpc as pbg

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_trials": 0}, "options.max_trials"),
        ({"max_trials": 10_001}, "options.max_trials"),
        ({"max_trials": 5, "max_parallel_trials": -1}, "options.max_parallel_trials"),
        ({"max_trials": 5, "max_parallel_trials": 101}, "options.max_parallel_trials"),
        (
            {"max_trials": 5, "tolerated_failure_rate": 1.5},
            "options.tolerated_failure_rate",
        ),
        (
            {"max_trials": 5, "tolerated_failure_rate": math.nan},
            "options.tolerated_failure_rate",
        ),
        (
            {"max_trials": 5, "min_failed_trials_for_failure_check": 0},
            "options.min_failed_trials_for_failure_check",
        ),
        ({"max_trials": 5, "poll_interval_s": 0.0}, "options.poll_interval_s"),
        ({"max_trials": 5, "poll_interval_s": math.inf}, "options.poll_interval_s"),
        ({"max_trials": 5, "data_grace_period_s": -1.0}, "options.data_grace_period_s"),
        (
            {"max_trials": 5, "runner_unreachable_timeout_s": 1e9},
            "options.runner_unreachable_timeout_s",
        ),
        ({"max_trials": 5, "timeout_s": -5.0}, "options.timeout_s"),
    ],
)
def test_bad_option_is_invalid_argument_naming_the_field_and_stores_nothing(
    server: Served,
    options: dict[str, Any],
    field: str,
) -> None:
    client = server.client
    create_hartmann6(client, "bad", "127.0.0.1:1")

    with pytest.raises(InvalidArgumentError) as raised:
        client.start_orchestration("bad", **options)

    assert field in [v.field for v in raised.value.violations]
    with pytest.raises(NotFoundError):
        client.get_orchestration("bad")


def test_experiment_without_runner_is_failed_precondition(server: Served) -> None:
    client = server.client
    create_hartmann6(client, "norunner", None)

    with pytest.raises(FailedPreconditionError) as raised:
        client.start_orchestration("norunner", max_trials=3)

    assert raised.value.reason == "NO_RUNNER"
    with pytest.raises(NotFoundError):
        client.get_orchestration("norunner")


def test_objective_without_runner_or_service_source_is_failed_precondition(
    server: Served,
) -> None:
    client = server.client
    client.create_experiment(
        "nosource",
        parameters=[RangeParameter("x1", 0.0, 1.0)],
        objectives={"loss": "minimize"},
        runner="127.0.0.1:1",
    )

    with pytest.raises(FailedPreconditionError) as raised:
        client.start_orchestration("nosource", max_trials=3)

    assert raised.value.reason == "NO_METRIC_SOURCE"
    assert "'loss'" in str(raised.value)


def test_missing_experiment_or_orchestration_is_not_found(server: Served) -> None:
    client = server.client
    with pytest.raises(NotFoundError):
        client.start_orchestration("ghost", max_trials=3)
    with pytest.raises(NotFoundError):
        client.get_orchestration("ghost")
    with pytest.raises(NotFoundError):
        client.stop_orchestration("ghost")
    create_hartmann6(client, "never", "127.0.0.1:1")
    with pytest.raises(NotFoundError):
        client.get_orchestration("never")
    with pytest.raises(NotFoundError):
        client.stop_orchestration("never")


def test_second_start_while_running_is_failed_precondition_and_a_repeat_is_not(
    server: Served, runners: Callable[..., Process]
) -> None:
    runner = runners("example", job_s=30.0)
    client = server.client
    create_hartmann6(client, "twice", runner.address)
    channel = grpc.insecure_channel(client.address)
    stub = pbg.OrchestrationServiceStub(channel)
    request = pb.StartOrchestrationRequest(
        name="experiments/twice/orchestration",
        options=pb.OrchestrationOptions(max_trials=2, poll_interval_s=0.1),
        request_id="start-1",
    )
    try:
        first = stub.StartOrchestration(request, timeout=30)
        # The same request id repeats the start: same orchestration.
        repeat = stub.StartOrchestration(request, timeout=30)
        assert repeat.uid == first.uid

        with pytest.raises(FailedPreconditionError) as raised:
            client.start_orchestration("twice", max_trials=5)
        assert raised.value.reason == "ORCHESTRATION_RUNNING"
        assert client.get_orchestration("twice").uid == first.uid
        assert client.get_orchestration("twice").options.max_trials == 2
    finally:
        client.stop_orchestration("twice")
        channel.close()


@pytest.mark.parametrize(
    "name",
    ["experiments/x", "experiments/Bad/orchestration", "experiments/x/orchestrations"],
)
def test_malformed_name_is_invalid_argument(server: Served, name: str) -> None:
    channel = grpc.insecure_channel(server.client.address)
    stub = pbg.OrchestrationServiceStub(channel)
    try:
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetOrchestration(pb.GetOrchestrationRequest(name=name), timeout=30)
        typed = from_rpc_error(raised.value)
        assert isinstance(typed, InvalidArgumentError)
        assert [v.field for v in typed.violations] == ["name"]
    finally:
        channel.close()


def test_defaults_are_filled_in_and_documented_values_come_back(
    server: Served,
) -> None:
    client = server.client
    create_hartmann6(client, "defaults", "127.0.0.1:1")

    started = client.start_orchestration("defaults", max_trials=4)
    client.stop_orchestration("defaults")

    options = started.options
    assert options.max_parallel_trials == 1
    assert options.tolerated_failure_rate == 0.5
    assert options.min_failed_trials_for_failure_check == 3
    assert options.poll_interval_s == 1.0
    assert options.data_grace_period_s == 60.0
    assert options.runner_unreachable_timeout_s == 60.0
    assert options.timeout_s == 0.0


def test_retried_start_returns_its_orchestration_even_after_it_ended(
    server: Served,
) -> None:
    client = server.client
    create_hartmann6(client, "retried", "127.0.0.1:1")
    channel = grpc.insecure_channel(client.address)
    stub = pbg.OrchestrationServiceStub(channel)
    request = pb.StartOrchestrationRequest(
        name="experiments/retried/orchestration",
        options=pb.OrchestrationOptions(max_trials=2),
        request_id="start-once",
    )
    try:
        first = stub.StartOrchestration(request, timeout=30)
        client.stop_orchestration("retried")

        repeat = stub.StartOrchestration(request, timeout=30)

        assert repeat.uid == first.uid
        assert repeat.state == pb.ORCHESTRATION_STATE_STOPPED
    finally:
        channel.close()


def test_reused_request_id_with_other_options_is_invalid_argument_request_id_reused(
    server: Served,
) -> None:
    client = server.client
    create_hartmann6(client, "reused", "127.0.0.1:1")
    channel = grpc.insecure_channel(client.address)
    stub = pbg.OrchestrationServiceStub(channel)

    def start(options: pb.OrchestrationOptions) -> pb.Orchestration:
        request = pb.StartOrchestrationRequest(
            name="experiments/reused/orchestration",
            options=options,
            request_id="same-id",
        )
        return stub.StartOrchestration(request, timeout=30)

    try:
        first = start(pb.OrchestrationOptions(max_trials=2))
        # Sending a default explicitly asks the same as leaving it out.
        repeat = start(pb.OrchestrationOptions(max_trials=2, max_parallel_trials=1))
        assert repeat.uid == first.uid

        with pytest.raises(grpc.RpcError) as raised:
            start(pb.OrchestrationOptions(max_trials=9, max_parallel_trials=3))
        typed = from_rpc_error(raised.value)
        assert isinstance(typed, InvalidArgumentError)
        assert typed.reason == "REQUEST_ID_REUSED"
        assert [v.field for v in typed.violations] == ["request_id"]
        assert "max_trials" in str(typed) and "max_parallel_trials" in str(typed)

        # Nothing changed: the first orchestration stands, with its options.
        current = client.get_orchestration("reused")
        assert current.uid == first.uid
        assert current.options.max_trials == 2
        assert current.options.max_parallel_trials == 1
    finally:
        client.stop_orchestration("reused")
        channel.close()


def test_too_long_request_id_is_limit_exceeded_as_for_suggest_trials(
    server: Served,
) -> None:
    client = server.client
    create_hartmann6(client, "longid", "127.0.0.1:1")
    channel = grpc.insecure_channel(client.address)
    stub = pbg.OrchestrationServiceStub(channel)
    request = pb.StartOrchestrationRequest(
        name="experiments/longid/orchestration",
        options=pb.OrchestrationOptions(max_trials=2),
        request_id="x" * 256,
    )
    try:
        with pytest.raises(grpc.RpcError) as raised:
            stub.StartOrchestration(request, timeout=30)
        typed = from_rpc_error(raised.value)
        assert isinstance(typed, InvalidArgumentError)
        assert typed.reason == "LIMIT_EXCEEDED"
        assert [v.field for v in typed.violations] == ["request_id"]
        with pytest.raises(NotFoundError):
            client.get_orchestration("longid")
    finally:
        channel.close()
