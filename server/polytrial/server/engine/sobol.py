"""Scrambled Sobol generation: quasi-random arms that fill the search space.

Each experiment owns one scrambled Sobol sequence (SciPy's `qmc.Sobol`, seeded
by the strategy's seed) over its tunable parameters, and a counter of the
points consumed; each call continues the sequence where the last stopped, so
the same seed and history give the same arms. A point of the unit cube becomes
an arm parameter by parameter (`RangeParameter.from_unit`, choices by index);
pinned and fixed values replace their coordinates.

Parameter constraints: when a good share of the box is feasible, infeasible
points are skipped (rejection). When the feasible region is a thin sliver
(`0.49 <= x1 + x2 <= 0.51`), rejection would starve, so every infeasible point
is projected into the polytope instead (`polytope.project_to_feasible`).

A finite space (only choices, ints and floats with digits) runs out: when
quasi-random draws stop finding new arms, the remaining arms are enumerated,
and when none is left `SearchSpaceExhausted` is raised.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np
from polytrial.server.engine.polytope import project_to_feasible
from polytrial.server.engine.search_space import (
    ChoiceParameter,
    FixedParameter,
    FloatArray,
    RangeParameter,
    SearchSpace,
)
from polytrial.server.engine.types import (
    GenerationRequest,
    GenerationResult,
    Parameterization,
    ParameterValue,
)
from polytrial.server.errors import FailedPrecondition, SearchSpaceExhausted
from scipy.stats import qmc

logger = logging.getLogger(__name__)

# Below this feasible share of the box, infeasible points are projected
# instead of rejected.
MIN_ACCEPTANCE = 0.05
# Finite spaces up to this many arms are enumerated once draws stop finding
# new arms; larger ones never run out in practice.
ENUMERATION_LIMIT = 200_000
# Draws per requested arm before giving up on quasi-random search.
DRAWS_PER_ARM = 64
MIN_DRAW_BUDGET = 512
# Draws in a row without a new arm after which a finite space is enumerated.
MAX_MISSES = 64
_BLOCK = 64


# Scrambled sequences by (dimension, seed), never advanced: scrambling costs
# about three times as much as copying, and every suggestion needs one.
_PROTOTYPES: OrderedDict[tuple[int, int], qmc.Sobol] = OrderedDict()
_PROTOTYPES_SIZE = 256
_PROTOTYPES_LOCK = threading.Lock()


def sobol_sequence(dimension: int, seed: int, start: int) -> qmc.Sobol:
    """The experiment's scrambled Sobol sequence, advanced to point `start`."""
    key = (max(dimension, 1), seed % 2**64)
    with _PROTOTYPES_LOCK:
        prototype = _PROTOTYPES.get(key)
        if prototype is not None:
            _PROTOTYPES.move_to_end(key)
    if prototype is None:
        prototype = qmc.Sobol(d=key[0], scramble=True, rng=key[1])
        with _PROTOTYPES_LOCK:
            _PROTOTYPES[key] = prototype
            while len(_PROTOTYPES) > _PROTOTYPES_SIZE:
                _PROTOTYPES.popitem(last=False)
    # A copy: the prototype is shared by handler threads and must not move.
    sampler = copy.deepcopy(prototype)
    if start:
        sampler.fast_forward(start)
    return sampler


def draw(sampler: qmc.Sobol, count: int) -> FloatArray:
    """`count` next points (count x d) of a Sobol sequence."""
    with warnings.catch_warnings():
        # SciPy warns unless count is a power of two: balance over a prefix
        # does not matter for a sequence consumed a few points at a time.
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        return np.asarray(sampler.random(count), dtype=float)


def decode(
    space: SearchSpace, unit: FloatArray, pinned: Mapping[str, ParameterValue]
) -> Parameterization:
    """Turns a point of the unit cube (d, one per tunable parameter) into an arm."""
    arm: Parameterization = {}
    column = 0
    for param in space.parameters:
        if isinstance(param, FixedParameter):
            arm[param.name] = param.value
            continue
        u = float(unit[column])
        column += 1
        if param.name in pinned:
            arm[param.name] = pinned[param.name]
        elif isinstance(param, RangeParameter):
            arm[param.name] = param.from_unit(u)
        else:
            index = min(int(u * len(param.values)), len(param.values) - 1)
            arm[param.name] = param.values[index]
    return arm


def with_range_values(
    space: SearchSpace, arm: Parameterization, vector: FloatArray
) -> Parameterization:
    """`arm` with its range parameters set from `vector` (r), on their grids."""
    updated = dict(arm)
    for param, value in zip(space.range_parameters, vector, strict=True):
        updated[param.name] = param.snap(float(value))
    return updated


def feasible_share(
    space: SearchSpace, pinned: Mapping[str, ParameterValue], seed: int
) -> float:
    """Estimated share of the box satisfying the constraints (1024 points)."""
    if not space.constraints:
        return 1.0
    sampler = sobol_sequence(len(space.tunable_parameters), seed + 1, 0)
    points = draw(sampler, 1024)
    vectors = np.array([space.range_vector(decode(space, u, pinned)) for u in points])
    return float(np.mean(space.satisfies_constraints(vectors)))


def generate_sobol(
    request: GenerationRequest, *, note: str | None = None, picked: int = 0
) -> GenerationResult:
    """Generates `request.count` new quasi-random arms.

    Args:
        request: The experiment's state; `sobol_draws` says where its sequence
            stands.
        note: Why Sobol was chosen, for the generation record.
        picked: Arms of the same request another generator already chose
            (their keys are in `excluded_keys`, but no trial holds them), so
            an exhausted space's message counts them as left and asked for.

    Raises:
        SearchSpaceExhausted: a finite space has fewer than `count` arms left
            (FAILED_PRECONDITION, reason SEARCH_SPACE_EXHAUSTED).
    """
    space: SearchSpace = request.search_space
    pinned = request.pinned
    seed = request.strategy.seed
    pins = {
        p.name: float(pinned[p.name])
        for p in space.range_parameters
        if p.name in pinned
    }
    excluded = set(request.excluded_keys)
    arms: list[Parameterization] = []

    # A finite space that is nearly used up is enumerated right away.
    cardinality = _cardinality(space, pinned)
    enumerable = cardinality is not None and cardinality <= ENUMERATION_LIMIT
    draws = request.sobol_draws
    if not (
        enumerable and cardinality is not None and len(excluded) * 2 >= cardinality
    ):
        share = feasible_share(space, pinned, seed)
        project = share < MIN_ACCEPTANCE
        sampler = sobol_sequence(len(space.tunable_parameters), seed, draws)
        budget = max(MIN_DRAW_BUDGET, DRAWS_PER_ARM * request.count)
        if enumerable and cardinality is not None:
            budget = min(budget, 4 * cardinality + 16)
        used = misses = 0
        while len(arms) < request.count and used < budget:
            if enumerable and misses >= MAX_MISSES:
                break  # Mostly used up: enumerating is cheaper.
            block = draw(sampler, _BLOCK)
            for unit in block:
                used += 1
                misses += 1
                arm = _admit(space, decode(space, unit, pinned), pins, project)
                if arm is not None:
                    key = space.arm_key(arm)
                    if key not in excluded:
                        excluded.add(key)
                        arms.append(arm)
                        misses = 0
                if len(arms) == request.count:
                    break
        draws += used

    if len(arms) < request.count:
        if not enumerable:
            raise FailedPrecondition(
                f"no new arm found in {draws - request.sobol_draws} quasi-random "
                "draws: the feasible region may hold only the arms tried so far",
                reason="NO_NEW_ARM",
            )
        arms += _enumerate_remaining(
            space,
            pinned,
            excluded,
            request.count - len(arms),
            seed,
            draws,
            picked + len(arms),
        )

    details: dict[str, object] = {"sobol_draws": draws}
    if note:
        details["reason"] = note
    return GenerationResult(
        arms=arms,
        generator="sobol",
        num_observations=0,
        details=details,
        sobol_draws=draws,
    )


def _admit(
    space: SearchSpace,
    arm: Parameterization,
    pins: Mapping[str, float],
    project: bool,
) -> Parameterization | None:
    """The arm if feasible, its projection if `project`, else None."""
    if not space.constraints:
        return arm
    vector = space.range_vector(arm)
    if space.satisfies_constraints(vector[None, :])[0]:
        return arm
    if not project:
        return None
    moved = project_to_feasible(space, vector, pins)
    return None if moved is None else with_range_values(space, arm, moved)


def _cardinality(
    space: SearchSpace, pinned: Mapping[str, ParameterValue]
) -> int | None:
    total = 1
    for param in space.tunable_parameters:
        if param.name in pinned:
            continue
        size = param.cardinality
        if size is None:
            return None
        total *= size
    return total


def _all_arms(
    space: SearchSpace, pinned: Mapping[str, ParameterValue]
) -> Iterator[Parameterization]:
    axes: list[list[ParameterValue]] = []
    for param in space.parameters:
        if isinstance(param, FixedParameter):
            axes.append([param.value])
        elif param.name in pinned:
            axes.append([pinned[param.name]])
        elif isinstance(param, ChoiceParameter):
            axes.append(list(param.values))
        else:
            axes.append(list(param.grid_values()))
    names = space.parameter_names
    for combination in itertools.product(*axes):
        yield dict(zip(names, combination, strict=True))


def _enumerate_remaining(
    space: SearchSpace,
    pinned: Mapping[str, ParameterValue],
    excluded: set[str],
    needed: int,
    seed: int,
    draws: int,
    picked: int = 0,
) -> list[Parameterization]:
    """Picks `needed` unused arms of a finite space at random (seeded).

    Args:
        space: The search space.
        pinned: Values held fixed.
        excluded: Keys of arms in trials, and of the `picked` arms.
        needed: How many more arms to pick.
        seed: The experiment's seed.
        draws: Sobol draws so far (seeds the pick with `seed`).
        picked: Arms of this request found already by the Sobol draws; the
            message counts them as remaining, since no trial holds them.

    Raises:
        SearchSpaceExhausted: fewer than `needed` arms are left.
    """
    feasible = 0
    remaining: list[Parameterization] = []
    for arm in _all_arms(space, pinned):
        if (
            space.constraints
            and not space.satisfies_constraints(space.range_vector(arm)[None, :])[0]
        ):
            continue
        feasible += 1
        if space.arm_key(arm) not in excluded:
            remaining.append(arm)
    # Fixed parameters are among `pinned` too; only pins of tunable ones
    # narrow the space the message speaks of.
    tunable = set(space.tunable_names)
    scope = " with the pinned values" if tunable.intersection(pinned) else ""
    left = len(remaining) + picked
    if not left:
        raise SearchSpaceExhausted(
            f"search space is exhausted: all {feasible} arms{scope} are already "
            "in trials that did not fail",
            metadata={"arms": str(feasible), "remaining": "0"},
        )
    if len(remaining) < needed:
        raise SearchSpaceExhausted(
            f"search space is nearly exhausted: only {left} distinct arms{scope} "
            f"remain of {feasible}; asked for {needed + picked}",
            metadata={"arms": str(feasible), "remaining": str(left)},
        )
    rng = np.random.default_rng([seed % 2**64, draws])
    chosen = rng.choice(len(remaining), size=needed, replace=False)
    logger.debug("enumerated %d remaining arms of %d", len(remaining), feasible)
    return [remaining[int(i)] for i in chosen]
