"""Resource names: the one place that formats and parses them.

    experiments/{experiment_id}
    experiments/{experiment_id}/trials/{trial_index}
    experiments/{experiment_id}/orchestration

An experiment id is one path segment: 1-63 characters of lowercase letters,
digits, `-` and `_`, starting with a letter. A trial index is a non-negative
decimal integer without leading zeros.
"""

from __future__ import annotations

import re

from polytrial.server.errors import InvalidArgument

EXPERIMENT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_EXPERIMENT_NAME = re.compile(r"^experiments/([^/]+)$")
_TRIAL_NAME = re.compile(r"^experiments/([^/]+)/trials/([^/]+)$")
_ORCHESTRATION_NAME = re.compile(r"^experiments/([^/]+)/orchestration$")
_TRIAL_INDEX = re.compile(r"^(0|[1-9][0-9]{0,17})$")


def validate_experiment_id(experiment_id: str, *, field: str = "experiment_id") -> str:
    """Returns the id when it is a valid experiment id.

    Raises:
        InvalidArgument: the id is empty or breaks the pattern (INVALID_ARGUMENT).
    """
    if not EXPERIMENT_ID_PATTERN.match(experiment_id):
        raise InvalidArgument(
            f"experiment id {experiment_id!r} is invalid: use 1-63 lowercase "
            "letters, digits, '-' or '_', starting with a letter",
            field=field,
        )
    return experiment_id


def experiment_name(experiment_id: str) -> str:
    """Formats `experiments/{experiment_id}`."""
    return f"experiments/{experiment_id}"


def trial_name(experiment_id: str, trial_index: int) -> str:
    """Formats `experiments/{experiment_id}/trials/{trial_index}`."""
    return f"experiments/{experiment_id}/trials/{trial_index}"


def parse_experiment_name(name: str, *, field: str = "name") -> str:
    """Returns the experiment id of `experiments/{experiment_id}`.

    Raises:
        InvalidArgument: the name is not an experiment name (INVALID_ARGUMENT).
    """
    match = _EXPERIMENT_NAME.match(name)
    if match is None:
        raise InvalidArgument(
            f"{name!r} is not an experiment name of the form "
            "'experiments/{experiment_id}'",
            field=field,
        )
    return validate_experiment_id(match.group(1), field=field)


def parse_trial_name(name: str, *, field: str = "name") -> tuple[str, int]:
    """Returns (experiment id, trial index) of a trial name.

    Raises:
        InvalidArgument: the name is not a trial name (INVALID_ARGUMENT).
    """
    match = _TRIAL_NAME.match(name)
    if match is None or not _TRIAL_INDEX.match(match.group(2)):
        raise InvalidArgument(
            f"{name!r} is not a trial name of the form "
            "'experiments/{experiment_id}/trials/{trial_index}'",
            field=field,
        )
    experiment_id = validate_experiment_id(match.group(1), field=field)
    return experiment_id, int(match.group(2))


def orchestration_name(experiment_id: str) -> str:
    """Formats `experiments/{experiment_id}/orchestration`."""
    return f"experiments/{experiment_id}/orchestration"


def parse_orchestration_name(name: str, *, field: str = "name") -> str:
    """Returns the experiment id of `experiments/{experiment_id}/orchestration`.

    Raises:
        InvalidArgument: the name is not an orchestration name (INVALID_ARGUMENT).
    """
    match = _ORCHESTRATION_NAME.match(name)
    if match is None:
        raise InvalidArgument(
            f"{name!r} is not an orchestration name of the form "
            "'experiments/{experiment_id}/orchestration'",
            field=field,
        )
    return validate_experiment_id(match.group(1), field=field)
