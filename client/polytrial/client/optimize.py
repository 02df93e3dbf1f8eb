"""The synchronous paradigm: hand over a function, get the best arm back.

`optimize` runs ask -> evaluate -> tell against a server for a number of
trials. The function takes a dict of parameters and returns a number (the
single objective), a (mean, sem) pair, or a dict of metrics. A trial whose
evaluation raises, or returns something that is not a finite number, is
marked FAILED with the reason and the loop goes on; a trial interrupted by
Ctrl-C is marked ABANDONED before the interrupt propagates, so no trial is
left RUNNING by this loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from polytrial.client.client import Client
from polytrial.client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    SearchSpaceExhaustedError,
)
from polytrial.client.names import ExperimentRef, experiment_id_of
from polytrial.client.observations import build_observations
from polytrial.client.types import (
    ArmResult,
    Experiment,
    Observation,
    Trial,
    TrialStatus,
)
from polytrial.client.values import Parameters, ParameterValue

logger = logging.getLogger(__name__)

Evaluate: TypeAlias = Callable[[Parameters], Any]
"""parameters -> number | (mean, sem) | {metric: number | (mean, sem)}."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one iteration of the loop did.

    Attributes:
        position: 1-based position of the trial in this run.
        index: The trial's index in the experiment.
        parameters: The evaluated parameters.
        status: COMPLETED or FAILED.
        values: Reported (mean, sem) by metric; empty when failed.
        objective_value: The single objective's mean; None when failed or
            when the experiment has several objectives.
        best_value: The best single-objective mean of this run so far.
        generator: The generator of the arm ("sobol", "botorch", ...).
        reason: Why the trial failed; "" when completed.
        evaluation_s: Time spent in the evaluation function.
    """

    position: int
    index: int
    parameters: Parameters
    status: TrialStatus
    values: dict[str, tuple[float, float | None]]
    objective_value: float | None
    best_value: float | None
    generator: str
    reason: str
    evaluation_s: float


ProgressCallback: TypeAlias = Callable[[TrialOutcome], None]


@dataclass(frozen=True)
class OptimizationSummary:
    """The result of `optimize`.

    Attributes:
        experiment: The experiment as it was when the loop started.
        trials: One outcome per trial run, in order.
        best: The server's best arm (single objective), or None without data.
        pareto_frontier: The server's Pareto-optimal arms (several objectives).
        stopped_reason: Why the loop stopped before `num_trials`; "" if not.
    """

    experiment: Experiment
    trials: tuple[TrialOutcome, ...]
    best: ArmResult | None
    pareto_frontier: tuple[ArmResult, ...] = ()
    stopped_reason: str = ""

    @property
    def num_completed(self) -> int:
        """Trials of this run that completed."""
        return sum(t.status is TrialStatus.COMPLETED for t in self.trials)

    @property
    def num_failed(self) -> int:
        """Trials of this run that failed."""
        return sum(t.status is TrialStatus.FAILED for t in self.trials)


def optimize(
    client_or_address: Client | str,
    experiment: ExperimentRef,
    evaluate: Evaluate,
    *,
    num_trials: int,
    on_trial: ProgressCallback | None = None,
    pinned: Mapping[str, ParameterValue] | None = None,
    ttl_s: float = 0.0,
) -> OptimizationSummary:
    """Runs ask -> evaluate -> tell for up to `num_trials` trials.

    Args:
        client_or_address: A `Client`, or an address to open one for the run.
        experiment: The experiment (it must exist).
        evaluate: Maps a dict of parameters to a number, a (mean, sem) pair
            or a dict metric -> number | (mean, sem).
        num_trials: Trials to run (failed ones count).
        on_trial: Called after every trial with its outcome.
        pinned: Parameters held at these values in every suggested arm.
        ttl_s: Time-to-live of each trial; 0 means none. The loop does not
            send heartbeats, so keep it above the slowest evaluation.

    Returns:
        The outcomes and the best arm. The loop stops early, saying why in
        `stopped_reason`, when a finite search space runs out.

    Raises:
        InvalidArgumentError: the server refused a reported result (an unknown
            metric, say); the trial is marked FAILED first, and the loop
            stops since every later trial would be refused alike.
        NotFoundError: the experiment does not exist.
    """
    if num_trials < 0:
        raise ValueError("num_trials must not be negative")
    if isinstance(client_or_address, str):
        with Client(client_or_address) as client:
            return optimize(
                client,
                experiment,
                evaluate,
                num_trials=num_trials,
                on_trial=on_trial,
                pinned=pinned,
                ttl_s=ttl_s,
            )

    client = client_or_address
    definition = client.get_experiment(experiment_id_of(experiment))
    loop = _Loop(client, definition, evaluate)
    stopped_reason = ""
    for position in range(1, num_trials + 1):
        # Ask.
        try:
            trial = client.suggest(definition.experiment_id, pinned=pinned, ttl_s=ttl_s)
        except SearchSpaceExhaustedError as error:
            stopped_reason = error.message
            logger.info(
                "experiment %s: stopping after %d trials: %s",
                definition.experiment_id,
                position - 1,
                error.message,
            )
            break

        # Evaluate and tell.
        outcome = loop.run(position, trial)
        if on_trial is not None:
            on_trial(outcome)

    return OptimizationSummary(
        experiment=definition,
        trials=tuple(loop.outcomes),
        best=_best_arm(client, definition),
        pareto_frontier=_pareto_frontier(client, definition),
        stopped_reason=stopped_reason,
    )


class _Loop:
    """Evaluates one trial at a time and keeps the run's best value."""

    def __init__(self, client: Client, experiment: Experiment, evaluate: Evaluate):
        self.client = client
        self.experiment = experiment
        self.evaluate = evaluate
        self.objective_names = [o.metric_name for o in experiment.objectives]
        self.minimize = (
            experiment.objectives[0].minimize
            if len(experiment.objectives) == 1
            else None
        )
        self.best_value: float | None = None
        self.outcomes: list[TrialOutcome] = []

    def run(self, position: int, trial: Trial) -> TrialOutcome:
        """Evaluates `trial`, reports the result, and returns the outcome."""
        parameters = trial.parameters
        generator = trial.generation.generator if trial.generation else ""
        started = time.monotonic()
        try:
            result = self.evaluate(dict(parameters))
        except Exception as error:
            # The evaluation is the caller's code: any failure of it is this
            # trial's failure, not the loop's.
            reason = f"{type(error).__name__}: {error}"
            return self._fail(position, trial, reason, time.monotonic() - started)
        except BaseException:
            self.client.abandon_trial(trial, "the optimization loop was interrupted")
            raise
        evaluation_s = time.monotonic() - started

        # Check the result here, so a NaN or a wrong type fails this trial
        # with a clear reason instead of being refused by the server.
        observations, problem = self._observations(trial, result)
        if problem:
            return self._fail(position, trial, problem, evaluation_s)
        try:
            completed = self.client.complete_trial(trial, observations)
        except InvalidArgumentError as error:
            self.client.fail_trial(trial, f"the server refused the result: {error}")
            raise

        values = {
            o.metric_name: (o.mean, o.sem)
            for o in completed.observations
            if o.step is None
        }
        objective_value = None
        if self.minimize is not None and self.objective_names[0] in values:
            objective_value = values[self.objective_names[0]][0]
            if (
                self.best_value is None
                or (self.minimize and objective_value < self.best_value)
                or (not self.minimize and objective_value > self.best_value)
            ):
                self.best_value = objective_value
        return self._record(
            TrialOutcome(
                position=position,
                index=trial.index,
                parameters=parameters,
                status=completed.status,
                values=values,
                objective_value=objective_value,
                best_value=self.best_value,
                generator=generator,
                reason="",
                evaluation_s=evaluation_s,
            )
        )

    def _observations(self, trial: Trial, result: Any) -> tuple[list[Observation], str]:
        """The result as observations, or a reason it cannot be reported."""
        if result is None:
            return [], "the evaluation returned None instead of a number"
        try:
            messages = build_observations(
                result,
                trial_index=trial.index,
                arm_names=[arm.name for arm in trial.arms],
                objective_names=self.objective_names,
            )
        except (TypeError, ValueError) as error:
            return [], f"the evaluation returned an unusable result: {error}"
        observations = [Observation.from_proto(m) for m in messages]
        for o in observations:
            if not math.isfinite(o.mean):
                return [], f"the evaluation returned {o.mean} for {o.metric_name!r}"
            if o.sem is not None and not (math.isfinite(o.sem) and o.sem >= 0):
                return [], (
                    f"the evaluation returned the standard error {o.sem} for "
                    f"{o.metric_name!r}"
                )
        return observations, ""

    def _fail(
        self, position: int, trial: Trial, reason: str, evaluation_s: float
    ) -> TrialOutcome:
        logger.warning(
            "experiment %s: trial %d failed: %s",
            self.experiment.experiment_id,
            trial.index,
            reason,
        )
        failed = self.client.fail_trial(trial, reason)
        return self._record(
            TrialOutcome(
                position=position,
                index=trial.index,
                parameters=trial.parameters,
                status=failed.status,
                values={},
                objective_value=None,
                best_value=self.best_value,
                generator=trial.generation.generator if trial.generation else "",
                reason=reason,
                evaluation_s=evaluation_s,
            )
        )

    def _record(self, outcome: TrialOutcome) -> TrialOutcome:
        self.outcomes.append(outcome)
        return outcome


def _best_arm(client: Client, experiment: Experiment) -> ArmResult | None:
    if len(experiment.objectives) != 1:
        return None
    try:
        return client.get_best_arm(experiment.experiment_id)
    except FailedPreconditionError:
        return None  # no trial has data yet


def _pareto_frontier(client: Client, experiment: Experiment) -> tuple[ArmResult, ...]:
    if len(experiment.objectives) < 2:
        return ()
    try:
        return tuple(client.get_pareto_frontier(experiment.experiment_id))
    except FailedPreconditionError:
        return ()
