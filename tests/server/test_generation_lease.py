"""Model fits hold the experiment's generation lease, not a database lock.

While a Bayesian suggest waits for (or runs) its model, the experiment's other
calls and every other experiment's writes go on; a second suggest on the same
experiment waits its turn and sees the first one's arm as pending; a lease
left by a dead server blocks suggestions only until it lapses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from polytrial.server.app import PolytrialServer
from polytrial.server.storage import Repository
from polytrial.v1 import trial_pb2 as tpb
from polytrial_testkit import Api, experiment, py_values, rpc_error
from test_generation_pool import (
    _eventually,
    _hold_the_slot,
    _ready_for_the_model,
    _serve_one_slot,
    _suggest_async,
)

pytestmark = [pytest.mark.bo, pytest.mark.timeout(180)]


@pytest.fixture
def one_slot(db_url: str) -> Iterator[tuple[PolytrialServer, Api]]:
    """A server on each database whose pool runs one generation at a time."""
    yield from _serve_one_slot(db_url)


def _lease(server: PolytrialServer, experiment_id: str) -> str:
    def read(repo: Repository) -> str:
        return repo.get_experiment(experiment_id, with_counts=False).generation_lease

    return server.db.run(read, write=False)


def _set_lease(
    server: PolytrialServer, experiment_id: str, token: str, expire: datetime
) -> None:
    server.db.run(lambda repo: repo.set_generation_lease(experiment_id, token, expire))


def test_writes_go_on_while_a_bayesian_suggest_waits_for_its_model(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    _ready_for_the_model(api, "busy")
    api.create(experiment("other"))
    release, holder = _hold_the_slot(server)

    try:
        suggest = _suggest_async(api, "busy")
        _eventually(lambda: server.generations.waiting == 1, "the suggest queued")
        assert _lease(server, "busy")
        # On SQLite a suggest used to keep the file's write lock until its
        # model was done: each of these waited for the held slot.
        attached = api.attach("busy", {"x1": 0.5, "x2": 0.5})
        api.complete(attached, {"loss": 0.75})
        (sobol,) = api.suggest("other")
        assert not suggest.done()
    finally:
        release.set()
        holder.join(timeout=30)

    (trial,) = suggest.result().trials
    assert trial.generation.generator == "botorch"
    assert trial.index == attached.index + 1
    assert sobol.generation.generator == "sobol"
    assert _lease(server, "busy") == ""


def test_second_bayesian_suggest_waits_its_turn_and_sees_the_first_as_pending(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    _ready_for_the_model(api, "turns")
    release, holder = _hold_the_slot(server)

    try:
        first = _suggest_async(api, "turns")
        _eventually(lambda: server.generations.waiting == 1, "the first queued")
        second = _suggest_async(api, "turns")
        # The second waits for the lease, not in the pool's queue.
        _eventually(lambda: _lease(server, "turns") != "", "the first took the lease")
        assert server.generations.waiting == 1
    finally:
        release.set()
        holder.join(timeout=30)

    (a,) = first.result().trials
    (b,) = second.result().trials
    assert {a.index, b.index} == {2, 3}
    earlier, later = sorted([a, b], key=lambda t: t.index)
    assert earlier.generation.details["pending_arms"] == 0
    assert later.generation.details["pending_arms"] == 1
    assert py_values(a.arms[0].arm.parameters) != py_values(b.arms[0].arm.parameters)


def test_lease_of_a_dead_server_blocks_suggestions_only_until_it_lapses(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    _ready_for_the_model(api, "orphan")
    now = datetime.now(UTC)
    _set_lease(server, "orphan", "dead-server", now + timedelta(hours=1))
    before = [t.index for t in api.all_trials("orphan")]

    rpc_error(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        lambda: _suggest_async(api, "orphan", timeout_s=1.0).result(),
    )

    assert [t.index for t in api.all_trials("orphan")] == before
    # Attaching is not a suggestion: it never waits for the lease.
    attached = api.attach("orphan", {"x1": 0.1, "x2": 0.9})
    _set_lease(server, "orphan", "dead-server", now - timedelta(seconds=1))
    (trial,) = api.suggest("orphan")
    assert trial.index == attached.index + 1
    assert trial.status == tpb.TRIAL_STATUS_RUNNING
    assert _lease(server, "orphan") == ""


def test_sobol_suggest_waits_for_a_live_lease_too(
    one_slot: tuple[PolytrialServer, Api],
) -> None:
    server, api = one_slot
    api.create(experiment("quick"))
    _set_lease(server, "quick", "another", datetime.now(UTC) + timedelta(hours=1))

    rpc_error(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        lambda: _suggest_async(api, "quick", timeout_s=1.0).result(),
    )

    assert api.all_trials("quick") == []
