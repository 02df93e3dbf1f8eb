"""Validation of the experiment's protobuf configuration into engine types.

Each parser collects every fault of its message before raising, so a user
fixes a request in one round; field paths look like
`experiment.search_space.parameters[1].range.lower`.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable

from polytrial.server.engine.search_space import (
    ChoiceParameter,
    FixedParameter,
    LinearConstraint,
    OrderConstraint,
    Parameter,
    ParameterConstraint,
    RangeParameter,
    SearchSpace,
)
from polytrial.server.engine.types import (
    GeneratorKind,
    Objective,
    OptimizationSpec,
    OutcomeConstraint,
    ParameterValue,
    StrategySpec,
)
from polytrial.server.engine.values import canonical_float, value_kind
from polytrial.server.errors import (
    FieldViolation,
    InvalidArgument,
    ViolationCollector,
)
from polytrial.v1 import experiment_pb2

PARAMETER_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# Metric names go into log lines and error messages as they are: no spaces,
# control characters or newlines.
METRIC_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@+%-]*")
MAX_METRIC_NAME_LENGTH = 256
MIN_INITIAL_TRIALS = 5

# Service limits, refused with reason LIMIT_EXCEEDED. Past them a request
# makes validation, storage and every later read of the experiment slow for
# every user of a shared server.
MAX_CHOICE_VALUES = 10_000
MAX_OBJECTIVES = 10
MAX_OUTCOME_CONSTRAINTS = 32
MAX_TRACKING_METRICS = 1_000
# A metric has at most one source.
MAX_METRIC_SOURCES = MAX_OBJECTIVES + MAX_OUTCOME_CONSTRAINTS + MAX_TRACKING_METRICS

# Past 15 decimal digits a double cannot hold the rounded value; 10**digits of
# a huge value would also hold the interpreter lock for minutes.
MAX_DIGITS = 15
# Int bounds travel as doubles, which hold every integer only up to 2**53.
MAX_INT_BOUND = 2**53

_GENERATOR_KINDS = {
    experiment_pb2.GENERATOR_KIND_UNSPECIFIED: GeneratorKind.BAYESIAN,
    experiment_pb2.GENERATOR_KIND_SOBOL: GeneratorKind.SOBOL,
    experiment_pb2.GENERATOR_KIND_BAYESIAN: GeneratorKind.BAYESIAN,
}


def parse_search_space(
    pb: experiment_pb2.SearchSpace,
    *,
    field: str = "experiment.search_space",
    check_feasibility: bool = True,
    stored: bool = False,
) -> SearchSpace:
    """Validates a `SearchSpace` message.

    Args:
        pb: The message.
        field: Its path in the request, prefixed to every violation.
        check_feasibility: Solve for a feasible point of the parameter
            constraints; skip when re-reading a space validated before.
        stored: The space was accepted by this or an older server: skip the
            limits and rules added since, so that it stays readable.

    Returns:
        The search space.

    Raises:
        InvalidArgument: any rule is broken, every violation listed
            (INVALID_ARGUMENT); too many choice values (reason
            LIMIT_EXCEEDED).
    """
    if not stored:
        _check_limits(
            (
                f"{field}.parameters[{i}].choice.values",
                len(param_pb.choice.values),
                MAX_CHOICE_VALUES,
                "values in a choice parameter",
            )
            for i, param_pb in enumerate(pb.parameters)
        )
    collector = ViolationCollector()
    if not pb.parameters:
        collector.add(f"{field}.parameters", "at least one parameter is required")

    parameters: list[Parameter] = []
    seen: dict[str, int] = {}
    for i, param_pb in enumerate(pb.parameters):
        path = f"{field}.parameters[{i}]"
        name = param_pb.name
        if not PARAMETER_NAME_PATTERN.fullmatch(name):
            collector.add(
                f"{path}.name",
                f"parameter name {name!r} is invalid: use 1-100 letters, digits "
                "or '_', starting with a letter or '_'",
            )
        elif name in seen:
            collector.add(
                f"{path}.name",
                f"parameter name {name!r} duplicates parameters[{seen[name]}]",
            )
        else:
            seen[name] = i
        parsed = _parse_parameter(param_pb, path, collector, strict=not stored)
        if parsed is not None:
            parameters.append(parsed)

    by_name = {p.name: p for p in parameters}
    constraints: list[ParameterConstraint] = []
    for j, constraint_pb in enumerate(pb.parameter_constraints):
        path = f"{field}.parameter_constraints[{j}]"
        constraint = _parse_constraint(constraint_pb, path, by_name, collector)
        if constraint is not None:
            constraints.append(constraint)
    collector.raise_if_any()

    space = SearchSpace(tuple(parameters), tuple(constraints))
    if constraints and check_feasibility:
        # Deferred import: SciPy's optimizer is only needed for constraints.
        from polytrial.server.engine.polytope import find_feasible_point

        if find_feasible_point(space) is None:
            collector.add(
                f"{field}.parameter_constraints",
                "parameter constraints leave no feasible point within the "
                "parameter bounds",
            )
            collector.raise_if_any()
    return space


def _check_limits(checks: Iterable[tuple[str, int, int, str]]) -> None:
    """Raises for every `(field, count, limit, noun)` with count above limit.

    Raises:
        InvalidArgument: a count is over its limit (INVALID_ARGUMENT, reason
            LIMIT_EXCEEDED), checked before the items are, so that a huge
            list costs nothing and yields one violation.
    """
    violations = [
        FieldViolation(where, f"at most {limit:,} {noun} are allowed, got {count:,}")
        for where, count, limit, noun in checks
        if count > limit
    ]
    if violations:
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        raise InvalidArgument(message, violations=violations, reason="LIMIT_EXCEEDED")


def _parse_parameter(
    pb: experiment_pb2.Parameter,
    path: str,
    collector: ViolationCollector,
    *,
    strict: bool,
) -> Parameter | None:
    kind = pb.WhichOneof("kind")
    if kind == "range":
        return _parse_range(
            pb.name, pb.range, f"{path}.range", collector, strict=strict
        )
    if kind == "choice":
        return _parse_choice(pb.name, pb.choice, f"{path}.choice", collector)
    if kind == "fixed":
        value = _plain_value(pb.fixed.value)
        if value is None:
            collector.add(
                f"{path}.fixed.value", "a fixed parameter needs a finite value"
            )
            return None
        return FixedParameter(pb.name, value)
    collector.add(path, f"parameter {pb.name!r} must set one of range, choice, fixed")
    return None


def _parse_range(
    name: str,
    pb: experiment_pb2.RangeParameter,
    path: str,
    collector: ViolationCollector,
    *,
    strict: bool,
) -> RangeParameter | None:
    before = len(collector.violations)
    if pb.type not in (
        experiment_pb2.PARAMETER_TYPE_FLOAT,
        experiment_pb2.PARAMETER_TYPE_INT,
    ):
        collector.add(
            f"{path}.type",
            f"parameter {name!r} needs a type: PARAMETER_TYPE_FLOAT or "
            "PARAMETER_TYPE_INT",
        )
    is_int = pb.type == experiment_pb2.PARAMETER_TYPE_INT
    lower, upper = pb.lower, pb.upper
    for bound_name, bound in (("lower", lower), ("upper", upper)):
        if not math.isfinite(bound):
            collector.add(
                f"{path}.{bound_name}",
                f"parameter {name!r}: {bound_name} bound must be finite",
            )
        elif is_int and not float(bound).is_integer():
            collector.add(
                f"{path}.{bound_name}",
                f"int parameter {name!r} needs an integral {bound_name} bound, "
                f"got {bound!r}",
            )
        elif is_int and strict and abs(bound) > MAX_INT_BOUND:
            collector.add(
                f"{path}.{bound_name}",
                f"int parameter {name!r}: {bound_name} bound {bound:g} is outside "
                f"[-2**53, 2**53], the integers a double holds exactly",
            )
    if math.isfinite(lower) and math.isfinite(upper) and lower >= upper:
        collector.add(
            f"{path}.lower",
            f"parameter {name!r}: lower bound {lower:g} must be below the upper "
            f"bound {upper:g}",
        )
    elif (
        strict
        and math.isfinite(lower)
        and math.isfinite(upper)
        and not math.isfinite(upper - lower)
    ):
        collector.add(
            f"{path}.upper",
            f"parameter {name!r}: the range [{lower:g}, {upper:g}] is wider than "
            "the largest double; narrow it or rescale the parameter",
        )
    if pb.log_scale and lower <= 0:
        collector.add(
            f"{path}.lower",
            f"parameter {name!r} is on a log scale, which needs a positive lower "
            f"bound; got {lower:g}",
        )
    # Digits shape float values only; they are ignored on int parameters.
    digits = pb.digits if pb.HasField("digits") and not is_int else None
    if pb.HasField("digits") and (pb.digits < 0 or (strict and pb.digits > MAX_DIGITS)):
        collector.add(
            f"{path}.digits",
            f"parameter {name!r}: digits must be between 0 and {MAX_DIGITS}, "
            f"got {pb.digits}",
        )
        digits = None
    if len(collector.violations) > before:
        return None

    if is_int:
        param = RangeParameter(name, True, int(lower), int(upper), pb.log_scale)
    else:
        param = RangeParameter(
            name, False, float(lower), float(upper), pb.log_scale, digits
        )
    if param.grid is not None and param.grid[0] > param.grid[1]:
        collector.add(
            f"{path}.digits",
            f"parameter {name!r}: no value with {digits} decimal digits lies in "
            f"[{lower:g}, {upper:g}]",
        )
        return None
    return param


def _parse_choice(
    name: str,
    pb: experiment_pb2.ChoiceParameter,
    path: str,
    collector: ViolationCollector,
) -> ChoiceParameter | None:
    if not pb.values:
        collector.add(
            f"{path}.values", f"choice parameter {name!r} needs at least one value"
        )
        return None
    values: list[ParameterValue] = []
    seen: dict[str, int] = {}
    bad = False
    for j, value_pb in enumerate(pb.values):
        value = _plain_value(value_pb)
        if value is None:
            collector.add(
                f"{path}.values[{j}]", "a choice value must be set and finite"
            )
            bad = True
            continue
        # Values equal under the arm rule would be the same arm twice.
        shown = canonical_float(value, None) if isinstance(value, float) else value
        token = f"{value_kind(value)}:{shown}"
        if token in seen:
            collector.add(
                f"{path}.values[{j}]",
                f"choice parameter {name!r}: value {value!r} duplicates "
                f"values[{seen[token]}]",
            )
            bad = True
        seen[token] = j
        values.append(value)
    kinds = sorted({value_kind(v) for v in values})
    if len(kinds) > 1:
        collector.add(
            f"{path}.values",
            f"choice parameter {name!r} mixes value kinds ({', '.join(kinds)}); "
            "use one kind",
        )
        bad = True
    if bad:
        return None
    return ChoiceParameter(name, tuple(values), pb.is_ordered)


def _parse_constraint(
    pb: experiment_pb2.ParameterConstraint,
    path: str,
    by_name: dict[str, Parameter],
    collector: ViolationCollector,
) -> ParameterConstraint | None:
    def check_range(name: str, where: str) -> bool:
        param = by_name.get(name)
        if param is None:
            collector.add(where, f"constraint names unknown parameter {name!r}")
            return False
        if not isinstance(param, RangeParameter):
            collector.add(
                where,
                f"constraint names {name!r}, which is not a range parameter; "
                "constraints apply to range parameters only",
            )
            return False
        return True

    kind = pb.WhichOneof("kind")
    if kind == "linear":
        ok = True
        if not pb.linear.weights:
            collector.add(
                f"{path}.linear.weights",
                "a linear constraint needs at least one weight",
            )
            ok = False
        for name, weight in sorted(pb.linear.weights.items()):
            where = f"{path}.linear.weights[{name}]"
            ok = check_range(name, where) and ok
            if not math.isfinite(weight):
                collector.add(where, f"weight of {name!r} must be finite")
                ok = False
        if not math.isfinite(pb.linear.bound):
            collector.add(f"{path}.linear.bound", "the bound must be finite")
            ok = False
        if not ok:
            return None
        weights = tuple(sorted(pb.linear.weights.items()))
        return LinearConstraint(weights, pb.linear.bound)
    if kind == "order":
        low, high = pb.order.lower_parameter, pb.order.upper_parameter
        ok = check_range(low, f"{path}.order.lower_parameter")
        ok = check_range(high, f"{path}.order.upper_parameter") and ok
        if ok and low == high:
            collector.add(
                f"{path}.order",
                "an order constraint needs two different parameters, "
                f"got {low!r} twice",
            )
            ok = False
        return OrderConstraint(low, high) if ok else None
    collector.add(path, "a parameter constraint must set one of linear, order")
    return None


def _plain_value(pb: object) -> ParameterValue | None:
    """A set, finite value of a `ParameterValue`, or None."""
    from polytrial.server.engine.values import value_from_proto

    try:
        value = value_from_proto(pb)  # type: ignore[arg-type]
    except InvalidArgument:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_optimization_config(
    pb: experiment_pb2.OptimizationConfig,
    *,
    field: str = "experiment.optimization_config",
    stored: bool = False,
) -> OptimizationSpec:
    """Validates an `OptimizationConfig` message.

    Rules: at least one objective; metric names of 1-256 characters (letters,
    digits and `_ . : / @ + % -`, not starting with punctuation), unique among
    objectives; outcome constraints with a set direction and a finite bound,
    on metrics that are not objectives; objective thresholds only on
    objectives, once each, finite; tracking metrics unique and not
    objectives; at most `MAX_OBJECTIVES` objectives,
    `MAX_OUTCOME_CONSTRAINTS` outcome constraints and `MAX_TRACKING_METRICS`
    tracking metrics.

    Args:
        pb: The message.
        field: Its path in the request, prefixed to every violation.
        stored: The config was accepted by this or an older server: skip the
            limits and rules added since (repeated tracking metrics are
            dropped instead), so that it stays readable.

    Raises:
        InvalidArgument: any rule is broken, every violation listed
            (INVALID_ARGUMENT); a list is over its limit (reason
            LIMIT_EXCEEDED).
    """
    if not stored:
        _check_limits(
            [
                (
                    f"{field}.objectives",
                    len(pb.objectives),
                    MAX_OBJECTIVES,
                    "objectives",
                ),
                (
                    f"{field}.outcome_constraints",
                    len(pb.outcome_constraints),
                    MAX_OUTCOME_CONSTRAINTS,
                    "outcome constraints",
                ),
                (
                    f"{field}.objective_thresholds",
                    len(pb.objective_thresholds),
                    MAX_OBJECTIVES,
                    "objective thresholds",
                ),
                (
                    f"{field}.tracking_metrics",
                    len(pb.tracking_metrics),
                    MAX_TRACKING_METRICS,
                    "tracking metrics",
                ),
            ]
        )
    collector = ViolationCollector()

    def check_name(name: str, where: str) -> bool:
        if not name.strip():
            collector.add(where, "a metric name is required")
            return False
        if len(name) > MAX_METRIC_NAME_LENGTH:
            collector.add(
                where, f"metric names have at most {MAX_METRIC_NAME_LENGTH} characters"
            )
            return False
        if not stored and not METRIC_NAME_PATTERN.fullmatch(name):
            collector.add(
                where,
                f"metric name {name!r} is invalid: use letters, digits and "
                "'_ . : / @ + % -', starting with a letter, digit or '_'",
            )
            return False
        return True

    if not pb.objectives:
        collector.add(f"{field}.objectives", "at least one objective is required")
    objectives: dict[str, Objective] = {}
    for i, objective_pb in enumerate(pb.objectives):
        where = f"{field}.objectives[{i}].metric_name"
        name = objective_pb.metric_name
        if not check_name(name, where):
            continue
        if name in objectives:
            collector.add(where, f"metric {name!r} is already an objective")
            continue
        objectives[name] = Objective(name, objective_pb.minimize)

    constraints: list[OutcomeConstraint] = []
    for i, constraint_pb in enumerate(pb.outcome_constraints):
        where = f"{field}.outcome_constraints[{i}]"
        name = constraint_pb.metric_name
        ok = check_name(name, f"{where}.metric_name")
        if ok and not stored and name in objectives:
            # As in Ax: bound an objective through its objective threshold.
            collector.add(
                f"{where}.metric_name",
                f"metric {name!r} is an objective; outcome constraints apply to "
                "other metrics (use objective_thresholds for a multi-objective "
                "reference point)",
            )
            ok = False
        if constraint_pb.op not in (
            experiment_pb2.COMPARISON_OP_GREATER_EQUAL,
            experiment_pb2.COMPARISON_OP_LESS_EQUAL,
        ):
            collector.add(
                f"{where}.op",
                "set op to COMPARISON_OP_GREATER_EQUAL or COMPARISON_OP_LESS_EQUAL",
            )
            ok = False
        if not math.isfinite(constraint_pb.bound):
            collector.add(f"{where}.bound", "the bound must be finite")
            ok = False
        if ok:
            constraints.append(
                OutcomeConstraint(
                    name,
                    constraint_pb.op == experiment_pb2.COMPARISON_OP_GREATER_EQUAL,
                    constraint_pb.bound,
                )
            )

    thresholds: dict[str, float] = {}
    for i, threshold_pb in enumerate(pb.objective_thresholds):
        where = f"{field}.objective_thresholds[{i}]"
        name = threshold_pb.metric_name
        if not check_name(name, f"{where}.metric_name"):
            continue
        if name not in objectives:
            collector.add(
                f"{where}.metric_name",
                f"{name!r} is not an objective; thresholds apply to objectives",
            )
        elif len(objectives) == 1 and not stored:
            # A threshold only sets the hypervolume's reference point, which a
            # single objective does not have; accepting it would suggest it
            # bounds the objective, which it would not.
            collector.add(
                f"{where}.metric_name",
                "objective thresholds apply to experiments with two or more "
                f"objectives; {name!r} is the only one",
            )
        elif name in thresholds:
            collector.add(
                f"{where}.metric_name", f"objective {name!r} has a threshold already"
            )
        elif not math.isfinite(threshold_pb.bound):
            collector.add(f"{where}.bound", "the bound must be finite")
        else:
            thresholds[name] = threshold_pb.bound

    # A constrained metric may be listed as a tracking metric too (it is not
    # optimized); the client has always sent configs like that.
    tracking: dict[str, int] = {}
    for i, name in enumerate(pb.tracking_metrics):
        where = f"{field}.tracking_metrics[{i}]"
        if not check_name(name, where):
            continue
        if stored:
            tracking.setdefault(name, i)
        elif name in tracking:
            collector.add(
                where,
                f"tracking metric {name!r} duplicates "
                f"tracking_metrics[{tracking[name]}]",
            )
        elif name in objectives:
            collector.add(
                where,
                f"metric {name!r} is an objective, which is optimized; tracking "
                "metrics are recorded but not optimized",
            )
        else:
            tracking[name] = i
    collector.raise_if_any()
    return OptimizationSpec(
        tuple(objectives.values()), tuple(constraints), thresholds, tuple(tracking)
    )


def parse_generation_strategy(
    pb: experiment_pb2.GenerationStrategy | None,
    search_space: SearchSpace,
    *,
    field: str = "experiment.generation_strategy",
) -> StrategySpec:
    """Validates a `GenerationStrategy` message and fills in its defaults.

    An unset kind means Bayesian optimization; unset `num_initial_trials`
    means max(5, 2 x tunable parameters); an unset seed is drawn here and must
    be stored with the experiment, so that its suggestions can be reproduced.

    Raises:
        InvalidArgument: an unknown generator kind (the message lists the valid
            ones) or fewer than one initial trial (INVALID_ARGUMENT).
    """
    pb = pb if pb is not None else experiment_pb2.GenerationStrategy()
    collector = ViolationCollector()
    kind = _GENERATOR_KINDS.get(pb.kind)
    if kind is None:
        collector.add(
            f"{field}.kind",
            f"unknown generator kind {pb.kind}; valid choices: GENERATOR_KIND_SOBOL, "
            "GENERATOR_KIND_BAYESIAN (or unset, which means GENERATOR_KIND_BAYESIAN)",
        )
    num_initial = max(MIN_INITIAL_TRIALS, 2 * len(search_space.tunable_names))
    if pb.HasField("num_initial_trials"):
        if pb.num_initial_trials < 1:
            collector.add(
                f"{field}.num_initial_trials",
                f"num_initial_trials must be at least 1, got {pb.num_initial_trials}",
            )
        num_initial = pb.num_initial_trials
    collector.raise_if_any()
    seed = pb.seed if pb.HasField("seed") else secrets.randbelow(2**31)
    assert kind is not None
    return StrategySpec(kind=kind, num_initial_trials=num_initial, seed=seed)
