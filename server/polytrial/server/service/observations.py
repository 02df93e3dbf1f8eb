"""Checks on observations before anything is stored.

Rules, each refused with INVALID_ARGUMENT naming the arm and the metric:
the arm is one of the trial's arms; the metric is named by the optimization
config (objective, outcome constraint or tracking metric); the mean is finite;
the standard error, when given, is finite and non-negative; the step, when
given, is non-negative; no (arm, metric, step) appears twice in one request,
nor repeats one the trial already holds (stored data is never overwritten, so
an arm has at most one final value per metric); a trial holds at most
`MAX_OBSERVATIONS_PER_TRIAL` observations (LIMIT_EXCEEDED).

Completion rule (case c16): a completion must leave every arm of the trial
with final data (no step) for every objective, either in the request or
logged before with LogTrialData. Otherwise the completion is refused with
INVALID_ARGUMENT naming the arm and the missing objective, the trial stays
RUNNING, and nothing is stored; a missing objective is never read as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from polytrial.server.errors import InvalidArgument, ViolationCollector
from polytrial.server.service.config import ExperimentConfig
from polytrial.server.storage import ObservationRecord, TrialRecord

# A service limit: every Get and List of the trial carries all of its data.
MAX_OBSERVATIONS_PER_TRIAL = 100_000


def check_observations(
    config: ExperimentConfig,
    trial: TrialRecord,
    observations: Sequence[ObservationRecord],
    *,
    complete: bool,
    field: str = "observations",
) -> None:
    """Validates observations for `trial`; see the module rules.

    Args:
        config: The experiment's configuration.
        trial: The trial the observations are for.
        observations: The request's observations.
        complete: Apply the completion rule (every objective of every arm).
        field: Request field path of the list.

    Raises:
        InvalidArgument: any rule is broken; every violation is listed
            (INVALID_ARGUMENT).
    """
    collector = ViolationCollector()
    arm_names = [arm.name for arm in trial.arms]
    metric_names = config.optimization.metric_names
    if len(trial.observations) + len(observations) > MAX_OBSERVATIONS_PER_TRIAL:
        raise InvalidArgument(
            f"trial {trial.index} holds {len(trial.observations)} observations; "
            f"{len(observations)} more would pass the limit of "
            f"{MAX_OBSERVATIONS_PER_TRIAL} per trial",
            field=field,
            reason="LIMIT_EXCEEDED",
        )
    stored = {(o.arm_name, o.metric_name, o.step) for o in trial.observations}
    seen: set[tuple[str, str, int | None]] = set()
    if not observations and not complete:
        collector.add(field, "at least one observation is required")
    for i, obs in enumerate(observations):
        path = f"{field}[{i}]"
        what = f"arm {obs.arm_name!r}, metric {obs.metric_name!r}"
        if obs.arm_name not in arm_names:
            collector.add(
                f"{path}.arm_name",
                f"{what}: arm {obs.arm_name!r} is not in trial {trial.index} "
                f"(its arms: {', '.join(arm_names)})",
            )
        if obs.metric_name not in metric_names:
            collector.add(
                f"{path}.metric_name",
                f"{what}: the experiment does not name metric "
                f"{obs.metric_name!r} (it names: {', '.join(sorted(metric_names))})",
            )
        if not math.isfinite(obs.mean):
            collector.add(
                f"{path}.mean", f"{what}: mean must be finite, got {obs.mean}"
            )
        if obs.sem is not None and not (math.isfinite(obs.sem) and obs.sem >= 0):
            collector.add(
                f"{path}.sem",
                f"{what}: sem must be finite and non-negative, got {obs.sem}",
            )
        if obs.step is not None and obs.step < 0:
            collector.add(f"{path}.step", f"{what}: step must be non-negative")
        key = (obs.arm_name, obs.metric_name, obs.step)
        step = _step_text(obs.step)
        if key in seen:
            collector.add(path, given_twice_message(obs))
        elif key in stored:
            collector.add(
                path,
                f"{what}: trial {trial.index} already holds {step}; stored "
                "data is never replaced",
            )
        seen.add(key)
    collector.raise_if_any()

    if complete:
        _check_objectives_present(config, trial, observations, field, collector)
        collector.raise_if_any()


def given_twice_message(obs: ObservationRecord) -> str:
    """The rule's words for an (arm, metric, step) given twice in one batch.

    Fetched data breaks the same rule as a request does, and says so alike.
    """
    what = f"arm {obs.arm_name!r}, metric {obs.metric_name!r}"
    return f"{what}: given twice for {_step_text(obs.step)}"


def _step_text(step: int | None) -> str:
    return "the final value" if step is None else f"step {step}"


def _check_objectives_present(
    config: ExperimentConfig,
    trial: TrialRecord,
    observations: Sequence[ObservationRecord],
    field: str,
    collector: ViolationCollector,
) -> None:
    final = {
        (obs.arm_name, obs.metric_name)
        for obs in [*trial.observations, *observations]
        if obs.step is None
    }
    for arm in trial.arms:
        for objective in config.objective_names:
            if (arm.name, objective) not in final:
                collector.add(
                    field,
                    f"arm {arm.name!r} has no final observation of objective "
                    f"{objective!r}; completing trial {trial.index} needs every "
                    "objective of every arm",
                )
