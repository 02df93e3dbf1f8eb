"""Several clients and two server processes' worth of handlers on one database."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from polytrial.server.app import PolytrialServer, create_server
from polytrial_testkit import Api, connect, experiment, py_values

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def two_servers(db_url: str) -> Iterator[tuple[Api, Api]]:
    """Two servers on one database, as two replicas would run."""
    servers: list[PolytrialServer] = []
    apis: list[Api] = []
    for _ in range(2):
        server, port = create_server(db_url, max_workers=4)
        server.start()
        servers.append(server)
        apis.append(connect(port))
    yield apis[0], apis[1]
    for api in apis:
        api.close()
    for server in servers:
        server.stop(grace_s=1.0)


def test_concurrent_suggests_through_two_servers_get_dense_indices_and_new_arms(
    two_servers: tuple[Api, Api],
) -> None:
    first, second = two_servers
    first.create(experiment("race"))
    failures: list[BaseException] = []

    def client(api: Api) -> None:
        try:
            for _ in range(4):
                api.suggest("race", 2)
        except BaseException as exc:  # collected and re-raised below
            failures.append(exc)

    threads = [
        threading.Thread(target=client, args=(api,)) for api in [first, second] * 2
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert failures == []
    trials = second.all_trials("race")
    assert [t.index for t in trials] == list(range(32))
    arms = {tuple(sorted(py_values(t.arms[0].arm.parameters).items())) for t in trials}
    assert len(arms) == 32
