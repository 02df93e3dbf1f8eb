"""Checks that what a runner returns as metadata is a JSON object.

Run metadata travels as a protobuf `Struct` and is stored as JSON, so it must
be a dict with string keys whose values are None, bools, numbers, strings,
lists (or tuples) and nested dicts of the same. Anything else (a datetime, a
set, an arbitrary object) is named with its path before the answer is built,
instead of surfacing as protobuf's `ValueError: Unexpected type`.

NaN and infinities are numbers to a `Struct`; the server refuses them with a
reason naming where, so they are not checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SCALARS = (str, int, float)


def metadata_problem(metadata: Any, what: str = "run metadata") -> str | None:
    """Returns why `metadata` cannot be sent as a JSON object, or None if it can.

    Args:
        metadata: What the runner returned; None counts as no metadata.
        what: How the message names the whole value, e.g. "run metadata".

    Returns:
        A sentence naming the first bad field's path and type, or None.
    """
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return f"{what} is {_a(metadata)}, not a dict with string keys"
    return _object_problem(metadata, "", what)


def representable_fields(metadata: Any) -> dict[str, Any]:
    """Returns the top-level fields of `metadata` that JSON can hold."""
    if not isinstance(metadata, Mapping):
        return {}
    return {
        key: value
        for key, value in metadata.items()
        if isinstance(key, str) and _value_problem(value, key, "") is None
    }


def _object_problem(data: Mapping[Any, Any], path: str, what: str) -> str | None:
    for key, value in data.items():
        if not isinstance(key, str):
            where = f"field '{path}'" if path else "a top-level field"
            return (
                f"{what} {where} has the key {key!r} ({_a(key)}); "
                "JSON object keys are strings"
            )
        problem = _value_problem(value, f"{path}.{key}" if path else key, what)
        if problem is not None:
            return problem
    return None


def _value_problem(value: Any, path: str, what: str) -> str | None:
    if value is None or isinstance(value, _SCALARS):
        return None
    if isinstance(value, Mapping):
        return _object_problem(value, path, what)
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _value_problem(item, f"{path}[{index}]", what)
            if problem is not None:
                return problem
        return None
    return f"{what} field '{path}' is {_a(value)}, which JSON cannot hold"


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
