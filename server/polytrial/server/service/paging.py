"""Page sizes and opaque page tokens of the List methods.

A token is URL-safe base64 of a small JSON object naming the list it belongs
to and the cursor after which the next page starts (an experiment's creation
sequence number or a trial index). Clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json

from polytrial.server.errors import InvalidArgument


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """Returns the effective page size: 0 means `default`, capped at `maximum`.

    Raises:
        InvalidArgument: `requested` is negative (INVALID_ARGUMENT).
    """
    if requested < 0:
        raise InvalidArgument(
            f"page_size must not be negative, got {requested}", field="page_size"
        )
    return min(requested or default, maximum)


def encode_token(kind: str, cursor: int) -> str:
    """Makes the token of the page that starts after `cursor`."""
    raw = json.dumps({"k": kind, "c": cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str) -> int | None:
    """Returns the cursor of `token`, or None for the first page.

    Raises:
        InvalidArgument: the token was not made by `encode_token` for this
            kind of list (INVALID_ARGUMENT).
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["k"] != kind or not isinstance(data["c"], int):
            raise ValueError(kind)
        return int(data["c"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidArgument(
            "page_token is not a token from a previous page of this list",
            field="page_token",
        ) from exc
