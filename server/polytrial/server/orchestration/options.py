"""An orchestration's options: defaults, limits, and the check made at start.

Every limit here is also written on its field in
`protos/polytrial/v1/orchestration_service.proto`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from polytrial.server.errors import ViolationCollector

MAX_TRIALS = 10_000
MAX_PARALLEL_TRIALS = 100
DEFAULT_TOLERATED_FAILURE_RATE = 0.5
# Three failures before the rate counts: one or two early failures (a typo in
# a first job, a node that was down) do not end a run, while a runner that
# fails everything is caught after one round of three parallel trials.
DEFAULT_MIN_FAILED_TRIALS = 3
DEFAULT_POLL_INTERVAL_S = 1.0
MIN_POLL_INTERVAL_S = 0.1
MAX_POLL_INTERVAL_S = 3600.0
DEFAULT_DATA_GRACE_PERIOD_S = 60.0
DEFAULT_RUNNER_UNREACHABLE_TIMEOUT_S = 60.0
MAX_WAIT_S = 86_400.0
MAX_TIMEOUT_S = 30 * 86_400.0


@dataclass(frozen=True)
class Options:
    """The options of one orchestration, defaults filled in.

    Attributes:
        max_trials: Trials the orchestration creates (the budget).
        max_parallel_trials: Trials in flight at most.
        tolerated_failure_rate: Largest fraction of failed trials tolerated.
        min_failed_trials_for_failure_check: Failures before the rate counts.
        poll_interval_s: Seconds between two ticks.
        data_grace_period_s: Seconds a runner-COMPLETED trial may wait for data.
        runner_unreachable_timeout_s: Seconds a runner may stay unreachable.
        timeout_s: Seconds until the orchestration stops; 0 means never.
    """

    max_trials: int
    max_parallel_trials: int = 1
    tolerated_failure_rate: float = DEFAULT_TOLERATED_FAILURE_RATE
    min_failed_trials_for_failure_check: int = DEFAULT_MIN_FAILED_TRIALS
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    data_grace_period_s: float = DEFAULT_DATA_GRACE_PERIOD_S
    runner_unreachable_timeout_s: float = DEFAULT_RUNNER_UNREACHABLE_TIMEOUT_S
    timeout_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The options as a JSON object (how they are stored)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Options:
        """Options read back from `to_json`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _within(value: float, lower: float, upper: float) -> bool:
    # `math.isfinite` first: a NaN compares false with everything and would
    # otherwise slip through a negated range check.
    return math.isfinite(value) and lower <= value <= upper


def check_options(
    *,
    max_trials: int,
    max_parallel_trials: int,
    tolerated_failure_rate: float | None,
    min_failed_trials_for_failure_check: int | None,
    poll_interval_s: float | None,
    data_grace_period_s: float | None,
    runner_unreachable_timeout_s: float | None,
    timeout_s: float | None,
    field: str = "options",
) -> Options:
    """Checks the options of a start request and fills in the defaults.

    None means the field was not set.

    Raises:
        InvalidArgument: a value is outside its limits; every bad field is
            named (INVALID_ARGUMENT).
    """
    problems = ViolationCollector()

    def bad(name: str, rule: str, value: object) -> None:
        problems.add(f"{field}.{name}", f"must be {rule}, got {value}")

    if not 1 <= max_trials <= MAX_TRIALS:
        bad("max_trials", f"between 1 and {MAX_TRIALS}", max_trials)
    if not 0 <= max_parallel_trials <= MAX_PARALLEL_TRIALS:
        bad(
            "max_parallel_trials",
            f"between 0 (meaning 1) and {MAX_PARALLEL_TRIALS}",
            max_parallel_trials,
        )
    if tolerated_failure_rate is not None and not _within(
        tolerated_failure_rate, 0.0, 1.0
    ):
        bad("tolerated_failure_rate", "between 0 and 1", tolerated_failure_rate)
    min_failed = min_failed_trials_for_failure_check
    if min_failed is not None and not 1 <= min_failed <= MAX_TRIALS:
        bad(
            "min_failed_trials_for_failure_check",
            f"between 1 and {MAX_TRIALS}",
            min_failed,
        )
    if poll_interval_s is not None and not _within(
        poll_interval_s, MIN_POLL_INTERVAL_S, MAX_POLL_INTERVAL_S
    ):
        bad(
            "poll_interval_s",
            f"between {MIN_POLL_INTERVAL_S:g} and {MAX_POLL_INTERVAL_S:g} seconds",
            poll_interval_s,
        )
    for name, wait_s in (
        ("data_grace_period_s", data_grace_period_s),
        ("runner_unreachable_timeout_s", runner_unreachable_timeout_s),
    ):
        if wait_s is not None and not _within(wait_s, 0.0, MAX_WAIT_S):
            bad(name, f"between 0 and {MAX_WAIT_S:g} seconds", wait_s)
    if timeout_s is not None and not _within(timeout_s, 0.0, MAX_TIMEOUT_S):
        bad(
            "timeout_s",
            f"between 0 (no timeout) and {MAX_TIMEOUT_S:g} seconds",
            timeout_s,
        )
    problems.raise_if_any()

    def given(value: float | None, default: float) -> float:
        return default if value is None else value

    return Options(
        max_trials=max_trials,
        max_parallel_trials=max_parallel_trials or 1,
        tolerated_failure_rate=given(
            tolerated_failure_rate, DEFAULT_TOLERATED_FAILURE_RATE
        ),
        min_failed_trials_for_failure_check=int(
            given(min_failed, DEFAULT_MIN_FAILED_TRIALS)
        ),
        poll_interval_s=given(poll_interval_s, DEFAULT_POLL_INTERVAL_S),
        data_grace_period_s=given(data_grace_period_s, DEFAULT_DATA_GRACE_PERIOD_S),
        runner_unreachable_timeout_s=given(
            runner_unreachable_timeout_s, DEFAULT_RUNNER_UNREACHABLE_TIMEOUT_S
        ),
        timeout_s=given(timeout_s, 0.0),
    )
