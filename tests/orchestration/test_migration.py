"""Revision 0005: a database at 0004 gains the orchestrations table in place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from polytrial.server.orchestration import Options, State, store
from polytrial.server.orchestration.store import OrchestrationRecord
from polytrial.server.storage import Database, Repository
from polytrial.server.storage.database import MIGRATIONS
from sqlalchemy import inspect, text

pytestmark = pytest.mark.timeout(120)


def _downgrade(db: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def test_database_at_0004_upgrades_and_stores_an_orchestration_for_an_old_experiment(
    db: Database,
) -> None:
    db.migrate_to("0004")
    assert "orchestrations" not in inspect(db.engine).get_table_names()
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (experiment_id, config, description, "
                "properties, create_time, update_time, next_trial_index, "
                "sobol_draws, trials_generated) VALUES ('old', :config, '', '{}', "
                ":now, :now, 0, 0, 0)"
            ),
            {"config": b"cfg", "now": "2025-01-01 00:00:00"},
        )

    db.migrate()

    now = datetime.now(UTC)

    def add(repo: Repository) -> None:
        store.replace(
            repo,
            OrchestrationRecord(
                experiment_id="old",
                experiment_pk=store.experiment_pk(repo, "old"),
                uid="u-1",
                options=Options(max_trials=3),
                state=State.RUNNING,
                create_time=now,
                update_time=now,
            ),
        )

    db.run(add)
    found = db.run(lambda repo: store.load(repo, "old"), write=False)
    assert found is not None and found.options == Options(max_trials=3)
    assert found.create_time == now

    _downgrade(db, "0004")
    assert "orchestrations" not in inspect(db.engine).get_table_names()
