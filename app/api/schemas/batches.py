"""Batch request and result bodies: items are validated one by one, never all-or-nothing.

The envelope (`{"items": [...]}`) must be right, or the request is a 422. Each item is then
checked on its own: an item that does not fit its schema becomes a `Rejection` with its
field errors, and the rest of the batch goes on.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field, GetCoreSchemaHandler, ValidationError
from pydantic_core import CoreSchema, core_schema

from app.api.schemas.common import Schema, examples
from app.core.batches import ItemProblem, ItemResult, ItemStatus
from app.core.text import text_problem

# Discriminator tags of item unions; they are not part of the item's field paths.
UNION_TAGS = frozenset({"kairos", "omh", "omh_body"})


@dataclass(frozen=True)
class Rejection:
    """An item that did not fit its schema."""

    client_id: str | None
    problems: list[ItemProblem] = field(default_factory=list)


@dataclass(frozen=True)
class PerItem:
    """Validate a list element as ``model``, turning its errors into a `Rejection`."""

    model: Any

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = handler.generate_schema(self.model)
        return core_schema.no_info_wrap_validator_function(_capture, inner)


def _capture(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
    try:
        return validate(value)
    except ValidationError as exc:
        client_id = value.get("client_id") if isinstance(value, dict) else None
        # Echoed in the result only if it can be: text that is no valid client id (a lone
        # surrogate cannot even be encoded) is left out; its error names the field.
        echo = isinstance(client_id, str) and text_problem(client_id) is None
        return Rejection(
            client_id if echo else None,
            [
                ItemProblem(_path(e["loc"]), e["msg"])
                for e in exc.errors(include_url=False, include_input=False)
            ],
        )


def _path(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in UNION_TAGS:
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


class ItemErrorOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"field": "body.items[3].answers.pain", "message": "11 is outside 0..10"}
        )
    )

    field: str = Field(description="Where in the request the problem is.")
    message: str = Field(description="Why the item was rejected.")


class SafetyResponseOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {"text": "If you are in danger now, call or text 988 (24/7).", "link": "tel:988"}
        )
    )

    text: str = Field(description="What to show the participant.")
    link: str | None = Field(None, description="An https:// page or tel: number to offer.")


class ItemResultOut(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "index": 0,
                "client_id": "5f0c6d1e-8a4b-4c59-9e0f-1b2c3d4e5f60",
                "status": "accepted",
                "id": "019a8b5e-6f7a-7b8c-9d0e-1f2a3b4c5d6e",
                "late": False,
            },
            {
                "index": 3,
                "client_id": "5f0c6d1e-8a4b-4c59-9e0f-1b2c3d4e5f63",
                "status": "rejected",
                "errors": [
                    {"field": "body.items[3].answers.pain", "message": "11 is outside 0..10"}
                ],
            },
        )
    )

    index: int = Field(description="Position of the item in the request's `items`.")
    client_id: str | None = Field(description="The item's client id, as sent.")
    status: ItemStatus = Field(
        description="accepted: stored now. duplicate: already stored (same client id, or the "
        "same value for the same period); nothing changed. rejected: not stored; see errors."
    )
    id: uuid.UUID | None = Field(None, description="The stored record (accepted or duplicate).")
    errors: list[ItemErrorOut] | None = Field(None, description="Why it was rejected.")
    late: bool | None = Field(
        None, description="EMA responses: answered after the prompt expired (kept, marked late)."
    )
    replaced: bool | None = Field(
        None, description="Wearable summaries: an earlier value for the same period was replaced."
    )
    safety_response: SafetyResponseOut | None = Field(
        None,
        description="EMA responses: an answer raised a crisis alert whose protocol declares a "
        "safety response; show its text (and link) to the participant now.",
    )


class BatchResult(Schema):
    model_config = ConfigDict(
        json_schema_extra=examples(
            {
                "accepted": 1,
                "duplicate": 0,
                "rejected": 1,
                "items": ItemResultOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
            }
        )
    )

    accepted: int = Field(description="How many items were stored now.")
    duplicate: int = Field(description="How many were already stored.")
    rejected: int = Field(description="How many were refused (see their errors).")
    items: list[ItemResultOut] = Field(description="One result per item, in request order.")


def batch_result(results: list[ItemResult]) -> BatchResult:
    counts = dict.fromkeys(ItemStatus, 0)
    items = []
    for result in results:
        counts[result.status] += 1
        # Optional fields are set only when they say something (the routes leave unset
        # fields out of the response), so a rejected item has no `late`, and so on.
        extra: dict[str, Any] = {}
        if result.id is not None:
            extra["id"] = result.id
        if result.errors:
            extra["errors"] = [
                ItemErrorOut(field=_item_field(result.index, p.field), message=p.message)
                for p in result.errors
            ]
        if result.late is not None:
            extra["late"] = result.late
        if result.replaced is not None:
            extra["replaced"] = result.replaced
        if result.safety_response is not None:
            extra["safety_response"] = SafetyResponseOut.model_validate(result.safety_response)
        items.append(
            ItemResultOut(
                index=result.index, client_id=result.client_id, status=result.status, **extra
            )
        )
    return BatchResult(
        accepted=counts[ItemStatus.accepted],
        duplicate=counts[ItemStatus.duplicate],
        rejected=counts[ItemStatus.rejected],
        items=items,
    )


def _item_field(index: int, relative: str) -> str:
    base = f"body.items[{index}]"
    if not relative:
        return base
    return f"{base}{relative}" if relative.startswith("[") else f"{base}.{relative}"
