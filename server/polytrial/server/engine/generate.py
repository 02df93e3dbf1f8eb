"""The generation strategy: which generator answers a suggest, and its record.

trials_generated < num_initial_trials  -> Sobol ("initial")
kind == SOBOL                          -> Sobol
an objective without any data          -> Sobol ("no data yet"): workers
                                          never wait for the model
otherwise                              -> Bayesian optimization (BoTorch),
                                          falling back to Sobol on failure
"""

from __future__ import annotations

import logging
import time

from polytrial.server.engine.sobol import generate_sobol
from polytrial.server.engine.types import (
    GenerationRequest,
    GenerationResult,
    GeneratorKind,
)
from polytrial.server.errors import InvalidArgument

logger = logging.getLogger(__name__)


def generate(request: GenerationRequest) -> GenerationResult:
    """Generates `request.count` new arms with the experiment's strategy.

    Args:
        request: The experiment's search space, goals, strategy and history.

    Returns:
        The arms, pairwise distinct and distinct from `request.excluded_keys`,
        and the record of how they were made.

    Raises:
        InvalidArgument: `count` is below 1 (INVALID_ARGUMENT).
        SearchSpaceExhausted: a finite space has too few arms left
            (FAILED_PRECONDITION).
    """
    started = time.perf_counter()
    result = _dispatch(request)
    result.details["generation_time_s"] = round(time.perf_counter() - started, 4)
    return result


def uses_model(request: GenerationRequest) -> bool:
    """Whether `generate(request)` will fit a model (else it is quick Sobol).

    Callers run model-based generations off their own thread, under a limit;
    Sobol takes well under a millisecond and may run anywhere.
    """
    return _sobol_note(request) is None


def _sobol_note(request: GenerationRequest) -> str | None:
    """Why the strategy answers `request` with Sobol, or None for the model."""
    strategy = request.strategy
    if strategy.kind is GeneratorKind.SOBOL:
        return "strategy is Sobol only"
    if request.trials_generated < strategy.num_initial_trials:
        return "initial quasi-random trials"
    objectives = {o.metric_name for o in request.optimization.objectives}
    seen = {name for arm in request.observed for name in arm.metrics}
    if not objectives <= seen:
        return "an objective has no data yet"
    return None


def _dispatch(request: GenerationRequest) -> GenerationResult:
    if request.count < 1:
        raise InvalidArgument(
            f"count must be at least 1, got {request.count}", field="count"
        )
    note = _sobol_note(request)
    if note is not None:
        return generate_sobol(request, note=note)
    return _generate_bayesian(request)


def _generate_bayesian(request: GenerationRequest) -> GenerationResult:
    """Bayesian optimization, or Sobol with a note when PyTorch is missing."""
    try:
        # Deferred import: PyTorch loads only when a model is needed.
        from polytrial.server.engine.bo.generator import generate_bo
    except ImportError as error:
        logger.warning(
            "Bayesian optimization unavailable (%s); generating Sobol arms; "
            "install the 'bo' extra",
            error,
        )
        result = generate_sobol(
            request, note=f"Bayesian optimization unavailable: {error}"
        )
        result.generator = "sobol_fallback"
        result.num_observations = len(request.observed)
        return result
    return generate_bo(request)
