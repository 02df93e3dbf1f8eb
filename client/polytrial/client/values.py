"""Conversions between plain Python values and the API's value messages.

A parameter value is `bool | int | float | str` and keeps its type both ways:
an int range parameter gives `int`, a choice of strings gives `str`. `bool` is
tested before `int` because Python's bools are ints.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from polytrial.v1 import values_pb2

ParameterValue = bool | int | float | str
"""The Python type of one parameter value."""

Parameters = dict[str, ParameterValue]
"""An arm's parameterization: parameter name -> value."""


def to_value_proto(value: object, *, field: str = "value") -> Any:
    """Returns the `ParameterValue` message of a Python value.

    NumPy scalars are accepted through the `numbers` tower.

    Args:
        value: A bool, int, float or str.
        field: Where the value came from, named in the error.

    Raises:
        TypeError: the value is of another type.
    """
    if isinstance(value, bool):
        return values_pb2.ParameterValue(bool_value=value)
    if isinstance(value, numbers.Integral):
        return values_pb2.ParameterValue(int_value=int(value))
    if isinstance(value, numbers.Real):
        return values_pb2.ParameterValue(float_value=float(value))
    if isinstance(value, str):
        return values_pb2.ParameterValue(string_value=value)
    raise TypeError(
        f"{field}: {value!r} is a {type(value).__name__}; parameter values are "
        "bool, int, float or str"
    )


def from_value_proto(message: Any) -> ParameterValue:
    """Returns the Python value of a `ParameterValue` message.

    Raises:
        ValueError: no kind of value is set.
    """
    kind = message.WhichOneof("kind")
    if kind == "bool_value":
        return bool(message.bool_value)
    if kind == "int_value":
        return int(message.int_value)
    if kind == "float_value":
        return float(message.float_value)
    if kind == "string_value":
        return str(message.string_value)
    raise ValueError("a ParameterValue without a value")


def to_parameters_proto(
    parameters: Mapping[str, object], *, field: str = "parameters"
) -> dict[str, Any]:
    """Returns a map of `ParameterValue` messages for a parameterization."""
    return {
        name: to_value_proto(value, field=f"{field}[{name!r}]")
        for name, value in parameters.items()
    }


def from_parameters_proto(parameters: Mapping[str, Any]) -> Parameters:
    """Returns the plain dict of a proto map of `ParameterValue` messages."""
    return {name: from_value_proto(value) for name, value in parameters.items()}


# The deepest nesting of objects and lists a Struct field may hold (the mapping
# itself is level 1). Each level is three protobuf messages, and protobuf's
# parsers stop at 100: the server cannot read a request with deeper properties.
MAX_STRUCT_DEPTH = 32


def to_struct(
    data: Mapping[str, Any], *, field: str = "properties"
) -> struct_pb2.Struct:
    """Returns a `google.protobuf.Struct` holding a JSON-like mapping.

    Args:
        data: String keys; values None, bool, int, float, str, lists or tuples,
            and mappings of the same, at most `MAX_STRUCT_DEPTH` levels deep.
        field: The argument's name, used in errors (`properties['a']`).

    Raises:
        TypeError: a key is not a str, or a value is of another type; the
            message names its path.
        ValueError: the data nests deeper than `MAX_STRUCT_DEPTH` levels.
    """
    _check_json(data, field, 1)
    struct = struct_pb2.Struct()
    struct.update(dict(data))
    return struct


def _check_json(value: object, path: str, depth: int) -> None:
    if value is None or isinstance(value, bool | str | int | float):
        return
    if not isinstance(value, Mapping | list | tuple):
        raise TypeError(
            f"{path} is a {type(value).__name__}; JSON values are None, bool, "
            "int, float, str, lists and dicts with str keys"
        )
    if depth > MAX_STRUCT_DEPTH:
        raise ValueError(
            f"{path} nests more than {MAX_STRUCT_DEPTH} levels of dicts and lists"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{path} has the key {key!r}, a {type(key).__name__}; JSON "
                    "object keys are str"
                )
            _check_json(item, f"{path}[{key!r}]", depth + 1)
    else:
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Returns a JSON-like dict of a `google.protobuf.Struct`.

    Numbers come back as floats: `Struct` has no integer type.
    """
    result: dict[str, Any] = json_format.MessageToDict(struct)
    return result


def from_timestamp(message: Any, field: str) -> datetime | None:
    """Returns a UTC datetime of a timestamp field, or None when it is unset."""
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment
