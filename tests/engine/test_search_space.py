"""Arm identity and checks of user-chosen parameterizations."""

from __future__ import annotations

import pytest
from _engine_protos import (
    choice_param,
    fixed_param,
    float_param,
    int_param,
    linear,
    space,
)
from polytrial.server.errors import InvalidArgument

pytestmark = pytest.mark.timeout(60)


def test_near_duplicates_on_a_constraint_boundary_are_the_same_arm() -> None:
    simplex = space(
        [float_param(n, 0, 1) for n in "abc"], [linear({"a": 1, "b": 1, "c": 1}, 1)]
    )
    first = {"a": 0.2, "b": 0.3, "c": 0.5}
    second = {"a": 0.2 + 1e-12, "b": 0.3 - 1e-12, "c": 0.5}
    assert simplex.arm_key(first) == simplex.arm_key(second)
    assert simplex.arm_key(first) != simplex.arm_key(
        {"a": 0.2, "b": 0.3001, "c": 0.4999}
    )


def test_floats_compare_after_rounding_to_the_parameter_digits() -> None:
    rounded = space([float_param("x", 0, 1, digits=2)])
    assert rounded.arm_key({"x": 0.301}) == rounded.arm_key({"x": 0.3})
    assert rounded.arm_key({"x": 0.31}) != rounded.arm_key({"x": 0.3})


def test_bool_and_int_values_are_never_the_same_arm() -> None:
    mixed = space([fixed_param("f", 1)])
    assert mixed.arm_key({"f": True}) != mixed.arm_key({"f": 1})
    assert mixed.arm_key({"f": 1}) != mixed.arm_key({"f": "1"})


def test_negative_zero_and_zero_are_the_same_arm() -> None:
    signed = space([float_param("x", -1, 1)])
    assert signed.arm_key({"x": -0.0}) == signed.arm_key({"x": 0.0})


def test_valid_parameterization_is_normalized_and_fixed_values_filled_in() -> None:
    mixed = space(
        [
            int_param("n", 1, 10),
            float_param("x", 0, 1, digits=2),
            choice_param("c", [0.1, 0.2]),
            fixed_param("mode", "fast"),
        ]
    )
    result = mixed.validate_parameterization(
        {"n": 3.0, "x": 0.4567, "c": 0.30000000000000004 - 0.1}, field="arm.parameters"
    )
    assert result == {"n": 3, "x": 0.46, "c": 0.2, "mode": "fast"}
    assert type(result["n"]) is int


@pytest.mark.parametrize(
    ("params", "path", "words"),
    [
        ({"n": 3.5, "b": True}, "p.n", "needs an integer"),
        ({"n": True, "b": True}, "p.n", "needs an integer"),
        ({"n": 11, "b": True}, "p.n", "outside the bounds"),
        ({"n": 3, "b": 1}, "p.b", "not a value"),
        ({"n": 3}, "p.b", "missing"),
        ({"n": 3, "b": True, "zzz": 1}, "p.zzz", "unknown parameter"),
        ({"n": 3, "b": True, "mode": "slow"}, "p.mode", "fixed"),
    ],
)
def test_bad_parameterization_is_invalid_argument_naming_the_parameter(
    params: dict[str, object], path: str, words: str
) -> None:
    checked = space(
        [
            int_param("n", 1, 10),
            choice_param("b", [True, False]),
            fixed_param("mode", "fast"),
        ]
    )
    with pytest.raises(InvalidArgument) as caught:
        checked.validate_parameterization(params, field="p")  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == [path]
    assert words in caught.value.violations[0].description


def test_float_a_rounding_error_above_the_bound_is_put_on_the_bound() -> None:
    bounded = space([float_param("x", 0.1, 0.32121)])
    result = bounded.validate_parameterization({"x": 0.3212100000000002}, field="p")
    assert result["x"] == 0.32121
    with pytest.raises(InvalidArgument):
        bounded.validate_parameterization({"x": 0.3213}, field="p")


def test_parameterization_breaking_a_constraint_is_refused() -> None:
    constrained = space(
        [float_param("a", 0, 1), float_param("b", 0, 1)], [linear({"a": 1, "b": 1}, 1)]
    )
    with pytest.raises(InvalidArgument) as caught:
        constrained.validate_parameterization({"a": 0.6, "b": 0.6}, field="p")
    assert "constraint 0" in caught.value.violations[0].description
    assert constrained.validate_parameterization({"a": 0.3, "b": 0.7}, field="p")


def test_pins_out_of_range_or_unknown_are_refused_and_a_valid_pin_kept_c18() -> None:
    pinned = space([float_param("x", 0, 1), int_param("n", 1, 5)])
    with pytest.raises(InvalidArgument) as caught:
        pinned.validate_parameterization(
            {"x": 2.0}, field="pinned_parameters", partial=True
        )
    assert caught.value.violations[0].field == "pinned_parameters.x"
    with pytest.raises(InvalidArgument) as caught:
        pinned.validate_parameterization(
            {"nope": 1}, field="pinned_parameters", partial=True
        )
    assert caught.value.violations[0].field == "pinned_parameters.nope"
    assert pinned.validate_parameterization({"n": 2}, field="p", partial=True) == {
        "n": 2
    }


def test_pins_that_leave_constraints_unsatisfiable_are_refused() -> None:
    constrained = space(
        [float_param("a", 0, 1), float_param("b", 0, 1)], [linear({"a": 1, "b": 1}, 1)]
    )
    assert constrained.validate_parameterization({"a": 0.9}, field="p", partial=True)
    with pytest.raises(InvalidArgument) as caught:
        constrained.validate_parameterization(
            {"a": 0.9, "b": 0.9}, field="p", partial=True
        )
    assert "constraint" in caught.value.violations[0].description


def test_cardinality_counts_ints_digits_and_choices() -> None:
    finite = space(
        [
            int_param("n", 1, 4),
            float_param("x", 0, 1, digits=1),
            choice_param("c", ["a", "b"]),
        ]
    )
    assert finite.is_finite and finite.cardinality == 4 * 11 * 2
    infinite = space([float_param("x", 0, 1), choice_param("c", ["a", "b"])])
    assert not infinite.is_finite and infinite.cardinality is None
