"""Lost clients: time-to-live, heartbeats, the periodic sweep, late completions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from polytrial.server.app import PolytrialServer, create_server
from polytrial.server.service import sweep_lost_trials
from polytrial.server.storage import LOST_REASON, Database, TrialRecord, TrialStatus
from polytrial.v1 import trial_pb2
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, connect, error_info, experiment, rpc_error

pytestmark = pytest.mark.timeout(120)

S = trial_pb2.TrialStatus
WAIT_S = 30.0


@pytest.fixture
def served(db_url: str) -> Iterator[Callable[[float], tuple[PolytrialServer, Api]]]:
    """Starts servers with a chosen sweep interval (0: no periodic sweep)."""
    started: list[tuple[PolytrialServer, Api]] = []

    def start(sweep_interval_s: float) -> tuple[PolytrialServer, Api]:
        server, port = create_server(
            db_url, max_workers=4, sweep_interval_s=sweep_interval_s
        )
        server.start()
        started.append((server, connect(port)))
        return started[-1]

    yield start
    for server, api in started:
        api.close()
        server.stop(grace_s=1.0)


def _stored(db: Database, experiment_id: str, index: int) -> TrialRecord:
    """The trial as stored, read without the read path's own lost-trial check."""
    return db.run(lambda repo: repo.get_trial(experiment_id, index), write=False)


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_trial_without_heartbeat_is_failed_as_lost_by_the_periodic_sweep(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    server, api = served(0.1)
    api.create(experiment("ttl"))
    (trial,) = api.suggest("ttl", ttl_s=0.3)
    assert trial.status == S.TRIAL_STATUS_RUNNING and trial.HasField("expire_time")

    _wait_for(lambda: _stored(server.db, "ttl", 0).status is TrialStatus.FAILED)

    stored = _stored(server.db, "ttl", 0)
    assert stored.status_reason == LOST_REASON
    counts = dict(api.get_experiment("ttl").trial_counts)
    assert counts.get("RUNNING", 0) == 0
    assert counts["FAILED"] == 1


def test_heartbeats_keep_a_trial_running_and_it_is_lost_once_they_stop(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    server, api = served(0.1)
    api.create(experiment("beat"))
    (trial,) = api.suggest("beat", ttl_s=2.0)

    # Heartbeats well inside the time-to-live, for longer than it lasts.
    for _ in range(15):
        time.sleep(0.2)
        renewed = api.trials.HeartbeatTrial(
            ts.HeartbeatTrialRequest(name=trial.name), timeout=30
        )
        assert renewed.status == S.TRIAL_STATUS_RUNNING
    assert _stored(server.db, "beat", 0).status is TrialStatus.RUNNING

    _wait_for(lambda: _stored(server.db, "beat", 0).status is TrialStatus.FAILED)
    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.trials.HeartbeatTrial(
            ts.HeartbeatTrialRequest(name=trial.name), timeout=30
        ),
    )
    assert error_info(error).reason == "TRIAL_LOST"


def test_late_completion_of_a_lost_trial_is_failed_precondition_and_stores_nothing(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    # No periodic sweep: the completion itself finds the trial lost.
    server, api = served(0)
    api.create(experiment("late"))
    (trial,) = api.suggest("late", ttl_s=0.2)
    _wait_for(
        lambda: (
            datetime.now(UTC)
            > trial.expire_time.ToDatetime(tzinfo=UTC) + timedelta(seconds=0.05)
        )
    )
    assert _stored(server.db, "late", 0).status is TrialStatus.RUNNING

    error = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.complete(trial, {"loss": 1.0}, request_id="late-1"),
    )

    assert error_info(error).reason == "TRIAL_LOST"
    assert "lost" in error.details()
    stored = _stored(server.db, "late", 0)
    assert stored.status is TrialStatus.FAILED  # the loss itself was committed
    assert stored.observations == []
    # A retry of the same completion is refused the same way.
    again = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: api.complete(trial, {"loss": 1.0}, request_id="late-1"),
    )
    assert error_info(again).reason == "TRIAL_LOST"


def test_lost_trial_stops_counting_as_pending_for_the_next_suggestion(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    _server, api = served(0)
    api.create(experiment("pending"))
    (lost,) = api.suggest("pending", ttl_s=0.2)
    (kept,) = api.suggest("pending")
    time.sleep(0.4)

    api.suggest("pending")

    trials = {t.index: t for t in api.all_trials("pending")}
    assert trials[lost.index].status == S.TRIAL_STATUS_FAILED
    assert trials[lost.index].status_reason == LOST_REASON
    assert trials[kept.index].status == S.TRIAL_STATUS_RUNNING


def test_concurrent_sweeps_fail_each_lost_trial_exactly_once(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    server, api = served(0)
    api.create(experiment("swept"))
    # The live trial comes first: a suggest after the short-lived ones would
    # fail them itself on a slow machine (writes check for lost trials too),
    # leaving the sweeps nothing to find.
    (alive,) = api.suggest("swept", ttl_s=600)
    api.suggest("swept", 20, ttl_s=0.5)
    time.sleep(1.0)
    failed: list[tuple[str, int]] = []
    lock = threading.Lock()

    def sweep() -> None:
        found = sweep_lost_trials(server.db)
        with lock:
            failed.extend(found)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(failed) == [("swept", i) for i in range(1, 21)]
    assert _stored(server.db, "swept", alive.index).status is TrialStatus.RUNNING


def test_attached_and_marked_running_trials_with_a_ttl_are_lost_too(
    served: Callable[[float], tuple[PolytrialServer, Api]],
) -> None:
    server, api = served(0.1)
    api.create(experiment("attached"))
    attached = api.attach("attached", {"x1": 0.1, "x2": 0.2}, ttl_s=0.3)
    api.create(experiment("deployed", runner="127.0.0.1:1"))
    (candidate,) = api.suggest("deployed")
    assert candidate.status == S.TRIAL_STATUS_CANDIDATE
    running = api.trials.MarkTrialRunning(
        ts.MarkTrialRunningRequest(name=candidate.name, ttl_s=0.3), timeout=30
    )
    assert running.status == S.TRIAL_STATUS_RUNNING

    for experiment_id, index in (("attached", attached.index), ("deployed", 0)):
        _wait_for(
            lambda e=experiment_id, i=index: (
                _stored(server.db, e, i).status is TrialStatus.FAILED
            )
        )
        assert _stored(server.db, experiment_id, index).status_reason == LOST_REASON
