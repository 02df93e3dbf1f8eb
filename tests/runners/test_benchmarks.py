"""The reference benchmarks the conformance suite checks runners against."""

from __future__ import annotations

import math

import pytest
from runner_kit import branin, currin, hartmann6, learning_curve


def unit(x1: float, x2: float) -> list[float]:
    return [(x1 + 5) / 15, x2 / 15]


@pytest.mark.parametrize(
    "point", [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]
)
def test_branin_is_0_397887_at_each_minimizer(point: tuple[float, float]) -> None:
    assert branin(unit(*point)) == pytest.approx(0.397887, abs=1e-5)


def test_hartmann6_is_minus_3_32237_at_its_minimizer() -> None:
    x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    assert hartmann6(x) == pytest.approx(-3.32237, abs=1e-5)


def test_currin_at_known_points() -> None:
    assert currin([0.0, 1.0]) == pytest.approx(3 * (1 - math.exp(-0.5)), rel=1e-12)
    assert currin([0.0, 0.0]) == pytest.approx(3.0, rel=1e-12)


def test_learning_curve_decreases_toward_the_final_value() -> None:
    params = {"x1": 0.3, "x2": 0.6}
    values = [learning_curve("branin", params, step) for step in range(3)]
    final = branin([0.3, 0.6])
    assert values == sorted(values, reverse=True)
    assert all(v > final for v in values)
