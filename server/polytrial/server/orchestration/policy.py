"""One tick's decisions, as pure functions: no database, no runner, no clock.

    failure_message     has the failure rate been exceeded? (case c07)
    count_text          trials by status, as the end messages quote them
    trials_to_create    how many new trials this tick may suggest and deploy
    missing_data_reason why a runner-COMPLETED trial without data is FAILED (c08)
    unreachable_reason  why a trial whose runner stays unreachable is FAILED

A trial counts as failed when it is FAILED or ABANDONED (as in Ax's
Scheduler): neither produced data. The rate is failed trials over the trials
the orchestration created, in flight included, so a runner that fails every
trial is caught after the first round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from polytrial.server.orchestration.options import Options
from polytrial.server.storage import TrialRecord, TrialStatus

S = TrialStatus
IN_FLIGHT = frozenset({S.CANDIDATE, S.STAGED, S.RUNNING})
FAILED_LIKE = frozenset({S.FAILED, S.ABANDONED})


def failure_message(options: Options, counts: Mapping[TrialStatus, int]) -> str | None:
    """Why the orchestration FAILED when too many trials failed, else None.

    The text gives the rate the decision was made on; the trial counts are
    appended by the caller once the trials in flight were stopped, so that
    they agree with the counts the orchestration reports.
    """
    created = sum(counts.values())
    failed = sum(counts.get(s, 0) for s in FAILED_LIKE)
    if created == 0 or failed < options.min_failed_trials_for_failure_check:
        return None
    rate = failed / created
    if rate <= options.tolerated_failure_rate:
        return None
    return (
        f"failure rate exceeded: {failed} of {created} trials failed "
        f"({rate:.0%}), more than the tolerated "
        f"{options.tolerated_failure_rate:.0%} (checked once "
        f"{options.min_failed_trials_for_failure_check} trials failed)"
    )


def count_text(counts: Mapping[TrialStatus, int]) -> str:
    """Trials by status in lifecycle order, e.g. "ABANDONED 1, FAILED 3"."""
    return ", ".join(f"{s.name} {n}" for s, n in sorted_counts(counts))


def sorted_counts(counts: Mapping[TrialStatus, int]) -> list[tuple[TrialStatus, int]]:
    """Counts in lifecycle order, leaving out zeros."""
    return [(s, counts[s]) for s in TrialStatus if counts.get(s, 0)]


def trials_to_create(options: Options, created: int, in_flight: int) -> int:
    """New trials allowed now: free parallel slots, within the budget."""
    slots = options.max_parallel_trials - in_flight
    budget = options.max_trials - created
    return max(0, min(slots, budget))


def missing_objectives(
    trial: TrialRecord, objective_names: Sequence[str]
) -> list[tuple[str, str]]:
    """(arm name, objective) pairs of the trial that have no final value."""
    final = {(o.arm_name, o.metric_name) for o in trial.observations if o.step is None}
    return [
        (arm.name, objective)
        for arm in trial.arms
        for objective in objective_names
        if (arm.name, objective) not in final
    ]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def missing_data_reason(
    trial: TrialRecord,
    objective_names: Sequence[str],
    *,
    waited_s: float,
    unknown_metrics: Sequence[str],
    dropped: Sequence[str],
) -> str:
    """The FAILED reason of a trial whose objective data never arrived.

    Names the missing metric (and arms, for a batch trial), the metrics the
    runner sent that the experiment does not name, and why observations were
    refused (a NaN mean, say).
    """
    missing = missing_objectives(trial, objective_names)
    metrics = sorted({metric for _, metric in missing})
    reason = (
        f"no data for metric {_quoted(metrics)}: the runner reported the job "
        f"COMPLETED {waited_s:.0f}s ago, but no final value of {_quoted(metrics)} "
        "arrived within the data grace period"
    )
    if trial.is_batch:
        reason += f" (arms {_quoted(sorted({arm for arm, _ in missing}))})"
    if unknown_metrics:
        reason += (
            f"; the runner sent metric {_quoted(unknown_metrics)}, which the "
            "experiment does not take from it (not stored)"
        )
    if dropped:
        reason += f"; refused: {'; '.join(dropped)}"
    return reason


def unreachable_reason(error_message: str, *, waited_s: float) -> str:
    """The FAILED reason of a trial whose runner stayed unreachable."""
    return (
        f"runner unreachable for {waited_s:.0f}s, past the orchestration's "
        f"runner_unreachable_timeout_s: {error_message}"
    )


def lost_reason(error_message: str) -> str:
    """The FAILED reason of a trial whose runner refuses to report on it.

    A runner that restarted and lost the job answers NOT_FOUND; one whose
    data is invalid (a NaN) refuses the fetch. Either way nothing will ever
    complete the trial.
    """
    return f"the runner refused to report on the job: {error_message}"
