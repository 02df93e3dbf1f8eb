"""Resource names on the client side: the one place that formats and reads them.

    experiments/{experiment_id}
    experiments/{experiment_id}/trials/{trial_index}

The client only assembles names from what the caller holds (an id, a
`Trial`, a name); the server validates them and answers INVALID_ARGUMENT or
NOT_FOUND.
"""

from __future__ import annotations

import operator
from typing import TypeAlias

from polytrial.client.types import Experiment, Trial

_PREFIX = "experiments/"

ExperimentRef: TypeAlias = str | Experiment
"""An experiment id, its resource name, or an `Experiment`."""

TrialRef: TypeAlias = str | tuple[str, int] | Trial
"""A trial's resource name, (experiment id, trial index), or a `Trial`."""


def experiment_id_of(experiment: ExperimentRef) -> str:
    """The experiment id of an id, a resource name or an `Experiment`.

    Raises:
        TypeError: `experiment` is none of these.
    """
    if isinstance(experiment, Experiment):
        return experiment.experiment_id
    if not isinstance(experiment, str):
        raise TypeError(
            "experiment must be an experiment id, its resource name "
            f"'experiments/{{experiment_id}}' or an Experiment, not {_kind(experiment)}"
        )
    return experiment.removeprefix(_PREFIX)


def experiment_name(experiment: ExperimentRef) -> str:
    """`experiments/{experiment_id}` of an id, a name or an `Experiment`."""
    return f"{_PREFIX}{experiment_id_of(experiment)}"


def trial_name(trial: TrialRef) -> str:
    """`experiments/{experiment_id}/trials/{index}` of any trial reference.

    A trial index alone is refused: the client has no current experiment, so
    it would not say whose trial is meant.

    Raises:
        TypeError: `trial` is none of the `TrialRef` forms.
    """
    if isinstance(trial, str):
        return trial
    if isinstance(trial, Trial):
        return trial.name
    if isinstance(trial, tuple) and len(trial) == 2:
        experiment_id, index = trial
        return f"{experiment_name(experiment_id)}/trials/{_index(index)}"
    hint = (
        f"; pass (experiment_id, {trial}) for trial {trial} of an experiment"
        if isinstance(trial, int) and not isinstance(trial, bool)
        else ""
    )
    raise TypeError(
        "trial must be a Trial, its resource name "
        "'experiments/{experiment_id}/trials/{trial_index}' or an "
        f"(experiment_id, trial_index) pair, not {_kind(trial)}{hint}"
    )


def _index(index: object) -> int:
    """The trial index of a pair; any integer type, but not a bool or a float."""
    if isinstance(index, bool):
        raise TypeError(f"a trial index must be an int, not {index!r}")
    try:
        return operator.index(index)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a trial index must be an int, not {_kind(index)}") from None


def _kind(value: object) -> str:
    """How an error message shows a value of the wrong type: its type and repr."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


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
