"""Polytrial's BO benchmark: regret and cost against Optuna and Ax, one command.

    python -m benchmarks.bo --profile quick      # 3 seeds, ~20 minutes
    python -m benchmarks.bo --profile full       # 10 seeds (run it in the
                                                 # background: make bench-bo-full)
    python -m benchmarks.bo --methods polytrial --problems branin --seeds 2

Polytrial runs through a real `polytrial serve` subprocess over gRPC; the
peers run in this process with their defaults. Per problem it prints the
median and interquartile range of final simple regret (hypervolume gap for two
objectives), the regret of the recommended arm, and median ask latencies
(end to end, and server-side compute for Polytrial) for the quasi-random and
model phases, then the ratios to the peers. `--large-history` also measures a
BO suggest after 2,000 completed trials in 8 dimensions, and server memory.
Figures from a loaded machine move 3-25x: compare only within one run.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.bo.methods import (
    PolytrialServer,
    Run,
    run_ax,
    run_optuna,
    run_polytrial,
)
from benchmarks.bo.problems import PROBLEMS, Problem

PROFILES = {"quick": 3, "full": 10}
ALL_METHODS = ["polytrial", "optuna-gp", "optuna-tpe", "ax"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints the report; returns the exit status."""
    args = _parse(argv)
    # SIGTERM exits through `finally`, so the server subprocess is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seeds = list(range(args.seeds or PROFILES[args.profile]))
    methods = _available(args.methods)
    results: dict[str, dict[str, list[Run]]] = {}
    server = PolytrialServer() if "polytrial" in methods or args.large_history else None
    try:
        for name in args.problems:
            problem = PROBLEMS[name]
            results[name] = {}
            for method in methods:
                runs = []
                for seed in seeds:
                    started = time.perf_counter()
                    runs.append(_run(method, problem, args.trials, seed, server))
                    print(
                        f"  {name:22s} {method:11s} seed {seed}: regret "
                        f"{problem.regret(runs[-1].evaluated):.4g} "
                        f"({time.perf_counter() - started:.1f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
                results[name][method] = runs
            _report(problem, results[name])
        large = _large_history(server) if args.large_history and server else None
    finally:
        if server:
            server.close()
    if large:
        print("\n2,000 completed trials in 8 dimensions (one BO suggest):")
        for key, value in large.items():
            print(f"  {key}: {value}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(_summary(results, large), out, indent=2)
    return 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--seeds", type=int, default=0, help="overrides the profile")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument(
        "--problems", nargs="+", choices=sorted(PROBLEMS), default=list(PROBLEMS)
    )
    parser.add_argument(
        "--methods", nargs="+", choices=ALL_METHODS, default=ALL_METHODS
    )
    parser.add_argument(
        "--large-history", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument("--json", help="also write the summary to this file")
    return parser.parse_args(argv)


def _available(methods: Sequence[str]) -> list[str]:
    """The requested methods whose packages are installed (the bench extra)."""
    found = []
    for method in methods:
        module = {"optuna-gp": "optuna", "optuna-tpe": "optuna", "ax": "ax"}.get(method)
        if module:
            try:
                __import__(module)
            except ImportError:
                print(f"skipping {method}: install the 'bench' extra", file=sys.stderr)
                continue
        found.append(method)
    return found


def _run(
    method: str,
    problem: Problem,
    trials: int,
    seed: int,
    server: PolytrialServer | None,
) -> Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "polytrial":
            assert server is not None
            return run_polytrial(server, problem, trials, seed)
        if method == "ax":
            return run_ax(problem, trials, seed)
        return run_optuna(problem, trials, seed, method.removeprefix("optuna-"))


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    finite = np.array([v for v in values], dtype=float)
    low, mid, high = np.percentile(finite, [25, 50, 75])
    return float(mid), float(low), float(high)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _phase_ms(
    runs: Sequence[Run],
    phase: str,
    pick: Callable[[tuple[str, float, float | None]], float | None],
) -> float:
    values = [
        v
        for run in runs
        for ask in run.ask_s
        if ask[0] == phase and (v := pick(ask)) is not None
    ]
    return 1000 * _median(values)


def _method_summary(problem: Problem, runs: Sequence[Run]) -> dict[str, Any]:
    final = [problem.regret(run.evaluated) for run in runs]
    recommended = [problem.regret(run.recommended) for run in runs]
    median, low, high = _quartiles(final)
    return {
        "regret_median": median,
        "regret_iqr": [low, high],
        "recommended_regret_median": _median(recommended),
        "init_ask_ms": _phase_ms(runs, "init", lambda a: a[1]),
        "model_ask_ms": _phase_ms(runs, "model", lambda a: a[1]),
        "init_server_ms": _phase_ms(runs, "init", lambda a: a[2]),
        "model_server_ms": _phase_ms(runs, "model", lambda a: a[2]),
    }


def _report(problem: Problem, by_method: dict[str, list[Run]]) -> None:
    kind = "hypervolume gap" if len(problem.objectives) > 1 else "simple regret"
    print(f"\n{problem.name} ({kind}, {len(next(iter(by_method.values())))} seeds)")
    print(
        f"  {'method':11s} {'median':>9s} {'IQR':>21s} {'recommended':>11s} "
        f"{'init ask':>9s} {'model ask':>10s} {'server init':>11s} "
        f"{'server model':>12s}"
    )
    summaries = {m: _method_summary(problem, runs) for m, runs in by_method.items()}
    for method, s in summaries.items():
        low, high = s["regret_iqr"]
        print(
            f"  {method:11s} {s['regret_median']:9.4g} [{low:9.4g}, {high:9.4g}] "
            f"{s['recommended_regret_median']:11.4g} {s['init_ask_ms']:7.1f}ms "
            f"{s['model_ask_ms']:8.1f}ms {s['init_server_ms']:9.1f}ms "
            f"{s['model_server_ms']:10.1f}ms"
        )
    ours = summaries.get("polytrial")
    peers = {m: s for m, s in summaries.items() if m != "polytrial"}
    if ours and peers:
        best_peer = min(peers, key=lambda m: peers[m]["regret_median"])
        ratio = ours["regret_median"] / max(peers[best_peer]["regret_median"], 1e-12)
        print(
            f"  regret vs best peer ({best_peer}): {ratio:.2f}x "
            "(<= 1 is as good or better)"
        )
        for method, s in peers.items():
            cost = s["model_ask_ms"] / max(ours["model_ask_ms"], 1e-9)
            print(f"  model-phase ask: {method} / polytrial = {cost:.2f}x")


def _large_history(server: PolytrialServer) -> dict[str, Any]:
    """One BO suggest after 2,000 completed trials in 8 dimensions."""
    from polytrial.client import GenerationStrategy, RangeParameter

    client = server.client
    experiment_id = f"large-history-{time.time_ns()}"
    client.create_experiment(
        experiment_id,
        parameters=[RangeParameter(f"x{i}", 0.0, 1.0, type="float") for i in range(8)],
        objectives={"y": "minimize"},
        generation_strategy=GenerationStrategy(
            kind="bayesian", num_initial_trials=2000, seed=1
        ),
    )
    rss_before, _ = server.memory_mb()
    for _ in range(20):
        for trial in client.suggest_trials(experiment_id, 100):
            x = np.array([float(v) for v in trial.arm.parameters.values()])
            client.complete_trial(trial, float(np.sum((x - 0.3) ** 2)))
    latencies = []
    record: Any = None
    for _ in range(3):
        started = time.perf_counter()
        trial = client.suggest(experiment_id)
        latencies.append(time.perf_counter() - started)
        record = trial.generation
        client.complete_trial(trial, 0.0)
    rss_after, peak = server.memory_mb()
    client.delete_experiment(experiment_id)
    return {
        "suggest_latency_ms": [round(1000 * s) for s in latencies],
        "generator": record.generator if record else None,
        "history": record.details.get("history") if record else None,
        "server_rss_mb_before": round(rss_before),
        "server_rss_mb_after": round(rss_after),
        "server_peak_rss_mb": round(peak),
    }


def _summary(
    results: dict[str, dict[str, list[Run]]], large: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "problems": {
            name: {
                m: _method_summary(PROBLEMS[name], runs)
                for m, runs in by_method.items()
            }
            for name, by_method in results.items()
        },
        "large_history": large,
    }


if __name__ == "__main__":
    sys.exit(main())
