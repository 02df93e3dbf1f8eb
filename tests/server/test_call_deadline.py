"""A call whose deadline passed before its commit stores nothing."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, experiment, obs, values

pytestmark = pytest.mark.timeout(120)


def _with_database_locked(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, call: Callable[[], Any]
) -> None:
    """Runs `call` (deadline 1 s) while another writer holds the database.

    The server waits for the lock past the call's deadline and then reaches
    its commit with the call already over.
    """
    path = sqlite_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(0.5)  # the call is over for the server too
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 60
    while not any("nothing stored" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the server never reached its commit"
        time.sleep(0.05)


def test_suggest_and_attach_past_the_deadline_store_no_trial(
    api: Api, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.create(experiment("late"))
    caplog.set_level(logging.INFO, logger="polytrial.server.api")

    _with_database_locked(
        sqlite_url,
        caplog,
        lambda: api.trials.SuggestTrials(
            ts.SuggestTrialsRequest(parent="experiments/late", count=3), timeout=1.0
        ),
    )
    caplog.clear()
    _with_database_locked(
        sqlite_url,
        caplog,
        lambda: api.trials.AttachTrial(
            ts.AttachTrialRequest(
                parent="experiments/late",
                arms=[ts.ArmInput(parameters=values({"x1": 0.1, "x2": 0.2}))],
            ),
            timeout=1.0,
        ),
    )

    assert dict(api.get_experiment("late").trial_counts) == {}
    # No index was used up either.
    assert [t.index for t in api.suggest("late")] == [0]


def test_complete_past_the_deadline_leaves_the_trial_running(
    api: Api, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.create(experiment("late"))
    [trial] = api.suggest("late")
    caplog.set_level(logging.INFO, logger="polytrial.server.api")

    _with_database_locked(
        sqlite_url,
        caplog,
        lambda: api.trials.CompleteTrial(
            ts.CompleteTrialRequest(
                name=trial.name, observations=[obs(f"{trial.index}_0", "loss", 1.0)]
            ),
            timeout=1.0,
        ),
    )

    kept = api.get_trial("late", trial.index)
    assert kept == trial
