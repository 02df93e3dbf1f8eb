"""Orchestrations: one per experiment, with the lease of the replica driving it.

The orchestrator (`polytrial.server.orchestration`) keeps an experiment's
trials going through its runner until a budget is used. Its state lives here
so that it survives a restart, and its lease (owner and expiry) lets exactly
one replica drive it at a time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orchestrations",
        sa.Column(
            "experiment_pk",
            sa.Integer,
            sa.ForeignKey("experiments.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text, nullable=False, server_default=""),
        sa.Column("request_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("trial_indices", sa.JSON, nullable=False),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("lease_expire_time", sa.DateTime(), nullable=True),
        sa.Column("next_tick_time", sa.DateTime(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
    )
    # Every replica looks for due RUNNING orchestrations a few times a second.
    op.create_index("ix_orchestrations_state", "orchestrations", ["state"])


def downgrade() -> None:
    op.drop_index("ix_orchestrations_state", table_name="orchestrations")
    op.drop_table("orchestrations")
