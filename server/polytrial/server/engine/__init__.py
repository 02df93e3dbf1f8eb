"""The suggestion engine: search spaces, Sobol and Bayesian-optimization arms.

    parse_search_space / parse_optimization_config / parse_generation_strategy
        protobuf configuration -> validated engine types (InvalidArgument)
    SearchSpace.arm_key / validate_parameterization
        arm identity and checks of user-chosen parameters
    generate(GenerationRequest) -> GenerationResult
        new arms: Sobol first, then BoTorch (imported lazily)
    uses_model(GenerationRequest)
        whether that generation fits a model (slow) or is Sobol (quick)

Nothing here knows gRPC or storage; errors are `polytrial.server.errors`.
"""

from polytrial.server.engine.generate import generate, uses_model
from polytrial.server.engine.parsing import (
    parse_generation_strategy,
    parse_optimization_config,
    parse_search_space,
)
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
    GenerationRequest,
    GenerationResult,
    GeneratorKind,
    Objective,
    ObservedArm,
    OptimizationSpec,
    OutcomeConstraint,
    Parameterization,
    ParameterValue,
    StrategySpec,
)
from polytrial.server.engine.values import value_from_proto, value_to_proto

__all__ = [
    "ChoiceParameter",
    "FixedParameter",
    "GenerationRequest",
    "GenerationResult",
    "GeneratorKind",
    "LinearConstraint",
    "Objective",
    "ObservedArm",
    "OptimizationSpec",
    "OrderConstraint",
    "OutcomeConstraint",
    "Parameter",
    "ParameterConstraint",
    "ParameterValue",
    "Parameterization",
    "RangeParameter",
    "SearchSpace",
    "StrategySpec",
    "generate",
    "parse_generation_strategy",
    "parse_optimization_config",
    "parse_search_space",
    "uses_model",
    "value_from_proto",
    "value_to_proto",
]
