"""Status codes from a real server come back as typed exceptions with details."""

from __future__ import annotations

import grpc
import pytest
from polytrial.client import (
    AlreadyExistsError,
    ChoiceParameter,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PolytrialError,
    RangeParameter,
    SearchSpaceExhaustedError,
)

pytestmark = pytest.mark.timeout(60)


def _create(client: Client, experiment_id: str, **kwargs: object) -> None:
    options: dict[str, object] = {
        "parameters": [RangeParameter("x", 0.0, 1.0)],
        "objectives": {"y": "minimize"},
        "generation_strategy": "sobol",
    }
    options.update(kwargs)
    client.create_experiment(experiment_id, **options)  # type: ignore[arg-type]


def test_invalid_argument_carries_field_violations_and_stores_nothing(
    client: Client, experiment_id: str
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        _create(client, experiment_id, parameters=[RangeParameter("n", 50, 1)])

    error = raised.value
    assert isinstance(error.__cause__, grpc.RpcError)
    assert error.__cause__.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations, "no BadRequest field violations were read"
    (violation,) = error.violations
    assert violation.field.startswith("experiment.search_space.parameters[0]")
    assert "'n'" in violation.description
    assert "'n'" in error.message
    with pytest.raises(NotFoundError):
        client.get_experiment(experiment_id)


def test_duplicate_experiment_is_already_exists_with_its_resource_name(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    with pytest.raises(AlreadyExistsError) as raised:
        _create(client, experiment_id)
    assert raised.value.metadata.get("resource_name") == f"experiments/{experiment_id}"
    assert raised.value.reason == "ALREADY_EXISTS"


def test_missing_experiment_and_trial_are_not_found(
    client: Client, experiment_id: str
) -> None:
    with pytest.raises(NotFoundError) as raised:
        client.get_experiment(experiment_id)
    assert experiment_id in raised.value.message

    _create(client, experiment_id)
    client.suggest_trials(experiment_id, 3)
    with pytest.raises(NotFoundError) as trial_raised:
        client.get_trial((experiment_id, 7))
    assert "7" in trial_raised.value.message
    for call in (
        lambda: list(client.list_trials("no_such_experiment")),
        lambda: client.suggest("no_such_experiment"),
        lambda: client.delete_experiment("no_such_experiment"),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_completing_twice_is_failed_precondition_and_keeps_the_first_value(
    client: Client, experiment_id: str
) -> None:
    _create(client, experiment_id)
    trial = client.suggest(experiment_id)
    client.complete_trial(trial, 1.0)
    with pytest.raises(FailedPreconditionError) as raised:
        client.complete_trial(trial, 999.0)
    assert not isinstance(raised.value, SearchSpaceExhaustedError)
    stored = client.get_trial(trial)
    assert [o.mean for o in stored.observations] == [1.0]


def test_an_exhausted_space_is_search_space_exhausted(
    client: Client, experiment_id: str
) -> None:
    _create(
        client,
        experiment_id,
        parameters=[ChoiceParameter("c", ["a", "b"]), ChoiceParameter("d", [1, 2])],
    )
    trials = client.suggest_trials(experiment_id, 4)
    assert len({tuple(sorted(t.parameters.items())) for t in trials}) == 4

    with pytest.raises(SearchSpaceExhaustedError) as raised:
        client.suggest(experiment_id)
    assert isinstance(raised.value, FailedPreconditionError)
    assert raised.value.reason == "SEARCH_SPACE_EXHAUSTED"
    assert isinstance(raised.value.__cause__, grpc.RpcError)
    assert len(list(client.list_trials(experiment_id))) == 4


def test_every_typed_error_is_a_polytrial_error(
    client: Client, experiment_id: str
) -> None:
    with pytest.raises(PolytrialError):
        client.get_experiment(experiment_id)


@pytest.mark.parametrize("address", ["", "nohost", "localhost:", "  "])
def test_an_address_without_a_port_is_refused_at_once(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        Client(address)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:0", "127.0.0.1:-1", "h:http"],
)
def test_a_port_outside_1_to_65535_is_refused_at_once(address: str) -> None:
    # gRPC itself would dial 99999 as 34463 and -1 as 65535.
    with pytest.raises(ValueError, match="from 1 to 65535"):
        Client(address)


@pytest.mark.parametrize(
    "address",
    ["localhost:50051", "[::1]:65535", "h:1", "unix:/tmp/x.sock", "dns:///h:1"],
)
def test_well_formed_addresses_make_a_client(address: str) -> None:
    Client(address).close()
