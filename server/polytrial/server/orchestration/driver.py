"""One tick of one orchestration, made by the replica that holds its lease.

    1. claim (or renew) the lease; nothing more when another replica holds it
    2. finish a suggest a previous tick started but did not record (a crash)
    3. refresh the trials in flight through the deployment code: deploy the
       CANDIDATE ones, poll and fetch the others; fail the trials whose
       runner lost the job, stays unreachable, or said COMPLETED without
       objective data for longer than the grace period
    4. end the orchestration on its timeout, a failure rate over the
       tolerated one, or a used budget with nothing in flight; the trials
       in flight are stopped before the end is recorded
    5. suggest (one request, idempotent under its request id) and deploy new
       trials up to `max_parallel_trials`, within the budget
    6. save the progress and the next tick's time

Runner calls (steps 3 and 5) and the suggest are never made inside one of
this module's transactions; each write in between re-checks the lease. An
unexpected error (a bug) while deploying or refreshing one trial ends only
that trial's turn: logged with its traceback the first time, in one line
after, and the trial fails once it has happened `MAX_UNEXPECTED_ERRORS`
ticks in a row, so one trial cannot stall its orchestration forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from polytrial.server.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    PolytrialError,
    SearchSpaceExhausted,
    Unavailable,
)
from polytrial.server.orchestration import policy, store
from polytrial.server.orchestration.store import (
    OrchestrationRecord,
    State,
    TrialNote,
)
from polytrial.server.runners import Deployments
from polytrial.server.runners.client import RunnerCallError
from polytrial.server.service import Trials, lifecycle, load_config
from polytrial.server.storage import Database, Repository, TrialStatus
from polytrial.v1 import runner_service_pb2

logger = logging.getLogger(__name__)

S = TrialStatus
_UNREACHABLE = (Unavailable, DeadlineExceeded)
# Ticks in a row an unexpected error may hit one trial before it fails.
MAX_UNEXPECTED_ERRORS = 3


def _now() -> datetime:
    return datetime.now(UTC)


class LeaseLost(Exception):
    """The orchestration was stopped, replaced, or taken over by another replica."""


class Driver:
    """Ticks orchestrations on behalf of one replica (`owner`).

    Args:
        db: The database.
        trials: The trial service (suggest, abandon).
        deployments: Deploys, refreshes and stops trials through runners.
        owner: This replica's lease token.
        lease_s: How long a claimed lease lasts without renewal.
    """

    def __init__(
        self,
        db: Database,
        trials: Trials,
        deployments: Deployments,
        owner: str,
        lease_s: float,
    ) -> None:
        self.db = db
        self.trials = trials
        self.deployments = deployments
        self.owner = owner
        self.lease_s = lease_s
        # What ticks remember beyond the stored progress, kept in memory
        # since a restart losing it only repeats a log line or a few tries.
        # Guarded by `_lock`: ticks of different orchestrations share it.
        self._lock = threading.Lock()
        self._errors: Counter[tuple[str, int]] = Counter()
        self._warned: set[str] = set()

    def count_error(self, uid: str, index: int) -> int:
        """Counts an unexpected error on a trial; returns how many in a row."""
        with self._lock:
            self._errors[uid, index] += 1
            return self._errors[uid, index]

    def clear_errors(self, uid: str, index: int) -> None:
        """Forgets a trial's unexpected errors (its step went through)."""
        with self._lock:
            self._errors.pop((uid, index), None)

    def warn_once(self, uid: str) -> bool:
        """True the first time it is asked for an orchestration, then False."""
        with self._lock:
            first = uid not in self._warned
            self._warned.add(uid)
            return first

    def forget(self, uid: str) -> None:
        """Drops what is remembered of an orchestration that ended."""
        with self._lock:
            self._warned.discard(uid)
            for key in [key for key in self._errors if key[0] == uid]:
                del self._errors[key]

    def tick(self, experiment_id: str) -> None:
        """Runs one tick of the experiment's orchestration, if this replica may."""
        now = _now()
        try:
            record = self.db.run(
                lambda repo: store.claim(
                    repo, experiment_id, self.owner, now, self.lease_s
                )
            )
        except NotFound:
            return  # the experiment was deleted, and its orchestration with it
        if record is None:
            return
        try:
            _Tick(self, record).run()
        except NotFound:
            return  # the experiment was deleted during the tick
        except LeaseLost:
            logger.info(
                "experiment %s: orchestration %s was stopped, replaced or taken "
                "over during a tick; this replica stops driving it",
                experiment_id,
                record.uid,
            )


class _Tick:
    """The steps of one tick over the driver's copy of the record."""

    def __init__(self, driver: Driver, record: OrchestrationRecord) -> None:
        self.driver = driver
        self.db = driver.db
        self.record = record
        self.eid = record.experiment_id
        self.options = record.options
        config = self.db.run(
            lambda repo: load_config(repo.get_experiment(self.eid)), write=False
        )
        self.objectives = config.objective_names
        self.saved_at = time.monotonic()

    def run(self) -> None:
        # Step 2: a suggest a crashed tick left unrecorded.
        if self.record.progress.pending_request_id:
            self._suggest_pending()

        # Step 3: the trials in flight.
        self._refresh_in_flight()
        self._save()

        # Step 4: the end conditions.
        if self._maybe_end():
            return

        # Step 5: new trials.
        if self._plan_new_trials():
            self._suggest_pending()

        # The trials just deployed may already have failed (a refusing
        # runner), so the end conditions are checked again. Step 6: save
        # and schedule the next tick.
        if not self._maybe_end():
            self._save(next_tick=True)

    # Step 3 ----------------------------------------------------------------

    def _statuses(self) -> dict[int, TrialStatus]:
        record = self.record
        return self.db.run(
            lambda repo: store.trial_statuses(
                repo, record.experiment_pk, record.trial_indices
            ),
            write=False,
        )

    def _refresh_in_flight(self) -> None:
        for index, status in self._statuses().items():
            if status is S.CANDIDATE:
                self._guarded(index, "deploying", self._deploy)
            elif status in (S.STAGED, S.RUNNING):
                self._guarded(index, "refreshing", self._refresh)
            self._renew_if_due()

    def _guarded(self, index: int, doing: str, step: Callable[[int], None]) -> None:
        """Runs one trial's step; see the module docstring on unexpected errors.

        The tick's own signals (LeaseLost, and NotFound for a deleted
        experiment) and domain errors (a database outage is Unavailable) are
        not the trial's doing: they pass through.
        """
        uid = self.record.uid
        try:
            step(index)
        except (LeaseLost, PolytrialError):
            raise
        except Exception as error:
            self._unexpected(index, doing, error)
            return
        self.driver.clear_errors(uid, index)

    def _unexpected(self, index: int, doing: str, error: Exception) -> None:
        """Logs an unexpected error on a trial; fails it if it keeps happening."""
        count = self.driver.count_error(self.record.uid, index)
        if count == 1:
            logger.exception(
                "experiment %s trial %d: unexpected error %s it; it fails if "
                "this happens %d ticks in a row",
                self.eid,
                index,
                doing,
                MAX_UNEXPECTED_ERRORS,
            )
        else:
            logger.warning(
                "experiment %s trial %d: unexpected error %s it again (%d in a "
                "row): %r",
                self.eid,
                index,
                doing,
                count,
                error,
            )
        if count < MAX_UNEXPECTED_ERRORS:
            return
        reason = (
            f"the orchestration hit an unexpected error {doing} this trial "
            f"{count} times in a row ({type(error).__name__}; see the server log)"
        )
        self.driver.clear_errors(self.record.uid, index)
        self._end_trial(index, S.FAILED, reason)
        # Its job, if one was started, has nobody left to track it.
        self.driver.deployments.stop_lost(self.eid, index, reason)

    def _renew_if_due(self) -> None:
        # Runner calls can be slow (timeouts, retries): renewing once a third
        # of the lease has passed keeps another replica from taking over a
        # tick that is merely slow.
        if time.monotonic() - self.saved_at > self.driver.lease_s / 3:
            self._save()

    def _deploy(self, index: int) -> None:
        """Deploys a CANDIDATE trial; a refusal leaves it FAILED with the reason."""
        called = _now()
        try:
            trial = self.driver.deployments.deploy(self.eid, index)
        except _UNREACHABLE as error:
            self._unreachable(index, error.message, called)
            return
        except FailedPrecondition as error:
            if error.reason == "NO_RUNNER":
                # The experiment's runner was removed after the start.
                self._end_trial(index, S.FAILED, error.message)
                return
            # Someone moved the trial on (abandoned it, or deployed it).
            logger.debug("experiment %s trial %d: %s", self.eid, index, error.message)
            return
        except Aborted as error:
            raise LeaseLost from error  # the experiment was deleted or replaced
        self._note(index).unreachable_since = None
        if trial.status is S.FAILED:
            logger.info(
                "experiment %s trial %d failed at deployment: %s",
                self.eid,
                index,
                trial.status_reason,
            )

    def _refresh(self, index: int) -> None:
        """Polls a deployed trial and applies the grace and lost-job rules."""
        called = _now()
        try:
            outcome = self.driver.deployments.refresh_outcome(self.eid, index)
        except _UNREACHABLE as error:
            self._unreachable(index, error.message, called)
            return
        except FailedPrecondition as error:
            # The runner answered, but refuses to report on the job: NOT_FOUND
            # after a restart that lost it, or any other refusal. Nothing will
            # ever complete it, so it fails now.
            self._end_trial(index, S.FAILED, policy.lost_reason(error.message))
            return
        except Aborted as error:
            raise LeaseLost from error
        note = self._note(index)
        note.unreachable_since = None
        trial = outcome.trial
        if trial.status is not S.RUNNING:
            return
        if outcome.polled_state is None:
            # A runner that cannot be polled never says COMPLETED: its trial
            # completes once every objective has its final value.
            if not policy.missing_objectives(trial, self.objectives):
                self._complete(index)
            elif not outcome.fetched_from:
                self._warn_client_data_only(outcome.runner_address)
            return
        if outcome.polled_state != runner_service_pb2.RUNNER_TRIAL_STATE_COMPLETED:
            note.completed_since = None
            return

        # The runner says COMPLETED but the objective data is not all there.
        now = _now()
        if note.completed_since is None:
            note.completed_since = now
            logger.info(
                "experiment %s trial %d: runner reports COMPLETED without data "
                "for %s; waiting up to %gs",
                self.eid,
                index,
                sorted(
                    {m for _, m in policy.missing_objectives(trial, self.objectives)}
                ),
                self.options.data_grace_period_s,
            )
        waited_s = (now - note.completed_since).total_seconds()
        if waited_s >= self.options.data_grace_period_s:
            reason = policy.missing_data_reason(
                trial,
                self.objectives,
                waited_s=waited_s,
                unknown_metrics=outcome.unknown_metrics,
                dropped=outcome.dropped,
            )
            self._end_trial(index, S.FAILED, reason)

    def _warn_client_data_only(self, runner_address: str) -> None:
        """Says, once per orchestration, that only clients can end its trials.

        Data a client sends with CompleteTrial is legitimate, so the trials
        are not failed; but without this line they would wait in silence.
        """
        if self.driver.warn_once(self.record.uid):
            logger.warning(
                "experiment %s: runner %s implements neither PollTrialStatus nor "
                "FetchTrialData (nor does a metric service serve the data), so "
                "the orchestration's trials end only when a client completes "
                "them",
                self.eid,
                runner_address,
            )

    def _complete(self, index: int) -> None:
        try:
            self.driver.trials.complete(self.eid, index, [])
        except PolytrialError as error:
            # Completed or ended meanwhile by someone else: nothing to do.
            logger.debug("experiment %s trial %d: %s", self.eid, index, error.message)
            return
        logger.info(
            "experiment %s trial %d completed by the orchestration (its runner "
            "cannot be polled; every objective has its final value)",
            self.eid,
            index,
        )

    def _unreachable(self, index: int, message: str, called: datetime) -> None:
        """Applies the unreachable timeout to a trial whose runner did not answer.

        The wait counts from the start of the first call that failed, not its
        end: a hung runner's call takes its timeout times its retries, and
        counting from the end made trials outlast the timeout by that much.
        """
        now = _now()
        note = self._note(index)
        if note.unreachable_since is None:
            note.unreachable_since = called
        waited_s = (now - note.unreachable_since).total_seconds()
        logger.warning(
            "experiment %s trial %d: runner unreachable for %.1fs: %s",
            self.eid,
            index,
            waited_s,
            message,
        )
        if waited_s >= self.options.runner_unreachable_timeout_s:
            reason = policy.unreachable_reason(message, waited_s=waited_s)
            self._end_trial(index, S.FAILED, reason)

    def _note(self, index: int) -> TrialNote:
        return self.record.progress.notes.setdefault(index, TrialNote())

    def _end_trial(self, index: int, target: TrialStatus, reason: str) -> None:
        record, owner = self.record, self.driver.owner
        now = _now()
        ended = self.db.run(
            lambda repo: store.end_trial_if_held(
                repo, record, owner, index, target, reason, now
            )
        )
        self.record.progress.notes.pop(index, None)
        if ended is not None:
            logger.info(
                "experiment %s trial %d %s by the orchestration: %s",
                self.eid,
                index,
                target.name,
                reason,
            )

    # Step 4 ----------------------------------------------------------------

    def _maybe_end(self) -> bool:
        """Ends the orchestration when a rule says so; returns whether it did."""
        counts = Counter(self._statuses().values())
        created = len(self.record.trial_indices)
        in_flight = sum(counts.get(s, 0) for s in policy.IN_FLIGHT)
        record, options = self.record, self.options
        now = _now()

        elapsed_s = (
            (now - record.create_time).total_seconds() if record.create_time else 0.0
        )
        if options.timeout_s > 0 and elapsed_s >= options.timeout_s:
            message = (
                f"stopped: the timeout of {options.timeout_s:g}s passed with "
                f"{created} of {options.max_trials} trials created"
            )
            self._end(State.STOPPED, message, in_flight > 0)
            return True
        failure = policy.failure_message(options, counts)
        if failure is not None:
            self._end(State.FAILED, failure, in_flight > 0, with_counts=True)
            return True
        used = created >= options.max_trials or bool(record.progress.exhausted)
        if used and in_flight == 0 and not record.progress.pending_request_id:
            self._end(State.COMPLETED, record.progress.exhausted, False)
            return True
        return False

    def _end(
        self,
        state: State,
        message: str,
        stop_in_flight: bool,
        *,
        with_counts: bool = False,
    ) -> None:
        """Stops the trials in flight, then records the end.

        The trials are stopped first, under the lease, so that the ended
        orchestration is never seen with trials it still has to stop, and so
        that the counts `with_counts` appends to the message are the final
        ones (those in flight ABANDONED or EARLY_STOPPED), agreeing with the
        orchestration's `trial_counts`. A crash in between leaves it RUNNING;
        the next tick makes the same decision again (its rules only ever
        count more failures and more elapsed time).
        """
        record = self.record
        # Stop the trials in flight, renewing the lease between runner calls.
        if stop_in_flight:
            stop_trials(
                self.db,
                self.driver.trials,
                self.driver.deployments,
                record,
                f"orchestration {state.name}: {message}",
                between=self._renew_if_due,
            )

        # Record the end, with the trial counts as they now are.
        if with_counts:
            counts = self.db.run(lambda repo: read_counts(repo, record), write=False)
            which = "once those in flight were stopped" if stop_in_flight else "now"
            message = f"{message}; trials {which}: {policy.count_text(counts)}"
        record.state, record.state_message = state, message
        record.end_time = _now()
        self._save()
        self.driver.forget(record.uid)
        log = logger.warning if state is State.FAILED else logger.info
        log(
            "experiment %s: orchestration %s ended %s after %d trials%s",
            self.eid,
            record.uid,
            state.name,
            len(record.trial_indices),
            f": {message}" if message else "",
        )

    # Step 5 ----------------------------------------------------------------

    def _plan_new_trials(self) -> bool:
        """Records the next suggest (its id and count) before it is made."""
        progress = self.record.progress
        if progress.exhausted:
            return False
        statuses = self._statuses()
        in_flight = sum(1 for s in statuses.values() if s in policy.IN_FLIGHT)
        count = policy.trials_to_create(
            self.options, len(self.record.trial_indices), in_flight
        )
        if count == 0:
            return False
        # Written first, so that a crash after the suggest but before its
        # trials are recorded replays the same request (same id, same count)
        # and adopts those trials instead of leaving them orphaned.
        progress.pending_request_id = (
            f"orchestration-{self.record.uid}-{progress.suggestions}"
        )
        progress.pending_count = count
        progress.suggestions += 1
        self._save()
        return True

    def _suggest_pending(self) -> None:
        """Makes (or replays) the recorded suggest, records and deploys its trials."""
        progress = self.record.progress
        request_id, count = progress.pending_request_id, progress.pending_count
        try:
            created = self.driver.trials.suggest(
                self.eid, count=count, request_id=request_id
            )
        except SearchSpaceExhausted as error:
            logger.info(
                "experiment %s: search space exhausted: %s", self.eid, error.message
            )
            progress.exhausted = f"search space exhausted: {error.message}"
            progress.pending_request_id, progress.pending_count = "", 0
            self._save()
            return
        except NotFound as error:
            raise LeaseLost from error
        except PolytrialError as error:
            # Nothing was stored; the next tick replays the same request.
            logger.warning(
                "experiment %s: suggest %s failed, retrying next tick: %s",
                self.eid,
                request_id,
                error.message,
            )
            return

        # Record them under the lease; a replica that lost it abandons them.
        known = set(self.record.trial_indices)
        new = [t.index for t in created if t.index not in known]
        self.record.trial_indices.extend(new)
        progress.pending_request_id, progress.pending_count = "", 0
        try:
            self._save()
        except LeaseLost:
            for index in new:
                _abandon_quietly(
                    self.driver.trials,
                    self.eid,
                    index,
                    "suggested by an orchestration that was stopped meanwhile",
                )
            raise
        logger.info(
            "experiment %s: orchestration suggested trials %s (%d of %d created)",
            self.eid,
            new,
            len(self.record.trial_indices),
            self.options.max_trials,
        )
        for index in new:
            self._guarded(index, "deploying", self._deploy)
            self._renew_if_due()

    # Saving ----------------------------------------------------------------

    def _save(self, *, next_tick: bool = False) -> None:
        """Writes the progress and renews the lease, or raises LeaseLost."""
        record, owner = self.record, self.driver.owner
        now = _now()
        record.update_time = now
        lease_s = self.driver.lease_s
        if next_tick:
            record.next_tick_time = now + timedelta(
                seconds=self.options.poll_interval_s
            )
            lease_s += self.options.poll_interval_s
        expire = now + timedelta(seconds=lease_s)
        if not self.db.run(
            lambda repo: store.save(repo, record, owner, lease_expire_time=expire)
        ):
            raise LeaseLost
        self.saved_at = time.monotonic()


def _abandon_quietly(trials: Trials, experiment_id: str, index: int, why: str) -> None:
    try:
        trials.abandon(experiment_id, index, reason=why)
    except PolytrialError as error:
        logger.debug(
            "experiment %s trial %d not abandoned: %s",
            experiment_id,
            index,
            error.message,
        )


def stop_trials(
    db: Database,
    trials: Trials,
    deployments: Deployments,
    record: OrchestrationRecord,
    reason: str,
    *,
    between: Callable[[], None] | None = None,
) -> None:
    """Stops the orchestration's trials in flight, best effort.

    A CANDIDATE trial is abandoned; a STAGED or RUNNING one is stopped
    through its runner (EARLY_STOPPED with data, else ABANDONED). A trial
    whose runner cannot be reached stays as it is, and is logged.

    Args:
        db: The database.
        trials: The trial service (abandons CANDIDATE trials).
        deployments: Stops deployed trials through their runners.
        record: The orchestration.
        reason: The stopped trials' reason.
        between: Called after each trial (the driver renews its lease there;
            an exception it raises ends the loop).
    """
    statuses = db.run(
        lambda repo: store.trial_statuses(
            repo, record.experiment_pk, record.trial_indices
        ),
        write=False,
    )
    eid = record.experiment_id
    reason = lifecycle.clip_reason(reason)
    for index, status in statuses.items():
        if status is S.CANDIDATE:
            _abandon_quietly(trials, eid, index, reason)
        elif status in (S.STAGED, S.RUNNING):
            try:
                deployments.stop(eid, index, reason)
            except (PolytrialError, RunnerCallError) as error:
                logger.warning(
                    "experiment %s trial %d could not be stopped through its "
                    "runner; it stays %s: %s",
                    eid,
                    index,
                    status.name,
                    error,
                )
        if between is not None:
            between()


def read_counts(repo: Repository, record: OrchestrationRecord) -> Counter[TrialStatus]:
    """The orchestration's trials by status."""
    statuses = store.trial_statuses(repo, record.experiment_pk, record.trial_indices)
    return Counter(statuses.values())
