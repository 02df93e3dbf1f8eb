"""Page sizes and opaque page tokens of the List methods.

A token is URL-safe base64 of a small JSON object naming the list it belongs
to, a short digest of the request fields that define the list (the parent and
the filter), and the cursor after which the next page starts (an experiment's
creation sequence number or a trial index). Clients must treat it as opaque; a
token used with other request fields is refused (AIP-158). Tokens are not
signed: a crafted token can only name another starting point of a list the
caller may read anyway.

A page also ends early, with a token, when it would pass `PAGE_BUDGET_BYTES`,
so a response stays under the 4 MiB that gRPC clients accept by default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from google.protobuf.message import Message
from polytrial.server.errors import InvalidArgument

# Cursors are stored as signed 64-bit integers.
_MAX_CURSOR = 2**63 - 1
# Serialized bytes of the items of one List page, past which the page ends
# early (at least one item is always returned).
PAGE_BUDGET_BYTES = 3 * 1024 * 1024
_FOREIGN = "page_token is not a token from a previous page of this list"

M = TypeVar("M", bound=Message)
R = TypeVar("R")


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


def _digest(scope: Sequence[str]) -> str:
    return hashlib.sha256("\0".join(scope).encode()).hexdigest()[:12]


def encode_token(kind: str, cursor: int, scope: Sequence[str] = ()) -> str:
    """Makes the token of the page that starts after `cursor`.

    Args:
        kind: The kind of list ("experiments", "trials").
        cursor: The cursor of the last item of the page.
        scope: The request fields that define the list (parent, filter).
    """
    data = {"k": kind, "s": _digest(scope), "c": cursor}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, scope: Sequence[str] = ()) -> int | None:
    """Returns the cursor of `token`, or None for the first page.

    Raises:
        InvalidArgument: the token was not made by `encode_token` for this
            kind of list, has a cursor out of range, or was made for other
            request fields (`scope`) (INVALID_ARGUMENT).
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = data["c"]
        # bool is an int to Python but not a cursor.
        if (
            data["k"] != kind
            or type(cursor) is not int
            or not 0 <= cursor <= _MAX_CURSOR
            or not isinstance(data["s"], str)
        ):
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidArgument(_FOREIGN, field="page_token") from exc
    if data["s"] != _digest(scope):
        raise InvalidArgument(
            "page_token was made for a request with other fields (parent or "
            "filter); send the same fields with a page token, or none",
            field="page_token",
        )
    return cursor


def fit_page(
    items: Sequence[R], convert: Callable[[R], M], *, more: bool
) -> tuple[list[M], bool]:
    """Converts `items` until the page would pass `PAGE_BUDGET_BYTES`.

    Args:
        items: The page's items, in order.
        convert: Makes an item's response message.
        more: Whether items follow `items` in the list.

    Returns:
        The messages that fit (at least one), and whether items follow them.
    """
    page: list[M] = []
    total = 0
    for item in items:
        message = convert(item)
        total += message.ByteSize()
        if page and total > PAGE_BUDGET_BYTES:
            return page, True
        page.append(message)
    return page, more
