"""The repository: every query Polytrial makes, bound to one transaction.

A `Repository` is handed out by `Database.run` and is valid only inside that
unit of work. It speaks in records (`records.py`), raises domain errors, and
takes the row locks that keep several server replicas consistent:

- `get_experiment(..., for_update=True)` locks the experiment row
  (`SELECT ... FOR NO KEY UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE`
  already serializes writers), which serializes suggestions and attachments
  per experiment, so trial indices are dense and never handed out twice. The
  NO KEY form still lets other transactions insert rows that reference the
  experiment (observations, request keys), so completions do not queue
  behind a suggestion.
- `get_trial(..., for_update=True)` locks one trial for a status change, so
  two concurrent completions cannot both succeed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from polytrial.server import resources
from polytrial.server.errors import AlreadyExists, NotFound
from polytrial.server.storage.records import (
    ArmRecord,
    ExperimentRecord,
    ObservationRecord,
    TrialRecord,
    TrialStatus,
)
from polytrial.server.storage.rows import (
    ArmRow,
    ExperimentRow,
    ObservationRow,
    RequestRow,
    TrialRow,
)
from sqlalchemy import (
    Connection,
    Executable,
    Result,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

LOST_REASON = "lost: no heartbeat before the trial's time-to-live ran out"

# The statements of the ask/tell hot path, built once. They run on the
# session's connection as SQLAlchemy Core: building an ORM statement and
# loading ORM objects cost more than the database round trip itself.
_E = cast(Table, ExperimentRow.__table__)
_T = cast(Table, TrialRow.__table__)
_A = cast(Table, ArmRow.__table__)
_O = cast(Table, ObservationRow.__table__)
_R = cast(Table, RequestRow.__table__)
_RUNNING = TrialStatus.RUNNING.value

_SELECT_PK = select(_E.c.pk).where(_E.c.experiment_id == bindparam("experiment_id"))
_SELECT_EXPERIMENT = select(_E).where(_E.c.experiment_id == bindparam("experiment_id"))
_LOCK_EXPERIMENT = _SELECT_EXPERIMENT.with_for_update(key_share=True)
_ALLOCATE = (
    update(_E)
    .where(_E.c.pk == bindparam("b_pk"))
    .values(next_trial_index=_E.c.next_trial_index + bindparam("b_count"))
    .returning(_E.c.next_trial_index)
)
_SET_COUNTERS = (
    update(_E)
    .where(_E.c.pk == bindparam("b_pk"))
    .values(
        sobol_draws=bindparam("b_sobol_draws"),
        trials_generated=bindparam("b_trials_generated"),
    )
)
_SET_LEASE = (
    update(_E)
    .where(_E.c.pk == bindparam("b_pk"))
    .values(
        generation_lease=bindparam("b_lease"),
        generation_lease_expire_time=bindparam("b_expire"),
    )
)
_SELECT_TRIAL = select(_T).where(
    _T.c.experiment_pk == bindparam("pk"), _T.c.trial_index == bindparam("index")
)
_LOCK_TRIAL = _SELECT_TRIAL.with_for_update(key_share=True)
_TRIAL_STATE = (
    "status",
    "stage_time",
    "run_time",
    "end_time",
    "status_reason",
    "deployed_name",
    "run_metadata",
    "runner",
    "deployment_error",
    "missing_metrics",
    "ttl_s",
    "expire_time",
)
_SAVE_TRIAL = (
    update(_T)
    .where(_T.c.experiment_pk == bindparam("b_pk"))
    .where(_T.c.trial_index == bindparam("b_index"))
    .values({name: bindparam(f"b_{name}") for name in _TRIAL_STATE})
)
_SELECT_ARMS = (
    select(_A)
    .where(
        _A.c.experiment_pk == bindparam("pk"),
        _A.c.trial_index.in_(bindparam("indices", expanding=True)),
    )
    .order_by(_A.c.trial_index, _A.c.arm_index)
)
_SELECT_OBSERVATIONS = (
    select(_O)
    .where(
        _O.c.experiment_pk == bindparam("pk"),
        _O.c.trial_index.in_(bindparam("indices", expanding=True)),
    )
    .order_by(_O.c.id)
)
# The same by an index range. A page of trials is a contiguous run of indices,
# and a short, fixed statement is prepared once, where an IN list of a
# hundred parameters is a new statement text for the driver every time.
_SELECT_ARMS_RANGE = (
    select(_A)
    .where(
        _A.c.experiment_pk == bindparam("pk"),
        _A.c.trial_index.between(bindparam("low"), bindparam("high")),
    )
    .order_by(_A.c.trial_index, _A.c.arm_index)
)
_SELECT_OBSERVATIONS_RANGE = (
    select(_O)
    .where(
        _O.c.experiment_pk == bindparam("pk"),
        _O.c.trial_index.between(bindparam("low"), bindparam("high")),
    )
    .order_by(_O.c.id)
)
_EXPIRED = (
    _T.c.experiment_pk == bindparam("pk"),
    _T.c.status == _RUNNING,
    _T.c.expire_time.is_not(None),
    _T.c.expire_time < bindparam("now"),
)
_FIND_EXPIRED = select(_T.c.trial_index).where(*_EXPIRED)
_FAIL_EXPIRED = (
    update(_T)
    .where(*_EXPIRED)
    .values(
        status=TrialStatus.FAILED.value,
        status_reason=LOST_REASON,
        end_time=bindparam("now"),
        expire_time=None,
    )
    .returning(_T.c.trial_index)
)
_TAKEN_KEYS = (
    select(_A.c.arm_key)
    .join(
        _T,
        (_T.c.experiment_pk == _A.c.experiment_pk)
        & (_T.c.trial_index == _A.c.trial_index),
    )
    .where(
        _A.c.experiment_pk == bindparam("pk"),
        _A.c.arm_key.in_(bindparam("keys", expanding=True)),
        _T.c.status.in_(bindparam("statuses", expanding=True)),
    )
)
_SELECT_REQUEST = select(_R.c.trial_indices, _R.c.fingerprint).where(
    _R.c.experiment_pk == bindparam("pk"),
    _R.c.method == bindparam("method"),
    _R.c.request_id == bindparam("request_id"),
)


class Repository:
    """Reads and writes experiments, trials, arms, observations and requests.

    Args:
        connection: The connection of the enclosing transaction, which the
            caller commits or rolls back.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # An ORM session only for the few ORM-style writes, made on first
        # use: a session per transaction costs more than the hot path's
        # statements.
        self._session: Session | None = None
        # Experiment id -> surrogate key, for this transaction only: most
        # calls need just the key, and one lookup per transaction saves a
        # round trip per call on the hot path.
        self._pks: dict[str, int] = {}

    @property
    def session(self) -> Session:
        """An ORM session joined to this repository's transaction."""
        if self._session is None:
            # Joined to the connection's transaction, which it never commits.
            self._session = Session(bind=self._connection, expire_on_commit=False)
        return self._session

    def close(self, *, flush: bool = True) -> None:
        """Flushes (unless the unit of work failed) and closes the ORM session.

        The caller commits or rolls back the transaction itself.
        """
        if self._session is not None:
            session, self._session = self._session, None
            try:
                if flush:
                    session.flush()
            finally:
                session.close()

    def _run(self, statement: Executable, **params: object) -> Result[Any]:
        """Runs a Core statement on the transaction's connection."""
        return self._connection.execute(statement, params)

    # Experiments ---------------------------------------------------------

    def add_experiment(self, record: ExperimentRecord) -> ExperimentRecord:
        """Stores a new experiment and returns it as stored.

        Raises:
            AlreadyExists: the id is taken (ALREADY_EXISTS).
        """
        row = ExperimentRow(
            experiment_id=record.experiment_id,
            config=record.config,
            description=record.description,
            properties=record.properties,
            create_time=record.create_time,
            update_time=record.update_time or record.create_time,
            next_trial_index=0,
            sobol_draws=0,
            trials_generated=0,
        )
        self.session.add(row)
        try:
            self.session.flush()
        except IntegrityError as exc:
            # Two creates with one id raced past each other; the unique index
            # on experiment_id let exactly one of them in.
            raise AlreadyExists(
                resources.experiment_name(record.experiment_id)
            ) from exc
        return self._experiment_record(row, {})

    def get_experiment(
        self,
        experiment_id: str,
        *,
        for_update: bool = False,
        with_counts: bool = True,
    ) -> ExperimentRecord:
        """Returns one experiment with its trial counts.

        Args:
            experiment_id: The experiment's id.
            for_update: Lock the row until the transaction ends.
            with_counts: Count trials by status. Counting reads every trial
                of the experiment, so the suggest and complete paths skip it.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        statement = _LOCK_EXPERIMENT if for_update else _SELECT_EXPERIMENT
        row = self._run(statement, experiment_id=experiment_id).first()
        if row is None:
            name = resources.experiment_name(experiment_id)
            raise NotFound(name, f"experiment {name} does not exist")
        self._pks[experiment_id] = row.pk
        counts = self._trial_counts([row.pk])[row.pk] if with_counts else {}
        return self._experiment_record(row, counts)

    def list_experiments(self, *, after_seq: int, limit: int) -> list[ExperimentRecord]:
        """Returns up to `limit` experiments created after cursor `after_seq`."""
        rows = self.session.scalars(
            select(ExperimentRow)
            .where(ExperimentRow.pk > after_seq)
            .order_by(ExperimentRow.pk)
            .limit(limit)
        ).all()
        counts = self._trial_counts([row.pk for row in rows])
        return [self._experiment_record(row, counts[row.pk]) for row in rows]

    def update_experiment(
        self,
        experiment_id: str,
        *,
        now: datetime,
        description: str | None = None,
        properties: dict[str, object] | None = None,
    ) -> ExperimentRecord:
        """Changes the description and/or properties; None leaves one as is.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        row = self._experiment_row(experiment_id, for_update=True)
        if description is not None:
            row.description = description
        if properties is not None:
            row.properties = dict(properties)
        row.update_time = now
        self.session.flush()
        return self.get_experiment(experiment_id)

    def delete_experiment(
        self, experiment_id: str, *, check: Callable[[], None] | None = None
    ) -> None:
        """Deletes an experiment with its trials, arms, data and request keys.

        Args:
            experiment_id: The experiment.
            check: Refuses the delete by raising. It runs once the row is
                locked, so what it checked (no orchestration RUNNING) still
                holds when the rows go: whatever would change it waits.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        # A full FOR UPDATE lock, unlike the suggestion lock: it also holds
        # off transactions about to insert rows that reference the experiment
        # (a completion's request key), which would otherwise fail on the
        # foreign key after this delete.
        row = self._experiment_row(experiment_id, for_update=True, key_share=False)
        if check is not None:
            check()
        # Children are deleted explicitly, child first, so the outcome does
        # not depend on whether the backend enforces ON DELETE CASCADE.
        for table in (ObservationRow, ArmRow, TrialRow, RequestRow):
            self.session.execute(delete(table).where(table.experiment_pk == row.pk))
        self.session.execute(delete(ExperimentRow).where(ExperimentRow.pk == row.pk))
        self._pks.pop(experiment_id, None)

    def set_generation_counters(
        self, experiment_id: str, *, sobol_draws: int, trials_generated: int
    ) -> None:
        """Stores the experiment's Sobol counter and number of generated trials."""
        self._run(
            _SET_COUNTERS,
            b_pk=self._pk(experiment_id),
            b_sobol_draws=sobol_draws,
            b_trials_generated=trials_generated,
        )

    def set_generation_lease(
        self, experiment_id: str, token: str, expire_time: datetime | None
    ) -> None:
        """Gives the generation lease to `token` until `expire_time` ("" frees it)."""
        self._run(
            _SET_LEASE,
            b_pk=self._pk(experiment_id),
            b_lease=token,
            b_expire=expire_time,
        )

    def allocate_trial_indices(self, experiment_id: str, count: int) -> int:
        """Reserves `count` consecutive trial indices and returns the first.

        One `UPDATE ... RETURNING` both reads and advances the counter, so two
        transactions (even in two server processes) never get the same index;
        a rolled-back transaction gives its indices back.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        pk = self._pk(experiment_id)
        new_next = self._run(_ALLOCATE, b_pk=pk, b_count=count).scalar_one_or_none()
        if new_next is None:
            raise NotFound(resources.experiment_name(experiment_id))
        return int(new_next) - count

    # Trials --------------------------------------------------------------

    def add_trial(self, record: TrialRecord) -> None:
        """Stores a new trial with its arms and observations.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
            AlreadyExists: the index is taken (ALREADY_EXISTS).
        """
        pk = self._pk(record.experiment_id)
        # The trial row must exist before its arms reference it.
        try:
            self._run(
                insert(_T),
                experiment_pk=pk,
                trial_index=record.index,
                status=record.status.value,
                is_batch=record.is_batch,
                create_time=record.create_time,
                stage_time=record.stage_time,
                run_time=record.run_time,
                end_time=record.end_time,
                status_reason=record.status_reason,
                deployed_name=record.deployed_name,
                run_metadata=record.run_metadata,
                generator=record.generator,
                num_observations=record.num_observations,
                generation_details=record.generation_details,
                runner=record.runner,
                deployment_error=record.deployment_error,
                missing_metrics=list(record.missing_metrics),
                ttl_s=record.ttl_s,
                expire_time=record.expire_time,
            )
        except IntegrityError as exc:
            name = resources.trial_name(record.experiment_id, record.index)
            raise AlreadyExists(name) from exc
        self._insert_many(
            _A,
            [
                {
                    "experiment_pk": pk,
                    "trial_index": record.index,
                    "arm_index": arm_index,
                    "name": arm.name,
                    "parameters": arm.parameters,
                    "arm_key": arm.key,
                    "weight": arm.weight,
                }
                for arm_index, arm in enumerate(record.arms)
            ],
        )
        if record.observations:
            self.add_observations(
                record.experiment_id,
                record.index,
                record.observations,
                now=record.create_time or datetime.now(UTC),
            )

    def get_trial(
        self, experiment_id: str, trial_index: int, *, for_update: bool = False
    ) -> TrialRecord:
        """Returns one trial with its arms and observations.

        Args:
            experiment_id: The experiment's id.
            trial_index: The trial's index.
            for_update: Lock the trial row until the transaction ends.

        Raises:
            NotFound: the experiment or the trial does not exist (NOT_FOUND).
        """
        pk = self._pk(experiment_id)
        statement = _LOCK_TRIAL if for_update else _SELECT_TRIAL
        row = self._run(statement, pk=pk, index=trial_index).first()
        if row is None:
            raise NotFound(
                resources.trial_name(experiment_id, trial_index),
                f"trial {trial_index} of experiments/{experiment_id} does not exist",
            )
        return self._trial_records(experiment_id, pk, [row])[0]

    def list_trials(
        self,
        experiment_id: str,
        *,
        statuses: Iterable[TrialStatus] = (),
        after_index: int = -1,
        limit: int | None = None,
    ) -> list[TrialRecord]:
        """Returns trials by index, optionally filtered by status and paged.

        Args:
            experiment_id: The experiment's id.
            statuses: Only these statuses; empty means all.
            after_index: Only trials with a larger index (the page cursor).
            limit: At most this many; None means all.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        pk = self._pk(experiment_id)
        query = (
            select(_T)
            .where(_T.c.experiment_pk == pk, _T.c.trial_index > after_index)
            .order_by(_T.c.trial_index)
        )
        wanted = [status.value for status in statuses]
        if wanted:
            query = query.where(_T.c.status.in_(wanted))
        if limit is not None:
            query = query.limit(limit)
        rows = self._run(query).all()
        return self._trial_records(experiment_id, pk, rows)

    def save_trial_state(self, record: TrialRecord) -> None:
        """Writes a trial's status, timestamps, reasons, metadata and expiry.

        Arms and observations are not touched; see `add_observations`.

        Raises:
            NotFound: the experiment or the trial does not exist (NOT_FOUND).
        """
        pk = self._pk(record.experiment_id)
        result = self._run(
            _SAVE_TRIAL,
            b_pk=pk,
            b_index=record.index,
            b_status=record.status.value,
            b_stage_time=record.stage_time,
            b_run_time=record.run_time,
            b_end_time=record.end_time,
            b_status_reason=record.status_reason,
            b_deployed_name=record.deployed_name,
            b_run_metadata=record.run_metadata,
            b_runner=record.runner,
            b_deployment_error=record.deployment_error,
            b_missing_metrics=list(record.missing_metrics),
            b_ttl_s=record.ttl_s,
            b_expire_time=record.expire_time,
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(resources.trial_name(record.experiment_id, record.index))

    def add_observations(
        self,
        experiment_id: str,
        trial_index: int,
        observations: Sequence[ObservationRecord],
        *,
        now: datetime,
    ) -> None:
        """Appends observations to a trial (validated by the caller)."""
        pk = self._pk(experiment_id)
        self._insert_many(
            _O,
            [
                {
                    "experiment_pk": pk,
                    "trial_index": trial_index,
                    "arm_name": obs.arm_name,
                    "metric_name": obs.metric_name,
                    "mean": obs.mean,
                    "sem": obs.sem,
                    "step": obs.step,
                    "create_time": now,
                }
                for obs in observations
            ],
        )

    def arm_keys(self, experiment_id: str, statuses: Iterable[TrialStatus]) -> set[str]:
        """Returns the `arm_key` of every arm of a trial in one of `statuses`.

        Reads one narrow column instead of whole trials.
        """
        pk = self._pk(experiment_id)
        query = (
            select(ArmRow.arm_key)
            .join(
                TrialRow,
                (TrialRow.experiment_pk == ArmRow.experiment_pk)
                & (TrialRow.trial_index == ArmRow.trial_index),
            )
            .where(
                ArmRow.experiment_pk == pk,
                TrialRow.status.in_([status.value for status in statuses]),
            )
        )
        return set(self.session.scalars(query))

    def taken_arm_keys(
        self,
        experiment_id: str,
        keys: Iterable[str],
        statuses: Iterable[TrialStatus],
    ) -> set[str]:
        """Returns those of `keys` that an arm of a trial in `statuses` has.

        Uses the (experiment, arm_key) index, so its cost does not grow with
        the number of trials.
        """
        wanted = list(set(keys))
        if not wanted:
            return set()
        found = self._run(
            _TAKEN_KEYS,
            pk=self._pk(experiment_id),
            keys=wanted,
            statuses=[status.value for status in statuses],
        )
        return set(found.scalars())

    def fail_all_expired_trials(self, *, now: datetime) -> list[tuple[str, int]]:
        """Marks every RUNNING trial past its expiry FAILED as lost, server-wide.

        The periodic sweep calls this. The status and expiry are checked in
        the UPDATE itself, so a heartbeat or completion that committed first
        wins, and two replicas sweeping at once fail each trial once.

        Returns:
            (experiment id, trial index) of each trial failed.
        """
        if not self.has_expired_trials(now=now):
            return []
        failed = self.session.execute(
            update(TrialRow)
            .where(
                TrialRow.status == TrialStatus.RUNNING.value,
                TrialRow.expire_time.is_not(None),
                TrialRow.expire_time < now,
            )
            .values(
                status=TrialStatus.FAILED.value,
                status_reason=LOST_REASON,
                end_time=now,
                expire_time=None,
            )
            .returning(TrialRow.experiment_pk, TrialRow.trial_index)
        ).all()
        if not failed:
            return []
        ids = {
            pk: experiment_id
            for pk, experiment_id in self.session.execute(
                select(ExperimentRow.pk, ExperimentRow.experiment_id).where(
                    ExperimentRow.pk.in_({pk for pk, _ in failed})
                )
            )
        }
        return sorted((ids[pk], int(index)) for pk, index in failed)

    def has_expired_trials(self, *, now: datetime) -> bool:
        """Whether any RUNNING trial of any experiment is past its expiry."""
        found = self.session.scalar(
            select(TrialRow.trial_index)
            .where(
                TrialRow.status == TrialStatus.RUNNING.value,
                TrialRow.expire_time.is_not(None),
                TrialRow.expire_time < now,
            )
            .limit(1)
        )
        return found is not None

    def find_expired_trials(self, experiment_id: str, *, now: datetime) -> list[int]:
        """Returns indices of RUNNING trials whose time-to-live ran out."""
        found = self._run(_FIND_EXPIRED, pk=self._pk(experiment_id), now=now)
        return [int(index) for index in found.scalars()]

    def fail_expired_trials(self, experiment_id: str, *, now: datetime) -> list[int]:
        """Marks RUNNING trials past their expiry FAILED as lost; returns them.

        The status is re-checked in the UPDATE itself, so a heartbeat or a
        completion that committed first wins.
        """
        # A read first: the UPDATE would take a write lock even when it
        # changes nothing, which is nearly always.
        if not self.find_expired_trials(experiment_id, now=now):
            return []
        failed = self._run(_FAIL_EXPIRED, pk=self._pk(experiment_id), now=now)
        return sorted(int(index) for index in failed.scalars())

    # Idempotency keys ------------------------------------------------------

    def find_request(
        self, experiment_id: str, method: str, request_id: str
    ) -> list[int] | None:
        """Returns the trial indices a request with this id produced, if any."""
        found = self.find_request_entry(experiment_id, method, request_id)
        return None if found is None else found[0]

    def find_request_entry(
        self, experiment_id: str, method: str, request_id: str
    ) -> tuple[list[int], str] | None:
        """Returns (trial indices, fingerprint) of a stored request, if any."""
        row = self._run(
            _SELECT_REQUEST,
            pk=self._pk(experiment_id),
            method=method,
            request_id=request_id,
        ).first()
        if row is None:
            return None
        return [int(i) for i in row.trial_indices], row.fingerprint or ""

    def record_request(
        self,
        experiment_id: str,
        method: str,
        request_id: str,
        trial_indices: Sequence[int],
        *,
        now: datetime,
        fingerprint: str = "",
    ) -> None:
        """Remembers what a request produced, in the request's own transaction.

        `fingerprint` is a digest of what was asked, so that a reused id with
        a different request can be told apart from a repeat.

        Raises:
            AlreadyExists: a concurrent request with the same id committed
                first (ALREADY_EXISTS); the caller reads that one's result.
        """
        pk = self._pk(experiment_id)
        try:
            self._run(
                insert(_R),
                experiment_pk=pk,
                method=method,
                request_id=request_id,
                trial_indices=list(trial_indices),
                create_time=now,
                fingerprint=fingerprint,
            )
        except IntegrityError as exc:
            raise AlreadyExists(
                f"{resources.experiment_name(experiment_id)}/requests/{request_id}"
            ) from exc

    # Helpers ---------------------------------------------------------------

    def _experiment_row(
        self, experiment_id: str, *, for_update: bool = False, key_share: bool = True
    ) -> ExperimentRow:
        query = select(ExperimentRow).where(
            ExperimentRow.experiment_id == experiment_id
        )
        if for_update:
            query = query.with_for_update(key_share=key_share)
        row = self.session.scalars(query).one_or_none()
        if row is None:
            name = resources.experiment_name(experiment_id)
            raise NotFound(name, f"experiment {name} does not exist")
        self._pks[experiment_id] = row.pk
        return row

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._connection.execute(insert(table), rows)

    def _pk(self, experiment_id: str) -> int:
        pk = self._pks.get(experiment_id)
        if pk is None:
            found = self._run(_SELECT_PK, experiment_id=experiment_id).scalar()
            if found is None:
                name = resources.experiment_name(experiment_id)
                raise NotFound(name, f"experiment {name} does not exist")
            pk = self._pks[experiment_id] = int(found)
        return pk

    def _trial_counts(self, pks: Sequence[int]) -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        if not pks:
            return counts
        query = (
            select(TrialRow.experiment_pk, TrialRow.status, func.count())
            .where(TrialRow.experiment_pk.in_(pks))
            .group_by(TrialRow.experiment_pk, TrialRow.status)
        )
        for pk, status, count in self.session.execute(query):
            counts[pk][status] = int(count)
        return counts

    @staticmethod
    def _experiment_record(row: Any, counts: dict[str, int]) -> ExperimentRecord:
        return ExperimentRecord(
            experiment_id=row.experiment_id,
            config=row.config,
            description=row.description,
            properties=dict(row.properties or {}),
            create_time=row.create_time,
            update_time=row.update_time,
            next_trial_index=row.next_trial_index,
            sobol_draws=row.sobol_draws,
            trials_generated=row.trials_generated,
            trial_counts=dict(counts),
            seq=row.pk,
            generation_lease=row.generation_lease,
            generation_lease_expire_time=row.generation_lease_expire_time,
        )

    def _trial_records(
        self, experiment_id: str, pk: int, rows: Sequence[Any]
    ) -> list[TrialRecord]:
        if not rows:
            return []
        indices = [row.trial_index for row in rows]
        wanted = set(indices)
        low, high = min(indices), max(indices)
        # One query each for arms and observations instead of one per trial;
        # by range when the indices are (nearly) contiguous, rows of trials
        # in the gaps being skipped below.
        if high - low < 2 * len(indices):
            arm_rows = self._run(_SELECT_ARMS_RANGE, pk=pk, low=low, high=high).all()
            obs_rows = self._run(
                _SELECT_OBSERVATIONS_RANGE, pk=pk, low=low, high=high
            ).all()
        else:
            arm_rows = self._run(_SELECT_ARMS, pk=pk, indices=indices).all()
            obs_rows = self._run(_SELECT_OBSERVATIONS, pk=pk, indices=indices).all()
        arms: dict[int, list[ArmRecord]] = defaultdict(list)
        for arm in arm_rows:
            if arm.trial_index not in wanted:
                continue
            arms[arm.trial_index].append(
                ArmRecord(
                    name=arm.name,
                    parameters=dict(arm.parameters),
                    key=arm.arm_key,
                    weight=arm.weight,
                )
            )
        observations: dict[int, list[ObservationRecord]] = defaultdict(list)
        for obs in obs_rows:
            if obs.trial_index not in wanted:
                continue
            observations[obs.trial_index].append(
                ObservationRecord(
                    arm_name=obs.arm_name,
                    metric_name=obs.metric_name,
                    mean=obs.mean,
                    sem=obs.sem,
                    step=obs.step,
                )
            )
        return [
            TrialRecord(
                experiment_id=experiment_id,
                index=row.trial_index,
                status=TrialStatus(row.status),
                arms=arms[row.trial_index],
                is_batch=row.is_batch,
                observations=observations[row.trial_index],
                create_time=row.create_time,
                stage_time=row.stage_time,
                run_time=row.run_time,
                end_time=row.end_time,
                status_reason=row.status_reason,
                deployed_name=row.deployed_name,
                run_metadata=dict(row.run_metadata or {}),
                generator=row.generator,
                num_observations=row.num_observations,
                generation_details=dict(row.generation_details or {}),
                ttl_s=row.ttl_s,
                expire_time=row.expire_time,
                runner=row.runner,
                deployment_error=row.deployment_error,
                missing_metrics=list(row.missing_metrics or []),
            )
            for row in rows
        ]
