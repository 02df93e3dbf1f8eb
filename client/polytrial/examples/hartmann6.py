"""Minimizes the six-dimensional Hartmann function through a real Polytrial server.

    python -m polytrial.examples.hartmann6 --trials 30

Starts `polytrial serve` on the SQLite file `./.polytrial/demo.db` (or uses the
server at `--address`), creates an experiment with six float parameters in
[0, 1], and runs the synchronous loop: the server suggests (Sobol first, then
Bayesian optimization once it has enough data), this process evaluates
Hartmann6 and reports back. Progress is a live table; at the end the best arm
and its regret against the known minimum are printed and the server is
stopped. The database stays, so the experiment can be inspected afterwards.

Hartmann6 (Dixon and Szegő, 1978; the form in Surjanovic and Bingham's
"Virtual Library of Simulation Experiments"):

    f(x) = -sum_i alpha_i * exp(-sum_j A_ij * (x_j - P_ij)^2),  x in [0, 1]^6

with global minimum f* = -3.32237 at
x* = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from polytrial.client import (
    ArmResult,
    Client,
    GenerationStrategy,
    OptimizationSummary,
    Parameters,
    RangeParameter,
    RetryPolicy,
    TrialOutcome,
    TrialStatus,
)
from polytrial.examples.local_server import local_server
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

logger = logging.getLogger(__name__)

METRIC = "hartmann6"
HARTMANN6_MINIMUM = -3.32237
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
PARAMETER_NAMES = tuple(f"x{j}" for j in range(1, 7))

_ALPHA = (1.0, 1.2, 3.0, 3.2)
_A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)

_TABLE_ROWS = 15
"""Most recent trials shown in the live table (the rest scroll away)."""


def hartmann6(x: Sequence[float]) -> float:
    """The Hartmann6 function at a point of [0, 1]^6 (see the module docstring).

    Raises:
        ValueError: `x` does not have six coordinates.
    """
    if len(x) != 6:
        raise ValueError(f"Hartmann6 takes 6 coordinates, not {len(x)}")
    total = 0.0
    for alpha, a_row, p_row in zip(_ALPHA, _A, _P, strict=True):
        exponent = sum(
            a * (xj - p) ** 2 for a, xj, p in zip(a_row, x, p_row, strict=True)
        )
        total -= alpha * math.exp(-exponent)
    return total


def evaluate(parameters: Parameters) -> float:
    """The evaluation function of the loop: Hartmann6 of x1..x6."""
    return hartmann6([float(parameters[name]) for name in PARAMETER_NAMES])


def create_experiment(client: Client, experiment_id: str, seed: int | None) -> None:
    """Creates the Hartmann6 experiment with the default generation strategy."""
    client.create_experiment(
        experiment_id,
        description="Minimize the 6-d Hartmann function (polytrial.examples).",
        parameters=[RangeParameter(name, 0.0, 1.0) for name in PARAMETER_NAMES],
        objectives={METRIC: "minimize"},
        generation_strategy=GenerationStrategy(seed=seed) if seed is not None else None,
        properties={"example": "hartmann6", "known_minimum": HARTMANN6_MINIMUM},
    )


class ProgressView:
    """The run as it goes: a live progress bar over a table of recent trials.

    Without a terminal (CI logs, a pipe) a live view would draw only once at
    the end, so it prints one plain line per trial instead.
    """

    def __init__(self, console: Console, num_trials: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]Hartmann6"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("trials", total=num_trials, best="-")
        self.outcomes: list[TrialOutcome] = []
        self.live: Live | None = None
        if console.is_terminal:
            self.live = Live(self._render(), console=console, refresh_per_second=8)

    def __enter__(self) -> ProgressView:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def on_trial(self, outcome: TrialOutcome) -> None:
        """The loop's progress callback: records the trial and redraws."""
        self.outcomes.append(outcome)
        best = f"{outcome.best_value:.5f}" if outcome.best_value is not None else "-"
        self.progress.update(self.task, advance=1, best=best)
        if self.live is not None:
            self.live.update(self._render())
        else:
            self.console.print(_plain_line(outcome), highlight=False)

    def _render(self) -> Group:
        table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("trial", justify="right", no_wrap=True)
        table.add_column("generator", no_wrap=True)
        table.add_column(METRIC, justify="right", no_wrap=True)
        table.add_column("best", justify="right", no_wrap=True)
        table.add_column("x1 .. x6", no_wrap=True)
        shown = self.outcomes[-_TABLE_ROWS:]
        before = self.outcomes[: len(self.outcomes) - len(shown)]
        previous_best = before[-1].best_value if before else None
        for outcome in shown:
            improved = outcome.best_value is not None and (
                previous_best is None or outcome.best_value < previous_best
            )
            previous_best = outcome.best_value
            table.add_row(
                str(outcome.index),
                outcome.generator or "?",
                _value_text(outcome, markup=True),
                _number(outcome.best_value),
                " ".join(
                    f"{float(outcome.parameters[n]):.2f}" for n in PARAMETER_NAMES
                ),
                style="green" if improved else None,
            )
        return Group(self.progress, table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def _value_text(outcome: TrialOutcome, *, markup: bool = False) -> str:
    if outcome.status is TrialStatus.COMPLETED and outcome.objective_value is not None:
        return f"{outcome.objective_value:.5f}"
    text = outcome.status.value + (f" ({outcome.reason})" if outcome.reason else "")
    return f"[red]{text}[/red]" if markup else text


def _plain_line(outcome: TrialOutcome) -> str:
    return (
        f"trial {outcome.index:>3}  {outcome.generator or '?':<8}  "
        f"{METRIC} {_value_text(outcome):>10}  best {_number(outcome.best_value)}"
    )


def best_arm_panel(
    best: ArmResult, header: Sequence[tuple[str, str]]
) -> tuple[Panel, float]:
    """The best arm's panel (after the `header` rows) and its regret."""
    value = best.metrics[METRIC].mean
    regret = value - HARTMANN6_MINIMUM
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, text in header:
        grid.add_row(label, text)
    grid.add_row(
        "best arm",
        f"{best.arm.name} (trial {', '.join(str(i) for i in best.trial_indices)})",
    )
    for name in PARAMETER_NAMES:
        grid.add_row(f"  {name}", f"{float(best.parameters[name]):.5f}")
    grid.add_row(METRIC, f"{value:.5f}")
    grid.add_row("known minimum", f"{HARTMANN6_MINIMUM:.5f}")
    grid.add_row("regret", f"{regret:.5f}")
    return Panel(grid, title="Best arm", expand=False), regret


def report(console: Console, summary: OptimizationSummary) -> float | None:
    """Prints the best arm and its regret; returns the regret (None: no data)."""
    counts = f"{summary.num_completed} completed, {summary.num_failed} failed"
    if summary.stopped_reason:
        counts += f"; stopped early: {summary.stopped_reason}"
    if summary.best is None:
        console.print(Panel(f"No trial has data yet ({counts}).", title="Best arm"))
        return None

    panel, regret = best_arm_panel(
        summary.best, [("experiment", summary.experiment.name), ("trials", counts)]
    )
    console.print(panel)
    return regret


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the example; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m polytrial.examples.hartmann6",
        description="Minimize Hartmann6 through a Polytrial server.",
    )
    parser.add_argument("--trials", type=int, default=30, help="trials to run")
    parser.add_argument(
        "--address",
        help="use the Polytrial server at this address instead of starting one",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".polytrial"),
        help="where the started server keeps its SQLite file and log",
    )
    parser.add_argument(
        "--experiment-id",
        help="experiment id (default: hartmann6-<date>-<time>)",
    )
    parser.add_argument("--seed", type=int, help="seed of the generation strategy")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")

    console = Console()
    experiment_id = args.experiment_id or time.strftime("hartmann6-%Y%m%d-%H%M%S")
    db_path = args.data_dir / "demo.db"
    server: AbstractContextManager[str]
    if args.address:
        server = nullcontext(args.address)
    else:
        server = local_server(db_path, log_path=args.data_dir / "server.log")
        console.print(
            f"Starting [bold]polytrial serve[/bold] on SQLite file {db_path} "
            f"(log: {args.data_dir / 'server.log'})"
        )

    # Start (or reach) the server, create the experiment, run the loop.
    # A model-based suggestion can take seconds on a busy machine, so the
    # per-call deadline and the retry budget are far above the defaults.
    with (
        server as address,
        Client(
            address, timeout_s=120.0, retry=RetryPolicy(total_timeout_s=600.0)
        ) as client,
    ):
        console.print(f"Server at {address}; experiment [bold]{experiment_id}[/bold]")
        create_experiment(client, experiment_id, args.seed)
        with ProgressView(console, args.trials) as view:
            summary = client.optimize(
                experiment_id, evaluate, num_trials=args.trials, on_trial=view.on_trial
            )
        regret = report(console, summary)

    if not args.address:
        # The command goes on a line of its own, unwrapped, so it can be copied.
        server_bin = Path(sys.executable).with_name("polytrial")
        console.print(
            f"Server stopped. The experiment is stored in {db_path}; to look at "
            "it again, run:",
            highlight=False,
        )
        console.print(
            f"  {server_bin} serve --db sqlite:///{db_path.resolve()}",
            highlight=False,
            soft_wrap=True,
        )
    return 0 if regret is not None else 1


if __name__ == "__main__":
    sys.exit(main())
