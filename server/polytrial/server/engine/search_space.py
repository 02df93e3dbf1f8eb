"""The validated search space: parameters, constraints, arm identity, checks.

    SearchSpace
    ├── parameters: RangeParameter | ChoiceParameter | FixedParameter
    └── constraints: LinearConstraint | OrderConstraint  (range parameters only)

Two parameterizations are the same arm when every value is equal: ints, strings
and bools exactly (and a bool never equals an int), floats after rounding to the
parameter's `digits`, or else to 10 significant digits. `SearchSpace.arm_key`
turns that rule into a string, so storage and the engine compare keys only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt
from polytrial.server.engine.types import Parameterization, ParameterValue
from polytrial.server.engine.values import canonical_float, value_kind
from polytrial.server.errors import ViolationCollector

FloatArray = npt.NDArray[np.float64]

# Above this many grid steps a float's `digits` no longer make it usefully
# discrete, and k / 10**digits stops being exact in a double.
_MAX_GRID_STEPS = 2**52
# 10.0**digits is an exact double up to here (see `grid_value`).
_MAX_EXACT_DIGITS = 22

# Slack on linear constraints, relative to the size of the terms: 0.3 + 0.7 is
# 1.0000000000000002 in binary, and such an arm must count as satisfying
# x1 + x2 <= 1.
CONSTRAINT_RTOL = 1e-9


@dataclass(frozen=True)
class RangeParameter:
    """A float or int interval, inclusive, optionally on a log scale.

    Attributes:
        name: Parameter name.
        is_int: Whether values are integers (bounds are then integral).
        lower: Lower bound.
        upper: Upper bound, strictly above `lower`.
        log_scale: Explore uniformly in log space (needs lower > 0).
        digits: Decimal digits float values are rounded to, if any.
    """

    name: str
    is_int: bool
    lower: float
    upper: float
    log_scale: bool = False
    digits: int | None = None

    @cached_property
    def grid(self) -> tuple[int, int, float] | None:
        """`(k_min, k_max, scale)` when values are `k * scale`, else None.

        Ints have scale 1; floats with `digits` have scale 10**-digits (values
        are then `k / 10**digits`, the double nearest to the decimal). None for
        continuous floats and for digits so fine that the grid is not exact.
        """
        if self.is_int:
            return int(self.lower), int(self.upper), 1.0
        if self.digits is None or self.digits > _MAX_EXACT_DIGITS:
            # Checked before 10**digits: a huge power would hold the GIL.
            return None
        factor = 10**self.digits
        if max(abs(self.lower), abs(self.upper)) * factor >= _MAX_GRID_STEPS:
            return None
        k_min = math.ceil(self.lower * factor)
        while k_min / factor < self.lower:
            k_min += 1
        while (k_min - 1) / factor >= self.lower:
            k_min -= 1
        k_max = math.floor(self.upper * factor)
        while k_max / factor > self.upper:
            k_max -= 1
        while (k_max + 1) / factor <= self.upper:
            k_max += 1
        return k_min, k_max, 1.0 / factor

    @property
    def is_discrete(self) -> bool:
        """Whether the parameter has finitely many values."""
        return self.grid is not None

    @property
    def cardinality(self) -> int | None:
        """Number of values, or None when continuous."""
        grid = self.grid
        return None if grid is None else max(0, grid[1] - grid[0] + 1)

    def grid_value(self, k: int) -> int | float:
        """The `k`-th grid value (an int for int parameters)."""
        if self.is_int:
            return int(k)
        assert self.digits is not None
        # Exact for digits <= 22: 10.0**digits is then a double.
        return k / 10.0**self.digits

    def grid_values(self) -> Iterator[int | float]:
        """Every value of a discrete parameter, ascending."""
        grid = self.grid
        assert grid is not None
        for k in range(grid[0], grid[1] + 1):
            yield self.grid_value(k)

    def snap(self, value: float) -> int | float:
        """The valid value nearest to `value`: rounded, then kept in bounds.

        The result is never outside [lower, upper], even after rounding to
        `digits` (a value such as 0.3212100000000002 above 0.32121 cannot occur).
        """
        if not math.isfinite(value):
            value = self.lower if value < 0 else self.upper
        grid = self.grid
        if grid is not None:
            k_min, k_max, scale = grid
            k = min(max(round(value / scale), k_min), k_max)
            return self.grid_value(int(k))
        if self.digits is not None:
            value = round(value, self.digits)
        return float(min(max(value, self.lower), self.upper))

    def to_unit(self, value: float) -> float:
        """Maps a value to [0, 1] (in log space for log-scale parameters)."""
        lower, upper = self._transformed_bounds()
        transformed = math.log(value) if self.log_scale else float(value)
        if self.is_int and not self.log_scale:
            # Ints own equal slices of the unit interval; map to the middle.
            return (transformed - lower + 0.5) / (upper - lower + 1.0)
        return (transformed - lower) / (upper - lower)

    def from_unit(self, unit: float) -> int | float:
        """Maps a point of [0, 1] to a valid value (see `to_unit`)."""
        unit = min(max(unit, 0.0), 1.0)
        lower, upper = self._transformed_bounds()
        if self.is_int and not self.log_scale:
            return self.snap(math.floor(lower + unit * (upper - lower + 1.0)))
        raw = lower + unit * (upper - lower)
        if self.log_scale:
            raw = math.exp(raw)
            if self.is_int:
                return self.snap(math.floor(raw))
        return self.snap(raw)

    def _transformed_bounds(self) -> tuple[float, float]:
        if self.log_scale and self.is_int:
            # Each integer n owns [log n, log(n + 1)).
            return math.log(self.lower), math.log(self.upper + 1.0)
        if self.log_scale:
            return math.log(self.lower), math.log(self.upper)
        return float(self.lower), float(self.upper)


@dataclass(frozen=True)
class ChoiceParameter:
    """One of a list of values of one kind (str, int, float or bool).

    Attributes:
        name: Parameter name.
        values: The values, as declared, pairwise distinct.
        is_ordered: Whether the list order means something.
    """

    name: str
    values: tuple[ParameterValue, ...]
    is_ordered: bool = False

    @cached_property
    def kind(self) -> str:
        """The kind of every value: "str", "int", "float" or "bool"."""
        return value_kind(self.values[0])

    @cached_property
    def _index(self) -> dict[str, int]:
        return {_value_token(v, None): i for i, v in enumerate(self.values)}

    def index_of(self, value: ParameterValue) -> int | None:
        """Position of the listed value equal to `value` (under the arm rule)."""
        coerced = _coerce(value, self.kind)
        if coerced is None:
            return None
        return self._index.get(_value_token(coerced, None))

    @property
    def cardinality(self) -> int:
        """Number of values."""
        return len(self.values)


@dataclass(frozen=True)
class FixedParameter:
    """A parameter whose value never changes."""

    name: str
    value: ParameterValue


Parameter = RangeParameter | ChoiceParameter | FixedParameter


@dataclass(frozen=True)
class LinearConstraint:
    """sum(weight x value) <= bound over range parameters."""

    weights: tuple[tuple[str, float], ...]
    bound: float

    def describe(self) -> str:
        """Human-readable form, e.g. `1*x1 + 1*x2 <= 1`."""
        terms = " + ".join(f"{w:g}*{n}" for n, w in self.weights)
        return f"{terms} <= {self.bound:g}"


@dataclass(frozen=True)
class OrderConstraint:
    """lower_name <= upper_name, both range parameters."""

    lower_name: str
    upper_name: str

    def describe(self) -> str:
        """Human-readable form, e.g. `x1 <= x2`."""
        return f"{self.lower_name} <= {self.upper_name}"


ParameterConstraint = LinearConstraint | OrderConstraint


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. Build it with `parse_search_space`.

    Attributes:
        parameters: The parameters in declaration order.
        constraints: Linear and order constraints over range parameters.
    """

    parameters: tuple[Parameter, ...]
    constraints: tuple[ParameterConstraint, ...] = field(default=())

    @cached_property
    def by_name(self) -> dict[str, Parameter]:
        """Parameters by name."""
        return {p.name: p for p in self.parameters}

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every parameter name, in declaration order."""
        return tuple(p.name for p in self.parameters)

    @property
    def tunable_names(self) -> tuple[str, ...]:
        """Names of the range and choice parameters (all but fixed ones)."""
        return tuple(p.name for p in self.tunable_parameters)

    @cached_property
    def tunable_parameters(self) -> tuple[RangeParameter | ChoiceParameter, ...]:
        """Range and choice parameters, in declaration order."""
        return tuple(p for p in self.parameters if not isinstance(p, FixedParameter))

    @cached_property
    def range_parameters(self) -> tuple[RangeParameter, ...]:
        """Range parameters: the variables of the linear constraints."""
        return tuple(p for p in self.parameters if isinstance(p, RangeParameter))

    @cached_property
    def constraint_system(self) -> tuple[FloatArray, FloatArray]:
        """`(A, b)` with `A @ x <= b` for x the range values (m x r, m)."""
        column = {p.name: i for i, p in enumerate(self.range_parameters)}
        rows = np.zeros((len(self.constraints), len(column)))
        bounds = np.zeros(len(self.constraints))
        for i, constraint in enumerate(self.constraints):
            if isinstance(constraint, LinearConstraint):
                for name, weight in constraint.weights:
                    rows[i, column[name]] += weight
                bounds[i] = constraint.bound
            else:
                rows[i, column[constraint.lower_name]] += 1.0
                rows[i, column[constraint.upper_name]] -= 1.0
        return rows, bounds

    @property
    def is_finite(self) -> bool:
        """Whether the space has finitely many arms (no continuous parameter)."""
        return all(
            p.is_discrete for p in self.parameters if isinstance(p, RangeParameter)
        )

    @property
    def cardinality(self) -> int | None:
        """Number of arms of the box, ignoring constraints; None when infinite."""
        total = 1
        for p in self.tunable_parameters:
            size = p.cardinality
            if size is None:
                return None
            total *= size
        return total

    def satisfies_constraints(self, range_values: FloatArray) -> npt.NDArray[np.bool_]:
        """Which rows of `range_values` (n x r) satisfy every constraint (n)."""
        rows, bounds = self.constraint_system
        if rows.shape[0] == 0:
            return np.ones(range_values.shape[0], dtype=bool)
        lhs = range_values @ rows.T
        scale = np.abs(range_values) @ np.abs(rows).T + np.abs(bounds) + 1.0
        ok: npt.NDArray[np.bool_] = np.all(
            lhs <= bounds + CONSTRAINT_RTOL * scale, axis=1
        )
        return ok

    def range_vector(self, params: Mapping[str, ParameterValue]) -> FloatArray:
        """The range values of a full parameterization, as a vector (r)."""
        return np.array(
            [float(params[p.name]) for p in self.range_parameters], dtype=float
        )

    def arm_key(self, params: Mapping[str, ParameterValue]) -> str:
        """A canonical string: equal for the same arm, different otherwise.

        Args:
            params: A parameterization (usually validated). Names outside the
                space are keyed by their value's own type.

        Returns:
            A JSON string of sorted `[name, typed value]` pairs.
        """
        pairs = []
        for name in sorted(params):
            value = params[name]
            param = self.by_name.get(name)
            digits = None
            if isinstance(param, RangeParameter):
                coerced = _coerce(value, "int" if param.is_int else "float")
                value = value if coerced is None else coerced
                digits = param.digits
            elif isinstance(param, ChoiceParameter):
                coerced = _coerce(value, param.kind)
                value = value if coerced is None else coerced
            pairs.append([name, _value_token(value, digits)])
        return json.dumps(pairs, separators=(",", ":"))

    def validate_parameterization(
        self,
        params: Mapping[str, ParameterValue],
        *,
        field: str,
        partial: bool = False,
    ) -> Parameterization:
        """Checks a user's parameterization and returns it normalized.

        Rules: every name is a parameter of the space; every tunable parameter
        is present (unless `partial`); values have the parameter's type — an int
        parameter accepts an integral float such as 3.0 (clients in languages
        without an int type send those) and returns 3, but refuses 3.5; a bool
        is never a number nor a number a bool; floats may exceed a bound by a
        rounding error of 1e-10 of the range and are then put on the bound;
        floats are rounded to the parameter's digits; a choice value becomes the
        listed value object; a fixed parameter may be omitted (it is filled in)
        or given its own value; every parameter constraint holds (with
        `partial`, some completion of the given values must satisfy them).

        Args:
            params: Values by parameter name.
            field: Request field path, prefixed to each violation (for example
                `arm.parameters` gives `arm.parameters.x1`).
            partial: Accept a subset of the parameters (pinned values).

        Returns:
            The values in declaration order, fixed parameters filled in (with
            `partial`, only the given names plus fixed ones).

        Raises:
            InvalidArgument: any rule is broken; every violation is listed
                (INVALID_ARGUMENT).
        """
        collector = ViolationCollector()
        for name in params:
            if name not in self.by_name:
                known = ", ".join(self.parameter_names)
                collector.add(
                    f"{field}.{name}",
                    f"unknown parameter {name!r}; the search space has: {known}",
                )

        result: Parameterization = {}
        for param in self.parameters:
            path = f"{field}.{param.name}"
            if param.name not in params:
                if isinstance(param, FixedParameter):
                    result[param.name] = param.value
                elif not partial:
                    collector.add(path, f"parameter {param.name!r} is missing")
                continue
            checked = _check_value(param, params[param.name], path, collector)
            if checked is not None:
                result[param.name] = checked
        collector.raise_if_any()

        self._check_constraints(result, field=field, partial=partial)
        return result

    def _check_constraints(
        self, values: Parameterization, *, field: str, partial: bool
    ) -> None:
        if not self.constraints:
            return
        collector = ViolationCollector()
        present = all(p.name in values for p in self.range_parameters)
        if present:
            ok = self.satisfies_constraints(self.range_vector(values)[None, :])
            if not ok[0]:
                vector = self.range_vector(values)
                for i, constraint in enumerate(self.constraints):
                    single = SearchSpace(self.parameters, (constraint,))
                    if not single.satisfies_constraints(vector[None, :])[0]:
                        collector.add(
                            field,
                            f"parameters violate constraint {i} "
                            f"({constraint.describe()})",
                        )
        elif partial:
            # Deferred import: the polytope module imports this one.
            from polytrial.server.engine.polytope import find_feasible_point

            pins = {
                p.name: float(values[p.name])
                for p in self.range_parameters
                if p.name in values
            }
            if find_feasible_point(self, pins) is None:
                names = ", ".join(sorted(pins))
                collector.add(
                    field,
                    f"pinned values of {names} leave no point that satisfies "
                    "the parameter constraints",
                )
        collector.raise_if_any()


def _check_value(
    param: Parameter,
    value: ParameterValue,
    path: str,
    collector: ViolationCollector,
) -> ParameterValue | None:
    """Returns the normalized value, or None after recording a violation."""
    if isinstance(param, FixedParameter):
        coerced = _coerce(value, value_kind(param.value))
        if coerced is None or _value_token(coerced, None) != _value_token(
            param.value, None
        ):
            collector.add(path, f"parameter {param.name!r} is fixed at {param.value!r}")
            return None
        return param.value

    if isinstance(param, ChoiceParameter):
        index = param.index_of(value)
        if index is None:
            shown = ", ".join(repr(v) for v in param.values[:10])
            more = (
                f" and {len(param.values) - 10} more" if len(param.values) > 10 else ""
            )
            collector.add(
                path,
                f"{value!r} is not a value of choice parameter {param.name!r} "
                f"(one of {shown}{more})",
            )
            return None
        return param.values[index]

    coerced = _coerce(value, "int" if param.is_int else "float")
    if coerced is None:
        kind = "an integer" if param.is_int else "a number"
        collector.add(path, f"parameter {param.name!r} needs {kind}, got {value!r}")
        return None
    assert isinstance(coerced, int | float)
    slack = 0.0 if param.is_int else 1e-10 * (param.upper - param.lower)
    if not param.lower - slack <= coerced <= param.upper + slack:
        collector.add(
            path,
            f"{value!r} is outside the bounds [{param.lower:g}, {param.upper:g}] "
            f"of parameter {param.name!r}",
        )
        return None
    if param.is_int:
        return int(coerced)
    return param.snap(float(coerced))


def _coerce(value: ParameterValue, kind: str) -> ParameterValue | None:
    """`value` as `kind` when that loses nothing, else None.

    An integral float becomes an int and an int a float; bools and strings
    convert to nothing else.
    """
    actual = value_kind(value)
    if actual == kind:
        if kind == "float" and not math.isfinite(float(value)):
            return None
        return value
    if kind == "int" and actual == "float":
        number = float(value)
        return int(number) if number.is_integer() else None
    if kind == "float" and actual == "int":
        return float(value)
    return None


def _value_token(value: ParameterValue, digits: int | None) -> str:
    """A typed canonical token of one value (see the module docstring)."""
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return "f:" + canonical_float(value, digits)
    return "s:" + value
