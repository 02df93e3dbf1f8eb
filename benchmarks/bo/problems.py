"""Benchmark problems with known optima, evaluated noiselessly in NumPy.

Each problem names its parameters (all floats), its metrics, and how far a set
of evaluated arms is from the best possible: simple regret (best noiseless
objective among feasible evaluated arms minus the optimum) for one
objective, the hypervolume gap to the true Pareto front for two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Metrics = dict[str, float]
Params = dict[str, float]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        name: Short name used on the command line.
        bounds: (name, lower, upper) per float parameter.
        objectives: Metric names, all minimized.
        evaluate: Noiseless metrics of an arm.
        noise_sd: Standard deviation of Gaussian noise added to every metric
            reported to the optimizer (its SEM is not reported: unknown).
        optimum: Best objective value (one objective).
        constraints: Outcome constraints as "metric <= bound" strings.
        reference: Worst acceptable objective values (two objectives).
        max_hypervolume: Hypervolume of the true Pareto front (two objectives).
    """

    name: str
    bounds: Sequence[tuple[str, float, float]]
    objectives: Sequence[str]
    evaluate: Callable[[Params], Metrics]
    noise_sd: float = 0.0
    optimum: float = 0.0
    constraints: Sequence[tuple[str, float]] = field(default=())
    reference: Sequence[float] = field(default=())
    max_hypervolume: float = 0.0

    def feasible(self, metrics: Metrics) -> bool:
        """Whether noiseless metrics satisfy every outcome constraint."""
        return all(metrics[name] <= bound for name, bound in self.constraints)

    def regret(self, evaluated: Sequence[Metrics]) -> float:
        """Simple regret (or hypervolume gap) of noiseless evaluated metrics."""
        feasible = [m for m in evaluated if self.feasible(m)]
        if len(self.objectives) == 1:
            (name,) = self.objectives
            if not feasible:
                return float("inf")
            return min(m[name] for m in feasible) - self.optimum
        points = [[m[name] for name in self.objectives] for m in feasible]
        return self.max_hypervolume - hypervolume_2d(points, self.reference)


def hypervolume_2d(
    points: Sequence[Sequence[float]], reference: Sequence[float]
) -> float:
    """Area dominated by minimized 2-D points and bounded by `reference`."""
    inside = sorted(
        (p[0], p[1]) for p in points if p[0] < reference[0] and p[1] < reference[1]
    )
    area, best_second = 0.0, reference[1]
    for first, second in inside:
        if second < best_second:
            area += (reference[0] - first) * (best_second - second)
            best_second = second
    return area


def branin(x1: float, x2: float) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at three points."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
     [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)  # fmt: skip
_H6_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)  # fmt: skip
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: Sequence[float]) -> float:
    """Hartmann6 on [0, 1]^6; minimum -3.32237."""
    point = np.asarray(x, dtype=float)
    inner = np.sum(_H6_A * (point - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def currin(x1: float, x2: float) -> float:
    """Currin's exponential function on [0, 1]^2."""
    factor = 1.0 if x2 == 0 else 1 - math.exp(-1 / (2 * x2))
    numerator = 2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60
    return factor * numerator / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)


def _h6_params(p: Params) -> list[float]:
    return [p[f"x{i}"] for i in range(1, 7)]


H6_BOUNDS = [(f"x{i}", 0.0, 1.0) for i in range(1, 7)]

PROBLEMS: dict[str, Problem] = {
    "branin": Problem(
        "branin",
        [("x1", -5.0, 10.0), ("x2", 0.0, 15.0)],
        ["y"],
        lambda p: {"y": branin(p["x1"], p["x2"])},
        optimum=0.397887,
    ),
    "hartmann6": Problem(
        "hartmann6", H6_BOUNDS, ["y"], lambda p: {"y": hartmann6(_h6_params(p))},
        optimum=-3.32237,
    ),
    "hartmann6_noisy": Problem(
        "hartmann6_noisy", H6_BOUNDS, ["y"],
        lambda p: {"y": hartmann6(_h6_params(p))}, noise_sd=0.1, optimum=-3.32237,
    ),
    # BoTorch's constrained Hartmann6: ||x||_1 <= 3 (the optimum is feasible).
    "hartmann6_constrained": Problem(
        "hartmann6_constrained", H6_BOUNDS, ["y"],
        lambda p: {"y": hartmann6(_h6_params(p)), "c": sum(_h6_params(p)) - 3.0},
        optimum=-3.32237, constraints=[("c", 0.0)],
    ),
    # Branin-Currin on [0, 1]^2, both minimized; reference point and maximal
    # hypervolume as in BoTorch's BraninCurrin test problem.
    "branin_currin": Problem(
        "branin_currin", [("x1", 0.0, 1.0), ("x2", 0.0, 1.0)], ["branin", "currin"],
        lambda p: {
            "branin": branin(15 * p["x1"] - 5, 15 * p["x2"]),
            "currin": currin(p["x1"], p["x2"]),
        },
        reference=[18.0, 6.0], max_hypervolume=59.36011874867746,
    ),
}  # fmt: skip
