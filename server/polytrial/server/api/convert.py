"""Conversions between API messages and the service layer's records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from polytrial.server import engine, resources
from polytrial.server.engine.types import ParameterValue
from polytrial.server.errors import FieldViolation, InvalidArgument
from polytrial.server.service import ArmResult, ExperimentView
from polytrial.server.storage import ObservationRecord, TrialRecord, TrialStatus
from polytrial.v1 import (
    experiment_pb2,
    result_service_pb2,
    trial_pb2,
    values_pb2,
)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf timestamp of an aware datetime, or None."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A `Struct` of a JSON-able dict."""
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """A JSON-able dict of a `Struct`."""
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def parameters_from_proto(
    parameters: Mapping[str, values_pb2.ParameterValue], *, field: str
) -> dict[str, ParameterValue]:
    """Typed values of a `map<string, ParameterValue>`.

    Raises:
        InvalidArgument: a value has no kind set (INVALID_ARGUMENT).
    """
    result: dict[str, ParameterValue] = {}
    for name, value in parameters.items():
        if value.WhichOneof("kind") is None:
            path = f"{field}.{name}"
            raise InvalidArgument(
                f"{path}: parameter {name!r} has no value set",
                violations=[
                    FieldViolation(path, f"parameter {name!r} has no value set")
                ],
            )
        result[name] = engine.value_from_proto(value)
    return result


def _set_parameters(target: Any, parameters: Mapping[str, ParameterValue]) -> None:
    for name, value in parameters.items():
        target[name].CopyFrom(engine.value_to_proto(value))


def observations_from_proto(
    observations: Any, *, field: str = "observations"
) -> list[ObservationRecord]:
    """Records of `Observation` messages.

    A field that arrived with the wrong wire type (for example a mean sent as
    the string "3.0") lands in the unknown fields and would otherwise read as
    0; such an observation is refused instead.

    Raises:
        InvalidArgument: an observation carries fields this server cannot read
            (INVALID_ARGUMENT).
    """
    records = []
    for i, obs in enumerate(observations):
        if _has_unknown_fields(obs):
            raise InvalidArgument(
                f"arm {obs.arm_name!r}, metric {obs.metric_name!r}: observation has "
                "fields of the wrong type or unknown fields (is mean a number?)",
                field=f"{field}[{i}].mean",
            )
        records.append(
            ObservationRecord(
                arm_name=obs.arm_name,
                metric_name=obs.metric_name,
                mean=obs.mean,
                sem=obs.sem if obs.HasField("sem") else None,
                step=obs.step if obs.HasField("step") else None,
            )
        )
    return records


def _has_unknown_fields(message: Message) -> bool:
    return len(UnknownFieldSet(message)) > 0


def observation_to_proto(record: ObservationRecord) -> values_pb2.Observation:
    """An `Observation` of a record."""
    message = values_pb2.Observation(
        arm_name=record.arm_name, metric_name=record.metric_name, mean=record.mean
    )
    if record.sem is not None:
        message.sem = record.sem
    if record.step is not None:
        message.step = record.step
    return message


def statuses_from_proto(values: Any) -> list[TrialStatus]:
    """Trial statuses of a list filter; UNSPECIFIED anywhere means any status.

    Raises:
        InvalidArgument: an unknown enum number (INVALID_ARGUMENT).
    """
    statuses = []
    for i, value in enumerate(values):
        if value == trial_pb2.TRIAL_STATUS_UNSPECIFIED:
            return []
        if value not in trial_pb2.TrialStatus.values():
            raise InvalidArgument(
                f"unknown trial status {value}", field=f"statuses[{i}]"
            )
        name = trial_pb2.TrialStatus.Name(value).removeprefix("TRIAL_STATUS_")
        statuses.append(TrialStatus[name])
    return statuses


def trial_to_proto(record: TrialRecord) -> trial_pb2.Trial:
    """A `Trial` of a record."""
    trial = trial_pb2.Trial(
        name=resources.trial_name(record.experiment_id, record.index),
        index=record.index,
        is_batch=record.is_batch,
        status=trial_pb2.TrialStatus.Value(f"TRIAL_STATUS_{record.status.value}"),
        deployed_name=record.deployed_name,
        status_reason=record.status_reason,
        deployment_error=record.deployment_error,
        missing_metrics=record.missing_metrics,
    )
    for arm in record.arms:
        trial_arm = trial.arms.add(weight=arm.weight)
        trial_arm.arm.name = arm.name
        _set_parameters(trial_arm.arm.parameters, arm.parameters)
    if record.run_metadata:
        trial.run_metadata.CopyFrom(struct(record.run_metadata))
    trial.generation.generator = record.generator
    trial.generation.num_observations = record.num_observations
    if record.generation_details:
        trial.generation.details.CopyFrom(struct(record.generation_details))
    trial.observations.extend(observation_to_proto(o) for o in record.observations)
    for field_name, value in (
        ("create_time", record.create_time),
        ("stage_time", record.stage_time),
        ("run_time", record.run_time),
        ("end_time", record.end_time),
        ("expire_time", record.expire_time),
    ):
        stamp = timestamp(value)
        if stamp is not None:
            getattr(trial, field_name).CopyFrom(stamp)
    if record.runner is not None:
        trial.runner.ParseFromString(record.runner)
    return trial


def experiment_to_proto(view: ExperimentView) -> experiment_pb2.Experiment:
    """An `Experiment` of a stored experiment and its configuration."""
    record = view.record
    experiment = experiment_pb2.Experiment()
    experiment.CopyFrom(view.config.message)
    experiment.name = resources.experiment_name(record.experiment_id)
    experiment.experiment_id = record.experiment_id
    experiment.description = record.description
    if record.properties:
        experiment.properties.CopyFrom(struct(record.properties))
    for field_name, value in (
        ("create_time", record.create_time),
        ("update_time", record.update_time),
    ):
        stamp = timestamp(value)
        if stamp is not None:
            getattr(experiment, field_name).CopyFrom(stamp)
    for status, count in record.trial_counts.items():
        experiment.trial_counts[status] = count
    return experiment


def arm_result_to_proto(result: ArmResult) -> result_service_pb2.ArmResult:
    """An `ArmResult` of a pooled arm."""
    message = result_service_pb2.ArmResult(trial_indices=result.trial_indices)
    message.arm.name = result.arm_name
    _set_parameters(message.arm.parameters, result.parameters)
    for summary in result.metrics.values():
        metric = message.metrics.add(
            metric_name=summary.metric_name, mean=summary.mean, count=summary.count
        )
        if summary.sem is not None:
            metric.sem = summary.sem
    return message
