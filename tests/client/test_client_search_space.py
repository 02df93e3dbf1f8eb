"""The client's helpers and plain-dict forms turn into the API's messages and back."""

from __future__ import annotations

import pytest
from polytrial.client import (
    ChoiceParameter,
    FixedParameter,
    GenerationStrategy,
    LinearConstraint,
    Objective,
    OrderConstraint,
    OutcomeConstraint,
    RangeParameter,
)
from polytrial.client.search_space import (
    constraint_from_proto,
    constraint_to_proto,
    parameter_from_proto,
    parameter_to_proto,
    parse_constraint,
    parse_objectives,
    parse_outcome_constraint,
    parse_parameter,
    strategy_from_proto,
    strategy_to_proto,
)
from polytrial.v1 import experiment_pb2

pytestmark = pytest.mark.timeout(30)


def test_range_parameter_with_int_bounds_is_an_int_parameter() -> None:
    assert RangeParameter("n", 1, 8).type == "int"
    assert RangeParameter("x", 1, 8.5).type == "float"
    assert RangeParameter("x", 1, 8, type="float").type == "float"


def test_range_parameter_rejects_an_unknown_type() -> None:
    with pytest.raises(ValueError, match="'float' or 'int'"):
        RangeParameter("x", 0, 1, type="double")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "parameter",
    [
        RangeParameter("lr", 1e-4, 0.1, log_scale=True, digits=5),
        RangeParameter("layers", 1, 8),
        ChoiceParameter("act", ["relu", "tanh"], is_ordered=False),
        ChoiceParameter("size", [16, 32, 64], is_ordered=True),
        ChoiceParameter("flag", [True, False]),
        FixedParameter("seed", 7),
        FixedParameter("mode", "fast"),
    ],
)
def test_parameter_survives_the_proto_round_trip_with_its_value_types(
    parameter: RangeParameter | ChoiceParameter | FixedParameter,
) -> None:
    back = parameter_from_proto(parameter_to_proto(parameter))
    assert back == parameter
    if isinstance(parameter, ChoiceParameter):
        assert isinstance(back, ChoiceParameter)
        assert [type(v) for v in back.values] == [type(v) for v in parameter.values]


def test_int_range_bounds_come_back_as_ints() -> None:
    back = parameter_from_proto(parameter_to_proto(RangeParameter("n", 1, 8)))
    assert isinstance(back, RangeParameter)
    assert isinstance(back.lower, int) and isinstance(back.upper, int)


def test_plain_dicts_read_like_ax_parameters() -> None:
    assert parse_parameter(
        {"name": "lr", "type": "range", "bounds": [1e-4, 0.1], "log_scale": True}
    ) == RangeParameter("lr", 1e-4, 0.1, type="float", log_scale=True)
    assert parse_parameter(
        {"name": "n", "type": "range", "bounds": [1, 4]}
    ) == RangeParameter("n", 1, 4, type="int")
    assert parse_parameter(
        {"name": "n", "type": "range", "bounds": [1, 4], "value_type": "float"}
    ) == RangeParameter("n", 1, 4, type="float")
    assert parse_parameter(
        {"name": "c", "type": "choice", "values": ["a", "b"], "is_ordered": True}
    ) == ChoiceParameter("c", ["a", "b"], is_ordered=True)
    assert parse_parameter({"name": "f", "type": "fixed", "value": 3}) == (
        FixedParameter("f", 3)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "type": "ranged", "bounds": [0, 1]}, "'range', 'choice'"),
        ({"name": "x", "type": "range"}, "bounds"),
        ({"name": "x", "type": "choice"}, "values"),
        ({"name": "x", "type": "fixed"}, "value"),
        ({"type": "fixed", "value": 1}, "name"),
    ],
)
def test_malformed_parameter_dict_names_what_is_missing(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_parameter(spec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x1 <= x2", OrderConstraint("x1", "x2")),
        ("x2 >= x1", OrderConstraint("x1", "x2")),
        ("x1 + x2 <= 1", LinearConstraint({"x1": 1.0, "x2": 1.0}, 1.0)),
        ("2*x1 - 0.5*x2 <= 3", LinearConstraint({"x1": 2.0, "x2": -0.5}, 3.0)),
        ("x1 + x2 >= 0.5", LinearConstraint({"x1": -1.0, "x2": -1.0}, -0.5)),
        ("1e-3*x1 + x2 <= 2", LinearConstraint({"x1": 0.001, "x2": 1.0}, 2.0)),
        ("-x1 <= 0", LinearConstraint({"x1": -1.0}, 0.0)),
    ],
)
def test_constraint_strings_become_constraints(
    text: str, expected: LinearConstraint | OrderConstraint
) -> None:
    assert parse_constraint(text) == expected


@pytest.mark.parametrize("text", ["x1 + x2", "x1 + x2 <= y <= 3", "x1 + 3 <= 2", ""])
def test_unreadable_constraint_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="constraint"):
        parse_constraint(text)


def test_constraints_survive_the_proto_round_trip() -> None:
    for constraint in (
        LinearConstraint({"x1": 1.0, "x2": -2.0}, 0.5),
        OrderConstraint("a", "b"),
    ):
        assert constraint_from_proto(constraint_to_proto(constraint)) == constraint


def test_objectives_need_a_direction() -> None:
    assert parse_objectives({"loss": "minimize", "acc": "maximize"}) == [
        Objective("loss", minimize=True),
        Objective("acc", minimize=False),
    ]
    with pytest.raises(TypeError, match="direction"):
        parse_objectives("loss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        parse_objectives({"loss": "min"})


def test_outcome_constraint_strings() -> None:
    assert parse_outcome_constraint("acc >= 0.9") == OutcomeConstraint("acc", ">=", 0.9)
    assert parse_outcome_constraint("mem<=2e3") == OutcomeConstraint("mem", "<=", 2000)
    with pytest.raises(ValueError, match="outcome constraint"):
        parse_outcome_constraint("acc > 0.9")


def test_generation_strategy_round_trip_keeps_unset_fields_unset() -> None:
    message = strategy_to_proto(GenerationStrategy(kind="sobol", seed=3))
    assert message.kind == experiment_pb2.GENERATOR_KIND_SOBOL
    assert not message.HasField("num_initial_trials")
    assert strategy_from_proto(message) == GenerationStrategy(kind="sobol", seed=3)
    with pytest.raises(ValueError, match="unknown"):
        strategy_to_proto(GenerationStrategy(kind="random"))  # type: ignore[arg-type]
