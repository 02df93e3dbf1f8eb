"""Points inside the constraint polytope of a search space's range parameters.

The range parameters span a box; linear and order constraints cut it down to a
polytope `{x in box : A x <= b}` (in the parameters' own, non-log units). Ints
and floats with `digits` live on grids, so "feasible" means a grid point of the
polytope: the checks here are mixed-integer programs (SciPy's HiGHS `milp`),
with grid values written `x = k * scale` for an integer `k`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from polytrial.server.engine.search_space import (
    CONSTRAINT_RTOL,
    FloatArray,
    SearchSpace,
)
from scipy.optimize import Bounds, LinearConstraint, milp, minimize

# Relative margin past HiGHS's primal feasibility tolerance (1e-7 by default).
_SOLVER_MARGIN = 1e-6


def find_feasible_point(
    space: SearchSpace, pins: Mapping[str, float] | None = None
) -> FloatArray | None:
    """Returns some feasible vector of range values (r), or None if none exists.

    Args:
        space: The search space.
        pins: Range parameters held at a value.
    """
    return _nearest_grid_point(space, None, pins or {})


def project_to_feasible(
    space: SearchSpace, point: FloatArray, pins: Mapping[str, float] | None = None
) -> FloatArray | None:
    """Moves a vector of range values (r) to a nearby feasible grid point.

    First the Euclidean projection onto the polytope, in coordinates scaled to
    the box, so that points spread over a thin band instead of piling on its
    corners; then rounding to the grids; when rounding breaks a constraint, the
    feasible grid point nearest in L1 to the projection (a MILP).

    Returns:
        The feasible vector (r), or None when the polytope has no grid point.
    """
    pins = pins or {}
    lower, upper = _box(space, pins)
    width = np.where(upper > lower, upper - lower, 1.0)
    rows, bounds = space.constraint_system

    # Euclidean projection in box-scaled coordinates y = (x - lower) / width.
    target = (np.clip(point, lower, upper) - lower) / width
    scaled_rows = rows * width
    scaled_bounds = bounds - rows @ lower
    projected = target
    if rows.shape[0] and not _feasible(space, lower + width * target):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = minimize(
                lambda y: 0.5 * float(np.sum((y - target) ** 2)),
                target,
                jac=lambda y: y - target,
                bounds=list(
                    zip(np.zeros_like(target), (upper - lower) / width, strict=True)
                ),
                constraints=[
                    {
                        "type": "ineq",
                        "fun": lambda y: scaled_bounds - scaled_rows @ y,
                        "jac": lambda y: -scaled_rows,
                    }
                ],
                method="SLSQP",
                options={"maxiter": 200, "ftol": 1e-12},
            )
        projected = np.asarray(result.x, dtype=float)
    candidate = _snap(space, lower + width * projected, pins)
    if _feasible(space, candidate):
        return candidate
    return _nearest_grid_point(space, lower + width * projected, pins)


def _box(
    space: SearchSpace, pins: Mapping[str, float]
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds (r each), pinned parameters collapsed."""
    lower = np.array([p.lower for p in space.range_parameters], dtype=float)
    upper = np.array([p.upper for p in space.range_parameters], dtype=float)
    for i, param in enumerate(space.range_parameters):
        if param.name in pins:
            lower[i] = upper[i] = pins[param.name]
    return lower, upper


def _snap(
    space: SearchSpace, vector: FloatArray, pins: Mapping[str, float]
) -> FloatArray:
    """Rounds each range value to its grid, keeping pinned values."""
    return np.array(
        [
            pins[p.name] if p.name in pins else float(p.snap(float(x)))
            for p, x in zip(space.range_parameters, vector, strict=True)
        ],
        dtype=float,
    )


def _feasible(space: SearchSpace, vector: FloatArray) -> bool:
    return bool(space.satisfies_constraints(vector[None, :])[0])


def _nearest_grid_point(
    space: SearchSpace, target: FloatArray | None, pins: Mapping[str, float]
) -> FloatArray | None:
    """Solves min sum |x - target| / width over feasible grid points (a MILP).

    Variables are `k` (r; the grid index, or the value itself for continuous
    parameters) then, with a target, `t` (r) with `t >= |x - target| / width`.
    Without a target the objective is zero: any feasible point.
    """
    params = space.range_parameters
    size = len(params)
    scale = np.ones(size)
    k_lower = np.zeros(size)
    k_upper = np.zeros(size)
    integrality = np.zeros(size)
    for i, param in enumerate(params):
        grid = param.grid
        if param.name in pins:
            value = pins[param.name]
            k_lower[i] = k_upper[i] = value
        elif grid is not None:
            k_lower[i], k_upper[i], scale[i] = grid
            integrality[i] = 1
        else:
            k_lower[i], k_upper[i] = param.lower, param.upper
    lower, upper = _box(space, pins)
    width = np.where(upper > lower, upper - lower, 1.0)
    rows, bounds = space.constraint_system
    magnitude = (
        np.abs(rows) @ np.maximum(np.abs(lower), np.abs(upper)) + np.abs(bounds) + 1.0
    )

    def solve(rhs: FloatArray) -> FloatArray | None:
        # With a target the `t` variables follow the `k` ones and have no
        # weight in the constraint rows.
        padding = 0 if target is None else size
        system = (
            [
                LinearConstraint(
                    np.hstack([rows * scale, np.zeros((rows.shape[0], padding))]),
                    -np.inf,
                    rhs,
                )
            ]
            if rows.shape[0]
            else []
        )
        if target is None:
            cost = np.zeros(size)
            variable_bounds = Bounds(k_lower, k_upper)
            all_integrality = integrality
        else:
            # t_i - x_i / w_i >= -target_i / w_i and t_i + x_i / w_i >= target_i / w_i.
            eye = np.eye(size)
            x_coef = eye * (scale / width)
            system.append(
                LinearConstraint(np.hstack([-x_coef, eye]), -target / width, np.inf)
            )
            system.append(
                LinearConstraint(np.hstack([x_coef, eye]), target / width, np.inf)
            )
            cost = np.concatenate([np.zeros(size), np.ones(size)])
            variable_bounds = Bounds(
                np.concatenate([k_lower, np.zeros(size)]),
                np.concatenate([k_upper, np.full(size, np.inf)]),
            )
            all_integrality = np.concatenate([integrality, np.zeros(size)])

        result = milp(
            cost,
            integrality=all_integrality,
            bounds=variable_bounds,
            constraints=system,
        )
        if result.x is None or not result.success:
            return None
        k = np.asarray(result.x[:size], dtype=float)
        return np.array(
            [
                pins[p.name]
                if p.name in pins
                else (
                    float(p.grid_value(round(k[i])))
                    if integrality[i]
                    else float(p.snap(k[i]))
                )
                for i, p in enumerate(params)
            ],
            dtype=float,
        )

    # Half the slack first, so that the answer passes `satisfies_constraints`.
    # HiGHS meets constraints only to its feasibility tolerance (about 1e-7),
    # and continuous values carry that error into the answer (grid values are
    # rounded exactly); when it breaks a constraint, solve again with the
    # bounds pulled in past the tolerance.
    attempts = [bounds + 0.5 * CONSTRAINT_RTOL * magnitude]
    if any(p.grid is None and p.name not in pins for p in params):
        attempts.append(bounds - _SOLVER_MARGIN * magnitude)
    for rhs in attempts:
        vector = solve(rhs)
        if vector is not None and _feasible(space, vector):
            return vector
    return None
