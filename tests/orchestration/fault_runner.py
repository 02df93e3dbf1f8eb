"""A runner whose jobs go wrong in one chosen way, for the orchestration tests.

    python tests/orchestration/fault_runner.py --mode refuse --address 127.0.0.1:0

Modes:
    refuse          Run refuses every trial (TrialRefused) with a known message.
    no-data         jobs poll COMPLETED at once; FetchTrialData returns nothing.
    unknown-metric  jobs poll COMPLETED; the data is of a metric named
                    `hartmann_six`, which no experiment of the tests names.
    nan             jobs poll COMPLETED; the objective's value is NaN.
    no-poll         PollTrialStatus is not implemented; the data is there at
                    once (hartmann6 = 1.0).
    nan-metadata    Run returns metadata with a NaN field `v`; StopTrial
                    prints `job stopped name=...`.
    run-only        only Run: PollTrialStatus and FetchTrialData are not
                    implemented, so a client must complete the trials.

Prints `listening on HOST:PORT` and `job started name=... key=...` like the
example runners.
"""

from __future__ import annotations

import argparse
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from polytrial.runner import (
    Observation,
    Runner,
    Trial,
    TrialRefused,
    TrialState,
    TrialStatus,
    serve,
)

REFUSAL = "this runner refuses every trial (quota exhausted)"
UNKNOWN_METRIC = "hartmann_six"


class FaultRunner(Runner):
    """Starts no real job; every trial ends the way `mode` says."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(self, trial: Trial, deployment_key: str) -> Mapping[str, Any]:
        if self.mode == "refuse":
            raise TrialRefused(REFUSAL)
        name = f"{trial.experiment_id}-{trial.trial_index}-{uuid.uuid4().hex[:8]}"
        print(f"job started name={name} key={deployment_key}", flush=True)
        if self.mode == "nan-metadata":
            return {"name": name, "v": math.nan}
        return {"name": name}

    def poll(self, trial: Trial) -> TrialStatus:
        return TrialStatus(TrialState.COMPLETED)

    def stop(self, trial: Trial, reason: str) -> Mapping[str, Any] | None:
        if self.mode != "nan-metadata":
            return super().stop(trial, reason)  # UNIMPLEMENTED
        print(f"job stopped name={trial.run_metadata.get('name')}", flush=True)
        return None

    def fetch_data(
        self, trial: Trial, metric_names: Sequence[str]
    ) -> Sequence[Observation]:
        if self.mode == "unknown-metric":
            return [Observation(arm.name, UNKNOWN_METRIC, 1.0) for arm in trial.arms]
        if self.mode == "no-poll":
            return [
                Observation(arm.name, metric, 1.0)
                for arm in trial.arms
                for metric in metric_names
            ]
        if self.mode == "nan":
            return [
                Observation(arm.name, metric, math.nan)
                for arm in trial.arms
                for metric in metric_names
            ]
        return []


class NoPollRunner(FaultRunner):
    """A fault runner with the SDK's default poll, which answers UNIMPLEMENTED."""

    poll = Runner.poll


class RunOnlyRunner(FaultRunner):
    """A fault runner that implements Run alone, as the SDK's minimum."""

    poll = Runner.poll
    fetch_data = Runner.fetch_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:0")
    parser.add_argument(
        "--mode",
        choices=(
            "refuse",
            "no-data",
            "unknown-metric",
            "nan",
            "no-poll",
            "nan-metadata",
            "run-only",
        ),
        required=True,
    )
    args = parser.parse_args()
    kinds = {"no-poll": NoPollRunner, "run-only": RunOnlyRunner}
    runner = kinds.get(args.mode, FaultRunner)
    serve(
        runner(args.mode),
        args.address,
        on_listening=lambda bound: print(f"listening on {bound}", flush=True),
    )


if __name__ == "__main__":
    main()
