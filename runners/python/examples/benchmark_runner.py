"""Example runner: background jobs that evaluate Branin, Currin and Hartmann6.

Run returns at once; each job waits out its staging period (if any), "runs"
for a few seconds, reporting intermediate values at steps 0, 1 and 2 (a
learning curve that approaches the final value), then evaluates every metric it
knows for every arm. Every
benchmark reads parameters x1..xd in [0, 1] (Branin is rescaled to its usual
domain, as in BoTorch's Branin-Currin problem), so an experiment optimizes
`branin`, `hartmann6`, or the two objectives `branin` and `currin`.

A parameter `run_delay_s` on the first arm delays Run's answer, to show how the
server treats a slow runner; a parameter `job_seconds` overrides how long that
trial's job runs. Each started job is printed as
`job started name=... key=...` so a test can count them.

    python runners/python/examples/benchmark_runner.py --address 127.0.0.1:50061
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polytrial.runner import (
    InvalidTrial,
    Observation,
    Runner,
    Trial,
    TrialNotFound,
    TrialState,
    TrialStatus,
    serve,
)

logger = logging.getLogger(__name__)

_HARTMANN6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_HARTMANN6_A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
_HARTMANN6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)


def branin(x: Sequence[float]) -> float:
    """Branin on [0, 1]^2, rescaled to x1 in [-5, 10], x2 in [0, 15]; min 0.397887."""
    x1, x2 = 15.0 * x[0] - 5.0, 15.0 * x[1]
    b, c = 5.1 / (4.0 * math.pi**2), 5.0 / math.pi
    t = 1.0 / (8.0 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * math.cos(x1) + 10.0


def currin(x: Sequence[float]) -> float:
    """Currin's exponential function on [0, 1]^2 (Currin et al. 1991)."""
    x1, x2 = x[0], x[1]
    # At x2 = 0 the exponent is -inf, so the factor is exactly 1.
    factor = 1.0 if x2 == 0.0 else 1.0 - math.exp(-1.0 / (2.0 * x2))
    numerator = 2300.0 * x1**3 + 1900.0 * x1**2 + 2092.0 * x1 + 60.0
    denominator = 100.0 * x1**3 + 500.0 * x1**2 + 4.0 * x1 + 20.0
    return factor * numerator / denominator


def hartmann6(x: Sequence[float]) -> float:
    """Hartmann's 6-dimensional function on [0, 1]^6; min -3.32237."""
    total = 0.0
    for alpha, a_row, p_row in zip(
        _HARTMANN6_ALPHA, _HARTMANN6_A, _HARTMANN6_P, strict=True
    ):
        inner = sum(a * (xj - p) ** 2 for a, xj, p in zip(a_row, x, p_row, strict=True))
        total += alpha * math.exp(-inner)
    return -total


# Metric name -> (number of parameters x1..xd, function).
BENCHMARKS: dict[str, tuple[int, Callable[[Sequence[float]], float]]] = {
    "branin": (2, branin),
    "currin": (2, currin),
    "hartmann6": (6, hartmann6),
}


# Intermediate observations per job, at steps 0..STEPS-1.
STEPS = 3


def learning_curve(metric: str, x: Sequence[float], step: int) -> float:
    """An intermediate value approaching the final f: f + (1 + |f|) / (step + 1)."""
    final = BENCHMARKS[metric][1](x)
    return final + (1.0 + abs(final)) / (step + 1)


def _inputs(parameters: Mapping[str, Any], arm_name: str, metric: str) -> list[float]:
    """Returns x1..xd of an arm for `metric`, or raises InvalidTrial naming the gap."""
    dims, _ = BENCHMARKS[metric]
    values = []
    for i in range(1, dims + 1):
        value = parameters.get(f"x{i}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidTrial(
                f"arm {arm_name} has no numeric parameter x{i}, which {metric} needs"
            )
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidTrial(
                f"arm {arm_name}: x{i}={value} is outside [0, 1], which {metric} needs"
            )
        values.append(float(value))
    return values


@dataclass
class Job:
    """One trial's background job and what it produced."""

    name: str
    inputs: dict[str, dict[str, list[float]]]  # arm -> metric -> x
    job_s: float
    state: TrialState = TrialState.STAGED
    results: list[Observation] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)


class BenchmarkRunner(Runner):
    """Runs each trial as a background job that evaluates benchmark functions."""

    def __init__(self, job_s: float, staging_s: float) -> None:
        self.staging_required = staging_s > 0
        self._job_s = job_s
        self._staging_s = staging_s
        # Guards `_jobs` and every job's `state` and `results`.
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def run(self, trial: Trial, deployment_key: str) -> Mapping[str, Any]:
        """Checks the arms, starts the job in the background and returns its name."""
        metrics = [m for m in trial.metric_names if m in BENCHMARKS]
        inputs = {
            arm.name: {m: _inputs(arm.parameters, arm.name, m) for m in metrics}
            for arm in trial.arms
        }
        delay_s = trial.arms[0].parameters.get("run_delay_s", 0) if trial.arms else 0
        if isinstance(delay_s, int | float) and delay_s > 0:
            time.sleep(float(delay_s))

        job_s = trial.arms[0].parameters.get("job_seconds") if trial.arms else None
        if not isinstance(job_s, int | float) or isinstance(job_s, bool) or job_s < 0:
            job_s = self._job_s
        name = f"{trial.experiment_id}-{trial.trial_index}-{uuid.uuid4().hex[:8]}"
        job = Job(name=name, inputs=inputs, job_s=float(job_s))
        if not self.staging_required:
            job.state = TrialState.RUNNING
        with self._lock:
            self._jobs[name] = job
        threading.Thread(target=self._work, args=(job,), daemon=True).start()
        print(f"job started name={name} key={deployment_key}", flush=True)
        return {"name": name, "job_s": job.job_s, "staging_s": self._staging_s}

    def poll(self, trial: Trial) -> TrialStatus:
        """Returns the job's state."""
        job = self._job(trial)
        with self._lock:
            return TrialStatus(job.state)

    def stop(self, trial: Trial, reason: str) -> Mapping[str, Any]:
        """Stops the job unless it has finished; returns why it stopped."""
        job = self._job(trial)
        with self._lock:
            if job.state in (TrialState.STAGED, TrialState.RUNNING):
                job.state = TrialState.STOPPED
            job.stop_requested.set()
            return {"stop_reason": reason, "final_state": job.state.name}

    def fetch_data(
        self, trial: Trial, metric_names: Sequence[str]
    ) -> Sequence[Observation]:
        """Returns the job's observations once it has completed, else none."""
        job = self._job(trial)
        with self._lock:
            results = list(job.results)
        if not metric_names:
            return results
        return [o for o in results if o.metric_name in metric_names]

    def _job(self, trial: Trial) -> Job:
        name = trial.run_metadata.get("name", "")
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise TrialNotFound(f"no job named {name!r}; the runner may have restarted")
        return job

    def _work(self, job: Job) -> None:
        # Staging, then running; a stop request ends either wait early.
        if job.stop_requested.wait(self._staging_s):
            return
        with self._lock:
            if job.state not in (TrialState.STAGED, TrialState.RUNNING):
                return
            job.state = TrialState.RUNNING

        # Intermediate data at the start of each of STEPS equal parts of the job.
        for step in range(STEPS):
            curve = [
                Observation(arm, metric, learning_curve(metric, x, step), step=step)
                for arm, by_metric in job.inputs.items()
                for metric, x in by_metric.items()
            ]
            with self._lock:
                if job.state is not TrialState.RUNNING:
                    return
                job.results.extend(curve)
            if job.stop_requested.wait(job.job_s / STEPS):
                return

        # Final data: every metric for every arm; noiseless, so the sem is 0.
        final = [
            Observation(arm, metric, BENCHMARKS[metric][1](x), sem=0.0)
            for arm, by_metric in job.inputs.items()
            for metric, x in by_metric.items()
        ]
        with self._lock:
            if job.state is TrialState.RUNNING:
                job.results.extend(final)
                job.state = TrialState.COMPLETED


def main(argv: Sequence[str] | None = None) -> None:
    """Parses flags and serves the benchmark runner until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50061")
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=float(os.environ.get("POLYTRIAL_EXAMPLE_JOB_SECONDS", "3")),
        help="how long each job runs (env POLYTRIAL_EXAMPLE_JOB_SECONDS)",
    )
    parser.add_argument(
        "--staging-seconds",
        type=float,
        default=float(os.environ.get("POLYTRIAL_EXAMPLE_STAGING_SECONDS", "0")),
        help="staging period; > 0 makes StagingRequired true "
        "(env POLYTRIAL_EXAMPLE_STAGING_SECONDS)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    runner = BenchmarkRunner(job_s=args.job_seconds, staging_s=args.staging_seconds)
    serve(
        runner,
        args.address,
        on_listening=lambda bound: print(f"listening on {bound}", flush=True),
    )


if __name__ == "__main__":
    main()
