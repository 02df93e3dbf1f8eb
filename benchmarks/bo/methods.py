"""The optimizers under comparison: Polytrial over gRPC, Optuna, Ax.

Every method runs one sequential optimization of a problem and returns a
`Run`: the noiseless metrics of each evaluated arm, the noiseless metrics of
the arm(s) the method recommends at the end, and per-ask timings.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bo.problems import Metrics, Params, Problem

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """The outcome of one optimization.

    Attributes:
        evaluated: Noiseless metrics of every evaluated arm, in order.
        recommended: Noiseless metrics of the recommended arm(s).
        ask_s: Per ask: (phase, end-to-end seconds, server-side seconds or
            None). Phase is "init" for quasi-random asks, "model" otherwise.
    """

    evaluated: list[Metrics] = field(default_factory=list)
    recommended: list[Metrics] = field(default_factory=list)
    ask_s: list[tuple[str, float, float | None]] = field(default_factory=list)


def noisy(problem: Problem, metrics: Metrics, rng: np.random.Generator) -> Metrics:
    """The metrics an optimizer sees: noiseless plus Gaussian noise."""
    if not problem.noise_sd:
        return dict(metrics)
    return {k: v + float(rng.normal(0.0, problem.noise_sd)) for k, v in metrics.items()}


class PolytrialServer:
    """A `polytrial serve` subprocess on a fresh SQLite file."""

    def __init__(self) -> None:
        """Starts the server and waits until it answers."""
        self._dir = tempfile.TemporaryDirectory(prefix="polytrial-bench-")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        db = Path(self._dir.name) / "bench.db"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "polytrial.server.cli", "serve",
             "--db", f"sqlite:///{db}", "--address", self.address,
             "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(self._dir.name) / "server.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        from polytrial.client import Client

        self.client = Client(self.address)
        self.client.wait_until_ready(timeout_s=60)

    def memory_mb(self) -> tuple[float, float]:
        """Current and peak resident memory of the server process (MB)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = {
            line.split(":")[0]: float(line.split()[1]) / 1024
            for line in status.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)

    def close(self) -> None:
        """Stops the server and removes its files."""
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._dir.cleanup()


def run_polytrial(
    server: PolytrialServer, problem: Problem, trials: int, seed: int
) -> Run:
    """Sobol then BO through the real server, one trial at a time."""
    from polytrial.client import GenerationStrategy, RangeParameter

    client = server.client
    experiment_id = (
        f"{problem.name.replace('_', '-')}-{seed}-{os.getpid()}-{time.time_ns()}"
    )
    thresholds = (
        dict(zip(problem.objectives, problem.reference, strict=True))
        if problem.reference
        else None
    )
    client.create_experiment(
        experiment_id,
        parameters=[
            RangeParameter(n, lo, hi, type="float") for n, lo, hi in problem.bounds
        ],
        objectives={name: "minimize" for name in problem.objectives},
        outcome_constraints=[
            f"{name} <= {bound}" for name, bound in problem.constraints
        ],
        objective_thresholds=thresholds,
        generation_strategy=GenerationStrategy(kind="bayesian", seed=seed),
    )
    rng = np.random.default_rng(seed + 7919)
    run = Run()
    for _ in range(trials):
        started = time.perf_counter()
        trial = client.suggest(experiment_id)
        elapsed = time.perf_counter() - started
        record = trial.generation
        server_s = record.details.get("generation_time_s") if record else None
        phase = "model" if record and record.generator == "botorch" else "init"
        run.ask_s.append((phase, elapsed, server_s))
        params = {k: float(v) for k, v in trial.arm.parameters.items()}
        metrics = problem.evaluate(params)
        run.evaluated.append(metrics)
        client.complete_trial(trial, noisy(problem, metrics, rng))
    if len(problem.objectives) == 1:
        best = client.get_best_arm(experiment_id)
        run.recommended = [
            problem.evaluate({k: float(v) for k, v in best.parameters.items()})
        ]
    else:
        front = client.get_pareto_frontier(experiment_id)
        run.recommended = [
            problem.evaluate({k: float(v) for k, v in arm.parameters.items()})
            for arm in front
        ]
    client.delete_experiment(experiment_id)
    return run


def run_optuna(problem: Problem, trials: int, seed: int, sampler_name: str) -> Run:
    """Optuna's TPE or GP sampler with its defaults (ask/tell)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    constraints_func = None
    if problem.constraints:

        def constraints_func(trial: Any) -> list[float]:
            return list(trial.user_attrs["constraints"])

    sampler: Any
    if sampler_name == "tpe":
        sampler = optuna.samplers.TPESampler(
            seed=seed, constraints_func=constraints_func
        )
    else:
        sampler = optuna.samplers.GPSampler(
            seed=seed, constraints_func=constraints_func
        )
    study = optuna.create_study(
        directions=["minimize"] * len(problem.objectives), sampler=sampler
    )
    rng = np.random.default_rng(seed + 7919)
    run = Run()
    for index in range(trials):
        started = time.perf_counter()
        trial = study.ask()
        params: Params = {
            n: trial.suggest_float(n, lo, hi) for n, lo, hi in problem.bounds
        }
        elapsed = time.perf_counter() - started
        run.ask_s.append(("model" if index >= 10 else "init", elapsed, None))
        metrics = problem.evaluate(params)
        run.evaluated.append(metrics)
        seen = noisy(problem, metrics, rng)
        if problem.constraints:
            trial.set_user_attr(
                "constraints",
                [seen[name] - bound for name, bound in problem.constraints],
            )
        values = [seen[name] for name in problem.objectives]
        study.tell(trial, values if len(values) > 1 else values[0])
    run.recommended = [
        problem.evaluate({n: float(t.params[n]) for n, _, _ in problem.bounds})
        for t in study.best_trials
    ]
    return run


def run_ax(problem: Problem, trials: int, seed: int) -> Run:
    """Ax's Client with its defaults (Sobol, then BoTorch)."""
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=seed)
    _quiet("ax")
    client.configure_experiment(
        parameters=[
            RangeParameterConfig(name=n, parameter_type="float", bounds=(lo, hi))
            for n, lo, hi in problem.bounds
        ]
    )
    constraints = [f"{name} <= {bound}" for name, bound in problem.constraints]
    if problem.reference:
        constraints += [
            f"{name} <= {bound}"
            for name, bound in zip(problem.objectives, problem.reference, strict=True)
        ]
    client.configure_optimization(
        objective=", ".join(f"-{name}" for name in problem.objectives),
        outcome_constraints=constraints or None,
    )
    _quiet("ax")
    rng = np.random.default_rng(seed + 7919)
    run = Run()
    for index in range(trials):
        started = time.perf_counter()
        ((trial_index, parameters),) = client.get_next_trials(max_trials=1).items()
        elapsed = time.perf_counter() - started
        run.ask_s.append(
            (
                "model" if index >= max(5, 2 * len(problem.bounds)) else "init",
                elapsed,
                None,
            )
        )
        params = {k: float(v) for k, v in parameters.items()}  # type: ignore[arg-type]
        metrics = problem.evaluate(params)
        run.evaluated.append(metrics)
        client.complete_trial(
            trial_index=trial_index, raw_data=noisy(problem, metrics, rng)
        )
    if len(problem.objectives) == 1:
        best, *_ = client.get_best_parameterization()
        run.recommended = [problem.evaluate({k: float(v) for k, v in best.items()})]  # type: ignore[arg-type]
    else:
        front = client.get_pareto_frontier()
        run.recommended = [
            problem.evaluate({k: float(v) for k, v in params.items()})  # type: ignore[arg-type]
            for params, *_ in front
        ]
    return run


def _quiet(prefix: str) -> None:
    """Raises every logger under `prefix` to WARNING (Ax logs each trial)."""
    for name in list(logging.root.manager.loggerDict):
        if name == prefix or name.startswith(prefix + "."):
            logging.getLogger(name).setLevel(logging.WARNING)
