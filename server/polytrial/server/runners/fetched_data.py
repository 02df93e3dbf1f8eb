"""Which observations fetched from runners and metric services are stored.

Fetched data obeys the rules requests obey (`service/observations.py`), but
nobody is there to refuse it to: an observation that breaks one is dropped
with a warning, and why is kept for the orchestration's failure reason.

    repeats of stored data        skipped silently (every fetch sends it all)
    (arm, metric, step) twice     every value of it dropped, as CompleteTrial
      in one fetch                  refuses the same input ("given twice")
    invalid (NaN mean, ...)       dropped
    over the per-trial limit      dropped, intermediate ones first: they are
                                    stored only while room is left for every
                                    final value the trial still lacks
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from polytrial.server import resources
from polytrial.server.errors import InvalidArgument
from polytrial.server.runners.messages import new_observations
from polytrial.server.service import lifecycle
from polytrial.server.service.config import ExperimentConfig
from polytrial.server.service.observations import (
    MAX_OBSERVATIONS_PER_TRIAL,
    check_observations,
    given_twice_message,
)
from polytrial.server.storage import ObservationRecord, Repository, TrialRecord

logger = logging.getLogger(__name__)


def store_fetched(
    repo: Repository,
    config: ExperimentConfig,
    trial: TrialRecord,
    fetched: Sequence[ObservationRecord],
    dropped: list[str] | None = None,
) -> None:
    """Stores the fetched observations that are new and valid.

    An (arm, metric, step) given twice in one fetch is refused, every
    value of it, as CompleteTrial refuses it. No more than
    `MAX_OBSERVATIONS_PER_TRIAL` are ever stored, and final values come
    first: intermediate ones are stored only while room is left for the
    final value of every arm and metric the trial still lacks, so a long
    learning curve never crowds out the objective. The excess is dropped
    with a warning and noted in the trial's status reason. Why an
    invalid observation was refused is appended to `dropped`.
    """
    label = resources.trial_name(trial.experiment_id, trial.index)
    refused: list[str] = []
    fresh = _without_repeats(label, new_observations(trial, fetched), refused)

    # Final values first, within the limit.
    room = MAX_OBSERVATIONS_PER_TRIAL - len(trial.observations)
    finals = [o for o in fresh if o.step is None]
    valid = _checked(label, config, trial, finals, refused, room)

    # Then intermediate ones, keeping room for the missing final values.
    room -= len(valid) + _missing_finals(config, trial, valid)
    steps = [o for o in fresh if o.step is not None]
    valid += _checked(label, config, trial, steps, refused, room)

    if dropped is not None:
        dropped.extend(refused)
    if valid:
        now = datetime.now(UTC)
        repo.add_observations(trial.experiment_id, trial.index, valid, now=now)
        trial.observations.extend(valid)


def _without_repeats(
    label: str, fetched: Sequence[ObservationRecord], refused: list[str]
) -> list[ObservationRecord]:
    """Drops every observation whose (arm, metric, step) `fetched` holds twice.

    Neither value can be trusted over the other, so none is stored; why is
    logged and appended to `refused`.
    """
    groups: dict[tuple[str, str, int | None], list[ObservationRecord]] = {}
    for obs in fetched:
        groups.setdefault((obs.arm_name, obs.metric_name, obs.step), []).append(obs)
    kept: list[ObservationRecord] = []
    for group in groups.values():
        if len(group) == 1:
            kept.append(group[0])
            continue
        values = ", ".join(f"{obs.mean:g}" for obs in group)
        reason = f"{given_twice_message(group[0])} in one fetch ({values})"
        logger.warning("%s: fetched observations dropped: %s", label, reason)
        refused.append(reason)
    return kept


def _checked(
    label: str,
    config: ExperimentConfig,
    trial: TrialRecord,
    observations: Sequence[ObservationRecord],
    refused: list[str],
    room: int,
) -> list[ObservationRecord]:
    """The valid ones of `observations`, at most `room` (the rest is dropped).

    Each invalid one is logged and its reason appended to `refused`; going
    over `room` is logged and noted in the trial's status reason.
    """
    valid: list[ObservationRecord] = []
    for position, obs in enumerate(observations):
        if len(valid) >= max(room, 0):
            reason = (
                f"{len(observations) - position} fetched observations dropped: "
                f"the trial reached the limit of {MAX_OBSERVATIONS_PER_TRIAL} "
                "observations per trial (room is kept for final values)"
            )
            logger.warning("%s: %s", label, reason)
            trial.status_reason = lifecycle.clip_reason(reason)
            break
        try:
            check_observations(config, trial, [obs], complete=False)
        except InvalidArgument as error:
            logger.warning("%s: fetched observation dropped: %s", label, error.message)
            refused.append(error.message)
            continue
        valid.append(obs)
    return valid


def _missing_finals(
    config: ExperimentConfig, trial: TrialRecord, adding: Sequence[ObservationRecord]
) -> int:
    """How many (arm, metric) pairs have no final value, held or in `adding`."""
    final = {
        (obs.arm_name, obs.metric_name)
        for obs in [*trial.observations, *adding]
        if obs.step is None
    }
    return sum(
        (arm.name, metric) not in final
        for arm in trial.arms
        for metric in config.optimization.metric_names
    )
