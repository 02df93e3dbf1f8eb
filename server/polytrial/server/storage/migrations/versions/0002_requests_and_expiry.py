"""Idempotency keys, and time-to-live of trials evaluated by clients.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column(
            "experiment_pk",
            sa.Integer(),
            sa.ForeignKey("experiments.pk", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("method", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(255), primary_key=True),
        sa.Column("trial_indices", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
    )
    # Existing trials never expire: ttl 0 and no expiry time.
    with op.batch_alter_table("trials") as batch:
        batch.add_column(
            sa.Column("ttl_s", sa.Double(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("expire_time", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("expire_time")
        batch.drop_column("ttl_s")
    op.drop_table("requests")
