"""Trial semantics: suggest, attach, record data, and move through the lifecycle.

Every mutation is one short transaction that first locks what it changes (the
experiment row for new trials, the trial row for a status change), so several
server processes on one PostgreSQL database stay consistent. The one longer
step, a model fit, runs between two such transactions under the experiment's
generation lease (`service.lease`). A refused request
raises before the transaction commits and therefore stores nothing.

Expired trials: a RUNNING trial with a time-to-live that passed its expiry is
marked FAILED as lost by whichever comes first: a read of its experiment's
trials, a suggest or attach on the experiment, a call on the trial itself
(which is then refused, with the loss committed), or the server's periodic
sweep (`app.py`).

Idempotency: suggest, attach and complete store their request id with a
digest of the request in the same transaction as their effect. A repeat
takes the same lock as the first call (the experiment row, or the trial row
for complete), so a repeat that arrives while the first is still running, on
this replica or another, waits for it and then returns its result. The same
id with a different request is INVALID_ARGUMENT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from polytrial.server import engine, resources
from polytrial.server.engine.types import (
    GenerationRequest,
    GenerationResult,
    GeneratorKind,
    ObservedArm,
    Parameterization,
    ParameterValue,
)
from polytrial.server.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
)
from polytrial.server.service import lease, lifecycle
from polytrial.server.service.config import ExperimentConfig, load_config
from polytrial.server.service.generation import GenerationPool, no_deadline
from polytrial.server.service.observations import check_observations
from polytrial.server.service.paging import (
    M,
    decode_token,
    encode_token,
    fit_page,
    page_size,
)
from polytrial.server.storage import (
    LOST_REASON,
    ArmRecord,
    Database,
    ExperimentRecord,
    ObservationRecord,
    Repository,
    TrialRecord,
    TrialStatus,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_SUGGEST_COUNT = 100
# Model-based suggestions generate again when an arm attached while the model
# ran collides with theirs; after this many tries the caller gets ABORTED.
MAX_SUGGEST_ATTEMPTS = 3
MAX_ARMS_PER_TRIAL = 100
MAX_REQUEST_ID_LENGTH = 255
# A space this many times larger than the arms taken is generated in
# optimistically (see `Trials._generate`).
ROOM_FACTOR = 20
MANUAL_GENERATOR = "manual"


@dataclass(frozen=True)
class ArmInput:
    """A user-chosen arm of an attached trial; weight 0 means 1."""

    parameters: Mapping[str, ParameterValue]
    weight: float = 0.0


def _now() -> datetime:
    return datetime.now(UTC)


def _call_is_wanted() -> None:
    """The default `still_wanted` check: nobody to ask."""


def _why(trial: TrialRecord) -> str:
    # Errors quote the reason; a short head of it keeps the rest of the message
    # (what the caller should do) from being cut off.
    reason = trial.status_reason
    if len(reason) > 200:
        reason = reason[:200] + " ..."
    return f" ({reason})" if reason else ""


def _check_request_id(request_id: str) -> None:
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument(
            f"request_id has at most {MAX_REQUEST_ID_LENGTH} characters, got "
            f"{len(request_id)}",
            field="request_id",
            reason="LIMIT_EXCEEDED",
        )


def _fingerprint(method: str, request: object) -> str:
    """A digest of what a request asks, to tell a repeat from a reused id."""
    text = json.dumps([method, request], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _is_lost(trial: TrialRecord, now: datetime) -> bool:
    """Whether a RUNNING trial's time-to-live has run out."""
    return (
        trial.status is TrialStatus.RUNNING
        and trial.expire_time is not None
        and trial.expire_time < now
    )


def _lost_error(trial: TrialRecord, action: str) -> FailedPrecondition:
    name = resources.trial_name(trial.experiment_id, trial.index)
    return FailedPrecondition(
        f"{name} is FAILED ({LOST_REASON}); it can no longer {action}, and "
        "nothing was stored",
        reason="TRIAL_LOST",
        metadata={"trial": name, "status": trial.status.name},
    )


@dataclass
class _LeaseStep:
    """A first suggest transaction that did not store trials.

    Attributes:
        lost: Trials it found lost (and committed as FAILED).
        seq: The experiment's incarnation, checked again when storing.
        generation: The model's request when the lease was taken; None when
            another suggestion holds it.
    """

    lost: list[int]
    seq: int
    generation: GenerationRequest | None


def _check_lease(experiment: ExperimentRecord, seq: int, token: str) -> None:
    """Raises Aborted unless `token` still holds this incarnation's lease."""
    name = resources.experiment_name(experiment.experiment_id)
    if experiment.seq != seq:
        raise Aborted(
            f"experiment {name} was deleted and created again while arms were "
            "generated for it; nothing was stored",
            reason="EXPERIMENT_RECREATED",
        )
    if experiment.generation_lease != token:
        raise Aborted(
            f"experiment {name}: this suggestion's generation lease lapsed "
            f"(not renewed within {lease.LEASE_S:.0f} s) and another suggestion "
            "took it; nothing was stored, retry",
            reason="LEASE_LOST",
        )


def _sobol_only(config: ExperimentConfig, trials_generated: int) -> bool:
    """Whether the next suggestion is Sobol for certain (see engine.generate).

    Sobol needs no history beyond the keys of arms already taken, so the
    suggest path then skips reading every trial.
    """
    strategy = config.strategy
    return (
        strategy.kind is GeneratorKind.SOBOL
        or trials_generated < strategy.num_initial_trials
    )


def _is_roomy(
    config: ExperimentConfig, pinned: Mapping[str, object], taken: int
) -> bool:
    """Whether new arms will rarely collide with the `taken` ones.

    True when the arms not fixed by `pinned` are infinitely many, or at least
    `ROOM_FACTOR` times the arms taken, so that a collision is the exception.
    """
    total = 1
    for param in config.search_space.tunable_parameters:
        if param.name in pinned:
            continue
        size = param.cardinality
        if size is None:
            return True
        total *= size
    return total >= ROOM_FACTOR * taken


# The longest time-to-live a trial may be given (30 days), as documented on the
# `ttl_s` fields; longer values overflow the expiry time (and mean "never").
MAX_TTL_S = 30 * 24 * 3600.0


def _check_ttl(ttl_s: float, field: str = "ttl_s") -> float:
    if not (math.isfinite(ttl_s) and 0 <= ttl_s <= MAX_TTL_S):
        raise InvalidArgument(
            f"ttl_s must be a finite number of seconds from 0 to {MAX_TTL_S:.0f} "
            f"(30 days), got {ttl_s}",
            field=field,
        )
    return ttl_s


def arm_data(
    trial: TrialRecord, arm_name: str
) -> dict[str, tuple[float, float | None]]:
    """The data the model sees for one arm: final values, else the last step."""
    final: dict[str, tuple[float, float | None]] = {}
    latest: dict[str, tuple[int, float, float | None]] = {}
    for obs in trial.observations:
        if obs.arm_name != arm_name:
            continue
        if obs.step is None:
            final[obs.metric_name] = (obs.mean, obs.sem)
        elif obs.metric_name not in latest or obs.step >= latest[obs.metric_name][0]:
            latest[obs.metric_name] = (obs.step, obs.mean, obs.sem)
    if trial.status is TrialStatus.EARLY_STOPPED:
        for metric, (_step, mean, sem) in latest.items():
            final.setdefault(metric, (mean, sem))
    return final


def observed_arms(trials: Sequence[TrialRecord]) -> list[ObservedArm]:
    """Arms with final data from COMPLETED and EARLY_STOPPED trials."""
    found: list[ObservedArm] = []
    for trial in trials:
        if trial.status not in lifecycle.WITH_FINAL_DATA:
            continue
        for arm in trial.arms:
            metrics = arm_data(trial, arm.name)
            if metrics:
                found.append(ObservedArm(dict(arm.parameters), metrics, trial.index))
    return found


class Trials:
    """Suggests and records trials and moves them through their lifecycle.

    Args:
        db: The database.
        generations: Where model-based generations run (the server's bounded
            pool); a private pool of the default size when not given.
    """

    def __init__(self, db: Database, generations: GenerationPool | None = None):
        self.db = db
        self.generations = generations or GenerationPool()
        # Told (after the commit) which trials a read or write found lost, so
        # their runner jobs can be stopped; the server sets it to its sweeper's.
        self.on_lost: Callable[[str, Sequence[int]], None] | None = None

    # Reads -----------------------------------------------------------------

    def get(self, experiment_id: str, trial_index: int) -> TrialRecord:
        """Returns one trial.

        Raises:
            NotFound: the experiment or trial does not exist (NOT_FOUND).
        """
        self._reap_lost(experiment_id)
        return self.db.run(
            lambda repo: repo.get_trial(experiment_id, trial_index), write=False
        )

    def list_page(
        self,
        experiment_id: str,
        *,
        statuses: Sequence[TrialStatus],
        size: int,
        token: str,
        convert: Callable[[TrialRecord], M],
    ) -> tuple[list[M], str]:
        """Returns one page of trials by index, and the next page's token.

        The page ends early when its messages would pass the byte budget of
        `paging.PAGE_BUDGET_BYTES`. The token is bound to the experiment and
        the status filter.

        Args:
            experiment_id: The experiment.
            statuses: Only trials in these statuses (empty: all).
            size: The requested page size (0: the default).
            token: The page token (empty: the first page).
            convert: Makes a trial's response message.

        Raises:
            InvalidArgument: negative page size, or a token of another list or
                filter (INVALID_ARGUMENT).
            NotFound: no such experiment (NOT_FOUND).
        """
        limit = page_size(size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        scope = (experiment_id, *sorted({s.value for s in statuses}))
        cursor = decode_token(token, "trials", scope)
        after = -1 if cursor is None else cursor
        self._reap_lost(experiment_id)
        trials = self.db.run(
            lambda repo: repo.list_trials(
                experiment_id, statuses=statuses, after_index=after, limit=limit + 1
            ),
            write=False,
        )
        page, more = fit_page(trials[:limit], convert, more=len(trials) > limit)
        last = trials[len(page) - 1].index if page else 0
        return page, encode_token("trials", last, scope) if more else ""

    def all(self, experiment_id: str) -> tuple[ExperimentConfig, list[TrialRecord]]:
        """Returns the experiment's configuration and every trial (for results)."""
        self._reap_lost(experiment_id)

        def work(repo: Repository) -> tuple[ExperimentConfig, list[TrialRecord]]:
            config = load_config(repo.get_experiment(experiment_id))
            return config, repo.list_trials(experiment_id)

        return self.db.run(work, write=False)

    # New trials ------------------------------------------------------------

    def suggest(
        self,
        experiment_id: str,
        *,
        count: int,
        batch: bool = False,
        pinned: Mapping[str, ParameterValue] | None = None,
        request_id: str = "",
        ttl_s: float = 0.0,
        still_wanted: Callable[[], None] = _call_is_wanted,
        time_remaining: Callable[[], float | None] = no_deadline,
    ) -> list[TrialRecord]:
        """Generates `count` new single-arm trials, or one batch trial of `count` arms.

        Suggested trials are RUNNING when the experiment has no runner and
        CANDIDATE when it has one. No suggested arm repeats an arm of a trial
        that is not FAILED or ABANDONED.

        Suggestions on one experiment take turns, across replicas too, so
        each sees the arms the one before it made as pending: Sobol under the
        experiment row lock of one short transaction, a model fit under the
        experiment's generation lease (`service.lease`) with no transaction
        open, so attaching, completing and every other experiment's calls go
        on meanwhile. Model fits run in `self.generations`, off the calling
        thread, for at most `time_remaining()` seconds.

        Raises:
            InvalidArgument: count out of range, a bad pinned parameter, or a
                bad ttl; nothing is stored (INVALID_ARGUMENT).
            NotFound: no such experiment (NOT_FOUND).
            SearchSpaceExhausted: a finite space has no new arm
                (FAILED_PRECONDITION).
            DeadlineExceeded: raised by `still_wanted`, called just before the
                commit, when the call ended, or when `time_remaining` ran out
                during the model fit or while another suggestion held the
                lease; nothing is stored.
            Aborted: the lease lapsed during the fit and another suggestion
                took it, or the experiment was re-created meanwhile; nothing
                is stored (ABORTED, the caller may retry).
            Unavailable: the server stopped while the fit was queued
                (UNAVAILABLE).
        """
        if count < 0 or count > MAX_SUGGEST_COUNT:
            raise InvalidArgument(
                f"count must be between 0 and {MAX_SUGGEST_COUNT}, got {count}",
                field="count",
            )
        count = count or 1
        _check_ttl(ttl_s)
        _check_request_id(request_id)
        method = "SuggestTrials"
        fingerprint = _fingerprint(
            method,
            {"count": count, "batch": batch, "pinned": pinned or {}, "ttl_s": ttl_s},
        )

        token = uuid.uuid4().hex
        created, lost, replayed = self._suggest_in_turn(
            experiment_id,
            token,
            count=count,
            batch=batch,
            pinned=pinned,
            ttl_s=ttl_s,
            request_id=request_id,
            fingerprint=fingerprint,
            still_wanted=still_wanted,
            time_remaining=time_remaining,
        )
        self._log_lost(experiment_id, lost)
        if not replayed:
            for trial in created:
                logger.info(
                    "experiment %s trial %d suggested (%s, %d arms, %s)",
                    experiment_id,
                    trial.index,
                    trial.status.name,
                    len(trial.arms),
                    trial.generator,
                )
                logger.debug(
                    "experiment %s trial %d arms: %s",
                    experiment_id,
                    trial.index,
                    [a.parameters for a in trial.arms],
                )
        return created

    def attach(
        self,
        experiment_id: str,
        *,
        arms: Sequence[ArmInput],
        batch: bool = False,
        request_id: str = "",
        ttl_s: float = 0.0,
        still_wanted: Callable[[], None] = _call_is_wanted,
    ) -> TrialRecord:
        """Turns user-chosen parameterizations into one trial (replicates allowed).

        Raises:
            InvalidArgument: no arm, a parameter missing, unknown, of the wrong
                type or out of bounds, or a bad weight; nothing is stored and no
                index is used up (INVALID_ARGUMENT).
            NotFound: no such experiment (NOT_FOUND).
        """
        if not arms:
            raise InvalidArgument("at least one arm is required", field="arms")
        if len(arms) > MAX_ARMS_PER_TRIAL:
            raise InvalidArgument(
                f"a trial has at most {MAX_ARMS_PER_TRIAL} arms, got {len(arms)}",
                field="arms",
                reason="LIMIT_EXCEEDED",
            )
        weights = []
        for i, arm in enumerate(arms):
            if not (math.isfinite(arm.weight) and arm.weight >= 0):
                raise InvalidArgument(
                    f"weight must be a finite number >= 0, got {arm.weight}",
                    field=f"arms[{i}].weight",
                )
            weights.append(arm.weight or 1.0)
        _check_ttl(ttl_s)
        is_batch = batch or len(arms) > 1
        _check_request_id(request_id)
        method = "AttachTrial"
        fingerprint = _fingerprint(
            method,
            {
                "arms": [[dict(arm.parameters), arm.weight] for arm in arms],
                "batch": is_batch,
                "ttl_s": ttl_s,
            },
        )

        def work(repo: Repository) -> tuple[list[TrialRecord], list[int], bool]:
            now = _now()
            experiment = repo.get_experiment(
                experiment_id, for_update=True, with_counts=False
            )
            replay = self._replay(repo, experiment_id, method, request_id, fingerprint)
            if replay is not None:
                return replay, [], True
            config = load_config(experiment)
            params = [
                config.search_space.validate_parameterization(
                    dict(arm.parameters), field=f"arms[{i}].parameters"
                )
                for i, arm in enumerate(arms)
            ]
            lost = repo.fail_expired_trials(experiment_id, now=now)
            index = repo.allocate_trial_indices(experiment_id, 1)
            record = self._new_trial(
                config,
                experiment_id,
                index,
                params,
                weights,
                is_batch=is_batch,
                now=now,
                ttl_s=ttl_s,
            )
            record.generator = MANUAL_GENERATOR
            repo.add_trial(record)
            self._remember(
                repo, experiment_id, method, request_id, [record], now, fingerprint
            )
            still_wanted()
            return [record], lost, False

        created, lost, replayed = self._run_idempotent(
            work, experiment_id, method, request_id, fingerprint
        )
        self._log_lost(experiment_id, lost)
        if not replayed:
            logger.info(
                "experiment %s trial %d attached (%s, %d arms)",
                experiment_id,
                created[0].index,
                created[0].status.name,
                len(arms),
            )
        return created[0]

    # Data ------------------------------------------------------------------

    def complete(
        self,
        experiment_id: str,
        trial_index: int,
        observations: Sequence[ObservationRecord],
        *,
        request_id: str = "",
        still_wanted: Callable[[], None] = _call_is_wanted,
    ) -> TrialRecord:
        """Stores final observations and moves a RUNNING trial to COMPLETED.

        See `observations.py` for the rules, including the completion rule
        (every objective of every arm, else INVALID_ARGUMENT and nothing stored).

        Raises:
            InvalidArgument: an observation breaks a rule (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not RUNNING, for example because
                its time-to-live ran out (FAILED_PRECONDITION; the value is
                not stored).
        """
        _check_request_id(request_id)
        method = "CompleteTrial"
        fingerprint = _fingerprint(
            method,
            {
                "trial": trial_index,
                "observations": [
                    [o.arm_name, o.metric_name, o.mean, o.sem, o.step]
                    for o in observations
                ],
            },
        )

        def work(repo: Repository) -> tuple[list[TrialRecord], list[int], bool]:
            # The trial row lock makes two completions of one trial take
            # turns: the second sees COMPLETED (or, with the same request id,
            # the first one's stored result).
            now = _now()
            # The experiment first: its row gives the key the other queries use.
            config = load_config(repo.get_experiment(experiment_id, with_counts=False))
            trial = repo.get_trial(experiment_id, trial_index, for_update=True)
            replay = self._replay(repo, experiment_id, method, request_id, fingerprint)
            if replay is not None:
                return replay, [], True
            if self._expire_if_lost(repo, trial, now):
                return [trial], [trial_index], False
            self._refuse_if_lost(trial, "be completed")
            lifecycle.check_transition(trial, TrialStatus.COMPLETED)
            check_observations(config, trial, observations, complete=True)
            repo.add_observations(experiment_id, trial_index, observations, now=now)
            lifecycle.apply_transition(trial, TrialStatus.COMPLETED, now=now)
            repo.save_trial_state(trial)
            trial.observations.extend(observations)
            self._remember(
                repo, experiment_id, method, request_id, [trial], now, fingerprint
            )
            still_wanted()
            return [trial], [], False

        done, lost, replayed = self._run_idempotent(
            work, experiment_id, method, request_id, fingerprint
        )
        self._log_lost(experiment_id, lost)
        if lost:
            raise _lost_error(done[0], "be completed")
        if not replayed:
            logger.info("experiment %s trial %d completed", experiment_id, trial_index)
            logger.debug(
                "experiment %s trial %d observations: %s",
                experiment_id,
                trial_index,
                observations,
            )
        return done[0]

    def log_data(
        self,
        experiment_id: str,
        trial_index: int,
        observations: Sequence[ObservationRecord],
    ) -> TrialRecord:
        """Stores intermediate (or partial final) observations of a RUNNING trial.

        Raises:
            InvalidArgument: an observation breaks a rule (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not RUNNING (FAILED_PRECONDITION).
        """

        def work(repo: Repository) -> tuple[TrialRecord, list[int]]:
            now = _now()
            trial = repo.get_trial(experiment_id, trial_index, for_update=True)
            if self._expire_if_lost(repo, trial, now):
                return trial, [trial_index]
            self._refuse_if_lost(trial, "take data")
            if trial.status is not TrialStatus.RUNNING:
                raise FailedPrecondition(
                    f"trial {trial_index} of experiment {experiment_id!r} is "
                    f"{trial.status.name}; data can be logged only while it is RUNNING",
                    reason="ILLEGAL_TRANSITION",
                    metadata={
                        "trial": resources.trial_name(experiment_id, trial_index)
                    },
                )
            config = load_config(repo.get_experiment(experiment_id, with_counts=False))
            check_observations(config, trial, observations, complete=False)
            repo.add_observations(experiment_id, trial_index, observations, now=now)
            trial.observations.extend(observations)
            return trial, []

        trial, lost = self.db.run(work)
        self._log_lost(experiment_id, lost)
        if lost:
            raise _lost_error(trial, "take data")
        logger.debug(
            "experiment %s trial %d logged %d observations",
            experiment_id,
            trial_index,
            len(observations),
        )
        return trial

    # Lifecycle -------------------------------------------------------------

    def mark_staged(self, experiment_id: str, trial_index: int) -> TrialRecord:
        """CANDIDATE -> STAGED.

        Raises:
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not CANDIDATE (FAILED_PRECONDITION).
        """
        return self._transition(experiment_id, trial_index, TrialStatus.STAGED)

    def mark_running(
        self, experiment_id: str, trial_index: int, *, ttl_s: float = 0.0
    ) -> TrialRecord:
        """CANDIDATE or STAGED -> RUNNING, with an optional time-to-live.

        Raises:
            InvalidArgument: a bad ttl (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not CANDIDATE or STAGED
                (FAILED_PRECONDITION).
        """
        _check_ttl(ttl_s)
        return self._transition(
            experiment_id, trial_index, TrialStatus.RUNNING, ttl_s=ttl_s
        )

    def fail(self, experiment_id: str, trial_index: int, *, reason: str) -> TrialRecord:
        """Moves a trial that is not final to FAILED.

        Raises:
            InvalidArgument: the reason is too long (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is final (FAILED_PRECONDITION).
        """
        lifecycle.check_reason(reason)
        return self._transition(
            experiment_id, trial_index, TrialStatus.FAILED, reason=reason
        )

    def abandon(
        self, experiment_id: str, trial_index: int, *, reason: str
    ) -> TrialRecord:
        """Moves a trial that is not final to ABANDONED.

        Raises:
            InvalidArgument: the reason is too long (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is final (FAILED_PRECONDITION).
        """
        lifecycle.check_reason(reason)
        return self._transition(
            experiment_id, trial_index, TrialStatus.ABANDONED, reason=reason
        )

    def early_stop(
        self, experiment_id: str, trial_index: int, *, reason: str
    ) -> TrialRecord:
        """Moves a RUNNING trial that has data to EARLY_STOPPED.

        Raises:
            InvalidArgument: the reason is too long (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not RUNNING or has no data
                (FAILED_PRECONDITION).
        """
        lifecycle.check_reason(reason)

        def needs_data(trial: TrialRecord) -> None:
            if trial.status is TrialStatus.RUNNING and not trial.observations:
                raise FailedPrecondition(
                    f"trial {trial_index} of experiment {experiment_id!r} has no "
                    "data; only a trial with data can be stopped early (fail or "
                    "abandon it instead)",
                    reason="NO_DATA",
                    metadata={
                        "trial": resources.trial_name(experiment_id, trial_index)
                    },
                )

        return self._transition(
            experiment_id,
            trial_index,
            TrialStatus.EARLY_STOPPED,
            reason=reason,
            check=needs_data,
        )

    def heartbeat(
        self, experiment_id: str, trial_index: int, *, ttl_s: float = 0.0
    ) -> TrialRecord:
        """Renews a RUNNING trial's time-to-live (0 keeps the previous length).

        Raises:
            InvalidArgument: a bad ttl (INVALID_ARGUMENT).
            NotFound: the experiment or trial does not exist (NOT_FOUND).
            FailedPrecondition: the trial is not RUNNING, for example because
                it was already declared lost (FAILED_PRECONDITION).
        """
        _check_ttl(ttl_s)

        def work(repo: Repository) -> tuple[TrialRecord, list[int]]:
            now = _now()
            trial = repo.get_trial(experiment_id, trial_index, for_update=True)
            if self._expire_if_lost(repo, trial, now):
                return trial, [trial_index]
            self._refuse_if_lost(trial, "take heartbeats")
            if trial.status is not TrialStatus.RUNNING:
                raise FailedPrecondition(
                    f"trial {trial_index} of experiment {experiment_id!r} is "
                    f"{trial.status.name}{_why(trial)}; only a RUNNING trial takes "
                    "heartbeats",
                    reason="ILLEGAL_TRANSITION",
                    metadata={
                        "trial": resources.trial_name(experiment_id, trial_index)
                    },
                )
            if ttl_s > 0:
                trial.ttl_s = ttl_s
            trial.expire_time = lifecycle.expiry(now, trial.ttl_s)
            repo.save_trial_state(trial)
            return trial, []

        trial, lost = self.db.run(work)
        self._log_lost(experiment_id, lost)
        if lost:
            raise _lost_error(trial, "take heartbeats")
        logger.debug("experiment %s trial %d heartbeat", experiment_id, trial_index)
        return trial

    # Helpers ---------------------------------------------------------------

    def _transition(
        self,
        experiment_id: str,
        trial_index: int,
        target: TrialStatus,
        *,
        reason: str = "",
        ttl_s: float = 0.0,
        check: Callable[[TrialRecord], None] | None = None,
    ) -> TrialRecord:
        def work(repo: Repository) -> tuple[TrialRecord, list[int]]:
            now = _now()
            trial = repo.get_trial(experiment_id, trial_index, for_update=True)
            if self._expire_if_lost(repo, trial, now):
                return trial, [trial_index]
            lifecycle.check_transition(trial, target)
            if check is not None:
                check(trial)
            lifecycle.apply_transition(
                trial, target, now=now, reason=reason, ttl_s=ttl_s
            )
            repo.save_trial_state(trial)
            return trial, []

        trial, lost = self.db.run(work)
        self._log_lost(experiment_id, lost)
        if lost:
            raise _lost_error(trial, f"become {target.name}")
        level = logging.INFO if target in lifecycle.FINAL else logging.DEBUG
        logger.log(
            level,
            "experiment %s trial %d %s%s",
            experiment_id,
            trial_index,
            target.name.lower(),
            f": {reason}" if reason else "",
        )
        return trial

    @staticmethod
    def _new_trial(
        config: ExperimentConfig,
        experiment_id: str,
        index: int,
        arms: Sequence[Parameterization],
        weights: Sequence[float],
        *,
        is_batch: bool,
        now: datetime,
        ttl_s: float,
    ) -> TrialRecord:
        status = TrialStatus.CANDIDATE if config.has_runner else TrialStatus.RUNNING
        running = status is TrialStatus.RUNNING
        return TrialRecord(
            experiment_id=experiment_id,
            index=index,
            status=status,
            arms=[
                ArmRecord(
                    name=f"{index}_{arm_index}",
                    parameters=dict(params),
                    key=config.search_space.arm_key(params),
                    weight=weight,
                )
                for arm_index, (params, weight) in enumerate(
                    zip(arms, weights, strict=True)
                )
            ],
            is_batch=is_batch,
            create_time=now,
            run_time=now if running else None,
            ttl_s=ttl_s,
            expire_time=lifecycle.expiry(now, ttl_s) if running else None,
        )

    def _suggest_in_turn(
        self,
        experiment_id: str,
        token: str,
        *,
        count: int,
        batch: bool,
        pinned: Mapping[str, ParameterValue] | None,
        ttl_s: float,
        request_id: str,
        fingerprint: str,
        still_wanted: Callable[[], None],
        time_remaining: Callable[[], float | None],
    ) -> tuple[list[TrialRecord], list[int], bool]:
        """Waits for the experiment's generation lease, generates, stores.

        Sobol (and any generation without a model) runs inside one short
        transaction under the experiment row lock. A model fit takes the
        lease in one transaction, runs with no transaction open, and stores
        its trials in a second one that checks the lease is still its own.
        A suggestion that finds another's live lease commits what it found
        lost and polls until the lease is free or its call ends.

        Returns:
            The trials, the indices of trials found lost, and whether the
            trials are a replay of an earlier request with the same id.
        """
        method = "SuggestTrials"
        backoff = lease.Backoff()
        lost: list[int] = []
        collisions = 0
        while collisions < MAX_SUGGEST_ATTEMPTS:
            step = self._run_idempotent(
                lambda repo: self._suggest_or_take_lease(
                    repo,
                    experiment_id,
                    token,
                    count=count,
                    batch=batch,
                    pinned=pinned,
                    ttl_s=ttl_s,
                    request_id=request_id,
                    fingerprint=fingerprint,
                    still_wanted=still_wanted,
                ),
                experiment_id,
                method,
                request_id,
                fingerprint,
            )
            if isinstance(step, tuple):
                return step[0], lost + step[1], step[2]
            lost += step.lost
            if step.generation is None:
                self._wait_for_lease(
                    experiment_id, backoff, still_wanted, time_remaining
                )
                continue

            result = self._generate_under_lease(
                experiment_id, step.seq, token, step.generation, time_remaining
            )
            stored = self._store_under_lease(
                experiment_id,
                step.seq,
                token,
                result,
                batch=batch,
                ttl_s=ttl_s,
                request_id=request_id,
                fingerprint=fingerprint,
                still_wanted=still_wanted,
            )
            if stored is not None:
                return stored[0], lost + stored[1], stored[2]
            collisions += 1
            logger.info(
                "experiment %s: an arm of the new suggestion was attached meanwhile; "
                "generating again",
                experiment_id,
            )
        self._release_lease(experiment_id, token)
        raise Aborted(
            f"experiment {resources.experiment_name(experiment_id)}: arms attached "
            "concurrently kept colliding with the suggested ones; nothing was "
            "stored, retry",
            reason="SUGGESTION_CONFLICT",
        )

    def _suggest_or_take_lease(
        self,
        repo: Repository,
        experiment_id: str,
        token: str,
        *,
        count: int,
        batch: bool,
        pinned: Mapping[str, ParameterValue] | None,
        ttl_s: float,
        request_id: str,
        fingerprint: str,
        still_wanted: Callable[[], None],
    ) -> tuple[list[TrialRecord], list[int], bool] | _LeaseStep:
        """The first transaction of a suggestion (see `_suggest_in_turn`)."""
        now = _now()
        experiment = repo.get_experiment(
            experiment_id, for_update=True, with_counts=False
        )
        replay = self._replay(
            repo, experiment_id, "SuggestTrials", request_id, fingerprint
        )
        if replay is not None:
            return replay, [], True
        config = load_config(experiment)
        pins = config.search_space.validate_parameterization(
            dict(pinned or {}), field="pinned_parameters", partial=True
        )
        lost = repo.fail_expired_trials(experiment_id, now=now)
        if lease.held_by_another(experiment, token, now):
            return _LeaseStep(lost=lost, seq=experiment.seq, generation=None)

        generated = self._quick_or_request(repo, experiment, config, pins, count)
        if isinstance(generated, GenerationRequest):
            repo.set_generation_lease(experiment_id, token, lease.lease_expiry(now))
            return _LeaseStep(lost=lost, seq=experiment.seq, generation=generated)
        if experiment.generation_lease == token:
            # A retry after a collision that no longer needs the model.
            repo.set_generation_lease(experiment_id, "", None)
        created = self._store_suggested(
            repo,
            experiment,
            config,
            generated,
            batch=batch,
            ttl_s=ttl_s,
            now=now,
            request_id=request_id,
            fingerprint=fingerprint,
        )
        # Last, before the commit: a caller that gave up never sees these
        # trials, so they must not be stored.
        still_wanted()
        return created, lost, False

    def _wait_for_lease(
        self,
        experiment_id: str,
        backoff: lease.Backoff,
        still_wanted: Callable[[], None],
        time_remaining: Callable[[], float | None],
    ) -> None:
        """Sleeps before the next look at another suggestion's lease.

        Raises:
            DeadlineExceeded: the call ended or its time ran out first; nothing
                was stored.
        """
        still_wanted()
        delay = backoff.next_delay()
        remaining = time_remaining()
        if remaining is not None and remaining <= delay:
            raise DeadlineExceeded(
                f"experiment {resources.experiment_name(experiment_id)}: another "
                "suggestion was still generating arms when the call's deadline "
                "passed; nothing was stored",
                reason="CALL_ENDED",
            )
        logger.debug(
            "experiment %s: waiting %.3f s for another suggestion's generation lease",
            experiment_id,
            delay,
        )
        backoff.sleep(delay)

    def _generate_under_lease(
        self,
        experiment_id: str,
        seq: int,
        token: str,
        request: GenerationRequest,
        time_remaining: Callable[[], float | None],
    ) -> GenerationResult:
        """Runs the model in the generation pool, renewing the lease meanwhile.

        The lease is freed when generation fails, so the next suggestion need
        not wait for it to lapse.
        """

        def renew() -> None:
            def work(repo: Repository) -> None:
                experiment = repo.get_experiment(
                    experiment_id, for_update=True, with_counts=False
                )
                _check_lease(experiment, seq, token)
                repo.set_generation_lease(
                    experiment_id, token, lease.lease_expiry(_now())
                )

            self.db.run(work)

        try:
            return self.generations.generate(
                request,
                experiment_id=experiment_id,
                time_remaining=time_remaining,
                heartbeat=renew,
                heartbeat_every_s=lease.RENEW_EVERY_S,
            )
        except BaseException:
            self._release_lease(experiment_id, token)
            raise

    def _store_under_lease(
        self,
        experiment_id: str,
        seq: int,
        token: str,
        result: GenerationResult,
        *,
        batch: bool,
        ttl_s: float,
        request_id: str,
        fingerprint: str,
        still_wanted: Callable[[], None],
    ) -> tuple[list[TrialRecord], list[int], bool] | None:
        """The second transaction of a model-based suggestion.

        Returns None, keeping the lease, when an arm was attached by another
        call while the model ran; the caller then generates again.
        """
        method = "SuggestTrials"

        def work(repo: Repository) -> tuple[list[TrialRecord], list[int], bool] | None:
            now = _now()
            experiment = repo.get_experiment(
                experiment_id, for_update=True, with_counts=False
            )
            _check_lease(experiment, seq, token)
            config = load_config(experiment)
            keys = [config.search_space.arm_key(arm) for arm in result.arms]
            if repo.taken_arm_keys(experiment_id, keys, lifecycle.LIVE_OR_DONE):
                return None
            repo.set_generation_lease(experiment_id, "", None)
            created = self._store_suggested(
                repo,
                experiment,
                config,
                result,
                batch=batch,
                ttl_s=ttl_s,
                now=now,
                request_id=request_id,
                fingerprint=fingerprint,
            )
            still_wanted()
            return created, [], False

        try:
            stored = self._run_idempotent(
                work, experiment_id, method, request_id, fingerprint
            )
        except BaseException:
            self._release_lease(experiment_id, token)
            raise
        return stored

    def _release_lease(self, experiment_id: str, token: str) -> None:
        """Frees the lease if `token` still holds it (best effort, never raises)."""

        def work(repo: Repository) -> None:
            experiment = repo.get_experiment(
                experiment_id, for_update=True, with_counts=False
            )
            if experiment.generation_lease == token:
                repo.set_generation_lease(experiment_id, "", None)

        try:
            self.db.run(work)
        except Exception as error:  # the lease then lapses by itself
            logger.warning(
                "experiment %s: could not free the generation lease (%s); it "
                "lapses within %.0f s",
                experiment_id,
                error,
                lease.LEASE_S,
            )

    def _store_suggested(
        self,
        repo: Repository,
        experiment: ExperimentRecord,
        config: ExperimentConfig,
        result: GenerationResult,
        *,
        batch: bool,
        ttl_s: float,
        now: datetime,
        request_id: str,
        fingerprint: str,
    ) -> list[TrialRecord]:
        """Stores generated arms as new trials and advances the counters."""
        experiment_id = experiment.experiment_id
        groups = [result.arms] if batch else [[arm] for arm in result.arms]
        first = repo.allocate_trial_indices(experiment_id, len(groups))
        created = []
        for offset, arms in enumerate(groups):
            record = self._new_trial(
                config,
                experiment_id,
                first + offset,
                arms,
                [1.0] * len(arms),
                is_batch=batch,
                now=now,
                ttl_s=ttl_s,
            )
            record.generator = result.generator
            record.num_observations = result.num_observations
            record.generation_details = dict(result.details)
            repo.add_trial(record)
            created.append(record)
        repo.set_generation_counters(
            experiment_id,
            sobol_draws=result.sobol_draws,
            trials_generated=experiment.trials_generated + len(groups),
        )
        self._remember(
            repo, experiment_id, "SuggestTrials", request_id, created, now, fingerprint
        )
        return created

    def _quick_or_request(
        self,
        repo: Repository,
        experiment: ExperimentRecord,
        config: ExperimentConfig,
        pins: Parameterization,
        count: int,
    ) -> GenerationResult | GenerationRequest:
        """Generates at once when no model is needed; else the model's request.

        When the next arms are Sobol for certain, the history is only the set
        of arm keys already taken, and for a space much larger than that not
        even the set: the new arms' keys are checked against the database by
        index, and only on a collision (rare in such a space, and never in a
        continuous one) is generation repeated with every taken key. That
        keeps a suggestion as fast at 10,000 trials as at none. Small finite
        spaces take the taken keys up front, which is also where running out
        is detected.
        """
        experiment_id = experiment.experiment_id

        def request(
            excluded: set[str],
            observed: list[ObservedArm],
            pending: list[Parameterization],
        ) -> GenerationRequest:
            return GenerationRequest(
                search_space=config.search_space,
                optimization=config.optimization,
                strategy=config.strategy,
                count=count,
                pinned=pins,
                observed=observed,
                pending=pending,
                excluded_keys=excluded,
                sobol_draws=experiment.sobol_draws,
                trials_generated=experiment.trials_generated,
            )

        if _sobol_only(config, experiment.trials_generated):
            taken = lifecycle.LIVE_OR_DONE
            # Trials made so far bound the arms taken, batch trials aside.
            made = experiment.next_trial_index + count
            if _is_roomy(config, pins, made):
                result = engine.generate(request(set(), [], []))
                keys = [config.search_space.arm_key(arm) for arm in result.arms]
                if not repo.taken_arm_keys(experiment_id, keys, taken):
                    return result
            excluded = repo.arm_keys(experiment_id, taken)
            return engine.generate(request(excluded, [], []))

        # The model's path needs the full history (and answers with Sobol while
        # an objective has no data).
        trials = repo.list_trials(experiment_id)
        full = request(
            {
                arm.key
                for trial in trials
                if trial.status in lifecycle.LIVE_OR_DONE
                for arm in trial.arms
            },
            observed_arms(trials),
            [
                dict(arm.parameters)
                for trial in trials
                if trial.status in lifecycle.PENDING
                for arm in trial.arms
            ],
        )
        if engine.uses_model(full):
            return full
        return engine.generate(full)

    @staticmethod
    def _expire_if_lost(repo: Repository, trial: TrialRecord, now: datetime) -> bool:
        """Fails `trial` as lost when its time ran out; the caller then refuses.

        The caller returns instead of raising, so that the loss commits.
        """
        if not _is_lost(trial, now):
            return False
        trial.status = TrialStatus.FAILED
        trial.status_reason = LOST_REASON
        trial.end_time = now
        trial.expire_time = None
        repo.save_trial_state(trial)
        return True

    @staticmethod
    def _refuse_if_lost(trial: TrialRecord, action: str) -> None:
        if trial.status is TrialStatus.FAILED and trial.status_reason == LOST_REASON:
            raise _lost_error(trial, action)

    @staticmethod
    def _replay(
        repo: Repository,
        experiment_id: str,
        method: str,
        request_id: str,
        fingerprint: str,
    ) -> list[TrialRecord] | None:
        """The trials a previous request with this id returned, if there was one.

        Raises:
            InvalidArgument: the id was used for a different request
                (INVALID_ARGUMENT).
        """
        if not request_id:
            return None
        found = repo.find_request_entry(experiment_id, method, request_id)
        if found is None:
            return None
        indices, stored = found
        if stored and stored != fingerprint:
            raise InvalidArgument(
                f"request_id {request_id!r} was already used for a different "
                f"{method} request on experiments/{experiment_id}; use a new id "
                "for a new request",
                field="request_id",
                reason="REQUEST_ID_REUSED",
            )
        return [repo.get_trial(experiment_id, index) for index in indices]

    @staticmethod
    def _remember(
        repo: Repository,
        experiment_id: str,
        method: str,
        request_id: str,
        trials: Sequence[TrialRecord],
        now: datetime,
        fingerprint: str,
    ) -> None:
        if request_id:
            repo.record_request(
                experiment_id,
                method,
                request_id,
                [t.index for t in trials],
                now=now,
                fingerprint=fingerprint,
            )

    def _run_idempotent(
        self,
        work: Callable[[Repository], R],
        experiment_id: str,
        method: str,
        request_id: str,
        fingerprint: str,
    ) -> R | tuple[list[TrialRecord], list[int], bool]:
        try:
            return self.db.run(work)
        except AlreadyExists:
            if not request_id:
                raise

            # A concurrent request with the same id committed first; its
            # result is the answer to this one too.
            def replay(repo: Repository) -> list[TrialRecord] | None:
                return self._replay(
                    repo, experiment_id, method, request_id, fingerprint
                )

            found = self.db.run(replay, write=False)
            if found is None:
                raise
            return found, [], True

    def _reap_lost(self, experiment_id: str) -> None:
        """Fails expired RUNNING trials before a read, if there are any."""
        now = _now()

        def find(repo: Repository) -> list[int]:
            return repo.find_expired_trials(experiment_id, now=now)

        if not self.db.run(find, write=False):
            return
        lost = self.db.run(
            lambda repo: repo.fail_expired_trials(experiment_id, now=now)
        )
        self._log_lost(experiment_id, lost)

    def _log_lost(self, experiment_id: str, lost: Sequence[int]) -> None:
        for index in lost:
            logger.info(
                "experiment %s trial %d failed: lost (time-to-live ran out)",
                experiment_id,
                index,
            )
        if lost and self.on_lost is not None:
            self.on_lost(experiment_id, lost)


__all__ = ["ArmInput", "Trials", "arm_data", "observed_arms"]
