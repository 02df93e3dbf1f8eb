"""Training data for the model: per-metric arrays and the cap on history size.

An exact GP costs O(n^3) time and O(n^2) memory, so an experiment with
thousands of completed trials is not fitted on all of them: past
`MAX_TRAINING_ARMS` arms the engine keeps the best arms of each objective (the
region the acquisition cares about) and a seeded random sample of the rest,
and records the choice in the generation record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from polytrial.server.engine.bo.encoding import Encoder
from polytrial.server.engine.search_space import FloatArray
from polytrial.server.engine.types import ObservedArm
from scipy import stats

MAX_TRAINING_ARMS = 512
# Share of the capped history given to the best arms of the objectives.
BEST_SHARE = 0.25
# Smallest noise variance handed to the GP with known standard errors,
# relative to the variance of the observed means: an SEM of 0 (noiseless)
# would otherwise make the kernel matrix singular on replicates.
MIN_RELATIVE_NOISE = 1e-6


@dataclass(frozen=True)
class MetricData:
    """One outcome's training data.

    Attributes:
        name: Metric name.
        x: Inputs (n x d), encoded.
        y: Observed means (n), sign-flipped for minimized objectives so that
            larger is always better.
        y_var: Known noise variances (n), or None when any SEM is unknown (the
            GP then infers a homoskedastic noise level).
    """

    name: str
    x: FloatArray
    y: FloatArray
    y_var: FloatArray | None


def select_history(
    observed: list[ObservedArm], objectives: list[tuple[str, float]], seed: int
) -> tuple[list[ObservedArm], dict[str, object]]:
    """Keeps at most `MAX_TRAINING_ARMS` observed arms.

    Args:
        observed: Arms with final data.
        objectives: (metric name, sign) with sign +1 to maximize, -1 to minimize.
        seed: Seed of the random part of the sample.

    Returns:
        The kept arms and a JSON-able note for the generation record.
    """
    if len(observed) <= MAX_TRAINING_ARMS:
        note: dict[str, object] = {
            "observed_arms": len(observed),
            "used_arms": len(observed),
            "max_training_arms": MAX_TRAINING_ARMS,
        }
        return observed, note
    keep: set[int] = set()
    per_objective = max(1, int(MAX_TRAINING_ARMS * BEST_SHARE) // len(objectives))
    for name, sign in objectives:
        scored = [
            (sign * arm.metrics[name][0], i)
            for i, arm in enumerate(observed)
            if name in arm.metrics
        ]
        scored.sort(reverse=True)
        keep.update(i for _, i in scored[:per_objective])
    rest = np.array([i for i in range(len(observed)) if i not in keep])
    rng = np.random.default_rng([seed % 2**64, len(observed)])
    extra = rng.choice(rest, size=MAX_TRAINING_ARMS - len(keep), replace=False)
    keep.update(int(i) for i in extra)
    chosen = [observed[i] for i in sorted(keep)]
    note = {
        "observed_arms": len(observed),
        "used_arms": len(chosen),
        "max_training_arms": MAX_TRAINING_ARMS,
        "history_policy": (
            f"capped at {MAX_TRAINING_ARMS} arms: the best {per_objective} of each "
            "objective plus a seeded random sample of the others"
        ),
    }
    return chosen, note


def metric_data(
    encoder: Encoder, observed: list[ObservedArm], name: str, sign: float
) -> MetricData | None:
    """The training data of one metric, or None when no arm observed it."""
    rows = [
        arm
        for arm in observed
        if name in arm.metrics and math.isfinite(arm.metrics[name][0])
    ]
    if not rows:
        return None
    x = encoder.encode_many([arm.parameters for arm in rows])
    y = np.array([sign * arm.metrics[name][0] for arm in rows], dtype=float)
    sems = [arm.metrics[name][1] for arm in rows]
    y_var: FloatArray | None = None
    if all(s is not None and math.isfinite(s) for s in sems):
        floor = MIN_RELATIVE_NOISE * max(float(np.var(y)), 1e-12)
        y_var = np.maximum(np.array(sems, dtype=float) ** 2, floor)
    return MetricData(name, x, y, y_var)


def warp_outcome(y: FloatArray) -> tuple[FloatArray, float | None]:
    """A Yeo-Johnson power transform of observed means (n), fitted by MLE.

    Objectives such as Branin span orders of magnitude: a stationary GP fitted
    to the raw values explains the steep regions as noise and cannot resolve
    the flat valley where the optimum is. The transform (after standardizing)
    makes the values closer to Gaussian and is strictly increasing, so it keeps
    which arm is better; HEBO (Cowen-Rivers et al., 2022) does the same.

    Returns:
        The transformed values (n) and the fitted exponent, or the input and
        None when there are too few distinct values to fit one.
    """
    if len(np.unique(y)) < 3:
        return y, None
    scale = float(np.std(y))
    standardized = (y - float(np.mean(y))) / scale
    transformed, exponent = stats.yeojohnson(standardized)
    if not np.all(np.isfinite(transformed)):
        return y, None
    return np.asarray(transformed, dtype=float), float(exponent)
