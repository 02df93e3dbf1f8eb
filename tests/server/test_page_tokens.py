"""Page tokens: crafted cursors and tokens of another list are INVALID_ARGUMENT
(AIP-158), and a page ends early, with a token, at the byte budget."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from polytrial.server.service import paging
from polytrial.v1 import experiment_service_pb2 as es
from polytrial.v1 import trial_pb2 as tpb
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import (
    RPC_TIMEOUT_S,
    Api,
    experiment,
    experiment_ids,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(120)

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _crafted(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _trials(api: Api, parent: str, token: str = "", **kw: Any) -> ts.ListTrialsResponse:
    return api.trials.ListTrials(
        ts.ListTrialsRequest(parent=f"experiments/{parent}", page_token=token, **kw),
        timeout=RPC_TIMEOUT_S,
    )


def _experiments(api: Api, token: str, size: int = 0) -> es.ListExperimentsResponse:
    return api.experiments.ListExperiments(
        es.ListExperimentsRequest(page_token=token, page_size=size),
        timeout=RPC_TIMEOUT_S,
    )


@pytest.mark.parametrize("cursor", [2**63, 10**30, -1, True, 1.5, "1"])
def test_token_with_a_cursor_out_of_range_or_of_another_type_is_invalid_argument(
    api: Api, cursor: object
) -> None:
    api.create(experiment("tok"))
    api.suggest("tok", 3)
    real = _trials(api, "tok", page_size=1).next_page_token
    scope = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))["s"]

    trials = rpc_error(
        INVALID,
        lambda: _trials(api, "tok", _crafted({"k": "trials", "s": scope, "c": cursor})),
    )
    experiments = rpc_error(
        INVALID,
        lambda: _experiments(
            api, _crafted({"k": "experiments", "s": scope, "c": cursor})
        ),
    )

    assert violated_fields(trials) == violated_fields(experiments) == ["page_token"]


def test_token_of_another_experiments_trials_is_invalid_argument(api: Api) -> None:
    for experiment_id in ("one", "two"):
        api.create(experiment(experiment_id))
        api.suggest(experiment_id, 3)
    token = _trials(api, "one", page_size=1).next_page_token
    assert [t.index for t in _trials(api, "one", token, page_size=1).trials] == [1]

    error = rpc_error(INVALID, lambda: _trials(api, "two", token, page_size=1))

    assert violated_fields(error) == ["page_token"]
    assert "parent or filter" in error.details()


def test_token_reused_with_another_status_filter_is_invalid_argument(
    api: Api,
) -> None:
    api.create(experiment("flt"))
    api.suggest("flt", 3)
    running, completed = tpb.TRIAL_STATUS_RUNNING, tpb.TRIAL_STATUS_COMPLETED
    both = [running, completed]
    token = _trials(api, "flt", statuses=both, page_size=1).next_page_token
    # The same filter, listed in another order, is the same list.
    same = _trials(api, "flt", token, statuses=[completed, running], page_size=1)
    assert [t.index for t in same.trials] == [1]

    for other in ([], [completed], [running]):
        error = rpc_error(
            INVALID,
            lambda other=other: _trials(api, "flt", token, statuses=other),
        )
        assert violated_fields(error) == ["page_token"]


def test_page_ends_early_at_the_byte_budget_and_the_token_continues_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server runs in this process; a small budget stands in for 3 MiB.
    for i in range(5):
        message = experiment(f"big{i}")
        message.description = "d" * 1000
        api.create(message)
    api.suggest("big0", 5)
    monkeypatch.setattr(paging, "PAGE_BUDGET_BYTES", 2500)

    sizes, token = [], ""
    while True:
        page = _experiments(api, token, size=100)
        sizes.append(len(page.experiments))
        token = page.next_page_token
        if not token:
            break
    assert sizes == [2, 2, 1]
    assert experiment_ids(api) == [f"big{i}" for i in range(5)]

    monkeypatch.setattr(paging, "PAGE_BUDGET_BYTES", 1)
    first = _trials(api, "big0", page_size=100)
    assert [t.index for t in first.trials] == [0]  # one item even past budget
    second = _trials(api, "big0", first.next_page_token, page_size=100)
    assert [t.index for t in second.trials] == [1]
