"""Experiment semantics: create, read, list, update and delete."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2
from polytrial.server import resources
from polytrial.server.errors import InvalidArgument
from polytrial.server.service.config import (
    ExperimentConfig,
    load_config,
    parse_new_config,
)
from polytrial.server.service.paging import (
    M,
    decode_token,
    encode_token,
    fit_page,
    page_size,
)
from polytrial.server.storage import Database, ExperimentRecord, Repository
from polytrial.v1 import experiment_pb2

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_UPDATABLE = ("description", "properties")
# Service limit on `Experiment.description` (characters), as documented on the
# field: every Get and List page carries it.
MAX_DESCRIPTION_CHARS = 16 * 1024
# Service limit on `Experiment.properties` (serialized bytes), as documented on
# the field. Every Get and List page carries them too; with the configuration
# and description limits it keeps one experiment within one List page.
MAX_PROPERTIES_BYTES = 64 * 1024
# Service limit on how deeply `Experiment.properties` nest (the Struct itself
# is level 1). Each level is three protobuf messages and parsers stop at 100,
# so deeper properties would be a request or a stored row some clients cannot
# read; the Python client refuses them before sending.
MAX_PROPERTIES_DEPTH = 32


def check_description(description: str, *, field: str) -> str:
    """Refuses a description longer than `MAX_DESCRIPTION_CHARS`.

    Raises:
        InvalidArgument: the description is too long (INVALID_ARGUMENT).
    """
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(
            f"description has {len(description)} characters; at most "
            f"{MAX_DESCRIPTION_CHARS} are allowed",
            field=field,
        )
    return description


def properties_dict(properties: struct_pb2.Struct, *, field: str) -> dict[str, Any]:
    """The JSON-able dict of `properties`, refusing oversize ones and NaN.

    JSON has no NaN or infinity, so such a value could not be stored.

    Raises:
        InvalidArgument: the properties are larger than `MAX_PROPERTIES_BYTES`
            serialized or nest deeper than `MAX_PROPERTIES_DEPTH` levels
            (INVALID_ARGUMENT, reason LIMIT_EXCEEDED), or a number is NaN or
            infinite; the field path names its key (INVALID_ARGUMENT).
    """
    size = properties.ByteSize()
    if size > MAX_PROPERTIES_BYTES:
        raise InvalidArgument(
            f"properties are {size:,} bytes serialized; at most "
            f"{MAX_PROPERTIES_BYTES:,} (64 KiB) are allowed",
            field=field,
            reason="LIMIT_EXCEEDED",
        )
    for key, value in properties.fields.items():
        _check_json_value(value, f"{field}.{key}", 2)
    result: dict[str, Any] = json_format.MessageToDict(properties)
    return result


def _check_json_value(value: struct_pb2.Value, path: str, depth: int) -> None:
    """Refuses NaN, infinities and nesting past `MAX_PROPERTIES_DEPTH`.

    `depth` is the level an object or list at `path` would be.
    """
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        raise InvalidArgument(
            f"properties hold JSON, which has no {value.number_value}", field=path
        )
    if kind in ("struct_value", "list_value") and depth > MAX_PROPERTIES_DEPTH:
        raise InvalidArgument(
            f"properties nest more than {MAX_PROPERTIES_DEPTH} levels of objects "
            "and lists",
            field=path,
            reason="LIMIT_EXCEEDED",
        )
    if kind == "struct_value":
        for key, item in value.struct_value.fields.items():
            _check_json_value(item, f"{path}.{key}", depth + 1)
    if kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            _check_json_value(item, f"{path}[{i}]", depth + 1)


DeleteCheck = Callable[[Repository, str], None]
"""Called with the repository and the experiment id before a delete; raises to
refuse it."""


@dataclass(frozen=True)
class ExperimentView:
    """A stored experiment with its parsed configuration."""

    record: ExperimentRecord
    config: ExperimentConfig


class Experiments:
    """Creates, reads, lists, updates and deletes experiments.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, experiment: experiment_pb2.Experiment) -> ExperimentView:
        """Validates and stores a new experiment.

        Raises:
            InvalidArgument: the id or any part of the configuration is invalid;
                nothing is stored (INVALID_ARGUMENT).
            AlreadyExists: the id is taken (ALREADY_EXISTS).
        """
        experiment_id = resources.validate_experiment_id(
            experiment.experiment_id, field="experiment.experiment_id"
        )
        description = check_description(
            experiment.description, field="experiment.description"
        )
        properties = properties_dict(
            experiment.properties, field="experiment.properties"
        )
        config_bytes, config = parse_new_config(experiment)
        now = datetime.now(UTC)
        record = ExperimentRecord(
            experiment_id=experiment_id,
            config=config_bytes,
            description=description,
            properties=properties,
            create_time=now,
            update_time=now,
        )
        stored = self.db.run(lambda repo: repo.add_experiment(record))
        logger.info(
            "experiment %s created (%d parameters, objectives %s, strategy %s seed %d)",
            experiment_id,
            len(config.search_space.parameters),
            ",".join(config.objective_names),
            config.strategy.kind.value,
            config.strategy.seed,
        )
        logger.debug("experiment %s configuration: %s", experiment_id, config.message)
        return ExperimentView(stored, config)

    def get(self, experiment_id: str) -> ExperimentView:
        """Returns one experiment.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
        """
        record = self.db.run(
            lambda repo: repo.get_experiment(experiment_id), write=False
        )
        return ExperimentView(record, load_config(record))

    def list_page(
        self, *, size: int, token: str, convert: Callable[[ExperimentView], M]
    ) -> tuple[list[M], str]:
        """Returns one page of experiments in creation order, and the next token.

        The page ends early when its messages would pass the byte budget of
        `paging.PAGE_BUDGET_BYTES`.

        Args:
            size: The requested page size (0: the default).
            token: The page token (empty: the first page).
            convert: Makes an experiment's response message.

        Raises:
            InvalidArgument: negative page size or a foreign token
                (INVALID_ARGUMENT).
        """
        limit = page_size(size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        after = decode_token(token, "experiments") or 0

        def work(repo: Repository) -> list[ExperimentRecord]:
            # One extra row tells whether another page follows.
            return repo.list_experiments(after_seq=after, limit=limit + 1)

        records = self.db.run(work, write=False)
        page, more = fit_page(
            records[:limit],
            lambda r: convert(ExperimentView(r, load_config(r))),
            more=len(records) > limit,
        )
        last = records[len(page) - 1] if page else None
        next_token = encode_token("experiments", last.seq) if more and last else ""
        return page, next_token

    def update(
        self,
        experiment_id: str,
        *,
        description: str,
        properties: dict[str, Any],
        paths: list[str],
    ) -> ExperimentView:
        """Changes the description and/or properties named by `paths`.

        Args:
            experiment_id: The experiment.
            description: The new description.
            properties: The new properties.
            paths: Field mask paths; empty means both fields.

        Raises:
            InvalidArgument: the mask names another field, or the description
                is too long (INVALID_ARGUMENT).
            NotFound: no such experiment (NOT_FOUND).
        """
        for path in paths:
            if path not in _UPDATABLE:
                raise InvalidArgument(
                    f"field {path!r} cannot be updated; updatable fields: "
                    f"{', '.join(_UPDATABLE)}",
                    field="update_mask",
                )
        wanted = set(paths or _UPDATABLE)
        if "description" in wanted:
            check_description(description, field="experiment.description")
        now = datetime.now(UTC)
        record = self.db.run(
            lambda repo: repo.update_experiment(
                experiment_id,
                now=now,
                description=description if "description" in wanted else None,
                properties=properties if "properties" in wanted else None,
            )
        )
        logger.info(
            "experiment %s updated (%s)", experiment_id, ", ".join(sorted(wanted))
        )
        return ExperimentView(record, load_config(record))

    def delete(self, experiment_id: str, *, check: DeleteCheck | None = None) -> None:
        """Deletes an experiment with its trials and data.

        Args:
            experiment_id: The experiment.
            check: Refuses the delete by raising; it runs in the delete's
                transaction, after the experiment's row is locked, so that
                what it checked still holds when the rows go.

        Raises:
            NotFound: no such experiment (NOT_FOUND).
            PolytrialError: whatever `check` raised; nothing is deleted.
        """

        def work(repo: Repository) -> None:
            guard = None if check is None else lambda: check(repo, experiment_id)
            repo.delete_experiment(experiment_id, check=guard)

        self.db.run(work)
        logger.info("experiment %s deleted", experiment_id)
