"""The Python client of Polytrial: ask/tell and synchronous optimization over gRPC.

    from polytrial.client import Client, RangeParameter

    with Client("localhost:50051") as client:
        client.create_experiment(
            "quadratic",
            parameters=[RangeParameter("x", -5.0, 5.0)],
            objectives={"loss": "minimize"},
        )
        summary = client.optimize("quadratic", lambda p: p["x"] ** 2, num_trials=10)
        print(summary.best.parameters)

Install it alone with `pip install polytrial` (gRPC and protobuf only); the
server's dependencies come with the `server` extra.
"""

import logging

from polytrial.client.client import DEFAULT_TIMEOUT_S, Client
from polytrial.client.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PolytrialError,
    ResourceExhaustedError,
    SearchSpaceExhaustedError,
    UnavailableError,
    UnimplementedError,
)
from polytrial.client.optimize import OptimizationSummary, TrialOutcome, optimize
from polytrial.client.orchestration import (
    Orchestration,
    OrchestrationOptions,
    OrchestrationState,
)
from polytrial.client.retry import NO_RETRY, RetryPolicy
from polytrial.client.search_space import (
    ChoiceParameter,
    FixedParameter,
    GenerationStrategy,
    LinearConstraint,
    MetricSource,
    Objective,
    OrderConstraint,
    OutcomeConstraint,
    RangeParameter,
    RunnerConfig,
)
from polytrial.client.types import (
    Arm,
    ArmResult,
    Experiment,
    GenerationRecord,
    MetricSummary,
    Observation,
    Trial,
    TrialStatus,
)
from polytrial.client.values import Parameters, ParameterValue

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "NO_RETRY",
    "AbortedError",
    "AlreadyExistsError",
    "Arm",
    "ArmResult",
    "ChoiceParameter",
    "Client",
    "DeadlineExceededError",
    "Experiment",
    "FailedPreconditionError",
    "FieldViolation",
    "FixedParameter",
    "GenerationRecord",
    "GenerationStrategy",
    "InvalidArgumentError",
    "LinearConstraint",
    "MetricSource",
    "MetricSummary",
    "NotFoundError",
    "Objective",
    "Observation",
    "OptimizationSummary",
    "Orchestration",
    "OrchestrationOptions",
    "OrchestrationState",
    "OrderConstraint",
    "OutcomeConstraint",
    "ParameterValue",
    "Parameters",
    "PolytrialError",
    "RangeParameter",
    "ResourceExhaustedError",
    "RetryPolicy",
    "RunnerConfig",
    "SearchSpaceExhaustedError",
    "Trial",
    "TrialOutcome",
    "TrialStatus",
    "UnavailableError",
    "UnimplementedError",
    "optimize",
]

# A library leaves logging to the application: without this, the client's
# retry warnings would reach stderr through logging's last-resort handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())
