"""Feasible grid points of constraint polytopes that mix continuous and grids."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _engine_protos import float_param, int_param, linear, order, sobol_request, space
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from polytrial.server.engine import GeneratorKind, SearchSpace, generate
from polytrial.server.engine.polytope import find_feasible_point, project_to_feasible
from polytrial.server.engine.search_space import RangeParameter
from polytrial.server.errors import InvalidArgument
from polytrial.v1 import experiment_pb2 as pb

pytestmark = pytest.mark.timeout(120)


def assert_feasible_grid_point(search_space: SearchSpace, vector: np.ndarray) -> None:
    assert search_space.satisfies_constraints(vector[None, :])[0]
    for param, value in zip(search_space.range_parameters, vector, strict=True):
        assert param.lower <= value <= param.upper
        assert param.snap(float(value)) == value  # on the parameter's grid


def test_order_between_a_continuous_float_and_a_digits_float_suggests_seed_0() -> None:
    # Regression (found by the property test, then through the API): a Sobol
    # point with p0 > p1 is projected, rounding p1 breaks p0 <= p1 again, and
    # the L1 repair MILP had constraint rows of 3 columns next to rows of 6:
    # scipy "Mismatching dimensions along axis 1: {3, 6}" became INTERNAL.
    milp_case = space(
        [
            float_param("p0", 0, 1),
            float_param("p1", -1.5, 0.5, digits=0),
            float_param("p2", 0, 1),
        ],
        [order("p0", "p1")],
    )
    request = sobol_request(milp_case, 1)
    request = dataclasses.replace(
        request,
        strategy=dataclasses.replace(
            request.strategy, kind=GeneratorKind.BAYESIAN, seed=0
        ),
    )

    result = generate(request)

    (arm,) = result.arms
    assert arm["p0"] <= arm["p1"] and arm["p1"] in (0.0, -1.0)


MIXES = {
    "float+digits": [float_param("a", 0, 1), float_param("b", -1.5, 0.5, digits=0)],
    "digits+float": [float_param("a", -0.5, 1.5, digits=1), float_param("b", 0, 1)],
    "float+int": [float_param("a", 0, 3.7), int_param("b", -2, 3)],
    "int+digits+float": [
        int_param("a", 0, 4),
        float_param("b", 0, 2.5, digits=0),
        float_param("c", 0, 1),
    ],
    "log+digits": [
        float_param("a", 0.01, 2, log_scale=True),
        float_param("b", 0, 2, digits=1),
    ],
}
CONSTRAINTS = {
    "order": lambda names: [order(names[0], names[1])],
    "linear": lambda names: [linear({n: 1.0 for n in names}, 1.3)],
    "band": lambda names: [
        linear({n: 1.0 for n in names}, 1.6),
        linear({n: -1.0 for n in names}, -0.6),
    ],
}


@pytest.mark.parametrize("constraint", sorted(CONSTRAINTS))
@pytest.mark.parametrize("mix", sorted(MIXES))
def test_projection_of_mixed_continuous_and_grid_parameters_is_a_feasible_grid_point(
    mix: str, constraint: str
) -> None:
    params = MIXES[mix]
    mixed = space(params, CONSTRAINTS[constraint]([p.name for p in params]))
    rng = np.random.default_rng(0)
    lower = np.array([p.lower for p in mixed.range_parameters])
    upper = np.array([p.upper for p in mixed.range_parameters])

    for _ in range(25):
        point = lower + rng.random(len(lower)) * (upper - lower)
        projected = project_to_feasible(mixed, point)
        assert projected is not None
        assert_feasible_grid_point(mixed, projected)
    found = find_feasible_point(mixed)
    assert found is not None
    assert_feasible_grid_point(mixed, found)


def test_projection_with_a_pinned_continuous_parameter_keeps_the_pin() -> None:
    mixed = space(
        [float_param("a", 0, 1), float_param("b", -1.5, 0.5, digits=0)],
        [order("a", "b")],
    )
    projected = project_to_feasible(mixed, np.array([0.9, -1.2]), {"a": 0.0})
    assert projected is not None
    assert projected[0] == 0.0
    assert_feasible_grid_point(mixed, projected)


@st.composite
def mixed_spaces(draw: st.DrawFn) -> SearchSpace:
    params: list[pb.Parameter] = []
    for i in range(draw(st.integers(2, 4))):
        lower = draw(st.integers(-3, 2)) / 2
        width = draw(st.integers(1, 8)) / 2
        kind = draw(st.sampled_from(["float", "digits", "int"]))
        if kind == "float":
            params.append(float_param(f"p{i}", lower, lower + width))
        elif kind == "digits":
            digits = draw(st.integers(0, 2))
            params.append(float_param(f"p{i}", lower, lower + width, digits=digits))
        else:
            params.append(int_param(f"p{i}", int(lower), int(lower) + int(width) + 1))
    names = [p.name for p in params]
    constraints = [order(names[0], names[1])]
    if draw(st.booleans()):
        constraints.append(linear({n: 1.0 for n in names}, draw(st.integers(0, 4))))
    try:
        return space(params, constraints)
    except InvalidArgument:
        assume(False)  # the drawn constraints leave no feasible grid point
        raise


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mixed_spaces(), st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_every_projection_of_a_mixed_space_is_a_feasible_grid_point(
    mixed: SearchSpace, unit: list[float]
) -> None:
    params: tuple[RangeParameter, ...] = mixed.range_parameters
    point = np.array(
        [p.lower + u * (p.upper - p.lower) for p, u in zip(params, unit, strict=False)]
    )
    projected = project_to_feasible(mixed, point)
    assert projected is not None
    assert_feasible_grid_point(mixed, projected)
