"""Request ids on suggest, attach and complete: repeats, reuse, concurrent repeats."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
from polytrial.server.app import PolytrialServer, create_server
from polytrial.v1 import trial_pb2
from polytrial_testkit import (
    Api,
    connect,
    error_info,
    experiment,
    rpc_error,
    snapshot,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
S = trial_pb2.TrialStatus


@pytest.fixture
def two_replicas(db_url: str) -> Iterator[tuple[Api, Api]]:
    """Two servers on one database, as two replicas would run."""
    servers: list[PolytrialServer] = []
    apis: list[Api] = []
    for _ in range(2):
        server, port = create_server(db_url, max_workers=8)
        server.start()
        servers.append(server)
        apis.append(connect(port))
    yield apis[0], apis[1]
    for api in apis:
        api.close()
    for server in servers:
        server.stop(grace_s=1.0)


def test_reused_suggest_request_id_with_other_arguments_is_invalid_argument(
    any_api: Api,
) -> None:
    any_api.create(experiment("reuse"))
    any_api.suggest("reuse", 2, request_id="s-1")
    before = snapshot(any_api, "reuse")

    error = rpc_error(INVALID, lambda: any_api.suggest("reuse", 3, request_id="s-1"))

    assert violated_fields(error) == ["request_id"]
    assert error_info(error).reason == "REQUEST_ID_REUSED"
    assert snapshot(any_api, "reuse") == before


def test_reused_attach_request_id_with_other_parameters_is_invalid_argument(
    any_api: Api,
) -> None:
    any_api.create(experiment("reuse"))
    first = any_api.attach("reuse", {"x1": 0.1, "x2": 0.2}, request_id="a-1")
    assert any_api.attach("reuse", {"x1": 0.1, "x2": 0.2}, request_id="a-1") == first

    rpc_error(
        INVALID,
        lambda: any_api.attach("reuse", {"x1": 0.3, "x2": 0.2}, request_id="a-1"),
    )

    assert len(any_api.all_trials("reuse")) == 1


def test_complete_request_id_reused_on_another_trial_is_invalid_argument(
    any_api: Api,
) -> None:
    any_api.create(experiment("reuse"))
    first, second = any_api.suggest("reuse", 2)
    any_api.complete(first, {"loss": 1.0}, request_id="c-1")

    rpc_error(
        INVALID, lambda: any_api.complete(second, {"loss": 1.0}, request_id="c-1")
    )

    assert any_api.get_trial("reuse", second.index).status == S.TRIAL_STATUS_RUNNING


def test_concurrent_repeats_across_replicas_wait_for_and_return_the_first_result(
    two_replicas: tuple[Api, Api],
) -> None:
    first, second = two_replicas
    first.create(experiment("repeats"))
    answers: list[list[int]] = []
    completions: list[list[float]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def suggest(api: Api) -> None:
        try:
            trials = api.suggest("repeats", 3, request_id="same-suggest")
            with lock:
                answers.append([t.index for t in trials])
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [
        threading.Thread(target=suggest, args=(api,)) for api in (first, second) * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert answers == [[0, 1, 2]] * 8
    assert len(first.all_trials("repeats")) == 3

    def complete(api: Api) -> None:
        try:
            trial = api.complete(
                "experiments/repeats/trials/1", {"loss": 0.5}, request_id="same-tell"
            )
            with lock:
                completions.append([o.mean for o in trial.observations])
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [
        threading.Thread(target=complete, args=(api,)) for api in (first, second) * 4
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert completions == [[0.5]] * 8
    stored = second.get_trial("repeats", 1)
    assert stored.status == S.TRIAL_STATUS_COMPLETED
    assert [o.mean for o in stored.observations] == [0.5]
