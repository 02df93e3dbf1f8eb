"""SQLAlchemy ORM rows: the tables of one Polytrial database.

    experiments (pk, experiment_id unique, counters, config bytes)
    └── trials (experiment_pk, trial_index)           cascade on delete
        ├── arms (experiment_pk, trial_index, arm_index)
        └── observations (id; experiment_pk, trial_index, arm, metric, step)
    requests (experiment_pk, method, request_id)      idempotency keys

Children point at the experiment's surrogate `pk`, so an experiment deleted
and created again under the same id never sees the old trials. The schema is
created and changed only by the Alembic revisions in `migrations/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back as aware UTC.

    SQLite keeps no time zone, so every value is normalized on the way in and
    tagged on the way out; both backends then compare timestamps the same way.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Converts an aware datetime to naive UTC for storage."""
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Tags a stored naive UTC datetime as UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every Polytrial row."""


class ExperimentRow(Base):
    """One experiment with its generation counters."""

    __tablename__ = "experiments"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(String(63), unique=True)
    config: Mapped[bytes] = mapped_column(LargeBinary)
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)
    next_trial_index: Mapped[int] = mapped_column(BigInteger, default=0)
    sobol_draws: Mapped[int] = mapped_column(BigInteger, default=0)
    trials_generated: Mapped[int] = mapped_column(BigInteger, default=0)
    # Who may generate arms right now, and until when (see service.trials).
    generation_lease: Mapped[str] = mapped_column(String(64), default="")
    generation_lease_expire_time: Mapped[datetime | None] = mapped_column(
        UtcDateTime, nullable=True
    )


class TrialRow(Base):
    """One trial; `status` holds a `TrialStatus` name."""

    __tablename__ = "trials"
    __table_args__ = (
        Index("ix_trials_experiment_status", "experiment_pk", "status"),
        Index("ix_trials_status_expire", "status", "expire_time"),
    )

    experiment_pk: Mapped[int] = mapped_column(
        ForeignKey("experiments.pk", ondelete="CASCADE"), primary_key=True
    )
    trial_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    is_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    stage_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    run_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    deployed_name: Mapped[str] = mapped_column(Text, default="")
    run_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generator: Mapped[str] = mapped_column(String(64), default="")
    num_observations: Mapped[int] = mapped_column(BigInteger, default=0)
    generation_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    runner: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    deployment_error: Mapped[str] = mapped_column(Text, default="")
    missing_metrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    ttl_s: Mapped[float] = mapped_column(Double, default=0.0)
    expire_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ArmRow(Base):
    """One arm of a trial; `arm_key` is the canonical parameterization key."""

    __tablename__ = "arms"
    __table_args__ = (
        ForeignKeyConstraint(
            ["experiment_pk", "trial_index"],
            ["trials.experiment_pk", "trials.trial_index"],
            ondelete="CASCADE",
        ),
        Index("ix_arms_experiment_key", "experiment_pk", "arm_key"),
    )

    experiment_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    arm_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    arm_key: Mapped[str] = mapped_column(Text)
    weight: Mapped[float] = mapped_column(Double, default=1.0)


class ObservationRow(Base):
    """One observed mean (and standard error) of one metric of one arm."""

    __tablename__ = "observations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["experiment_pk", "trial_index"],
            ["trials.experiment_pk", "trials.trial_index"],
            ondelete="CASCADE",
        ),
        Index("ix_observations_trial", "experiment_pk", "trial_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_pk: Mapped[int] = mapped_column(Integer)
    trial_index: Mapped[int] = mapped_column(BigInteger)
    arm_name: Mapped[str] = mapped_column(String(64))
    metric_name: Mapped[str] = mapped_column(String(255))
    mean: Mapped[float] = mapped_column(Double)
    sem: Mapped[float | None] = mapped_column(Double, nullable=True)
    step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)


class RequestRow(Base):
    """A mutation's idempotency key and the trials it produced or changed."""

    __tablename__ = "requests"

    experiment_pk: Mapped[int] = mapped_column(
        ForeignKey("experiments.pk", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    trial_indices: Mapped[list[int]] = mapped_column(JSON)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    # Digest of what was asked; a reused id with another digest is refused.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
