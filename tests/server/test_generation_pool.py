"""Model fits run in the server's bounded generation pool, off the RPC threads.

Real servers with one generation slot: two Bayesian suggests on different
experiments both succeed without their fits overlapping, reads answer while a
suggest waits for the model, and a suggest whose deadline passes while it
waits stores nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from polytrial.server.app import PolytrialServer, create_server
from polytrial.server.errors import Unavailable
from polytrial.server.service import GenerationPool
from polytrial.v1 import experiment_pb2 as epb
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, connect, experiment, py_values, rpc_error

pytestmark = [pytest.mark.bo, pytest.mark.timeout(180)]

INITIAL_TRIALS = 2


def _serve_one_slot(url: str) -> Iterator[tuple[PolytrialServer, Api]]:
    pytest.importorskip("botorch")
    server, port = create_server(
        url, "127.0.0.1:0", max_workers=8, max_concurrent_generations=1
    )
    server.start()
    api = connect(port)
    try:
        yield server, api
    finally:
        api.close()
        server.stop(grace_s=1.0)


@pytest.fixture
def one_slot(db_url: str) -> Iterator[tuple[PolytrialServer, Api]]:
    """A server on each database whose pool runs one generation at a time."""
    yield from _serve_one_slot(db_url)


@pytest.fixture
def one_slot_postgres(postgres_url: str) -> Iterator[tuple[PolytrialServer, Api]]:
    """The same on PostgreSQL, where suggests on two experiments can overlap.

    (Suggests that block each other in the database would pass this test for
    the wrong reason; PostgreSQL's row locks never do.)
    """
    yield from _serve_one_slot(postgres_url)


def _ready_for_the_model(api: Api, experiment_id: str) -> None:
    """A 2-parameter experiment whose next suggest fits a model."""
    message = experiment(experiment_id, kind=epb.GENERATOR_KIND_BAYESIAN)
    message.generation_strategy.num_initial_trials = INITIAL_TRIALS
    api.create(message)
    for trial in api.suggest(experiment_id, INITIAL_TRIALS):
        x = py_values(trial.arms[0].arm.parameters)
        api.complete(trial, {"loss": (x["x1"] - 0.3) ** 2 + x["x2"]})


def _suggest_async(api: Api, experiment_id: str, timeout_s: float = 120.0) -> Any:
    """A SuggestTrials call in flight (a `grpc.Future`)."""
    return api.trials.SuggestTrials.future(
        ts.SuggestTrialsRequest(parent=f"experiments/{experiment_id}", count=1),
        timeout=timeout_s,
    )


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def _hold_the_slot(server: PolytrialServer) -> tuple[threading.Event, threading.Thread]:
    """Occupies the server's only generation slot until the event is set."""
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(timeout=120)

    holder = threading.Thread(
        target=server.generations.run, args=(hold,), kwargs={"what": "test holder"}
    )
    holder.start()
    assert holding.wait(timeout=30)
    return release, holder


def test_bayesian_suggests_on_two_experiments_share_one_slot_without_overlap(
    one_slot_postgres: tuple[PolytrialServer, Api],
) -> None:
    _server, api = one_slot_postgres
    _ready_for_the_model(api, "first")
    _ready_for_the_model(api, "second")

    calls = [_suggest_async(api, "first"), _suggest_async(api, "second")]
    records = [call.result().trials[0].generation for call in calls]

    assert [r.generator for r in records] == ["botorch", "botorch"]
    spans = sorted(
        (r.details["generation_start_unix_s"], r.details["generation_end_unix_s"])
        for r in records
    )
    assert spans[0][1] <= spans[1][0], f"generations overlapped: {spans}"
    assert all(r.details["queue_wait_s"] >= 0 for r in records)


def test_get_experiment_answers_while_a_bayesian_suggest_waits_for_the_model(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    _ready_for_the_model(api, "busy")
    release, holder = _hold_the_slot(server)

    try:
        suggest = _suggest_async(api, "busy")
        _eventually(lambda: server.generations.waiting == 1, "the suggest queued")
        read = api.get_experiment("busy")
        assert not suggest.done()
    finally:
        release.set()
        holder.join(timeout=30)

    (trial,) = suggest.result().trials
    assert read.experiment_id == "busy"
    assert trial.generation.generator == "botorch"
    assert trial.generation.details["queue_wait_s"] > 0


def test_bayesian_suggest_whose_deadline_passes_in_the_queue_stores_nothing(
    one_slot: tuple[PolytrialServer, Api], caplog: pytest.LogCaptureFixture
) -> None:
    server, api = one_slot
    _ready_for_the_model(api, "late")
    before = [t.index for t in api.all_trials("late")]
    caplog.set_level(logging.INFO, logger="polytrial.server.service.generation")
    release, holder = _hold_the_slot(server)

    try:
        rpc_error(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            lambda: _suggest_async(api, "late", timeout_s=1.0).result(),
        )
        # The server gave up too, while the slot was still taken.
        _eventually(
            lambda: any(
                "deadline passed while it was queued" in r.getMessage()
                for r in caplog.records
            ),
            "the server dropped the queued generation",
        )
        assert server.generations.waiting == 0
    finally:
        release.set()
        holder.join(timeout=30)

    assert [t.index for t in api.all_trials("late")] == before
    # The experiment is free again and the next suggest takes the next index.
    (trial,) = api.suggest("late")
    assert trial.index == len(before)
    assert trial.status == tpb.TRIAL_STATUS_RUNNING


def test_bayesian_suggest_without_a_deadline_waits_as_long_as_it_takes(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    _server, api = one_slot
    _ready_for_the_model(api, "patient")

    response = api.trials.SuggestTrials(
        ts.SuggestTrialsRequest(parent="experiments/patient", count=1)
    )

    assert response.trials[0].generation.generator == "botorch"


def test_sobol_suggests_do_not_wait_for_a_busy_generation_pool(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    api.create(experiment("quick"))
    release, holder = _hold_the_slot(server)

    try:
        with futures.ThreadPoolExecutor(1) as pool:
            trials = pool.submit(api.suggest, "quick", 2).result(timeout=60)
    finally:
        release.set()
        holder.join(timeout=30)

    assert [t.generation.generator for t in trials] == ["sobol", "sobol"]
    assert all("queue_wait_s" not in t.generation.details for t in trials)


def test_a_long_wait_for_a_slot_is_a_warning_and_a_short_one_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="polytrial.server.service.generation")
    pool = GenerationPool(1, slow_wait_s=0.05)
    release = threading.Event()
    running = threading.Event()

    def hold() -> None:
        running.set()
        release.wait(timeout=60)

    try:
        with futures.ThreadPoolExecutor(2) as callers:
            callers.submit(pool.run, hold, what="first job")
            assert running.wait(timeout=30)
            second = callers.submit(pool.run, lambda: "done", what="second job")
            _eventually(lambda: pool.waiting == 1, "second queued")
            time.sleep(0.2)  # longer than slow_wait_s, so the wait is slow
            release.set()
            result, waited_s = second.result(timeout=30)
    finally:
        release.set()
        pool.shutdown()

    assert result == "done"
    assert waited_s > 0.05
    levels = {
        r.getMessage().split(" waited")[0]: r.levelname
        for r in caplog.records
        if " waited " in r.getMessage()
    }
    assert levels == {"first job": "DEBUG", "second job": "WARNING"}


def test_a_stopped_pool_refuses_new_generations_as_unavailable() -> None:
    pool = GenerationPool(1)
    pool.shutdown()

    with pytest.raises(Unavailable, match="shutting down"):
        pool.run(lambda: None, what="late job")


def test_heartbeat_runs_while_waiting_and_its_error_ends_the_wait() -> None:
    pool = GenerationPool(1)
    release = threading.Event()
    beats: list[float] = []

    def slow() -> str:
        release.wait(timeout=60)
        return "done"

    def beat() -> None:
        beats.append(time.monotonic())
        if len(beats) == 3:
            release.set()

    class LeaseLost(Exception):
        pass

    def failing_beat() -> None:
        raise LeaseLost("the lease went to another suggestion")

    try:
        result, _ = pool.run(
            slow, what="beating", heartbeat=beat, heartbeat_every_s=0.02
        )
        release.clear()
        with pytest.raises(LeaseLost):
            pool.run(slow, what="lost", heartbeat=failing_beat, heartbeat_every_s=0.02)
    finally:
        release.set()
        pool.shutdown()

    assert result == "done"
    assert len(beats) >= 3
