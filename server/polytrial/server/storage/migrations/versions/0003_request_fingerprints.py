"""Request fingerprints, and an index for the server-wide sweep of lost trials.

A request id reused for a different request must be refused, so each stored
request keeps a digest of what was asked. Rows written before this revision
get an empty fingerprint, which matches any repeat.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(
            sa.Column("fingerprint", sa.String(64), nullable=False, server_default="")
        )
    # The periodic sweep looks for RUNNING trials past their expiry across
    # every experiment; without this index it would scan all trials.
    op.create_index("ix_trials_status_expire", "trials", ["status", "expire_time"])


def downgrade() -> None:
    op.drop_index("ix_trials_status_expire", table_name="trials")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("fingerprint")
