"""Runner and metric-service addresses are checked at creation: gRPC would take
a malformed one silently (a port of 116617 wraps around to another runner)."""

from __future__ import annotations

import grpc
import pytest
from polytrial.server.service.config import address_problem
from polytrial.v1 import experiment_pb2 as epb
from polytrial_testkit import (
    Api,
    experiment,
    experiment_ids,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

BAD_ADDRESSES = [
    "127.0.0.1:116617",
    "127.0.0.1:0",
    "127.0.0.1",
    "not an address at all",
    "[::1",
    "http://127.0.0.1:51081",
    "127.0.0.1:51081 ",
    "x" * 600 + ":1",
    "unix:",
    "::1:50051",
]
GOOD_ADDRESSES = [
    "127.0.0.1:51081",
    "localhost:1",
    "[::1]:65535",
    "runner.internal:50061",
    "unix:/tmp/runner.sock",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_malformed_runner_address_is_invalid_argument_and_nothing_is_stored(
    api: Api, address: str
) -> None:
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: api.create(experiment("addr", runner=address)),
    )

    assert violated_fields(error) == ["experiment.runner.address"]
    assert experiment_ids(api) == []


def test_a_malformed_metric_service_address_is_invalid_argument(api: Api) -> None:
    message = experiment("svc")
    message.metric_sources.add(
        metric_name="loss",
        kind=epb.METRIC_SOURCE_KIND_SERVICE,
        address="127.0.0.1:99999",
    )

    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: api.create(message))

    assert violated_fields(error) == ["experiment.metric_sources[0].address"]
    assert experiment_ids(api) == []


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_well_formed_addresses_pass(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_malformed_addresses_are_named(address: str) -> None:
    assert address_problem(address) is not None
