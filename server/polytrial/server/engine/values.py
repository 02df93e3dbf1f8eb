"""Parameter values: conversion between protobuf `ParameterValue` and Python.

Python's `bool` is a subclass of `int`, so every check here tests `bool` first;
otherwise `True` would travel as the integer 1 and come back as the wrong type.
"""

from __future__ import annotations

import math

from polytrial.server.engine.types import ParameterValue
from polytrial.server.errors import InvalidArgument
from polytrial.v1 import values_pb2


def value_from_proto(
    pb: values_pb2.ParameterValue, *, field: str = "value"
) -> ParameterValue:
    """Returns the Python value of a `ParameterValue`.

    Raises:
        InvalidArgument: no kind of value is set (INVALID_ARGUMENT on `field`).
    """
    kind = pb.WhichOneof("kind")
    if kind == "bool_value":
        return bool(pb.bool_value)
    if kind == "int_value":
        return int(pb.int_value)
    if kind == "float_value":
        return float(pb.float_value)
    if kind == "string_value":
        return str(pb.string_value)
    raise InvalidArgument("a parameter value must be set", field=field)


def value_to_proto(value: ParameterValue) -> values_pb2.ParameterValue:
    """Returns the `ParameterValue` holding `value`, keeping its type.

    Raises:
        TypeError: `value` is not a bool, int, float or str.
    """
    if isinstance(value, bool):
        return values_pb2.ParameterValue(bool_value=value)
    if isinstance(value, int):
        return values_pb2.ParameterValue(int_value=value)
    if isinstance(value, float):
        return values_pb2.ParameterValue(float_value=value)
    if isinstance(value, str):
        return values_pb2.ParameterValue(string_value=value)
    raise TypeError(f"unsupported parameter value {value!r} of type {type(value)}")


def value_kind(value: ParameterValue) -> str:
    """Names the kind of a value: "bool", "int", "float" or "str"."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def canonical_float(value: float, digits: int | None) -> str:
    """Formats a float so that values equal under the arm rule format equally.

    Rounds to `digits` decimal digits when given, else to 10 significant digits;
    `-0.0` becomes `0.0` so that the sign of zero never splits an arm.
    """
    if not math.isfinite(value):
        return repr(value)
    text = f"{value:.{digits}f}" if digits is not None else f"{value:.9e}"
    if float(text) == 0.0:
        text = f"{0.0:.{digits}f}" if digits is not None else f"{0.0:.9e}"
    return text
