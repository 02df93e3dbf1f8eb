"""The trial lifecycle: which status changes are legal, and what they record.

    CANDIDATE -> STAGED | RUNNING | FAILED | ABANDONED
    STAGED    -> RUNNING | FAILED | ABANDONED
    RUNNING   -> COMPLETED | FAILED | EARLY_STOPPED (only with data) | ABANDONED

COMPLETED, FAILED, EARLY_STOPPED and ABANDONED are final. Any other change is
refused with `FailedPrecondition` and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from polytrial.server import resources
from polytrial.server.errors import FailedPrecondition, InvalidArgument
from polytrial.server.storage import TrialRecord, TrialStatus

S = TrialStatus
# Longest status reason or deployment error kept (characters), as documented on
# the `reason` fields. A caller's longer reason is refused; a runner's longer
# message (a traceback, say) is cut, with `_CLIPPED` at the end.
MAX_REASON_CHARS = 4096
_CLIPPED = " ... [truncated]"


def check_reason(reason: str, *, field: str = "reason") -> str:
    """Refuses a caller's reason longer than `MAX_REASON_CHARS`.

    Raises:
        InvalidArgument: the reason is too long (INVALID_ARGUMENT).
    """
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument(
            f"reason has {len(reason)} characters; at most {MAX_REASON_CHARS} "
            "are allowed",
            field=field,
        )
    return reason


def clip_reason(text: str) -> str:
    """`text` cut to `MAX_REASON_CHARS`, marked when cut (runner messages)."""
    if len(text) <= MAX_REASON_CHARS:
        return text
    return text[: MAX_REASON_CHARS - len(_CLIPPED)] + _CLIPPED


ALLOWED: dict[TrialStatus, frozenset[TrialStatus]] = {
    S.CANDIDATE: frozenset({S.STAGED, S.RUNNING, S.FAILED, S.ABANDONED}),
    S.STAGED: frozenset({S.RUNNING, S.FAILED, S.ABANDONED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.EARLY_STOPPED, S.ABANDONED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.EARLY_STOPPED: frozenset(),
    S.ABANDONED: frozenset(),
}
FINAL = frozenset({S.COMPLETED, S.FAILED, S.EARLY_STOPPED, S.ABANDONED})
# Trials whose arms count as taken: suggest never repeats one of their arms.
LIVE_OR_DONE = frozenset(
    {S.CANDIDATE, S.STAGED, S.RUNNING, S.COMPLETED, S.EARLY_STOPPED}
)
PENDING = frozenset({S.CANDIDATE, S.STAGED, S.RUNNING})
WITH_FINAL_DATA = frozenset({S.COMPLETED, S.EARLY_STOPPED})


def check_transition(trial: TrialRecord, target: TrialStatus) -> None:
    """Refuses a status change the lifecycle forbids.

    Raises:
        FailedPrecondition: `trial.status -> target` is not legal
            (FAILED_PRECONDITION).
    """
    if target in ALLOWED[trial.status]:
        return
    name = resources.trial_name(trial.experiment_id, trial.index)
    legal = sorted(
        source.name for source, targets in ALLOWED.items() if target in targets
    )
    raise FailedPrecondition(
        f"{name} is {trial.status.name}; only a trial that is "
        f"{' or '.join(legal)} can become {target.name}",
        reason="ILLEGAL_TRANSITION",
        metadata={
            "trial": name,
            "status": trial.status.name,
            "target_status": target.name,
        },
    )


def apply_transition(
    trial: TrialRecord,
    target: TrialStatus,
    *,
    now: datetime,
    reason: str = "",
    ttl_s: float = 0.0,
) -> None:
    """Moves `trial` to `target` in memory, stamping the matching time.

    Args:
        trial: The trial; changed in place.
        target: The new status (checked with `check_transition`).
        now: The current time (UTC).
        reason: Why it failed, was abandoned or stopped.
        ttl_s: For RUNNING: a new time-to-live in seconds; 0 keeps the trial's.

    Raises:
        FailedPrecondition: the change is not legal (FAILED_PRECONDITION).
    """
    check_transition(trial, target)
    trial.status = target
    if target is S.STAGED:
        trial.stage_time = now
    elif target is S.RUNNING:
        trial.run_time = now
        if ttl_s > 0:
            trial.ttl_s = ttl_s
        trial.expire_time = expiry(now, trial.ttl_s)
    else:
        trial.end_time = now
        trial.expire_time = None
        trial.status_reason = clip_reason(reason)


def expiry(now: datetime, ttl_s: float) -> datetime | None:
    """The expiry time of a RUNNING trial with time-to-live `ttl_s` (0: none)."""
    return now + timedelta(seconds=ttl_s) if ttl_s > 0 else None
