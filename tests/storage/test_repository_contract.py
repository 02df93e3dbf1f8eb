"""The storage contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from polytrial.server.errors import AlreadyExists, NotFound
from polytrial.server.storage import (
    ArmRecord,
    Database,
    ExperimentRecord,
    ObservationRecord,
    Repository,
    TrialRecord,
    TrialStatus,
)

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


def _experiment(experiment_id: str = "exp") -> ExperimentRecord:
    return ExperimentRecord(
        experiment_id=experiment_id,
        config=b"\x00\x01config",
        description="d",
        properties={"owner": "ana", "n": 3},
        create_time=NOW,
        update_time=NOW,
    )


def _trial(index: int, experiment_id: str = "exp", **kw: object) -> TrialRecord:
    arms = [
        ArmRecord(
            name=f"{index}_0",
            parameters={"x": 0.25, "n": 3, "c": "red", "b": True},
            key=f"key-{index}",
        )
    ]
    fields: dict[str, object] = {
        "experiment_id": experiment_id,
        "index": index,
        "status": TrialStatus.RUNNING,
        "arms": arms,
        "create_time": NOW,
        "run_time": NOW,
    }
    fields.update(kw)
    return TrialRecord(**fields)  # type: ignore[arg-type]


def _add(db: Database, *trials: TrialRecord) -> None:
    def work(repo: Repository) -> None:
        for trial in trials:
            repo.add_trial(trial)

    db.run(work)


def test_experiment_round_trips_with_config_properties_and_aware_times(
    db: Database,
) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    got = db.run(lambda repo: repo.get_experiment("exp"), write=False)
    assert got.config == b"\x00\x01config"
    assert got.properties == {"owner": "ana", "n": 3}
    assert got.create_time == NOW
    assert got.create_time is not None and got.create_time.tzinfo is not None
    assert got.next_trial_index == 0


def test_duplicate_experiment_id_is_already_exists_and_keeps_the_first(
    db: Database,
) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    second = _experiment()
    second.description = "second"
    with pytest.raises(AlreadyExists) as caught:
        db.run(lambda repo: repo.add_experiment(second))
    assert caught.value.__cause__ is not None
    got = db.run(lambda repo: repo.get_experiment("exp"))
    assert got.description == "d"


def test_missing_experiment_and_trial_are_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="experiments/nope"):
        db.run(lambda repo: repo.get_experiment("nope"))
    db.run(lambda repo: repo.add_experiment(_experiment()))
    with pytest.raises(NotFound, match="trial 7"):
        db.run(lambda repo: repo.get_trial("exp", 7))


def test_trial_round_trips_typed_parameters_and_observations(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    trial = _trial(
        0,
        observations=[
            ObservationRecord("0_0", "loss", 1.5, None, None),
            ObservationRecord("0_0", "loss", 2.5, 0.0, 3),
        ],
        generation_details={"sobol_draws": 1},
        generator="sobol",
    )
    _add(db, trial)
    got = db.run(lambda repo: repo.get_trial("exp", 0))
    params = got.arms[0].parameters
    assert params == {"x": 0.25, "n": 3, "c": "red", "b": True}
    assert type(params["n"]) is int and type(params["b"]) is bool
    assert type(params["x"]) is float
    assert got.observations == trial.observations
    assert got.observations[0].sem is None  # unknown stays unknown, not 0
    assert got.generation_details == {"sobol_draws": 1}
    assert got.status is TrialStatus.RUNNING


def test_allocated_indices_are_dense_and_a_rollback_gives_them_back(
    db: Database,
) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    assert db.run(lambda repo: repo.allocate_trial_indices("exp", 2)) == 0

    def allocate_then_fail(repo: Repository) -> None:
        repo.allocate_trial_indices("exp", 5)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        db.run(allocate_then_fail)
    assert db.run(lambda repo: repo.allocate_trial_indices("exp", 1)) == 2


def test_concurrent_allocations_never_share_an_index(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            index = db.run(lambda repo: repo.allocate_trial_indices("exp", 1))
            with lock:
                got.append(index)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(got) == list(range(20))


def test_a_failed_unit_of_work_stores_nothing(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))

    def add_then_fail(repo: Repository) -> None:
        repo.add_trial(_trial(0))
        raise ValueError("refused after the write")

    with pytest.raises(ValueError):
        db.run(add_then_fail)
    assert db.run(lambda repo: repo.list_trials("exp")) == []


def test_list_trials_filters_by_status_and_pages_by_index(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    _add(
        db,
        *[
            _trial(i, status=TrialStatus.COMPLETED if i % 2 else TrialStatus.RUNNING)
            for i in range(5)
        ],
    )
    completed = db.run(
        lambda repo: repo.list_trials("exp", statuses=[TrialStatus.COMPLETED])
    )
    assert [t.index for t in completed] == [1, 3]
    page = db.run(lambda repo: repo.list_trials("exp", after_index=1, limit=2))
    assert [t.index for t in page] == [2, 3]


def test_saved_trial_state_and_expiry(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    past = NOW - timedelta(seconds=10)
    _add(db, _trial(0, ttl_s=5.0, expire_time=past), _trial(1, ttl_s=0.0))
    assert db.run(lambda repo: repo.find_expired_trials("exp", now=NOW)) == [0]
    assert db.run(lambda repo: repo.fail_expired_trials("exp", now=NOW)) == [0]
    lost = db.run(lambda repo: repo.get_trial("exp", 0))
    assert lost.status is TrialStatus.FAILED
    assert lost.status_reason.startswith("lost")
    assert db.run(lambda repo: repo.fail_expired_trials("exp", now=NOW)) == []

    kept = db.run(lambda repo: repo.get_trial("exp", 1))
    kept.status = TrialStatus.COMPLETED
    kept.end_time = NOW
    db.run(lambda repo: repo.save_trial_state(kept))
    again = db.run(lambda repo: repo.get_trial("exp", 1))
    assert again.status is TrialStatus.COMPLETED and again.end_time == NOW


def test_deleting_an_experiment_removes_its_trials_and_a_new_one_starts_at_zero(
    db: Database,
) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    db.run(lambda repo: repo.allocate_trial_indices("exp", 1))
    _add(db, _trial(0, observations=[ObservationRecord("0_0", "loss", 1.0)]))
    db.run(lambda repo: repo.record_request("exp", "m", "r1", [0], now=NOW))
    db.run(lambda repo: repo.delete_experiment("exp"))
    with pytest.raises(NotFound):
        db.run(lambda repo: repo.get_experiment("exp"))
    with pytest.raises(NotFound):
        db.run(lambda repo: repo.delete_experiment("exp"))

    db.run(lambda repo: repo.add_experiment(_experiment()))
    assert db.run(lambda repo: repo.list_trials("exp")) == []
    assert db.run(lambda repo: repo.find_request("exp", "m", "r1")) is None
    assert db.run(lambda repo: repo.allocate_trial_indices("exp", 1)) == 0


def test_request_ids_are_remembered_once(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    assert db.run(lambda repo: repo.find_request("exp", "m", "r1")) is None
    db.run(lambda repo: repo.record_request("exp", "m", "r1", [4, 5], now=NOW))
    assert db.run(lambda repo: repo.find_request("exp", "m", "r1")) == [4, 5]
    with pytest.raises(AlreadyExists):
        db.run(lambda repo: repo.record_request("exp", "m", "r1", [6], now=NOW))


def test_experiments_list_in_creation_order_with_a_cursor_and_trial_counts(
    db: Database,
) -> None:
    for name in ("b", "a", "c"):
        db.run(lambda repo, name=name: repo.add_experiment(_experiment(name)))
    _add(db, _trial(0, experiment_id="a"), _trial(1, experiment_id="a"))
    first = db.run(lambda repo: repo.list_experiments(after_seq=0, limit=2))
    assert [e.experiment_id for e in first] == ["b", "a"]
    assert first[1].trial_counts == {"RUNNING": 2}
    rest = db.run(lambda repo: repo.list_experiments(after_seq=first[-1].seq, limit=2))
    assert [e.experiment_id for e in rest] == ["c"]


def test_update_changes_only_the_given_fields(db: Database) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    later = NOW + timedelta(hours=1)
    db.run(lambda repo: repo.update_experiment("exp", now=later, description="new"))
    got = db.run(lambda repo: repo.get_experiment("exp"))
    assert got.description == "new"
    assert got.properties == {"owner": "ana", "n": 3}
    assert got.update_time == later


def test_committed_data_is_seen_by_a_new_database_object(
    db: Database, db_url: str
) -> None:
    db.run(lambda repo: repo.add_experiment(_experiment()))
    _add(db, _trial(0))
    other = Database(db_url)
    try:
        assert other.run(lambda repo: repo.get_trial("exp", 0)).index == 0
    finally:
        other.dispose()
