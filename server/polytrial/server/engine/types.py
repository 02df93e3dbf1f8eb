"""The data the suggestion engine takes and gives: plain Python, no protobuf.

The gRPC layer turns requests into these types, the storage layer fills a
`GenerationRequest` from stored trials, and the engine answers with a
`GenerationResult`. Parameter values are Python `bool | int | float | str`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

ParameterValue = bool | int | float | str
Parameterization = dict[str, ParameterValue]


class GeneratorKind(Enum):
    """Which algorithm an experiment's strategy uses."""

    SOBOL = "sobol"
    BAYESIAN = "bayesian"


@dataclass(frozen=True)
class StrategySpec:
    """A validated generation strategy.

    Attributes:
        kind: Sobol only, or Sobol then Bayesian optimization.
        num_initial_trials: Quasi-random trials before the model takes over.
        seed: Seed of every random choice of the experiment.
    """

    kind: GeneratorKind
    num_initial_trials: int
    seed: int


@dataclass(frozen=True)
class Objective:
    """One metric to optimize."""

    metric_name: str
    minimize: bool


@dataclass(frozen=True)
class OutcomeConstraint:
    """metric >= bound (`greater_equal`) or metric <= bound."""

    metric_name: str
    greater_equal: bool
    bound: float


@dataclass(frozen=True)
class OptimizationSpec:
    """What an experiment optimizes, validated."""

    objectives: tuple[Objective, ...]
    outcome_constraints: tuple[OutcomeConstraint, ...] = ()
    objective_thresholds: dict[str, float] = field(default_factory=dict)
    tracking_metrics: tuple[str, ...] = ()

    @property
    def metric_names(self) -> frozenset[str]:
        """Every metric the experiment names (objectives, constraints, tracking)."""
        names = {o.metric_name for o in self.objectives}
        names |= {c.metric_name for c in self.outcome_constraints}
        names |= set(self.tracking_metrics)
        return frozenset(names)


@dataclass(frozen=True)
class ObservedArm:
    """An arm with final data, as the model sees it.

    Attributes:
        parameters: The arm's parameterization.
        metrics: Final observations by metric name: (mean, sem or None if unknown).
        trial_index: The trial that observed it (replicates repeat parameters).
    """

    parameters: Parameterization
    metrics: dict[str, tuple[float, float | None]]
    trial_index: int


@dataclass
class GenerationRequest:
    """Everything the engine needs to generate new arms for one experiment.

    Attributes:
        search_space: The validated search space (`engine.SearchSpace`).
        optimization: The validated optimization config.
        strategy: The experiment's strategy.
        count: Number of arms to generate.
        pinned: Parameters held at a value in every arm (already validated).
        observed: Arms with final data, from COMPLETED and EARLY_STOPPED trials.
        pending: Arms of CANDIDATE, STAGED and RUNNING trials.
        excluded_keys: `arm_key` of every arm in a trial that is not FAILED or
            ABANDONED; generated arms never repeat one.
        sobol_draws: Sobol points this experiment has consumed so far.
        trials_generated: Trials generated so far (not attached), which decides
            whether the initial quasi-random phase is over.
    """

    search_space: Any
    optimization: OptimizationSpec
    strategy: StrategySpec
    count: int
    pinned: Parameterization = field(default_factory=dict)
    observed: list[ObservedArm] = field(default_factory=list)
    pending: list[Parameterization] = field(default_factory=list)
    excluded_keys: set[str] = field(default_factory=set)
    sobol_draws: int = 0
    trials_generated: int = 0


@dataclass
class GenerationResult:
    """New arms and the record of how they were made.

    Attributes:
        arms: `count` parameterizations, pairwise distinct and new.
        generator: "sobol" or "botorch" (or "sobol_fallback" after a failed fit).
        num_observations: Observations the generator used.
        details: JSON-able facts (fit time, acquisition value, fallback reason).
        sobol_draws: The experiment's new Sobol counter, to be stored.
    """

    arms: list[Parameterization]
    generator: str
    num_observations: int
    details: dict[str, Any]
    sobol_draws: int
