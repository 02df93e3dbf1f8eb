"""What the server sends runners and reads back, built from stored records."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2
from polytrial.server import engine
from polytrial.server.errors import (
    FailedPrecondition,
    ViolationCollector,
)
from polytrial.server.runners.client import DEFAULT_TIMEOUT_S, RunnerTarget
from polytrial.server.service.config import (
    ExperimentConfig,
    add_runner_config_violations,
)
from polytrial.server.storage import ExperimentRecord, ObservationRecord, TrialRecord
from polytrial.v1 import experiment_pb2, values_pb2
from polytrial.v1 import runner_service_pb2 as pb

logger = logging.getLogger(__name__)

# Run metadata is stored with the trial and sent back with every call, so it
# is kept small: 64 KiB serialized. A runner's gRPC server takes 4 MiB by
# default, so a request echoing metadata within this limit always arrives.
MAX_RUN_METADATA_BYTES = 64 * 1024


def cap_metadata(
    metadata: Mapping[str, Any], *, keep: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Returns `keep` plus the fields of `metadata` that fit the metadata limit.

    Fields are taken whole, `name` first and then in order, while the
    serialized size stays within `MAX_RUN_METADATA_BYTES`; a field of
    `metadata` replaces the one of `keep` with its name only if it fits. A
    `Struct`'s size is the sum of its fields' sizes, so each field is
    measured alone.

    Args:
        metadata: Fields to add.
        keep: Fields kept whatever their size (the trial's stored metadata,
            already within the limit).

    Returns:
        The merged fields and the names of the fields of `metadata` dropped.
    """
    merged = dict(keep or {})
    size = sum(_field_size(name, value) for name, value in merged.items())
    dropped: list[str] = []
    order = sorted(metadata, key=lambda name: name != "name")  # stable
    for name in order:
        added = _field_size(name, metadata[name])
        replaced = _field_size(name, merged[name]) if name in merged else 0
        if size - replaced + added > MAX_RUN_METADATA_BYTES:
            dropped.append(name)
            continue
        merged[name] = metadata[name]
        size += added - replaced
    return merged, dropped


def _field_size(name: str, value: Any) -> int:
    message = struct_pb2.Struct()
    message.update({name: value})
    return int(message.ByteSize())


def deployment_key(experiment: ExperimentRecord, trial_index: int) -> str:
    """Returns the key every Run of one trial carries.

    It is derived from the experiment's identity (id, creation time and row
    sequence) and the trial index, so every attempt at one trial, retries and
    later DeployTrial calls alike, carries the same key and a runner starts at
    most one job for it, while a trial of an experiment deleted and created
    again under the same id gets a new one.
    """
    created = experiment.create_time.isoformat() if experiment.create_time else ""
    identity = f"{experiment.experiment_id}\0{experiment.seq}\0{created}\0{trial_index}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"{experiment.experiment_id}-{trial_index}-{digest}"


def check_runner_config(config: experiment_pb2.RunnerConfig, *, field: str) -> None:
    """Refuses a runner config without a valid address or with a bad timeout.

    Raises:
        InvalidArgument: the address is empty or the timeout is not a positive
            finite number of seconds (INVALID_ARGUMENT).
    """
    collector = ViolationCollector()
    add_runner_config_violations(config, field=field, collector=collector)
    collector.raise_if_any()


def runner_target(config: ExperimentConfig, trial: TrialRecord) -> RunnerTarget:
    """Returns the trial's runner: its own override, else the experiment's.

    Raises:
        FailedPrecondition: neither the trial nor the experiment names a runner
            (FAILED_PRECONDITION).
    """
    runner = experiment_pb2.RunnerConfig()
    if trial.runner:
        runner.ParseFromString(trial.runner)
    elif config.message.HasField("runner"):
        runner.CopyFrom(config.message.runner)
    else:
        raise FailedPrecondition(
            f"trial {trial.index} of experiments/{trial.experiment_id} has no "
            "runner: the experiment names none and DeployTrial passed none",
            reason="NO_RUNNER",
        )
    timeout_s = runner.timeout_s if runner.HasField("timeout_s") else DEFAULT_TIMEOUT_S
    return RunnerTarget(runner.address, timeout_s)


def metric_names(config: ExperimentConfig) -> list[str]:
    """Every metric the experiment names, sorted."""
    return sorted(config.optimization.metric_names)


def runner_trial(config: ExperimentConfig, trial: TrialRecord) -> pb.RunnerTrial:
    """Returns the trial as runners see it, with its stored run metadata."""
    message = pb.RunnerTrial(
        experiment_id=trial.experiment_id,
        trial_index=trial.index,
        kind=pb.TRIAL_KIND_BATCH if trial.is_batch else pb.TRIAL_KIND_SINGLE_ARM,
        metric_names=metric_names(config),
    )
    for arm in trial.arms:
        runner_arm = message.arms.add(name=arm.name, weight=arm.weight)
        for name, value in arm.parameters.items():
            runner_arm.parameters[name].CopyFrom(engine.value_to_proto(value))
    if trial.run_metadata:
        message.run_metadata.update(trial.run_metadata)
    return message


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON-able dict of a `Struct` (numbers come back as floats).

    Raises:
        ValueError: a number is NaN or infinite; read a runner's `Struct`
            with `read_metadata`, which never raises.
    """
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


@dataclass(frozen=True)
class RunnerMetadata:
    """Run metadata a runner returned (from Run or StopTrial), read as JSON.

    Attributes:
        fields: The top-level fields JSON can represent, as a dict.
        problems: Each value JSON cannot represent (NaN or an infinity) and
            where it is, for example "NaN at 'v'"; its top-level field is
            left out of `fields`.
    """

    fields: dict[str, Any]
    problems: tuple[str, ...] = ()

    def describe_problems(self, most: int = 3) -> str:
        """The first `most` problems, and how many more there are."""
        shown = ", ".join(self.problems[:most])
        more = len(self.problems) - most
        return f"{shown} and {more} more" if more > 0 else shown


def read_metadata(message: struct_pb2.Struct) -> RunnerMetadata:
    """Reads a runner's metadata, setting aside fields JSON cannot hold.

    A `Struct` carries any double, but run metadata is stored as JSON and sent
    back to runners, and JSON has no NaN or infinity: converting one raises,
    so every `Struct` a runner returns goes through here.
    """
    representable = struct_pb2.Struct()
    problems: list[str] = []
    for name in sorted(message.fields):
        found = _non_finite(message.fields[name], name)
        if found:
            problems.extend(found)
        else:
            representable.fields[name].CopyFrom(message.fields[name])
    return RunnerMetadata(struct_to_dict(representable), tuple(problems))


def _non_finite(value: struct_pb2.Value, path: str) -> list[str]:
    """Where `value` holds NaN or an infinity; `path` names it ("a.b[2]")."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number):
            return []
        what = "NaN" if math.isnan(number) else f"{'-' if number < 0 else ''}Infinity"
        return [f"{what} at '{path}'"]
    if kind == "struct_value":
        fields = value.struct_value.fields
        return [
            problem
            for name in sorted(fields)
            for problem in _non_finite(fields[name], f"{path}.{name}")
        ]
    if kind == "list_value":
        return [
            problem
            for position, item in enumerate(value.list_value.values)
            for problem in _non_finite(item, f"{path}[{position}]")
        ]
    return []


def observation_records(
    observations: Iterable[values_pb2.Observation],
) -> list[ObservationRecord]:
    """Returns fetched observations as records (checked later, before storing)."""
    return [
        ObservationRecord(
            arm_name=obs.arm_name,
            metric_name=obs.metric_name,
            mean=obs.mean,
            sem=obs.sem if obs.HasField("sem") else None,
            step=obs.step if obs.HasField("step") else None,
        )
        for obs in observations
    ]


def new_observations(
    trial: TrialRecord, fetched: Sequence[ObservationRecord]
) -> list[ObservationRecord]:
    """Returns the fetched observations the trial does not hold yet.

    An observation is the same when arm, metric and step match: a runner
    answers every fetch with everything it has, so repeats of stored data
    are the rule. Repeats within `fetched` are all kept, for the caller to
    refuse.
    """
    held = {(o.arm_name, o.metric_name, o.step) for o in trial.observations}
    return [o for o in fetched if (o.arm_name, o.metric_name, o.step) not in held]
