"""What the client returns: small frozen dataclasses built from API messages.

Each keeps the message it came from in `.raw` (left out of equality and repr)
for fields a caller needs that are not mirrored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from polytrial.client.search_space import (
    GenerationStrategy,
    MetricSource,
    Objective,
    OutcomeConstraint,
    Parameter,
    ParameterConstraint,
    RunnerConfig,
    constraint_from_proto,
    objectives_from_proto,
    outcome_constraints_from_proto,
    parameter_from_proto,
    status_quo_from_proto,
    strategy_from_proto,
)
from polytrial.client.values import (
    Parameters,
    from_parameters_proto,
    from_struct,
    from_timestamp,
)
from polytrial.v1 import trial_pb2

_EXPERIMENT_PREFIX = "experiments/"


class TrialStatus(StrEnum):
    """The lifecycle of a trial; see `polytrial.v1.TrialStatus` for the rules."""

    CANDIDATE = "CANDIDATE"
    STAGED = "STAGED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EARLY_STOPPED = "EARLY_STOPPED"
    ABANDONED = "ABANDONED"

    def __repr__(self) -> str:
        # `TrialStatus.COMPLETED`, so that a printed dict of counts reads
        # `{TrialStatus.COMPLETED: 12}` rather than the enum default
        # `{<TrialStatus.COMPLETED: 'COMPLETED'>: 12}`.
        return f"{type(self).__name__}.{self.name}"

    @property
    def is_final(self) -> bool:
        """Whether no transition leaves this status."""
        return self in _FINAL

    def to_proto(self) -> trial_pb2.TrialStatus.ValueType:
        """The `polytrial.v1.TrialStatus` number."""
        return trial_pb2.TrialStatus.Value(f"TRIAL_STATUS_{self.value}")

    @classmethod
    def from_proto(cls, number: trial_pb2.TrialStatus.ValueType) -> TrialStatus:
        """The status of a `polytrial.v1.TrialStatus` number.

        Raises:
            ValueError: the number is TRIAL_STATUS_UNSPECIFIED or unknown.
        """
        name: str = trial_pb2.TrialStatus.Name(number)
        return cls(name.removeprefix("TRIAL_STATUS_"))


_FINAL = frozenset(
    {
        TrialStatus.COMPLETED,
        TrialStatus.FAILED,
        TrialStatus.EARLY_STOPPED,
        TrialStatus.ABANDONED,
    }
)


@dataclass(frozen=True)
class Arm:
    """A named parameterization; the server names arms `{trial}_{arm}`."""

    name: str
    parameters: Parameters
    weight: float = 1.0

    @classmethod
    def from_proto(cls, message: Any, weight: float = 1.0) -> Arm:
        """Builds an arm of an `Arm` message."""
        return cls(message.name, from_parameters_proto(message.parameters), weight)


@dataclass(frozen=True)
class Observation:
    """One observed value of one metric of one arm.

    Attributes:
        arm_name: The arm, for example "3_0".
        metric_name: The metric.
        mean: The observed mean.
        sem: Its standard error; None means unknown (not zero).
        step: The step of intermediate data; None for final data.
    """

    arm_name: str
    metric_name: str
    mean: float
    sem: float | None = None
    step: int | None = None

    @classmethod
    def from_proto(cls, message: Any) -> Observation:
        """Builds an observation of an `Observation` message."""
        return cls(
            arm_name=message.arm_name,
            metric_name=message.metric_name,
            mean=message.mean,
            sem=message.sem if message.HasField("sem") else None,
            step=message.step if message.HasField("step") else None,
        )


@dataclass(frozen=True)
class GenerationRecord:
    """Which generator produced a trial's arms and what it saw."""

    generator: str
    num_observations: int
    details: dict[str, Any]


@dataclass(frozen=True)
class Trial:
    """One evaluation of one arm, or of several together (a batch trial).

    Attributes:
        name: `experiments/{experiment_id}/trials/{index}`.
        experiment_id: The experiment's id.
        index: Dense index in the experiment, from 0.
        status: Current status.
        arms: The arms, with their weights.
        is_batch: Whether the trial was created as a batch trial.
        observations: Final and intermediate data.
        generation: How the arms were generated; None for attached trials
            when the server records none.
        status_reason: Why the trial failed or was abandoned.
        missing_metrics: Always empty in this version (a completion must
            carry every objective; see `polytrial.v1.Trial.missing_metrics`).
        run_metadata: The runner's metadata.
        deployed_name: The runner's name for the trial.
        create_time, run_time, end_time, expire_time: Timestamps (UTC).
        raw: The `polytrial.v1.Trial` message.
    """

    name: str
    experiment_id: str
    index: int
    status: TrialStatus
    arms: tuple[Arm, ...]
    is_batch: bool
    observations: tuple[Observation, ...]
    generation: GenerationRecord | None
    status_reason: str
    missing_metrics: tuple[str, ...]
    run_metadata: dict[str, Any]
    deployed_name: str
    create_time: datetime | None
    run_time: datetime | None
    end_time: datetime | None
    expire_time: datetime | None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def arm(self) -> Arm:
        """The arm of a single-arm trial.

        Raises:
            ValueError: the trial is a batch trial with several arms.
        """
        if len(self.arms) != 1:
            raise ValueError(
                f"{self.name} has {len(self.arms)} arms; use .arms for a batch trial"
            )
        return self.arms[0]

    @property
    def parameters(self) -> Parameters:
        """The parameters of a single-arm trial's arm (a fresh dict)."""
        return dict(self.arm.parameters)

    def final_observations(self) -> dict[tuple[str, str], Observation]:
        """Final observations (no step) by (arm name, metric name)."""
        return {
            (o.arm_name, o.metric_name): o for o in self.observations if o.step is None
        }

    @classmethod
    def from_proto(cls, message: Any) -> Trial:
        """Builds a trial of a `polytrial.v1.Trial` message."""
        generation = None
        if message.HasField("generation"):
            generation = GenerationRecord(
                generator=message.generation.generator,
                num_observations=message.generation.num_observations,
                details=from_struct(message.generation.details),
            )
        experiment_id = message.name.removeprefix(_EXPERIMENT_PREFIX).split("/")[0]
        return cls(
            name=message.name,
            experiment_id=experiment_id,
            index=message.index,
            status=TrialStatus.from_proto(message.status),
            arms=tuple(Arm.from_proto(a.arm, a.weight or 1.0) for a in message.arms),
            is_batch=message.is_batch,
            observations=tuple(Observation.from_proto(o) for o in message.observations),
            generation=generation,
            status_reason=message.status_reason,
            missing_metrics=tuple(message.missing_metrics),
            run_metadata=from_struct(message.run_metadata),
            deployed_name=message.deployed_name,
            create_time=from_timestamp(message, "create_time"),
            run_time=from_timestamp(message, "run_time"),
            end_time=from_timestamp(message, "end_time"),
            expire_time=from_timestamp(message, "expire_time"),
            raw=message,
        )


@dataclass(frozen=True)
class Experiment:
    """An experiment as the server stores it.

    Attributes:
        name: `experiments/{experiment_id}`.
        experiment_id: The user-chosen id.
        description: Free text.
        parameters: The search space's parameters, as helper dataclasses.
        parameter_constraints: Its constraints.
        objectives: What is optimized.
        outcome_constraints: Bounds on other metrics.
        objective_thresholds: Reference point of a multi-objective experiment.
        tracking_metrics: Metrics recorded but not optimized.
        generation_strategy: How arms are generated, with the server's
            defaults filled in where it reports them.
        status_quo: The baseline parameterization, if any.
        properties: Free-form user properties.
        runner: The runner that deploys trials, if any.
        metric_sources: Where metrics come from, when not from clients.
        trial_counts: Number of trials by status.
        create_time, update_time: Timestamps (UTC).
        raw: The `polytrial.v1.Experiment` message.
    """

    name: str
    experiment_id: str
    description: str
    parameters: tuple[Parameter, ...]
    parameter_constraints: tuple[ParameterConstraint, ...]
    objectives: tuple[Objective, ...]
    outcome_constraints: tuple[OutcomeConstraint, ...]
    objective_thresholds: dict[str, float]
    tracking_metrics: tuple[str, ...]
    generation_strategy: GenerationStrategy
    status_quo: Parameters | None
    properties: dict[str, Any]
    runner: RunnerConfig | None
    metric_sources: tuple[MetricSource, ...]
    trial_counts: dict[TrialStatus, int]
    create_time: datetime | None
    update_time: datetime | None
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The parameter names in declaration order."""
        return tuple(p.name for p in self.parameters)

    @property
    def objective(self) -> Objective:
        """The single objective.

        Raises:
            ValueError: the experiment has several objectives.
        """
        if len(self.objectives) != 1:
            raise ValueError(
                f"{self.name} has {len(self.objectives)} objectives, not one"
            )
        return self.objectives[0]

    @classmethod
    def from_proto(cls, message: Any) -> Experiment:
        """Builds an experiment of a `polytrial.v1.Experiment` message."""
        config = message.optimization_config
        runner = None
        if message.HasField("runner"):
            runner = RunnerConfig(
                message.runner.address,
                message.runner.timeout_s
                if message.runner.HasField("timeout_s")
                else None,
            )
        return cls(
            name=message.name,
            experiment_id=message.experiment_id,
            description=message.description,
            parameters=tuple(
                parameter_from_proto(p) for p in message.search_space.parameters
            ),
            parameter_constraints=tuple(
                constraint_from_proto(c)
                for c in message.search_space.parameter_constraints
            ),
            objectives=objectives_from_proto(config),
            outcome_constraints=outcome_constraints_from_proto(config),
            objective_thresholds={
                t.metric_name: t.bound for t in config.objective_thresholds
            },
            tracking_metrics=tuple(config.tracking_metrics),
            generation_strategy=strategy_from_proto(message.generation_strategy),
            status_quo=status_quo_from_proto(message),
            properties=from_struct(message.properties),
            runner=runner,
            metric_sources=tuple(
                MetricSource(
                    s.metric_name,
                    _SOURCE_KINDS.get(s.kind, "client"),
                    s.address,
                )
                for s in message.metric_sources
            ),
            trial_counts=_trial_counts(message.trial_counts),
            create_time=from_timestamp(message, "create_time"),
            update_time=from_timestamp(message, "update_time"),
            raw=message,
        )


_SOURCE_KINDS: dict[int, Any] = {1: "client", 2: "runner", 3: "service"}


def _trial_counts(counts: Mapping[str, int]) -> dict[TrialStatus, int]:
    """Counts by status; names may come with or without the enum prefix."""
    result: dict[TrialStatus, int] = {}
    for key, count in counts.items():
        status_name = key.removeprefix("TRIAL_STATUS_")
        if status_name in TrialStatus.__members__:
            result[TrialStatus(status_name)] = int(count)
    return result


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one arm, pooled over the trials that observed it."""

    metric_name: str
    mean: float
    sem: float | None
    count: int


@dataclass(frozen=True)
class ArmResult:
    """An arm with the observations that make it a result.

    Attributes:
        arm: The arm (its name is the first trial's arm name).
        trial_indices: The trials that observed it.
        metrics: Pooled metrics by name.
        raw: The `polytrial.v1.ArmResult` message.
    """

    arm: Arm
    trial_indices: tuple[int, ...]
    metrics: dict[str, MetricSummary]
    raw: Any = field(default=None, compare=False, repr=False)

    @property
    def parameters(self) -> Parameters:
        """The arm's parameters (a fresh dict)."""
        return dict(self.arm.parameters)

    @classmethod
    def from_proto(cls, message: Any) -> ArmResult:
        """Builds an arm result of an `ArmResult` message."""
        return cls(
            arm=Arm.from_proto(message.arm),
            trial_indices=tuple(message.trial_indices),
            metrics={
                m.metric_name: MetricSummary(
                    m.metric_name,
                    m.mean,
                    m.sem if m.HasField("sem") else None,
                    m.count,
                )
                for m in message.metrics
            },
            raw=message,
        )
