"""Quasi-random generation: valid, new, reproducible arms."""

from __future__ import annotations

import math
from collections.abc import Set

import pytest
from _engine_protos import (
    choice_param,
    fixed_param,
    float_param,
    int_param,
    linear,
    order,
    sobol_request,
    space,
    space_pb,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polytrial.server.engine import (
    Parameterization,
    SearchSpace,
    generate,
    parse_search_space,
)
from polytrial.server.errors import InvalidArgument, SearchSpaceExhausted
from polytrial.v1 import experiment_pb2 as pb

pytestmark = pytest.mark.timeout(120)


def assert_valid_and_new(
    search_space: SearchSpace,
    arms: list[Parameterization],
    excluded: Set[str] = frozenset(),
) -> None:
    keys = [search_space.arm_key(arm) for arm in arms]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & set(excluded)
    for arm in arms:
        # The engine's own arms pass the checks a user's arm must pass, unchanged.
        checked = search_space.validate_parameterization(arm, field="arm")
        assert checked == arm
        assert all(type(checked[k]) is type(arm[k]) for k in arm)


def test_suggested_float_stays_within_bounds_after_rounding_and_log_space() -> None:
    bounded = space(
        [
            float_param("a", 0.1, 0.32121, digits=5),
            float_param("b", 1e-5, 0.32121, log_scale=True),
            float_param("c", 0.123456, 0.32125, digits=4),
            int_param("n", 1, 1000, log_scale=True),
        ]
    )
    result = generate(sobol_request(bounded, 256))
    for arm in result.arms:
        assert 0.1 <= arm["a"] <= 0.32121
        assert 1e-5 <= arm["b"] <= 0.32121
        assert 0.1235 <= arm["c"] <= 0.3212
        assert isinstance(arm["n"], int) and 1 <= arm["n"] <= 1000
    assert max(arm["a"] for arm in result.arms) > 0.31
    assert_valid_and_new(bounded, result.arms)


def test_same_seed_and_history_give_the_same_arms_and_the_sequence_continues() -> None:
    mixed = space(
        [
            float_param("x", 0, 1),
            int_param("n", 0, 9),
            choice_param("c", ["a", "b", "c"]),
        ]
    )
    once = generate(sobol_request(mixed, 6, seed=11))
    again = generate(sobol_request(mixed, 6, seed=11))
    assert once.arms == again.arms and once.sobol_draws == 6
    first = generate(sobol_request(mixed, 2, seed=11))
    rest = generate(sobol_request(mixed, 4, seed=11, sobol_draws=first.sobol_draws))
    assert first.arms + rest.arms == once.arms
    assert generate(sobol_request(mixed, 6, seed=12)).arms != once.arms


def test_pinned_values_appear_in_every_arm_from_the_first_c18() -> None:
    pinned_space = space(
        [float_param("x", 0, 1), int_param("n", 0, 9), fixed_param("f", "v")]
    )
    result = generate(sobol_request(pinned_space, 5, pinned={"n": 4}))
    assert [arm["n"] for arm in result.arms] == [4] * 5
    assert all(arm["f"] == "v" for arm in result.arms)


@pytest.mark.parametrize("dimension", [2, 6])
def test_thin_feasible_band_gives_feasible_distinct_arms(dimension: int) -> None:
    names = [f"x{i}" for i in range(1, dimension + 1)]
    band = space(
        [float_param(n, 0, 1) for n in names],
        [linear({"x1": 1, "x2": 1}, 0.51), linear({"x1": -1, "x2": -1}, -0.49)],
    )
    result = generate(sobol_request(band, 20))
    assert_valid_and_new(band, result.arms)
    sums = [arm["x1"] + arm["x2"] for arm in result.arms]  # type: ignore[operator]
    assert all(0.49 - 1e-9 <= s <= 0.51 + 1e-9 for s in sums)
    # Spread along the band rather than piled on its ends.
    assert len({round(arm["x1"], 2) for arm in result.arms}) >= 10  # type: ignore[arg-type]


def test_order_constraints_and_ints_are_respected() -> None:
    ordered = space(
        [int_param("low", 0, 20), int_param("high", 0, 20), float_param("x", 0, 1)],
        [order("low", "high"), linear({"low": 1, "high": 1}, 15)],
    )
    result = generate(sobol_request(ordered, 30))
    assert_valid_and_new(ordered, result.arms)
    assert all(arm["low"] <= arm["high"] for arm in result.arms)  # type: ignore[operator]


def test_ordered_choice_of_1001_floats_suggests_exactly_listed_values_c21() -> None:
    values = [round(i * 0.001, 3) for i in range(1001)]
    grid = space([choice_param("grid", values, ordered=True)])
    result = generate(sobol_request(grid, 20))
    assert all(
        any(arm["grid"] is v for v in grid.by_name["grid"].values)
        for arm in result.arms
    )  # type: ignore[union-attr]
    assert all(repr(arm["grid"]) == repr(round(arm["grid"], 3)) for arm in result.arms)  # type: ignore[arg-type]


def test_small_categorical_batch_has_no_duplicates_c03() -> None:
    params = [choice_param(f"b{i}", [True, False]) for i in range(6)]
    params += [choice_param(f"c{i}", [f"v{j}" for j in range(3 + i)]) for i in range(6)]
    categorical = space(params)
    batch = generate(sobol_request(categorical, 16))
    assert_valid_and_new(categorical, batch.arms)
    excluded = {categorical.arm_key(arm) for arm in batch.arms}
    draws = batch.sobol_draws
    for _ in range(16):
        single = generate(
            sobol_request(
                categorical, 1, excluded_keys=set(excluded), sobol_draws=draws
            )
        )
        assert_valid_and_new(categorical, single.arms, excluded)
        excluded.add(categorical.arm_key(single.arms[0]))
        draws = single.sobol_draws


def test_finite_space_of_324_arms_runs_out_cleanly_c04() -> None:
    grid = space(
        [
            choice_param(f"p{i}", list(range(size)))
            for i, size in enumerate([3, 3, 3, 4, 3])
        ]
    )
    excluded: set[str] = set()
    draws = 0
    for _ in range(324):
        result = generate(
            sobol_request(grid, 1, excluded_keys=set(excluded), sobol_draws=draws)
        )
        key = grid.arm_key(result.arms[0])
        assert key not in excluded
        excluded.add(key)
        draws = result.sobol_draws
    with pytest.raises(SearchSpaceExhausted) as caught:
        generate(sobol_request(grid, 1, excluded_keys=excluded, sobol_draws=draws))
    assert "search space is exhausted: all 324 arms" in caught.value.message


def test_batch_larger_than_what_is_left_is_refused_as_exhausted() -> None:
    tiny = space([choice_param("c", ["a", "b", "c"])])
    with pytest.raises(SearchSpaceExhausted) as caught:
        generate(sobol_request(tiny, 5))
    # No trial exists: the message must not claim the arms are in trials.
    assert "only 3 distinct arms remain of 3; asked for 5" in caught.value.message
    assert "in trials" not in caught.value.message
    assert caught.value.metadata["remaining"] == "3"


def test_batch_larger_than_what_is_left_counts_only_unused_arms() -> None:
    tiny = space([choice_param("c", ["a", "b", "c"])])
    excluded = {tiny.arm_key({"c": "b"})}
    with pytest.raises(SearchSpaceExhausted) as caught:
        generate(sobol_request(tiny, 3, excluded_keys=excluded))
    assert "only 2 distinct arms remain of 3; asked for 3" in caught.value.message


def test_exhaustion_counts_only_arms_matching_the_pins() -> None:
    tiny = space([choice_param("c", ["a", "b"]), choice_param("d", [1, 2])])
    first = generate(sobol_request(tiny, 2, pinned={"c": "a"}))
    excluded = {tiny.arm_key(arm) for arm in first.arms}
    with pytest.raises(SearchSpaceExhausted) as caught:
        generate(sobol_request(tiny, 1, pinned={"c": "a"}, excluded_keys=excluded))
    assert "all 2 arms with the pinned values" in caught.value.message
    assert generate(sobol_request(tiny, 2, excluded_keys=excluded)).arms


@st.composite
def search_spaces(draw: st.DrawFn) -> pb.SearchSpace:
    params: list[pb.Parameter] = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(["float", "log", "digits", "int", "choice", "fixed"])
        )
        lower = draw(st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 3)))
        width = draw(st.floats(0.01, 100).map(lambda v: round(v, 3)))
        name = f"p{i}"
        if kind == "float":
            params.append(float_param(name, lower, lower + width))
        elif kind == "log":
            low = abs(lower) + 1e-3
            params.append(float_param(name, low, low + width, log_scale=True))
        elif kind == "digits":
            params.append(
                float_param(
                    name, lower, lower + width + 1, digits=draw(st.integers(0, 4))
                )
            )
        elif kind == "int":
            params.append(
                int_param(
                    name,
                    math.floor(lower),
                    math.floor(lower) + draw(st.integers(1, 50)),
                )
            )
        elif kind == "choice":
            values = draw(
                st.lists(
                    st.text("abcde", min_size=1, max_size=3),
                    min_size=1,
                    max_size=5,
                    unique=True,
                )
            )
            params.append(choice_param(name, values, ordered=draw(st.booleans())))
        else:
            params.append(fixed_param(name, draw(st.sampled_from([1, 2.5, "s", True]))))
    ranges = [p.name for p in params if p.WhichOneof("kind") == "range"]
    constraints: list[pb.ParameterConstraint] = []
    if len(ranges) >= 2 and draw(st.booleans()):
        constraints.append(order(ranges[0], ranges[1]))
    return space_pb(params, constraints)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(search_spaces(), st.integers(1, 8), st.integers(0, 2**31))
def test_every_sobol_arm_satisfies_bounds_types_choices_and_constraints(
    proto: pb.SearchSpace, count: int, seed: int
) -> None:
    try:
        random_space = parse_search_space(proto)
    except InvalidArgument:
        # A drawn order constraint may leave no feasible point.
        return
    try:
        result = generate(sobol_request(random_space, count, seed=seed))
    except SearchSpaceExhausted:
        assert random_space.is_finite and (random_space.cardinality or 0) < count + 1000
        return
    assert len(result.arms) == count
    assert_valid_and_new(random_space, result.arms)


def test_integer_band_that_rounding_misses_is_hit_until_it_runs_out() -> None:
    # Only the six integer pairs with x1 + x2 == 5 are feasible: the projection
    # lands between grid points and the MILP repair finds the pairs.
    band = space(
        [int_param("x1", 0, 20), int_param("x2", 0, 20)],
        [linear({"x1": 1, "x2": 1}, 5.5), linear({"x1": -1, "x2": -1}, -4.6)],
    )
    result = generate(sobol_request(band, 6))
    assert_valid_and_new(band, result.arms)
    assert sorted((arm["x1"], arm["x2"]) for arm in result.arms) == [
        (i, 5 - i) for i in range(6)
    ]
    excluded = {band.arm_key(arm) for arm in result.arms}
    with pytest.raises(SearchSpaceExhausted) as caught:
        generate(sobol_request(band, 1, excluded_keys=excluded, sobol_draws=6))
    assert "all 6 arms" in caught.value.message
