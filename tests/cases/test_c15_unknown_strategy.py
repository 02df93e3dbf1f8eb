"""c15: an unknown generation strategy is refused at creation."""

from __future__ import annotations

import grpc
import pytest
from polytrial_testkit import (
    Api,
    experiment,
    experiment_ids,
    rpc_error,
    violated_fields,
)

pytestmark = pytest.mark.timeout(60)


def test_unknown_generator_kind_is_invalid_argument_listing_the_choices(
    api: Api,
) -> None:
    error = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, lambda: api.create(experiment("c15", kind=17))
    )
    assert violated_fields(error) == ["experiment.generation_strategy.kind"]
    assert "GENERATOR_KIND_SOBOL" in error.details()
    assert "GENERATOR_KIND_BAYESIAN" in error.details()
    assert experiment_ids(api) == []
