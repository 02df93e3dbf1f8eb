"""Resource names on the client side: the one place that formats and reads them.

    experiments/{experiment_id}
    experiments/{experiment_id}/trials/{trial_index}

The client only assembles names from what the caller holds (an id, a
`Trial`, a name); the server validates them and answers INVALID_ARGUMENT or
NOT_FOUND.
"""

from __future__ import annotations

from typing import TypeAlias

from polytrial.client.types import Experiment, Trial

_PREFIX = "experiments/"

ExperimentRef: TypeAlias = str | Experiment
"""An experiment id, its resource name, or an `Experiment`."""

TrialRef: TypeAlias = str | tuple[str, int] | Trial
"""A trial's resource name, (experiment id, trial index), or a `Trial`."""


def experiment_id_of(experiment: ExperimentRef) -> str:
    """The experiment id of an id, a resource name or an `Experiment`."""
    if not isinstance(experiment, str):
        return experiment.experiment_id
    return experiment.removeprefix(_PREFIX)


def experiment_name(experiment: ExperimentRef) -> str:
    """`experiments/{experiment_id}` of an id, a name or an `Experiment`."""
    return f"{_PREFIX}{experiment_id_of(experiment)}"


def trial_name(trial: TrialRef) -> str:
    """`experiments/{experiment_id}/trials/{index}` of any trial reference."""
    if isinstance(trial, str):
        return trial
    if isinstance(trial, tuple):
        experiment_id, index = trial
        return f"{experiment_name(experiment_id)}/trials/{int(index)}"
    return trial.name


def split_trial_name(name: str) -> tuple[str, int]:
    """(experiment id, trial index) of a trial name.

    Raises:
        ValueError: the name is not of the form above.
    """
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "experiments" or parts[2] != "trials":
        raise ValueError(
            f"{name!r} is not a trial name "
            "'experiments/{experiment_id}/trials/{trial_index}'"
        )
    try:
        return parts[1], int(parts[3])
    except ValueError:
        raise ValueError(f"{name!r}: the trial index is not an integer") from None
