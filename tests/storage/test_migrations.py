"""Alembic migrations: a database made by an older revision upgrades in place."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from polytrial.server.storage import Database, TrialStatus
from polytrial.server.storage.database import MIGRATIONS
from sqlalchemy import inspect, text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _revision(db: Database) -> str:
    with db.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar_one()
        )


def test_database_at_revision_0001_upgrades_and_keeps_its_data(db: Database) -> None:
    db.migrate_to("0001")
    assert "requests" not in inspect(db.engine).get_table_names()
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (experiment_id, config, description, "
                "properties, create_time, update_time, next_trial_index, "
                "sobol_draws, trials_generated) VALUES ('old', :config, '', '{}', "
                ":now, :now, 1, 1, 1)"
            ),
            {"config": b"cfg", "now": "2025-01-01 00:00:00"},
        )
        pk = connection.execute(text("SELECT pk FROM experiments")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO trials (experiment_pk, trial_index, status, is_batch, "
                "create_time, status_reason, deployed_name, run_metadata, generator, "
                "num_observations, generation_details, deployment_error, "
                "missing_metrics) VALUES (:pk, 0, 'RUNNING', false, :now, '', '', "
                "'{}', 'sobol', 0, '{}', '', '[]')"
            ),
            {"pk": pk, "now": "2025-01-01 00:00:00"},
        )

    db.migrate()

    assert _revision(db) == _head() != "0001"
    trial = db.run(lambda repo: repo.get_trial("old", 0))
    assert trial.status is TrialStatus.RUNNING
    assert trial.ttl_s == 0.0 and trial.expire_time is None
    assert db.run(lambda repo: repo.allocate_trial_indices("old", 1)) == 1
    assert db.run(lambda repo: repo.find_request("old", "m", "r")) is None


def test_migrating_twice_is_a_no_op(db: Database) -> None:
    db.migrate()
    db.migrate()
    assert _revision(db) == _head()
    tables = set(inspect(db.engine).get_table_names())
    assert {"experiments", "trials", "arms", "observations", "requests"} <= tables
