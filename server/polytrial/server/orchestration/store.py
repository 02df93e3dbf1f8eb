"""Storage glue: the `orchestrations` table, its records, and the lease queries.

    orchestrations (experiment_pk -> experiments.pk, cascade on delete)
        uid, state, state_message, request_id, options (JSON),
        trial_indices (JSON), progress (JSON: per-trial notes, the suggest in
        flight, why generation ended), lease_owner, lease_expire_time,
        next_tick_time, create/update/end times

The table is created by Alembic revision 0005. Every function here runs
inside a `Database.run` unit of work, on its repository's transaction.

The lease. At most one replica drives an orchestration: a replica claims it
with a conditional UPDATE (free, expired, or already its own), renews it at
every step, and every write it makes carries `lease_owner = me AND uid = ...
AND state = 'RUNNING'` in its WHERE clause, so a replica that lost the lease
(or whose orchestration was stopped or replaced) writes nothing. On
PostgreSQL two concurrent claims serialize on the row lock and the second
re-evaluates the WHERE clause against the first's commit, so it fails.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from polytrial.server import resources
from polytrial.server.errors import NotFound
from polytrial.server.orchestration.options import Options
from polytrial.server.service import lifecycle
from polytrial.server.storage import Repository, TrialRecord, TrialStatus
from polytrial.server.storage.rows import Base, ExperimentRow, TrialRow, UtcDateTime
from sqlalchemy import (
    JSON,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column


class State(enum.Enum):
    """An orchestration's state; the names match `polytrial.v1.OrchestrationState`."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class OrchestrationRow(Base):
    """One experiment's orchestration (at most one per experiment)."""

    __tablename__ = "orchestrations"

    experiment_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.pk", ondelete="CASCADE"), primary_key=True
    )
    uid: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[str] = mapped_column(String(255), default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    trial_indices: Mapped[list[int]] = mapped_column(JSON, default=list)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lease_owner: Mapped[str] = mapped_column(String(128), default="")
    lease_expire_time: Mapped[datetime | None] = mapped_column(
        UtcDateTime, nullable=True
    )
    next_tick_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


_O = cast(Table, OrchestrationRow.__table__)
_E = cast(Table, ExperimentRow.__table__)
_T = cast(Table, TrialRow.__table__)


@dataclass
class TrialNote:
    """What the orchestration remembers about one of its trials between ticks.

    Attributes:
        completed_since: When the runner first reported COMPLETED while the
            trial still lacked objective data (start of the grace period).
        unreachable_since: When its runner first failed to answer, since
            the last answer (start of the unreachable timeout).
    """

    completed_since: datetime | None = None
    unreachable_since: datetime | None = None

    def to_json(self) -> dict[str, str]:
        """The note as JSON (ISO timestamps); empty fields are left out."""
        found = {
            "completed_since": self.completed_since,
            "unreachable_since": self.unreachable_since,
        }
        return {k: v.isoformat() for k, v in found.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> TrialNote:
        """A note read back from `to_json`."""
        completed = data.get("completed_since")
        unreachable = data.get("unreachable_since")
        return cls(
            datetime.fromisoformat(completed) if completed else None,
            datetime.fromisoformat(unreachable) if unreachable else None,
        )


@dataclass
class Progress:
    """An orchestration's working state, stored as one JSON column.

    Attributes:
        notes: Per trial index, what the grace and unreachable rules need.
        pending_request_id: The request id of a suggest that may have
            created trials not yet recorded here; replayed on resume.
        pending_count: The count that suggest asked for (a replay must ask
            the same, or the server refuses the reused id).
        suggestions: Suggest calls made so far (makes each request id new).
        exhausted: Why no more trials can be generated, once that is known.
    """

    notes: dict[int, TrialNote] = field(default_factory=dict)
    pending_request_id: str = ""
    pending_count: int = 0
    suggestions: int = 0
    exhausted: str = ""

    def to_json(self) -> dict[str, Any]:
        """The progress as JSON."""
        return {
            # Empty notes (a trial that answered, or ended) are not kept.
            "notes": {
                str(i): n.to_json() for i, n in self.notes.items() if n.to_json()
            },
            "pending_request_id": self.pending_request_id,
            "pending_count": self.pending_count,
            "suggestions": self.suggestions,
            "exhausted": self.exhausted,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        """Progress read back from `to_json`."""
        notes = data.get("notes") or {}
        return cls(
            notes={int(i): TrialNote.from_json(n) for i, n in notes.items()},
            pending_request_id=str(data.get("pending_request_id", "")),
            pending_count=int(data.get("pending_count", 0)),
            suggestions=int(data.get("suggestions", 0)),
            exhausted=str(data.get("exhausted", "")),
        )


@dataclass
class OrchestrationRecord:
    """One stored orchestration.

    Attributes:
        experiment_id: Its experiment.
        experiment_pk: Its experiment's surrogate key (an experiment deleted
            and created again under the same id has another).
        uid: A new id for every start.
        options: Its options, defaults filled in.
        state: Where it stands.
        state_message: Why it is in its state.
        request_id: The request id of its start, if any.
        trial_indices: Its trials, in creation order.
        progress: Its working state between ticks.
        lease_owner: The replica driving it, or "".
        lease_expire_time: When that replica's lease runs out.
        next_tick_time: When it is due for its next tick.
        create_time: When it was started.
        update_time: When it last changed.
        end_time: When it ended.
    """

    experiment_id: str
    experiment_pk: int
    uid: str
    options: Options
    state: State
    state_message: str = ""
    request_id: str = ""
    trial_indices: list[int] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)
    lease_owner: str = ""
    lease_expire_time: datetime | None = None
    next_tick_time: datetime | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def name(self) -> str:
        """`experiments/{experiment_id}/orchestration`."""
        return resources.orchestration_name(self.experiment_id)


def _record(row: Any, experiment_id: str) -> OrchestrationRecord:
    return OrchestrationRecord(
        experiment_id=experiment_id,
        experiment_pk=int(row.experiment_pk),
        uid=row.uid,
        options=Options.from_json(row.options),
        state=State(row.state),
        state_message=row.state_message or "",
        request_id=row.request_id or "",
        trial_indices=[int(i) for i in row.trial_indices or []],
        progress=Progress.from_json(row.progress or {}),
        lease_owner=row.lease_owner or "",
        lease_expire_time=row.lease_expire_time,
        next_tick_time=row.next_tick_time,
        create_time=row.create_time,
        update_time=row.update_time,
        end_time=row.end_time,
    )


def experiment_pk(repo: Repository, experiment_id: str) -> int:
    """The surrogate key of an experiment.

    Raises:
        NotFound: the experiment does not exist (NOT_FOUND).
    """
    found = repo.session.execute(
        select(_E.c.pk).where(_E.c.experiment_id == experiment_id)
    ).scalar()
    if found is None:
        name = resources.experiment_name(experiment_id)
        raise NotFound(name, f"experiment {name} does not exist")
    return int(found)


def load(
    repo: Repository, experiment_id: str, *, for_update: bool = False
) -> OrchestrationRecord | None:
    """The experiment's orchestration, or None when it has none.

    Raises:
        NotFound: the experiment does not exist (NOT_FOUND).
    """
    pk = experiment_pk(repo, experiment_id)
    query = select(_O).where(_O.c.experiment_pk == pk)
    if for_update:
        query = query.with_for_update()
    row = repo.session.execute(query).first()
    return None if row is None else _record(row, experiment_id)


def replace(repo: Repository, record: OrchestrationRecord) -> None:
    """Stores `record` as the experiment's orchestration, replacing any other."""
    repo.session.execute(delete(_O).where(_O.c.experiment_pk == record.experiment_pk))
    repo.session.execute(insert(_O).values(**_columns(record)))


def _columns(record: OrchestrationRecord) -> dict[str, Any]:
    return {
        "experiment_pk": record.experiment_pk,
        "uid": record.uid,
        "state": record.state.value,
        "state_message": record.state_message,
        "request_id": record.request_id,
        "options": record.options.to_json(),
        "trial_indices": list(record.trial_indices),
        "progress": record.progress.to_json(),
        "lease_owner": record.lease_owner,
        "lease_expire_time": record.lease_expire_time,
        "next_tick_time": record.next_tick_time,
        "create_time": record.create_time,
        "update_time": record.update_time,
        "end_time": record.end_time,
    }


def due(repo: Repository, owner: str, now: datetime) -> list[str]:
    """Ids of experiments whose RUNNING orchestration this replica may tick now."""
    query = (
        select(_E.c.experiment_id)
        .select_from(_O.join(_E, _E.c.pk == _O.c.experiment_pk))
        .where(
            _O.c.state == State.RUNNING.value,
            or_(_O.c.next_tick_time.is_(None), _O.c.next_tick_time <= now),
            or_(
                _O.c.lease_owner == owner,
                _O.c.lease_owner == "",
                _O.c.lease_expire_time.is_(None),
                _O.c.lease_expire_time < now,
            ),
        )
    )
    return [str(e) for e in repo.session.execute(query).scalars()]


def claim(
    repo: Repository, experiment_id: str, owner: str, now: datetime, lease_s: float
) -> OrchestrationRecord | None:
    """Takes (or renews) the lease of a RUNNING orchestration; None if taken."""
    pk = experiment_pk(repo, experiment_id)
    result = repo.session.execute(
        update(_O)
        .where(
            _O.c.experiment_pk == pk,
            _O.c.state == State.RUNNING.value,
            or_(
                _O.c.lease_owner == owner,
                _O.c.lease_owner == "",
                _O.c.lease_expire_time.is_(None),
                _O.c.lease_expire_time < now,
            ),
        )
        .values(lease_owner=owner, lease_expire_time=now + timedelta(seconds=lease_s))
    )
    if cast(CursorResult[Any], result).rowcount != 1:
        return None
    return load(repo, experiment_id)


def _held(record: OrchestrationRecord, owner: str) -> Any:
    """The WHERE clause of a write made under the lease."""
    return (
        (_O.c.experiment_pk == record.experiment_pk)
        & (_O.c.uid == record.uid)
        & (_O.c.lease_owner == owner)
        & (_O.c.state == State.RUNNING.value)
    )


def save(
    repo: Repository,
    record: OrchestrationRecord,
    owner: str,
    *,
    lease_expire_time: datetime,
) -> bool:
    """Writes the driver's copy of `record` if it still holds the lease.

    Returns:
        False, writing nothing, when the lease was lost or the orchestration
        was stopped or replaced meanwhile.
    """
    values = _columns(record)
    for key in ("experiment_pk", "uid", "create_time", "request_id", "options"):
        values.pop(key)
    values["lease_owner"] = owner if record.state is State.RUNNING else ""
    values["lease_expire_time"] = lease_expire_time
    result = repo.session.execute(update(_O).where(_held(record, owner)).values(values))
    return cast(CursorResult[Any], result).rowcount == 1


def holds(repo: Repository, record: OrchestrationRecord, owner: str) -> bool:
    """Whether `owner` still drives `record`; locks the row while it does."""
    query = select(_O.c.uid).where(_held(record, owner)).with_for_update()
    return repo.session.execute(query).first() is not None


def release(repo: Repository, owner: str) -> int:
    """Gives up every lease `owner` holds (a replica stopping); returns how many."""
    result = repo.session.execute(
        update(_O)
        .where(_O.c.lease_owner == owner)
        .values(lease_owner="", lease_expire_time=None)
    )
    return int(cast(CursorResult[Any], result).rowcount)


def trial_statuses(
    repo: Repository, pk: int, indices: list[int]
) -> dict[int, TrialStatus]:
    """The status of each of the given trials of the experiment with key `pk`."""
    if not indices:
        return {}
    query = select(_T.c.trial_index, _T.c.status).where(
        _T.c.experiment_pk == pk, _T.c.trial_index.in_(indices)
    )
    return {
        int(index): TrialStatus(status)
        for index, status in repo.session.execute(query).all()
    }


def end_trial_if_held(
    repo: Repository,
    record: OrchestrationRecord,
    owner: str,
    trial_index: int,
    target: TrialStatus,
    reason: str,
    now: datetime,
) -> TrialRecord | None:
    """Moves one of the orchestration's trials to `target` under the lease.

    Returns:
        The trial as changed, or None when the lease was lost or the trial
        had already reached a final status (someone else ended it first).
    """
    if not holds(repo, record, owner):
        return None
    trial = repo.get_trial(record.experiment_id, trial_index, for_update=True)
    if trial.status in lifecycle.FINAL:
        return None
    lifecycle.apply_transition(
        trial, target, now=now, reason=lifecycle.clip_reason(reason)
    )
    repo.save_trial_state(trial)
    return trial
