"""A generation lease on each experiment, so model fits run outside transactions.

Suggestions on one experiment must be serialized, across server replicas too,
so that each sees the arms of the one before it as pending. Holding the
experiment's row lock through a model fit did that, but kept a transaction
open for seconds (on SQLite, the one write lock of the whole file). The lease
is a token and an expiry on the experiment row: taken and released in short
transactions, renewed while the fit runs, and free again once it expires
after a crash.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column(
                "generation_lease", sa.String(64), nullable=False, server_default=""
            )
        )
        batch.add_column(
            sa.Column("generation_lease_expire_time", sa.DateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("generation_lease_expire_time")
        batch.drop_column("generation_lease")
