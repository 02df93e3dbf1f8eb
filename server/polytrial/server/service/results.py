"""What an experiment found: the best arm, and the Pareto frontier.

Data: the final observations of COMPLETED and EARLY_STOPPED trials (for an
early-stopped trial without final data, its last logged step). Arms with the
same parameterization (replicates, compared by `arm_key`) are pooled: the
mean of their means, and a standard error of sqrt(sum sem_i^2) / n when every
replicate's sem is known (unknown otherwise). An arm counts as feasible when
its pooled means satisfy every outcome constraint; an arm without data for a
constrained metric is not known to be feasible and is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from polytrial.server import resources
from polytrial.server.engine.types import OptimizationSpec, ParameterValue
from polytrial.server.errors import FailedPrecondition
from polytrial.server.service import lifecycle
from polytrial.server.service.config import ExperimentConfig
from polytrial.server.service.trials import Trials, arm_data
from polytrial.server.storage import TrialRecord


@dataclass(frozen=True)
class MetricSummary:
    """A metric of an arm pooled over its replicates."""

    metric_name: str
    mean: float
    sem: float | None
    count: int


@dataclass
class ArmResult:
    """An arm (named by its first appearance) with its pooled metrics."""

    arm_name: str
    parameters: dict[str, ParameterValue]
    trial_indices: list[int] = field(default_factory=list)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)


def pool_arms(config: ExperimentConfig, trials: list[TrialRecord]) -> list[ArmResult]:
    """Groups final data by parameterization, in order of first appearance."""
    samples: dict[str, dict[str, list[tuple[float, float | None]]]] = {}
    results: dict[str, ArmResult] = {}
    for trial in sorted(trials, key=lambda t: t.index):
        if trial.status not in lifecycle.WITH_FINAL_DATA:
            continue
        for arm in trial.arms:
            data = arm_data(trial, arm.name)
            if not data:
                continue
            result = results.setdefault(
                arm.key, ArmResult(arm.name, dict(arm.parameters))
            )
            if trial.index not in result.trial_indices:
                result.trial_indices.append(trial.index)
            per_metric = samples.setdefault(arm.key, {})
            for metric, value in data.items():
                per_metric.setdefault(metric, []).append(value)
    for key, result in results.items():
        for metric, values in samples[key].items():
            means = [mean for mean, _ in values]
            sems = [sem for _, sem in values]
            pooled_sem = (
                math.sqrt(sum(s * s for s in sems if s is not None)) / len(sems)
                if all(s is not None for s in sems)
                else None
            )
            result.metrics[metric] = MetricSummary(
                metric, sum(means) / len(means), pooled_sem, len(values)
            )
    return list(results.values())


def _feasible(arm: ArmResult, optimization: OptimizationSpec) -> bool:
    for constraint in optimization.outcome_constraints:
        summary = arm.metrics.get(constraint.metric_name)
        if summary is None:
            return False
        if constraint.greater_equal and summary.mean < constraint.bound:
            return False
        if not constraint.greater_equal and summary.mean > constraint.bound:
            return False
    return True


class Results:
    """Answers best-arm and Pareto-frontier questions from stored data.

    Args:
        trials: The trial service, which reads an experiment's trials.
    """

    def __init__(self, trials: Trials) -> None:
        self.trials = trials

    def best_arm(self, experiment_id: str) -> ArmResult:
        """The feasible arm with the best pooled mean of the single objective.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
            FailedPrecondition: the experiment has several objectives, no
                trial has data for the objective yet, or no arm with data
                satisfies the outcome constraints (FAILED_PRECONDITION).
        """
        config, trials = self.trials.all(experiment_id)
        objectives = config.optimization.objectives
        name = resources.experiment_name(experiment_id)
        if len(objectives) != 1:
            raise FailedPrecondition(
                f"{name} has {len(objectives)} objectives; ask for its Pareto "
                "frontier instead of a best arm",
                reason="MULTI_OBJECTIVE",
            )
        objective = objectives[0]
        with_data = [
            arm
            for arm in pool_arms(config, trials)
            if objective.metric_name in arm.metrics
        ]
        if not with_data:
            raise FailedPrecondition(
                f"no trial of {name} has data for the objective "
                f"{objective.metric_name!r} yet",
                reason="NO_DATA",
            )
        feasible = [arm for arm in with_data if _feasible(arm, config.optimization)]
        if not feasible:
            raise FailedPrecondition(
                f"no arm of {name} with data satisfies every outcome constraint",
                reason="NO_FEASIBLE_ARM",
            )
        sign = 1.0 if objective.minimize else -1.0
        # min() keeps the first of equal arms, which is the earliest observed.
        return min(
            feasible, key=lambda arm: sign * arm.metrics[objective.metric_name].mean
        )

    def pareto_frontier(self, experiment_id: str) -> list[ArmResult]:
        """The feasible arms no other feasible arm beats on every objective.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
            FailedPrecondition: no trial has data for every objective yet, or
                no arm with data is feasible (FAILED_PRECONDITION).
        """
        config, trials = self.trials.all(experiment_id)
        objectives = config.optimization.objectives
        name = resources.experiment_name(experiment_id)
        complete = [
            arm
            for arm in pool_arms(config, trials)
            if all(o.metric_name in arm.metrics for o in objectives)
        ]
        if not complete:
            names = ", ".join(repr(o.metric_name) for o in objectives)
            raise FailedPrecondition(
                f"no trial of {name} has data for every objective ({names}) yet",
                reason="NO_DATA",
            )
        feasible = [arm for arm in complete if _feasible(arm, config.optimization)]
        if not feasible:
            raise FailedPrecondition(
                f"no arm of {name} with data satisfies every outcome constraint",
                reason="NO_FEASIBLE_ARM",
            )
        # Each objective as a value to maximize.
        scores = [
            [
                -arm.metrics[o.metric_name].mean
                if o.minimize
                else arm.metrics[o.metric_name].mean
                for o in objectives
            ]
            for arm in feasible
        ]

        def dominated(i: int) -> bool:
            return any(
                all(b >= a for a, b in zip(scores[i], scores[j], strict=True))
                and any(b > a for a, b in zip(scores[i], scores[j], strict=True))
                for j in range(len(feasible))
                if j != i
            )

        return [arm for i, arm in enumerate(feasible) if not dominated(i)]
