"""Experiments, trials, arms and observations.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.String(63), nullable=False, unique=True),
        sa.Column("config", sa.LargeBinary(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.Column("next_trial_index", sa.BigInteger(), nullable=False),
        sa.Column("sobol_draws", sa.BigInteger(), nullable=False),
        sa.Column("trials_generated", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "trials",
        sa.Column(
            "experiment_pk",
            sa.Integer(),
            sa.ForeignKey("experiments.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("trial_index", sa.BigInteger(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_batch", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("stage_time", sa.DateTime(), nullable=True),
        sa.Column("run_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("deployed_name", sa.Text(), nullable=False),
        sa.Column("run_metadata", sa.JSON(), nullable=False),
        sa.Column("generator", sa.String(64), nullable=False),
        sa.Column("num_observations", sa.BigInteger(), nullable=False),
        sa.Column("generation_details", sa.JSON(), nullable=False),
        sa.Column("runner", sa.LargeBinary(), nullable=True),
        sa.Column("deployment_error", sa.Text(), nullable=False),
        sa.Column("missing_metrics", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_trials_experiment_status", "trials", ["experiment_pk", "status"]
    )
    op.create_table(
        "arms",
        sa.Column("experiment_pk", sa.Integer(), primary_key=True),
        sa.Column("trial_index", sa.BigInteger(), primary_key=True),
        sa.Column("arm_index", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("arm_key", sa.Text(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_pk", "trial_index"],
            ["trials.experiment_pk", "trials.trial_index"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_arms_experiment_key", "arms", ["experiment_pk", "arm_key"])
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("experiment_pk", sa.Integer(), nullable=False),
        sa.Column("trial_index", sa.BigInteger(), nullable=False),
        sa.Column("arm_name", sa.String(64), nullable=False),
        sa.Column("metric_name", sa.String(255), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("sem", sa.Double(), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_pk", "trial_index"],
            ["trials.experiment_pk", "trials.trial_index"],
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_observations_trial", "observations", ["experiment_pk", "trial_index"]
    )


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("arms")
    op.drop_table("trials")
    op.drop_table("experiments")
