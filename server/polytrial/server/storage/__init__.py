"""Storage: SQLAlchemy rows, the repository, and the transaction helper.

    Database.run(work)      one short transaction: commit, or roll back and raise
    └── Repository          every query, bound to that transaction
        └── rows.*Row       the tables, created by the Alembic `migrations/`

Works on SQLite (a file, the default) and PostgreSQL (psycopg 3) alike.
"""

from polytrial.server.storage.database import Database, normalize_url
from polytrial.server.storage.records import (
    ArmRecord,
    ExperimentRecord,
    ObservationRecord,
    TrialRecord,
    TrialStatus,
)
from polytrial.server.storage.repository import LOST_REASON, Repository

__all__ = [
    "LOST_REASON",
    "ArmRecord",
    "Database",
    "ExperimentRecord",
    "ObservationRecord",
    "Repository",
    "TrialRecord",
    "TrialStatus",
    "normalize_url",
]
