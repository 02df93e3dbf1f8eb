"""Validation of search spaces, optimization configs and strategies."""

from __future__ import annotations

import math

import pytest
from _engine_protos import (
    choice_param,
    fixed_param,
    float_param,
    int_param,
    linear,
    order,
    space,
    space_pb,
)
from polytrial.server.engine import (
    ChoiceParameter,
    GeneratorKind,
    RangeParameter,
    parse_generation_strategy,
    parse_optimization_config,
    parse_search_space,
    value_from_proto,
    value_to_proto,
)
from polytrial.server.engine.parsing import (
    MAX_CHOICE_VALUES,
    MAX_DIGITS,
    MAX_OBJECTIVES,
    MAX_OUTCOME_CONSTRAINTS,
    MAX_TRACKING_METRICS,
)
from polytrial.server.errors import InvalidArgument
from polytrial.v1 import experiment_pb2 as pb
from polytrial.v1 import values_pb2

pytestmark = pytest.mark.timeout(60)
FIELD = "experiment.search_space"


def violations(search_space: pb.SearchSpace) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_search_space(search_space)
    return {v.field: v.description for v in caught.value.violations}


def test_int_lower_above_upper_is_refused_naming_the_parameter_c05() -> None:
    found = violations(space_pb([int_param("batch", 50, 1)]))
    assert list(found) == [f"{FIELD}.parameters[0].range.lower"]
    assert "'batch'" in found[f"{FIELD}.parameters[0].range.lower"]
    assert "below the upper bound" in found[f"{FIELD}.parameters[0].range.lower"]


def test_float_lower_equal_upper_is_refused_c05() -> None:
    found = violations(
        space_pb([float_param("x", 0.5, 1), float_param("lr", 0.3, 0.3)])
    )
    assert list(found) == [f"{FIELD}.parameters[1].range.lower"]


@pytest.mark.parametrize(
    "param",
    [
        float_param("lr", 0, 1, log_scale=True),
        float_param("lr", -1, 1, log_scale=True),
        int_param("lr", 0, 10, log_scale=True),
    ],
)
def test_log_scale_with_non_positive_lower_is_refused_c06(param: pb.Parameter) -> None:
    found = violations(space_pb([param]))
    assert "log scale" in found[f"{FIELD}.parameters[0].range.lower"]
    assert "'lr'" in found[f"{FIELD}.parameters[0].range.lower"]


def test_every_fault_of_a_search_space_is_reported_at_once() -> None:
    found = violations(
        space_pb(
            [
                float_param("x", 0, 1),
                float_param("x", 0, 1),
                float_param("9bad", 0, 1),
                pb.Parameter(name="unset"),
                pb.Parameter(name="t", range=pb.RangeParameter(lower=0, upper=1)),
                float_param("d", 0, 1, digits=-1),
                int_param("i", 0.5, 3),
                choice_param("empty", []),
                choice_param("mixed", [1, "a"]),
                choice_param("dup", ["a", "b", "a"]),
                pb.Parameter(name="f", fixed=pb.FixedParameter()),
                choice_param("cat", ["a", "b"]),
            ],
            [
                linear({"nope": 1.0}, 1),
                linear({"cat": 1.0}, 1),
                pb.ParameterConstraint(linear=pb.LinearConstraint(bound=1)),
                order("x", "x"),
                pb.ParameterConstraint(),
            ],
        )
    )
    p, c = f"{FIELD}.parameters", f"{FIELD}.parameter_constraints"
    assert set(found) == {
        f"{p}[1].name",
        f"{p}[2].name",
        f"{p}[3]",
        f"{p}[4].range.type",
        f"{p}[5].range.digits",
        f"{p}[6].range.lower",
        f"{p}[7].choice.values",
        f"{p}[8].choice.values",
        f"{p}[9].choice.values[2]",
        f"{p}[10].fixed.value",
        f"{c}[0].linear.weights[nope]",
        f"{c}[1].linear.weights[cat]",
        f"{c}[2].linear.weights",
        f"{c}[3].order",
        f"{c}[4]",
    }
    assert "duplicates parameters[0]" in found[f"{p}[1].name"]
    assert "unknown parameter" in found[f"{c}[0].linear.weights[nope]"]
    assert "not a range parameter" in found[f"{c}[1].linear.weights[cat]"]


def test_no_parameters_is_refused() -> None:
    assert f"{FIELD}.parameters" in violations(space_pb([]))


def test_choice_values_equal_after_float_rounding_are_duplicates() -> None:
    found = violations(space_pb([choice_param("c", [0.3, 0.1 + 0.2])]))
    assert "duplicates values[0]" in found[f"{FIELD}.parameters[0].choice.values[1]"]


def test_digits_with_no_value_inside_the_bounds_are_refused() -> None:
    found = violations(space_pb([float_param("x", 0.121, 0.129, digits=2)]))
    assert f"{FIELD}.parameters[0].range.digits" in found


@pytest.mark.parametrize(
    "constraints",
    [
        [linear({"x1": -1, "x2": -1}, -3)],
        [order("x1", "x2"), linear({"x2": 1, "x1": -1}, -0.5)],
    ],
)
def test_constraints_that_leave_no_feasible_point_are_refused_c20(
    constraints: list[pb.ParameterConstraint],
) -> None:
    found = violations(
        space_pb([float_param("x1", 0, 1), float_param("x2", 0, 1)], constraints)
    )
    assert "leave no feasible point" in found[f"{FIELD}.parameter_constraints"]


def test_int_constraints_without_an_integer_solution_are_refused() -> None:
    # The LP relaxation has x1 + x2 = 0.5; no pair of integers does.
    params = [int_param("x1", 0, 3), int_param("x2", 0, 3)]
    found = violations(
        space_pb(
            params,
            [linear({"x1": 1, "x2": 1}, 0.6), linear({"x1": -1, "x2": -1}, -0.4)],
        )
    )
    assert f"{FIELD}.parameter_constraints" in found


def test_feasibility_check_can_be_skipped_when_re_reading_a_space() -> None:
    search_space = parse_search_space(
        space_pb(
            [float_param("x1", 0, 1), float_param("x2", 0, 1)],
            [linear({"x1": -1, "x2": -1}, -3)],
        ),
        check_feasibility=False,
    )
    assert len(search_space.constraints) == 1


def test_long_ordered_choice_of_1001_floats_is_accepted_c21() -> None:
    values = [round(i * 0.001, 3) for i in range(1001)]
    parsed = space([choice_param("grid", values, ordered=True)])
    param = parsed.by_name["grid"]
    assert isinstance(param, ChoiceParameter)
    assert param.values == tuple(values) and param.is_ordered
    assert parsed.cardinality == 1001


def test_parsed_space_keeps_types_and_order() -> None:
    parsed = space(
        [
            int_param("n", 1, 100, log_scale=True),
            float_param("x", 0, 1, digits=3),
            choice_param("flag", [True, False]),
            fixed_param("mode", "fast"),
        ]
    )
    assert parsed.parameter_names == ("n", "x", "flag", "mode")
    assert parsed.tunable_names == ("n", "x", "flag")
    n = parsed.by_name["n"]
    assert isinstance(n, RangeParameter) and n.is_int and isinstance(n.lower, int)
    assert parsed.is_finite and parsed.cardinality == 100 * 1001 * 2


def test_values_keep_their_type_through_protobuf() -> None:
    for value in (True, False, 0, 1, -7, 1.5, 0.0, "a", ""):
        back = value_from_proto(value_to_proto(value))
        assert back == value and type(back) is type(value)


def test_unset_value_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        value_from_proto(values_pb2.ParameterValue(), field="arm.parameters.x")
    assert caught.value.violations[0].field == "arm.parameters.x"


OPT = "experiment.optimization_config"


def test_optimization_config_faults_are_all_reported() -> None:
    config = pb.OptimizationConfig(
        objectives=[
            pb.Objective(metric_name="a"),
            pb.Objective(metric_name="a"),
            pb.Objective(),
        ],
        outcome_constraints=[
            pb.OutcomeConstraint(metric_name="c", bound=1),
            pb.OutcomeConstraint(
                metric_name="d", op=pb.COMPARISON_OP_LESS_EQUAL, bound=float("inf")
            ),
        ],
        objective_thresholds=[pb.ObjectiveThreshold(metric_name="zzz", bound=1)],
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_optimization_config(config)
    assert {v.field for v in caught.value.violations} == {
        f"{OPT}.objectives[1].metric_name",
        f"{OPT}.objectives[2].metric_name",
        f"{OPT}.outcome_constraints[0].op",
        f"{OPT}.outcome_constraints[1].bound",
        f"{OPT}.objective_thresholds[0].metric_name",
    }


def test_optimization_config_without_objectives_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_optimization_config(pb.OptimizationConfig())
    assert caught.value.violations[0].field == f"{OPT}.objectives"


def test_valid_optimization_config_is_parsed() -> None:
    spec = parse_optimization_config(
        pb.OptimizationConfig(
            objectives=[
                pb.Objective(metric_name="a", minimize=True),
                pb.Objective(metric_name="b"),
            ],
            outcome_constraints=[
                pb.OutcomeConstraint(
                    metric_name="c", op=pb.COMPARISON_OP_GREATER_EQUAL, bound=2
                )
            ],
            objective_thresholds=[pb.ObjectiveThreshold(metric_name="b", bound=0.5)],
            tracking_metrics=["t"],
        )
    )
    assert [o.minimize for o in spec.objectives] == [True, False]
    assert spec.outcome_constraints[0].greater_equal
    assert spec.objective_thresholds == {"b": 0.5}
    assert spec.metric_names == {"a", "b", "c", "t"}


def test_unknown_generator_kind_lists_the_valid_choices_c15() -> None:
    strategy = pb.GenerationStrategy()
    strategy.kind = 42  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as caught:
        parse_generation_strategy(strategy, space([float_param("x", 0, 1)]))
    violation = caught.value.violations[0]
    assert violation.field == "experiment.generation_strategy.kind"
    assert "GENERATOR_KIND_SOBOL" in violation.description
    assert "GENERATOR_KIND_BAYESIAN" in violation.description


def test_strategy_defaults_to_bayesian_with_twice_the_tunable_parameters() -> None:
    search_space = space(
        [float_param(f"x{i}", 0, 1) for i in range(4)] + [fixed_param("f", 1)]
    )
    spec = parse_generation_strategy(None, search_space)
    assert spec.kind is GeneratorKind.BAYESIAN
    assert spec.num_initial_trials == 8
    small = parse_generation_strategy(
        pb.GenerationStrategy(seed=3), space([float_param("x", 0, 1)])
    )
    assert small.num_initial_trials == 5 and small.seed == 3


def test_zero_initial_trials_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_generation_strategy(
            pb.GenerationStrategy(num_initial_trials=0), space([float_param("x", 0, 1)])
        )
    assert (
        caught.value.violations[0].field
        == "experiment.generation_strategy.num_initial_trials"
    )


@pytest.mark.parametrize("digits", [MAX_DIGITS + 1, 400, 2**31 - 1])
def test_digits_above_the_maximum_are_refused_at_once(digits: int) -> None:
    # 2**31 - 1 used to compute 10**digits under the GIL, freezing the server.
    found = violations(space_pb([float_param("x", 0, 1, digits=digits)]))
    described = found[f"{FIELD}.parameters[0].range.digits"]
    assert f"between 0 and {MAX_DIGITS}" in described and str(digits) in described


def test_digits_at_the_maximum_are_accepted() -> None:
    parsed = space([float_param("x", 0, 1, digits=MAX_DIGITS)])
    param = parsed.by_name["x"]
    assert isinstance(param, RangeParameter) and param.digits == MAX_DIGITS


@pytest.mark.parametrize(
    ("lower", "upper", "bad"),
    [(-1e300, 1e300, ["lower", "upper"]), (0, 2.0**63 - 1, ["upper"])],
)
def test_int_bounds_beyond_2_to_53_are_refused_naming_the_bound(
    lower: float, upper: float, bad: list[str]
) -> None:
    found = violations(space_pb([int_param("n", lower, upper)]))
    assert sorted(found) == [f"{FIELD}.parameters[0].range.{b}" for b in bad]
    assert "2**53" in found[f"{FIELD}.parameters[0].range.upper"]


def test_int_bounds_at_2_to_53_are_accepted() -> None:
    parsed = space([int_param("n", -(2**53), 2**53)])
    param = parsed.by_name["n"]
    assert isinstance(param, RangeParameter) and param.upper == 2**53


def test_float_range_wider_than_the_largest_double_is_refused() -> None:
    found = violations(space_pb([float_param("x", -1e308, 1e308)]))
    assert list(found) == [f"{FIELD}.parameters[0].range.upper"]
    assert (
        "wider than the largest double" in found[f"{FIELD}.parameters[0].range.upper"]
    )


def test_nan_bound_is_one_violation_on_its_own_field() -> None:
    found = violations(space_pb([float_param("x", math.nan, 1.0)]))
    assert list(found) == [f"{FIELD}.parameters[0].range.lower"]
    assert "finite" in found[f"{FIELD}.parameters[0].range.lower"]


def test_parameter_name_with_a_trailing_newline_is_refused() -> None:
    found = violations(space_pb([float_param("x\n", 0, 1)]))
    assert f"{FIELD}.parameters[0].name" in found


def test_choice_with_more_values_than_the_limit_is_limit_exceeded() -> None:
    values = list(range(MAX_CHOICE_VALUES + 1))
    with pytest.raises(InvalidArgument) as caught:
        parse_search_space(
            space_pb([float_param("x", 0, 1), choice_param("c", values)])
        )
    assert caught.value.reason == "LIMIT_EXCEEDED"
    assert [v.field for v in caught.value.violations] == [
        f"{FIELD}.parameters[1].choice.values"
    ]
    assert f"{MAX_CHOICE_VALUES:,}" in caught.value.message


def test_choice_with_exactly_the_limit_of_values_is_accepted() -> None:
    parsed = space([choice_param("c", list(range(MAX_CHOICE_VALUES)))])
    assert parsed.cardinality == MAX_CHOICE_VALUES


def test_stored_space_is_read_back_without_the_newer_rules() -> None:
    # Accepted by an older server; must stay readable (get, list, delete).
    old = space_pb([int_param("n", -1e300, 1e300), float_param("x", 0, 1, digits=300)])
    parsed = parse_search_space(old, check_feasibility=False, stored=True)
    x = parsed.by_name["x"]
    assert isinstance(x, RangeParameter) and x.grid is None
    with pytest.raises(InvalidArgument):
        parse_search_space(old)


def opt_violations(config: pb.OptimizationConfig) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_optimization_config(config)
    assert caught.value.reason == "INVALID_ARGUMENT"
    return {v.field: v.description for v in caught.value.violations}


def test_every_tracking_metric_fault_is_reported() -> None:
    found = opt_violations(
        pb.OptimizationConfig(
            objectives=[pb.Objective(metric_name="m")],
            outcome_constraints=[
                pb.OutcomeConstraint(
                    metric_name="c", op=pb.COMPARISON_OP_LESS_EQUAL, bound=1
                )
            ],
            tracking_metrics=["m", "", "t", "t", "c", "ok", "a\nb"],
        )
    )
    t = f"{OPT}.tracking_metrics"
    # A constrained metric ("c") may be tracked too.
    assert sorted(found) == [f"{t}[{i}]" for i in (0, 1, 3, 6)]
    assert "is an objective" in found[f"{t}[0]"]
    assert "duplicates tracking_metrics[2]" in found[f"{t}[3]"]


def test_outcome_constraint_on_an_objective_is_refused() -> None:
    found = opt_violations(
        pb.OptimizationConfig(
            objectives=[pb.Objective(metric_name="m")],
            outcome_constraints=[
                pb.OutcomeConstraint(
                    metric_name="m", op=pb.COMPARISON_OP_GREATER_EQUAL, bound=0
                )
            ],
        )
    )
    where = f"{OPT}.outcome_constraints[0].metric_name"
    assert list(found) == [where]
    assert "'m' is an objective" in found[where]


@pytest.mark.parametrize("name", ["a b", "line\nbreak", "tab\t", "snow☃", "-lead"])
def test_metric_name_outside_the_allowed_characters_is_refused(name: str) -> None:
    found = opt_violations(
        pb.OptimizationConfig(objectives=[pb.Objective(metric_name=name)])
    )
    assert "metric name" in found[f"{OPT}.objectives[0].metric_name"]


@pytest.mark.parametrize("name", ["val_loss", "acc@1", "latency.p99", "val/acc", "9x"])
def test_metric_names_with_common_punctuation_are_accepted(name: str) -> None:
    spec = parse_optimization_config(
        pb.OptimizationConfig(objectives=[pb.Objective(metric_name=name)])
    )
    assert spec.objectives[0].metric_name == name


@pytest.mark.parametrize(
    ("part", "limit"),
    [
        ("objectives", MAX_OBJECTIVES),
        ("outcome_constraints", MAX_OUTCOME_CONSTRAINTS),
        ("objective_thresholds", MAX_OBJECTIVES),
        ("tracking_metrics", MAX_TRACKING_METRICS),
    ],
)
def test_optimization_config_lists_over_their_limit_are_limit_exceeded(
    part: str, limit: int
) -> None:
    names = [f"m{i}" for i in range(limit + 1)]
    config = pb.OptimizationConfig(objectives=[pb.Objective(metric_name="y")])
    if part == "objectives":
        config = pb.OptimizationConfig(
            objectives=[pb.Objective(metric_name=n) for n in names]
        )
    elif part == "outcome_constraints":
        config.outcome_constraints.extend(
            pb.OutcomeConstraint(metric_name=n, op=pb.COMPARISON_OP_LESS_EQUAL)
            for n in names
        )
    elif part == "objective_thresholds":
        config.objective_thresholds.extend(
            pb.ObjectiveThreshold(metric_name=n) for n in names
        )
    else:
        config.tracking_metrics.extend(names)

    with pytest.raises(InvalidArgument) as caught:
        parse_optimization_config(config)

    assert caught.value.reason == "LIMIT_EXCEEDED"
    assert [v.field for v in caught.value.violations] == [f"{OPT}.{part}"]
    assert f"at most {limit:,}" in caught.value.message


def test_tracking_metrics_at_the_limit_are_accepted_in_order() -> None:
    names = [f"t{i}" for i in range(MAX_TRACKING_METRICS)][::-1]
    spec = parse_optimization_config(
        pb.OptimizationConfig(
            objectives=[pb.Objective(metric_name="y")], tracking_metrics=names
        )
    )
    assert spec.tracking_metrics == tuple(names)


def test_stored_config_keeps_dropping_repeated_tracking_metrics() -> None:
    old = pb.OptimizationConfig(
        objectives=[pb.Objective(metric_name="m")],
        outcome_constraints=[
            pb.OutcomeConstraint(metric_name="m", op=pb.COMPARISON_OP_LESS_EQUAL)
        ],
        tracking_metrics=["m", "t", "t", "a b"],
    )
    spec = parse_optimization_config(old, stored=True)
    assert spec.tracking_metrics == ("m", "t", "a b")
    assert spec.outcome_constraints[0].metric_name == "m"


def test_objective_threshold_on_a_single_objective_is_refused_naming_it() -> None:
    # A threshold sets the hypervolume's reference point; one objective has none.
    config = pb.OptimizationConfig(
        objectives=[pb.Objective(metric_name="loss", minimize=True)],
        objective_thresholds=[pb.ObjectiveThreshold(metric_name="loss", bound=1.0)],
    )

    with pytest.raises(InvalidArgument) as raised:
        parse_optimization_config(config)

    (violation,) = raised.value.violations
    assert violation.field.endswith("objective_thresholds[0].metric_name")
    assert "two or more objectives" in violation.description
