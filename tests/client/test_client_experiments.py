"""Experiments through the client: definitions round-trip, pages, updates, deletes."""

from __future__ import annotations

from typing import Any

import pytest
from polytrial.client import (
    AlreadyExistsError,
    ChoiceParameter,
    Client,
    FixedParameter,
    GenerationStrategy,
    InvalidArgumentError,
    LinearConstraint,
    NotFoundError,
    Objective,
    OrderConstraint,
    OutcomeConstraint,
    RangeParameter,
    TrialStatus,
)
from polytrial.client.values import MAX_STRUCT_DEPTH

pytestmark = pytest.mark.timeout(60)

PARAMETERS: list[RangeParameter | ChoiceParameter | FixedParameter] = [
    RangeParameter("lr", 1e-4, 1e-1, log_scale=True),
    RangeParameter("x1", 0.0, 1.0, digits=3),
    RangeParameter("x2", 0.0, 1.0),
    RangeParameter("layers", 1, 8),
    ChoiceParameter("act", ["relu", "tanh", "gelu"]),
    ChoiceParameter("width", [32, 64, 128], is_ordered=True),
    ChoiceParameter("bias", [True, False]),
    FixedParameter("seed", 7),
]


def test_a_full_definition_comes_back_as_given(
    client: Client, experiment_id: str
) -> None:
    created = client.create_experiment(
        experiment_id,
        description="all the parts",
        parameters=PARAMETERS,
        parameter_constraints=["x1 + x2 <= 1.5", "x1 <= x2"],
        objectives={"loss": "minimize"},
        outcome_constraints=["acc >= 0.5"],
        tracking_metrics=["acc", "time"],
        generation_strategy=GenerationStrategy("sobol", num_initial_trials=3, seed=11),
        properties={"owner": "ml-team", "tags": ["a", "b"]},
        status_quo={
            "lr": 0.01,
            "x1": 0.5,
            "x2": 0.5,
            "layers": 2,
            "act": "relu",
            "width": 64,
            "bias": True,
            "seed": 7,
        },
    )
    fetched = client.get_experiment(experiment_id)

    for experiment in (created, fetched):
        assert experiment.name == f"experiments/{experiment_id}"
        assert experiment.description == "all the parts"
        assert experiment.parameters == tuple(PARAMETERS)
        assert experiment.parameter_constraints == (
            LinearConstraint({"x1": 1.0, "x2": 1.0}, 1.5),
            OrderConstraint("x1", "x2"),
        )
        assert experiment.objectives == (Objective("loss", minimize=True),)
        assert experiment.objective == Objective("loss", minimize=True)
        assert experiment.outcome_constraints == (OutcomeConstraint("acc", ">=", 0.5),)
        assert experiment.tracking_metrics == ("acc", "time")
        assert experiment.generation_strategy == GenerationStrategy("sobol", 3, 11)
        assert experiment.properties == {"owner": "ml-team", "tags": ["a", "b"]}
        assert experiment.status_quo is not None
        assert experiment.status_quo["layers"] == 2
        assert type(experiment.status_quo["layers"]) is int
        assert experiment.create_time is not None
    assert fetched.raw.experiment_id == experiment_id


def test_plain_dicts_define_the_same_experiment_as_helpers(
    client: Client, experiment_id: str
) -> None:
    from_dicts = client.create_experiment(
        experiment_id,
        parameters=[
            {"name": "lr", "type": "range", "bounds": [1e-4, 1e-1], "log_scale": True},
            {"name": "layers", "type": "range", "bounds": [1, 8]},
            {"name": "act", "type": "choice", "values": ["relu", "tanh"]},
            {"name": "seed", "type": "fixed", "value": 7},
        ],
        objectives={"loss": "minimize"},
    )
    assert from_dicts.parameters == (
        RangeParameter("lr", 1e-4, 1e-1, log_scale=True),
        RangeParameter("layers", 1, 8),
        ChoiceParameter("act", ["relu", "tanh"]),
        FixedParameter("seed", 7),
    )
    # The default strategy is Sobol, then Bayesian optimization.
    assert from_dicts.generation_strategy.kind == "bayesian"


def test_exist_ok_returns_the_existing_experiment_only_when_it_matches(
    client: Client, experiment_id: str
) -> None:
    definition = {
        "parameters": [RangeParameter("x", 0.0, 1.0)],
        "objectives": {"y": "minimize"},
    }
    first = client.create_experiment(experiment_id, **definition)  # type: ignore[arg-type]
    again = client.create_experiment(experiment_id, exist_ok=True, **definition)  # type: ignore[arg-type]
    assert again.create_time == first.create_time

    with pytest.raises(AlreadyExistsError, match="not the ones asked for"):
        client.create_experiment(
            experiment_id,
            parameters=[RangeParameter("z", 0.0, 1.0)],
            objectives={"y": "minimize"},
            exist_ok=True,
        )


def test_list_experiments_walks_every_page_once(
    client: Client, experiment_id: str
) -> None:
    ids = [f"{experiment_id[:50]}_{n}" for n in range(5)]
    for each in ids:
        client.create_experiment(
            each,
            parameters=[RangeParameter("x", 0.0, 1.0)],
            objectives={"y": "maximize"},
        )
    listed = [e.experiment_id for e in client.list_experiments(page_size=2)]
    assert len(listed) == len(set(listed))
    assert [each for each in listed if each in ids] == ids


def test_negative_page_size_is_invalid_argument(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="page_size"):
        next(client.list_experiments(page_size=-1))


def test_update_changes_only_what_is_given(client: Client, experiment_id: str) -> None:
    client.create_experiment(
        experiment_id,
        parameters=[RangeParameter("x", 0.0, 1.0)],
        objectives={"y": "minimize"},
        description="before",
        properties={"k": "v"},
    )
    updated = client.update_experiment(experiment_id, description="after")
    assert updated.description == "after"
    assert updated.properties == {"k": "v"}

    updated = client.update_experiment(experiment_id, properties={"k2": "v2"})
    assert updated.description == "after"
    assert client.get_experiment(experiment_id).properties == {"k2": "v2"}

    with pytest.raises(ValueError, match="description"):
        client.update_experiment(experiment_id)


def test_delete_removes_the_experiment_and_its_trials(
    client: Client, experiment_id: str
) -> None:
    client.create_experiment(
        experiment_id,
        parameters=[RangeParameter("x", 0.0, 1.0)],
        objectives={"y": "minimize"},
        generation_strategy="sobol",
    )
    trial = client.suggest(experiment_id)
    client.complete_trial(trial, 0.5)
    assert client.get_experiment(experiment_id).trial_counts == {
        TrialStatus.COMPLETED: 1
    }

    client.delete_experiment(experiment_id)
    with pytest.raises(NotFoundError):
        client.get_experiment(experiment_id)
    with pytest.raises(NotFoundError):
        client.get_trial(trial)
    with pytest.raises(NotFoundError):
        client.delete_experiment(experiment_id)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (["x: float [0, 1]"], r"^parameters\[0\] must be a RangeParameter, "),
        ([RangeParameter("x", 0.0, 1.0), 5], r"^parameters\[1\] must be .* not int 5"),
        ({"name": "x", "type": "range"}, r"^parameters must be a list of "),
        ("x", r"^parameters must be a list of "),
    ],
)
def test_parameters_of_the_wrong_type_are_a_type_error_naming_the_item(
    client: Client, experiment_id: str, parameters: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        client.create_experiment(
            experiment_id,
            parameters=parameters,  # type: ignore[arg-type]
            objectives={"y": "minimize"},
        )
    with pytest.raises(NotFoundError):
        client.get_experiment(experiment_id)


def nested(levels: int) -> dict[str, object]:
    """A dict `levels` deep counting itself: nested(2) == {"k": {}}."""
    data: dict[str, object] = {}
    for _ in range(levels - 1):
        data = {"k": data}
    return data


def test_properties_as_deep_as_the_limit_round_trip_and_deeper_name_the_path(
    client: Client, experiment_id: str
) -> None:
    deepest = nested(MAX_STRUCT_DEPTH)
    created = client.create_experiment(
        experiment_id,
        parameters=[RangeParameter("x", 0.0, 1.0)],
        objectives={"y": "minimize"},
        properties=deepest,
    )
    assert created.properties == deepest

    for levels in (MAX_STRUCT_DEPTH + 1, MAX_STRUCT_DEPTH + 10):
        with pytest.raises(ValueError, match=r"^properties\['k'\]\['k'\].* nests"):
            client.update_experiment(experiment_id, properties=nested(levels))
    assert client.get_experiment(experiment_id).properties == deepest


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({1: "a"}, r"properties has the key 1, a int; JSON object keys are str"),
        ({"a": {1, 2}}, r"properties\['a'\] is a set"),
        ({"a": [1, {"b": object()}]}, r"properties\['a'\]\[1\]\['b'\] is a object"),
        ({"a": {"b": {2: 0}}}, r"properties\['a'\]\['b'\] has the key 2"),
    ],
)
def test_properties_json_cannot_hold_are_a_type_error_naming_the_path(
    client: Client, experiment_id: str, properties: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        client.create_experiment(
            experiment_id,
            parameters=[RangeParameter("x", 0.0, 1.0)],
            objectives={"y": "minimize"},
            properties=properties,
        )
    with pytest.raises(NotFoundError):
        client.get_experiment(experiment_id)
