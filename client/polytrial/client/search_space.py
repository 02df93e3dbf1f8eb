"""Small constructors for an experiment's definition, and their proto forms.

Parameters, constraints, objectives and the generation strategy can be given
as these frozen dataclasses or as plain data:

    {"name": "lr", "type": "range", "bounds": [1e-4, 1e-1], "log_scale": True}
    {"name": "layers", "type": "range", "bounds": [1, 8]}          # int: int bounds
    {"name": "act", "type": "choice", "values": ["relu", "tanh"]}
    {"name": "seed", "type": "fixed", "value": 7}
    "x1 + 2*x2 <= 1.5"      # linear constraint      "x1 <= x2"  # order constraint
    "accuracy >= 0.9"       # outcome constraint
    {"loss": "minimize"}    # objectives

The client checks shapes only (a missing key, an unknown kind); the rules
(bounds the wrong way round, log scale at zero, ...) are the server's, which
answers INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from polytrial.client.values import (
    ParameterValue,
    from_parameters_proto,
    from_value_proto,
    to_value_proto,
)
from polytrial.v1 import experiment_pb2

RangeType = Literal["float", "int"]
ComparisonOp = Literal[">=", "<="]
GeneratorKind = Literal["sobol", "bayesian"]
MetricSourceKind = Literal["client", "runner", "service"]


@dataclass(frozen=True)
class RangeParameter:
    """A float or int parameter between two inclusive bounds.

    Attributes:
        name: Unique parameter name.
        lower: Lower bound, below `upper`.
        upper: Upper bound.
        type: "float" or "int"; None infers "int" when both bounds are ints.
        log_scale: Explore on a log scale (needs a positive lower bound).
        digits: Round float values to this many decimal digits.
    """

    name: str
    lower: float
    upper: float
    type: RangeType | None = None
    log_scale: bool = False
    digits: int | None = None

    def __post_init__(self) -> None:
        if self.type is None:
            both_int = all(
                isinstance(b, int) and not isinstance(b, bool)
                for b in (self.lower, self.upper)
            )
            object.__setattr__(self, "type", "int" if both_int else "float")
        if self.type not in ("float", "int"):
            raise ValueError(
                f"parameter {self.name!r}: type must be 'float' or 'int', "
                f"not {self.type!r}"
            )


@dataclass(frozen=True)
class ChoiceParameter:
    """A parameter taking one of a list of values, all of one type.

    Attributes:
        name: Unique parameter name.
        values: The values, without duplicates; their Python type is kept.
        is_ordered: Whether the listed order is meaningful.
    """

    name: str
    values: tuple[ParameterValue, ...]
    is_ordered: bool = False

    def __init__(
        self, name: str, values: Sequence[ParameterValue], is_ordered: bool = False
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "is_ordered", is_ordered)


@dataclass(frozen=True)
class FixedParameter:
    """A parameter with one value that never changes."""

    name: str
    value: ParameterValue


Parameter = RangeParameter | ChoiceParameter | FixedParameter


@dataclass(frozen=True)
class LinearConstraint:
    """sum(weight x parameter) <= bound, over range parameters.

    Write a ">=" constraint by negating the weights and the bound, or give the
    string form ("x1 + x2 >= 0.5"), which does that for you.
    """

    weights: Mapping[str, float]
    bound: float


@dataclass(frozen=True)
class OrderConstraint:
    """lower <= upper, between two range parameters."""

    lower: str
    upper: str


ParameterConstraint = LinearConstraint | OrderConstraint


@dataclass(frozen=True)
class Objective:
    """One metric to optimize."""

    metric_name: str
    minimize: bool = False


@dataclass(frozen=True)
class OutcomeConstraint:
    """A bound good arms respect: metric >= bound or metric <= bound."""

    metric_name: str
    op: ComparisonOp
    bound: float


@dataclass(frozen=True)
class GenerationStrategy:
    """How arms are generated.

    Attributes:
        kind: "sobol" (quasi-random only) or "bayesian" (Sobol first, then
            Bayesian optimization); None is the server's default, "bayesian".
        num_initial_trials: Sobol trials before the model takes over; None is
            twice the number of tunable parameters, at least 5.
        seed: Seed of every random choice; None lets the server draw one.
    """

    kind: GeneratorKind | None = None
    num_initial_trials: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class RunnerConfig:
    """A runner service that deploys trials."""

    address: str
    timeout_s: float | None = None


@dataclass(frozen=True)
class MetricSource:
    """Where one metric's data comes from."""

    metric_name: str
    kind: MetricSourceKind
    address: str = ""


ParameterSpec = Parameter | Mapping[str, Any]
ConstraintSpec = ParameterConstraint | str | Mapping[str, Any]
ObjectivesSpec = Mapping[str, str] | Sequence[Objective] | Objective
OutcomeConstraintSpec = OutcomeConstraint | str
StrategySpec = GenerationStrategy | GeneratorKind | None


# Parsing plain data -------------------------------------------------------------


def parse_parameters(specs: Sequence[ParameterSpec]) -> list[Parameter]:
    """Returns the parameters of `create_experiment(parameters=...)`.

    Raises:
        TypeError: `specs` is not a sequence, or an item is neither a
            parameter helper nor a dict; the message names `parameters[i]`.
        ValueError: a dict lacks a key or names an unknown kind.
    """
    # A str or a dict is iterable too, but would be read item by item.
    if isinstance(specs, str | Mapping) or not isinstance(specs, Iterable):
        raise TypeError(
            "parameters must be a list of RangeParameter, ChoiceParameter, "
            f"FixedParameter or dicts, not {type(specs).__name__}"
        )
    return [
        parse_parameter(spec, field=f"parameters[{i}]") for i, spec in enumerate(specs)
    ]


def parse_parameter(spec: ParameterSpec, *, field: str = "parameter") -> Parameter:
    """Returns the parameter a helper object or a plain dict describes.

    Args:
        spec: The helper object or dict.
        field: Where `spec` is in the call, for the error messages.

    Raises:
        TypeError: `spec` is neither a helper object nor a dict.
        ValueError: the dict lacks a key or names an unknown kind.
    """
    if isinstance(spec, RangeParameter | ChoiceParameter | FixedParameter):
        return spec
    if not isinstance(spec, Mapping):
        shown = repr(spec) if len(repr(spec)) <= 60 else repr(spec)[:57] + "..."
        raise TypeError(
            f"{field} must be a RangeParameter, ChoiceParameter, FixedParameter "
            "or a dict such as {'name': 'x', 'type': 'range', 'bounds': [0.0, 1.0]}, "
            f"not {type(spec).__name__} {shown}"
        )
    data = dict(spec)
    name = data.get("name")
    if not isinstance(name, str):
        raise ValueError(f"parameter {data!r}: 'name' must be a string")
    kind = data.get("type")
    if kind == "range":
        if "bounds" in data:
            lower, upper = data["bounds"]
        elif "lower" in data and "upper" in data:
            lower, upper = data["lower"], data["upper"]
        else:
            raise ValueError(f"range parameter {name!r}: give 'bounds' [lower, upper]")
        return RangeParameter(
            name,
            lower,
            upper,
            type=data.get("value_type", data.get("parameter_type")),
            log_scale=bool(data.get("log_scale", False)),
            digits=data.get("digits"),
        )
    if kind == "choice":
        if "values" not in data:
            raise ValueError(f"choice parameter {name!r}: give 'values'")
        return ChoiceParameter(
            name, list(data["values"]), is_ordered=bool(data.get("is_ordered", False))
        )
    if kind == "fixed":
        if "value" not in data:
            raise ValueError(f"fixed parameter {name!r}: give 'value'")
        return FixedParameter(name, data["value"])
    raise ValueError(
        f"parameter {name!r}: 'type' must be 'range', 'choice' or 'fixed', not {kind!r}"
    )


_OPERATOR = re.compile(r"(<=|>=)")


def parse_constraint(spec: ConstraintSpec) -> ParameterConstraint:
    """Returns the constraint a helper object, a dict or a string describes.

    Strings are `a <= b` / `a >= b` between two parameter names (an order
    constraint) or `w1*a + w2*b ... <= c` / `>= c` (a linear constraint).

    Raises:
        ValueError: the string or dict cannot be read.
    """
    if isinstance(spec, LinearConstraint | OrderConstraint):
        return spec
    if isinstance(spec, Mapping):
        if "weights" in spec:
            return LinearConstraint(dict(spec["weights"]), float(spec["bound"]))
        if "lower" in spec and "upper" in spec:
            return OrderConstraint(str(spec["lower"]), str(spec["upper"]))
        raise ValueError(f"constraint {spec!r}: give 'weights' and 'bound'")

    parts = _OPERATOR.split(spec)
    if len(parts) != 3:
        raise ValueError(f"constraint {spec!r}: write one '<=' or '>='")
    left, op, right = (part.strip() for part in parts)
    if _is_name(left) and _is_name(right):
        if op == "<=":
            return OrderConstraint(left, right)
        return OrderConstraint(right, left)
    weights = _parse_linear(left, spec)
    try:
        bound = float(right)
    except ValueError:
        raise ValueError(
            f"constraint {spec!r}: the right-hand side must be a number"
        ) from None
    if op == ">=":
        weights = {name: -weight for name, weight in weights.items()}
        bound = -bound
    return LinearConstraint(weights, bound)


def _is_name(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) is not None


def _parse_linear(expression: str, spec: str) -> dict[str, float]:
    """Reads `2*x1 - x2 + 0.5*x3` into weights by parameter name."""
    weights: dict[str, float] = {}
    # Split before every + or - that starts a term (not one inside a number
    # like 1e-3), keeping the sign with the term.
    terms = re.split(r"(?<![eE*])\s*(?=[+-])", expression.strip())
    for raw_term in terms:
        term = raw_term.replace(" ", "")
        if not term:
            continue
        sign = -1.0 if term.startswith("-") else 1.0
        term = term.lstrip("+-")
        if "*" in term:
            coefficient_text, name = term.split("*", 1)
            try:
                coefficient = float(coefficient_text)
            except ValueError:
                raise ValueError(
                    f"constraint {spec!r}: {coefficient_text!r} is not a number"
                ) from None
        else:
            coefficient, name = 1.0, term
        if not _is_name(name):
            raise ValueError(f"constraint {spec!r}: {name!r} is not a parameter name")
        weights[name] = weights.get(name, 0.0) + sign * coefficient
    if not weights:
        raise ValueError(f"constraint {spec!r}: no parameter on the left-hand side")
    return weights


def parse_objectives(spec: ObjectivesSpec) -> list[Objective]:
    """Returns the objectives of `{"metric": "minimize" | "maximize"}` or objects.

    Raises:
        ValueError: a direction is neither "minimize" nor "maximize".
        TypeError: a bare string was given (its direction would be a guess).
    """
    if isinstance(spec, Objective):
        return [spec]
    if isinstance(spec, str):
        raise TypeError(
            f"objectives={spec!r}: say the direction, for example "
            f"{{{spec!r}: 'minimize'}}"
        )
    if isinstance(spec, Mapping):
        objectives = []
        for metric_name, direction in spec.items():
            if direction not in ("minimize", "maximize"):
                raise ValueError(
                    f"objective {metric_name!r}: direction must be 'minimize' or "
                    f"'maximize', not {direction!r}"
                )
            objectives.append(Objective(metric_name, minimize=direction == "minimize"))
        return objectives
    return list(spec)


def parse_outcome_constraint(spec: OutcomeConstraintSpec) -> OutcomeConstraint:
    """Returns the outcome constraint of an object or `"metric >= 0.9"`.

    Raises:
        ValueError: the string cannot be read.
    """
    if isinstance(spec, OutcomeConstraint):
        return spec
    parts = [part.strip() for part in _OPERATOR.split(spec)]
    if len(parts) != 3 or not _is_name(parts[0]):
        raise ValueError(
            f"outcome constraint {spec!r}: write 'metric >= bound' or 'metric <= bound'"
        )
    try:
        bound = float(parts[2])
    except ValueError:
        raise ValueError(
            f"outcome constraint {spec!r}: the bound is not a number"
        ) from None
    op: ComparisonOp = ">=" if parts[1] == ">=" else "<="
    return OutcomeConstraint(parts[0], op, bound)


def parse_strategy(spec: StrategySpec) -> GenerationStrategy | None:
    """Returns the strategy of an object or a kind ("sobol", "bayesian")."""
    if spec is None or isinstance(spec, GenerationStrategy):
        return spec
    return GenerationStrategy(kind=spec)


# To protobuf -----------------------------------------------------------------


def parameter_to_proto(parameter: Parameter) -> Any:
    """Returns the `Parameter` message of a parameter helper."""
    name = parameter.name
    if isinstance(parameter, RangeParameter):
        range_message = experiment_pb2.RangeParameter(
            type=(
                experiment_pb2.PARAMETER_TYPE_INT
                if parameter.type == "int"
                else experiment_pb2.PARAMETER_TYPE_FLOAT
            ),
            lower=float(parameter.lower),
            upper=float(parameter.upper),
            log_scale=parameter.log_scale,
        )
        if parameter.digits is not None:
            range_message.digits = parameter.digits
        return experiment_pb2.Parameter(name=name, range=range_message)
    if isinstance(parameter, ChoiceParameter):
        return experiment_pb2.Parameter(
            name=name,
            choice=experiment_pb2.ChoiceParameter(
                values=[
                    to_value_proto(v, field=f"parameter {name!r}")
                    for v in parameter.values
                ],
                is_ordered=parameter.is_ordered,
            ),
        )
    return experiment_pb2.Parameter(
        name=name,
        fixed=experiment_pb2.FixedParameter(
            value=to_value_proto(parameter.value, field=f"parameter {name!r}")
        ),
    )


def constraint_to_proto(constraint: ParameterConstraint) -> Any:
    """Returns the `ParameterConstraint` message of a constraint helper."""
    if isinstance(constraint, LinearConstraint):
        return experiment_pb2.ParameterConstraint(
            linear=experiment_pb2.LinearConstraint(
                weights={k: float(v) for k, v in constraint.weights.items()},
                bound=float(constraint.bound),
            )
        )
    return experiment_pb2.ParameterConstraint(
        order=experiment_pb2.OrderConstraint(
            lower_parameter=constraint.lower, upper_parameter=constraint.upper
        )
    )


def optimization_config_to_proto(
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint],
    objective_thresholds: Mapping[str, float],
    tracking_metrics: Sequence[str],
) -> Any:
    """Returns the `OptimizationConfig` message."""
    return experiment_pb2.OptimizationConfig(
        objectives=[
            experiment_pb2.Objective(metric_name=o.metric_name, minimize=o.minimize)
            for o in objectives
        ],
        outcome_constraints=[
            experiment_pb2.OutcomeConstraint(
                metric_name=c.metric_name,
                op=(
                    experiment_pb2.COMPARISON_OP_GREATER_EQUAL
                    if c.op == ">="
                    else experiment_pb2.COMPARISON_OP_LESS_EQUAL
                ),
                bound=float(c.bound),
            )
            for c in outcome_constraints
        ],
        objective_thresholds=[
            experiment_pb2.ObjectiveThreshold(metric_name=name, bound=float(bound))
            for name, bound in objective_thresholds.items()
        ],
        tracking_metrics=list(tracking_metrics),
    )


_KIND_TO_PROTO = {
    "sobol": experiment_pb2.GENERATOR_KIND_SOBOL,
    "bayesian": experiment_pb2.GENERATOR_KIND_BAYESIAN,
}
_SOURCE_TO_PROTO = {
    "client": experiment_pb2.METRIC_SOURCE_KIND_CLIENT,
    "runner": experiment_pb2.METRIC_SOURCE_KIND_RUNNER,
    "service": experiment_pb2.METRIC_SOURCE_KIND_SERVICE,
}


def strategy_to_proto(strategy: GenerationStrategy) -> Any:
    """Returns the `GenerationStrategy` message.

    Raises:
        ValueError: the kind is not "sobol" or "bayesian".
    """
    message = experiment_pb2.GenerationStrategy()
    if strategy.kind is not None:
        if strategy.kind not in _KIND_TO_PROTO:
            raise ValueError(
                f"generation strategy {strategy.kind!r} is unknown: use one of "
                f"{sorted(_KIND_TO_PROTO)}"
            )
        message.kind = _KIND_TO_PROTO[strategy.kind]
    if strategy.num_initial_trials is not None:
        message.num_initial_trials = strategy.num_initial_trials
    if strategy.seed is not None:
        message.seed = strategy.seed
    return message


def runner_to_proto(runner: RunnerConfig | str) -> Any:
    """Returns the `RunnerConfig` message of a config or an address."""
    if isinstance(runner, str):
        runner = RunnerConfig(runner)
    message = experiment_pb2.RunnerConfig(address=runner.address)
    if runner.timeout_s is not None:
        message.timeout_s = runner.timeout_s
    return message


def metric_source_to_proto(source: MetricSource) -> Any:
    """Returns the `MetricSource` message."""
    return experiment_pb2.MetricSource(
        metric_name=source.metric_name,
        kind=_SOURCE_TO_PROTO.get(
            source.kind, experiment_pb2.METRIC_SOURCE_KIND_UNSPECIFIED
        ),
        address=source.address,
    )


# From protobuf ---------------------------------------------------------------


def parameter_from_proto(message: Any) -> Parameter:
    """Returns the helper dataclass of a `Parameter` message."""
    kind = message.WhichOneof("kind")
    if kind == "range":
        r = message.range
        is_int = r.type == experiment_pb2.PARAMETER_TYPE_INT
        lower: float = int(r.lower) if is_int and math.isfinite(r.lower) else r.lower
        upper: float = int(r.upper) if is_int and math.isfinite(r.upper) else r.upper
        return RangeParameter(
            message.name,
            lower,
            upper,
            type="int" if is_int else "float",
            log_scale=r.log_scale,
            digits=r.digits if r.HasField("digits") else None,
        )
    if kind == "choice":
        return ChoiceParameter(
            message.name,
            [from_value_proto(v) for v in message.choice.values],
            is_ordered=message.choice.is_ordered,
        )
    return FixedParameter(message.name, from_value_proto(message.fixed.value))


def constraint_from_proto(message: Any) -> ParameterConstraint:
    """Returns the helper dataclass of a `ParameterConstraint` message."""
    if message.WhichOneof("kind") == "linear":
        return LinearConstraint(dict(message.linear.weights), message.linear.bound)
    return OrderConstraint(message.order.lower_parameter, message.order.upper_parameter)


def objectives_from_proto(config: Any) -> tuple[Objective, ...]:
    """Returns the objectives of an `OptimizationConfig` message."""
    return tuple(Objective(o.metric_name, o.minimize) for o in config.objectives)


def outcome_constraints_from_proto(config: Any) -> tuple[OutcomeConstraint, ...]:
    """Returns the outcome constraints of an `OptimizationConfig` message."""
    return tuple(
        OutcomeConstraint(
            c.metric_name,
            ">=" if c.op == experiment_pb2.COMPARISON_OP_GREATER_EQUAL else "<=",
            c.bound,
        )
        for c in config.outcome_constraints
    )


def strategy_from_proto(message: Any) -> GenerationStrategy:
    """Returns the helper dataclass of a `GenerationStrategy` message."""
    kind: GeneratorKind | None = None
    if message.kind == experiment_pb2.GENERATOR_KIND_SOBOL:
        kind = "sobol"
    elif message.kind == experiment_pb2.GENERATOR_KIND_BAYESIAN:
        kind = "bayesian"
    return GenerationStrategy(
        kind=kind,
        num_initial_trials=(
            message.num_initial_trials
            if message.HasField("num_initial_trials")
            else None
        ),
        seed=message.seed if message.HasField("seed") else None,
    )


def status_quo_from_proto(message: Any) -> dict[str, ParameterValue] | None:
    """Returns the status-quo parameterization, or None when there is none."""
    if not message.HasField("status_quo"):
        return None
    return from_parameters_proto(message.status_quo.parameters)
