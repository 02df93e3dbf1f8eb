"""The generation strategy's choices, the model's encoding and history cap."""

from __future__ import annotations

import pytest
from _engine_protos import (
    choice_param,
    fixed_param,
    float_param,
    int_param,
    linear,
    sobol_request,
    space,
)
from polytrial.server.engine import (
    GenerationRequest,
    GeneratorKind,
    Objective,
    ObservedArm,
    OptimizationSpec,
    StrategySpec,
    generate,
)
from polytrial.server.engine.bo.data import MAX_TRAINING_ARMS, select_history
from polytrial.server.engine.bo.encoding import Encoder
from polytrial.server.errors import InvalidArgument

pytestmark = pytest.mark.timeout(60)

MIXED = space(
    [
        float_param("x", 0.1, 0.32121, digits=5),
        float_param("lr", 1e-5, 1e-1, log_scale=True),
        int_param("n", 1, 1000, log_scale=True),
        int_param("k", -3, 7),
        choice_param("c", ["a", "b", "c"]),
        choice_param("o", [0.1, 0.2, 0.5], ordered=True),
        choice_param("flag", [True, False]),
        fixed_param("f", 2),
    ]
)


def bayesian(count: int = 1, **kw: object) -> GenerationRequest:
    return GenerationRequest(
        search_space=MIXED,
        optimization=OptimizationSpec((Objective("y", minimize=True),)),
        strategy=StrategySpec(GeneratorKind.BAYESIAN, num_initial_trials=3, seed=1),
        count=count,
        **kw,  # type: ignore[arg-type]
    )


def test_initial_trials_are_sobol_and_recorded_as_such() -> None:
    result = generate(bayesian(2, trials_generated=1))
    assert result.generator == "sobol"
    assert result.details["reason"] == "initial quasi-random trials"


def test_without_data_after_the_initial_trials_arms_stay_quasi_random() -> None:
    pending = generate(sobol_request(MIXED, 3)).arms
    result = generate(bayesian(2, trials_generated=5, pending=pending))
    assert result.generator == "sobol"
    assert result.details["reason"] == "an objective has no data yet"
    assert len(result.arms) == 2


def test_count_below_one_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        generate(bayesian(0))


def test_encoding_round_trips_every_kind_of_parameter() -> None:
    encoder = Encoder(MIXED)
    arms = generate(sobol_request(MIXED, 64)).arms
    points = encoder.encode_many(arms)
    bounds = encoder.bounds()
    assert points.shape == (64, encoder.dim) and encoder.dim == 7
    assert (points >= bounds[0]).all() and (points <= bounds[1]).all()
    assert [encoder.decode(point) for point in points] == arms
    assert list(encoder.categorical_dims) == [4, 6]


def test_linear_constraints_become_unit_cube_rows() -> None:
    constrained = space(
        [float_param("a", -1, 1), float_param("b", 0, 10)],
        [linear({"a": 2.0, "b": 1.0}, 4.0)],
    )
    ((indices, coefficients, rhs),) = Encoder(constrained).linear_constraints()
    # 2a + b <= 4 with a = -1 + 2u, b = 10v: -4u - 10v >= -6.
    assert indices == [0, 1]
    assert coefficients == [-4.0, -10.0] and rhs == -6.0


def test_large_histories_keep_the_best_arms_and_a_seeded_sample() -> None:
    observed = [
        ObservedArm({"x": i / 3000}, {"y": (float(i), None)}, i) for i in range(2000)
    ]
    kept, note = select_history(observed, [("y", -1.0)], seed=4)
    assert len(kept) == MAX_TRAINING_ARMS == note["used_arms"]
    assert note["observed_arms"] == 2000 and "capped" in str(note["history_policy"])
    best = {arm.trial_index for arm in kept}
    assert set(range(MAX_TRAINING_ARMS // 4)) <= best
    again, _ = select_history(observed, [("y", -1.0)], seed=4)
    assert again == kept
