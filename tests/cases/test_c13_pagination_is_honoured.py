"""c13: pagination is honoured."""

from __future__ import annotations

import grpc
import pytest
from polytrial.server.service.trials import DEFAULT_PAGE_SIZE
from polytrial.v1 import trial_service_pb2 as ts
from polytrial_testkit import Api, experiment, rpc_error, violated_fields

pytestmark = pytest.mark.timeout(60)


def _list(api: Api, size: int, token: str = "") -> ts.ListTrialsResponse:
    return api.trials.ListTrials(
        ts.ListTrialsRequest(parent="experiments/c13", page_size=size, page_token=token)
    )


def test_pages_of_two_walk_every_trial_once(any_api: Api) -> None:
    api = any_api
    api.create(experiment("c13"))
    api.suggest("c13", 5)
    pages: list[list[int]] = []
    token = ""
    while True:
        page = _list(api, 2, token)
        pages.append([t.index for t in page.trials])
        token = page.next_page_token
        if not token:
            break
    assert pages == [[0, 1], [2, 3], [4]]


def test_page_size_zero_uses_the_documented_default(api: Api) -> None:
    assert DEFAULT_PAGE_SIZE == 100  # as documented in ListTrialsRequest
    api.create(experiment("c13"))
    for _ in range(2):
        api.suggest("c13", 60)
    first = _list(api, 0)
    assert len(first.trials) == DEFAULT_PAGE_SIZE
    rest = _list(api, 0, first.next_page_token)
    assert [t.index for t in rest.trials] == list(range(100, 120))
    assert rest.next_page_token == ""


def test_negative_page_size_is_invalid_argument(api: Api) -> None:
    api.create(experiment("c13"))
    error = rpc_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: _list(api, -1))
    assert violated_fields(error) == ["page_size"]
