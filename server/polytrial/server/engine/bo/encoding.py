"""The model's view of arms: points of the unit cube, and back.

Each tunable parameter is one column (fixed parameters are left out):

    float range      (v - lower) / (upper - lower), or the same in log space
    int range        the same formula on the integer; an ordinal, rounded back
    ordered choice   index / (k - 1); an ordinal
    unordered choice index 0 .. k-1; categorical (the kernel only compares
                     for equality, so no order is invented)

Linear and order constraints over range parameters that are not on a log scale
stay linear under this map and go to the acquisition optimizer; constraints
that touch a log-scale parameter become curved, so the engine enforces them by
projecting the decoded arm instead. Plain NumPy: no PyTorch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from polytrial.server.engine.search_space import (
    ChoiceParameter,
    FixedParameter,
    FloatArray,
    RangeParameter,
    SearchSpace,
)
from polytrial.server.engine.types import Parameterization, ParameterValue

# Ordinals with up to this many values are searched on their grid; longer
# ones are optimized continuously and rounded.
MAX_ORDINAL_VALUES = 1000


@dataclass(frozen=True)
class Column:
    """One input dimension of the model.

    Attributes:
        param: The parameter it encodes.
        kind: "continuous", "ordinal" or "categorical".
        values: The encoded values an ordinal or categorical column can take.
    """

    param: RangeParameter | ChoiceParameter
    kind: str
    values: tuple[float, ...] = ()


class Encoder:
    """Maps the arms of one search space to unit-cube vectors and back."""

    def __init__(self, space: SearchSpace) -> None:
        """Builds one column per tunable parameter, in declaration order."""
        self.space = space
        self.columns = [_column(param) for param in space.tunable_parameters]
        self._position = {c.param.name: i for i, c in enumerate(self.columns)}

    @property
    def dim(self) -> int:
        """Number of columns, d."""
        return len(self.columns)

    @property
    def categorical_dims(self) -> dict[int, list[float]]:
        """Categorical columns and their values (index: values)."""
        return {
            i: list(c.values)
            for i, c in enumerate(self.columns)
            if c.kind == "categorical"
        }

    @property
    def ordinal_dims(self) -> dict[int, list[float]]:
        """Ordinal columns searched on their grid (index: encoded values)."""
        return {
            i: list(c.values) for i, c in enumerate(self.columns) if c.kind == "ordinal"
        }

    def bounds(self) -> FloatArray:
        """Lower and upper bound of each column (2 x d)."""
        lower = [min(c.values) if c.values else 0.0 for c in self.columns]
        upper = [max(c.values) if c.values else 1.0 for c in self.columns]
        return np.array([lower, upper], dtype=float)

    def encode(self, params: Mapping[str, ParameterValue]) -> FloatArray:
        """The column values of one arm (d)."""
        return np.array(
            [_encode(c, params[c.param.name]) for c in self.columns], dtype=float
        )

    def encode_many(self, arms: list[Parameterization]) -> FloatArray:
        """The column values of several arms (n x d)."""
        if not arms:
            return np.zeros((0, self.dim))
        return np.stack([self.encode(arm) for arm in arms])

    def decode(self, point: FloatArray) -> Parameterization:
        """The arm nearest to a point (d): rounded, snapped, fixed values added."""
        arm: Parameterization = {}
        for param in self.space.parameters:
            if isinstance(param, FixedParameter):
                arm[param.name] = param.value
                continue
            column = self.columns[self._position[param.name]]
            arm[param.name] = _decode(column, float(point[self._position[param.name]]))
        return arm

    def pinned_features(self, pinned: Mapping[str, ParameterValue]) -> dict[int, float]:
        """Columns held at a value: pinned ones, and those with one value only."""
        fixed = {
            i: column.values[0]
            for i, column in enumerate(self.columns)
            if len(column.values) == 1
        }
        for name, value in pinned.items():
            if name in self._position:
                position = self._position[name]
                fixed[position] = _encode(self.columns[position], value)
        return fixed

    def linear_constraints(self) -> list[tuple[list[int], list[float], float]]:
        """Constraints the optimizer can take: `sum(coef * x[idx]) >= rhs`.

        With v = lower + width * x, `a . v <= b` becomes
        `sum(-a_i width_i x_i) >= sum(a_i lower_i) - b`. Constraints touching a
        log-scale parameter are left out (see the module docstring).
        """
        rows, bounds = self.space.constraint_system
        result: list[tuple[list[int], list[float], float]] = []
        for row, bound in zip(rows, bounds, strict=True):
            indices: list[int] = []
            coefficients: list[float] = []
            offset = 0.0
            usable = True
            for param, weight in zip(self.space.range_parameters, row, strict=True):
                if weight == 0.0:
                    continue
                if param.log_scale:
                    usable = False
                    break
                width = float(param.upper - param.lower)
                indices.append(self._position[param.name])
                coefficients.append(-float(weight) * width)
                offset += float(weight) * float(param.lower)
            if usable and indices:
                result.append((indices, coefficients, offset - float(bound)))
        return result


def _column(param: RangeParameter | ChoiceParameter) -> Column:
    if isinstance(param, ChoiceParameter):
        count = len(param.values)
        if param.is_ordered:
            values = (
                tuple(i / (count - 1) for i in range(count)) if count > 1 else (0.0,)
            )
            return Column(param, "ordinal", values)
        return Column(param, "categorical", tuple(float(i) for i in range(count)))
    size = param.cardinality
    if size is not None and size <= MAX_ORDINAL_VALUES:
        values = tuple(_range_unit(param, float(v)) for v in param.grid_values())
        return Column(param, "ordinal", values)
    return Column(param, "continuous")


def _range_unit(param: RangeParameter, value: float) -> float:
    if param.log_scale:
        low, high = math.log(param.lower), math.log(param.upper)
        return (math.log(value) - low) / (high - low)
    return (value - param.lower) / (param.upper - param.lower)


def _encode(column: Column, value: ParameterValue) -> float:
    param = column.param
    if isinstance(param, ChoiceParameter):
        index = param.index_of(value)
        if index is None:
            raise ValueError(f"{value!r} is not a value of {param.name!r}")
        return column.values[index]
    return _range_unit(param, float(value))


def _decode(column: Column, unit: float) -> ParameterValue:
    param = column.param
    if isinstance(param, ChoiceParameter):
        count = len(param.values)
        if column.kind == "categorical":
            index = round(unit)
        else:
            index = round(unit * (count - 1)) if count > 1 else 0
        return param.values[min(max(int(index), 0), count - 1)]
    unit = min(max(unit, 0.0), 1.0)
    if param.log_scale:
        low, high = math.log(param.lower), math.log(param.upper)
        return param.snap(math.exp(low + unit * (high - low)))
    return param.snap(param.lower + unit * (param.upper - param.lower))
