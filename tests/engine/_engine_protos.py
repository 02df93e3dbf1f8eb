"""Builders of search-space and config protobufs for the engine tests."""

from __future__ import annotations

from typing import Any

from polytrial.server.engine import (
    GenerationRequest,
    GeneratorKind,
    Objective,
    OptimizationSpec,
    SearchSpace,
    StrategySpec,
    parse_search_space,
    value_to_proto,
)
from polytrial.v1 import experiment_pb2 as pb


def float_param(name: str, lower: float, upper: float, **kw: Any) -> pb.Parameter:
    return pb.Parameter(
        name=name,
        range=pb.RangeParameter(
            type=pb.PARAMETER_TYPE_FLOAT, lower=lower, upper=upper, **kw
        ),
    )


def int_param(name: str, lower: float, upper: float, **kw: Any) -> pb.Parameter:
    return pb.Parameter(
        name=name,
        range=pb.RangeParameter(
            type=pb.PARAMETER_TYPE_INT, lower=lower, upper=upper, **kw
        ),
    )


def choice_param(name: str, values: list[Any], ordered: bool = False) -> pb.Parameter:
    return pb.Parameter(
        name=name,
        choice=pb.ChoiceParameter(
            values=[value_to_proto(v) for v in values], is_ordered=ordered
        ),
    )


def fixed_param(name: str, value: Any) -> pb.Parameter:
    return pb.Parameter(name=name, fixed=pb.FixedParameter(value=value_to_proto(value)))


def linear(weights: dict[str, float], bound: float) -> pb.ParameterConstraint:
    return pb.ParameterConstraint(
        linear=pb.LinearConstraint(weights=weights, bound=bound)
    )


def order(low: str, high: str) -> pb.ParameterConstraint:
    return pb.ParameterConstraint(
        order=pb.OrderConstraint(lower_parameter=low, upper_parameter=high)
    )


def space_pb(
    params: list[pb.Parameter], constraints: list[pb.ParameterConstraint] | None = None
) -> pb.SearchSpace:
    return pb.SearchSpace(parameters=params, parameter_constraints=constraints or [])


def space(
    params: list[pb.Parameter], constraints: list[pb.ParameterConstraint] | None = None
) -> SearchSpace:
    return parse_search_space(space_pb(params, constraints))


def sobol_request(
    search_space: SearchSpace, count: int = 1, **kw: Any
) -> GenerationRequest:
    return GenerationRequest(
        search_space=search_space,
        optimization=OptimizationSpec((Objective("y", minimize=True),)),
        strategy=StrategySpec(
            GeneratorKind.SOBOL, num_initial_trials=5, seed=kw.pop("seed", 7)
        ),
        count=count,
        **kw,
    )
