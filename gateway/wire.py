"""Parsing at the HTTP boundary: bodies into strict models, and list paging parameters."""

from __future__ import annotations

from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.problems import ProblemError

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200


class ParseModel(BaseModel):
    """Base of every request body model: strict, immutable, unknown fields refused."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


ModelT = TypeVar("ModelT", bound=BaseModel)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as problem `errors` entries (no input values: they may be secrets)."""
    return [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def is_json_type(content_type: str) -> bool:
    """Whether a media type is JSON: `application/json` or `application/*+json` (SPEC 4.3)."""
    kind, _, subtype = content_type.lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """Parse the JSON body into `model`; an empty body counts as `{}`.

    Raises:
        ProblemError: `unsupported_media_type` (415) for a body sent as another type,
            `invalid_json` (400) for a body that does not parse,
            `validation_failed` (422) with `errors` for one that breaks the schema.
    """
    raw = await request.read()
    # An absent Content-Type reads as application/octet-stream (RFC 9110 8.3), which is also
    # what clients such as aiohttp's put on a request without a body: both are "no body".
    untyped = request.content_type == "application/octet-stream"
    if not (is_json_type(request.content_type) or (untyped and not raw)):
        raise ProblemError(
            "unsupported_media_type", "send the body as application/json (or application/*+json)"
        )
    if not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ProblemError("invalid_json", "the body is not valid JSON") from None
        raise ProblemError(
            "validation_failed",
            "the body does not match the schema",
            errors=validation_errors(exc),
        ) from None


def page_parameters(request: web.Request) -> tuple[int, str | None]:
    """`limit` (default 50, at most 200) and `cursor` of a list request.

    Raises:
        ProblemError: `validation_failed` when `limit` is not an integer in range.
    """
    text = request.query.get("limit")
    limit = DEFAULT_LIMIT
    if text is not None:
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise ProblemError(
                "validation_failed",
                f"limit must be an integer from 1 to {MAX_LIMIT}",
                errors=[{"loc": ["query", "limit"], "msg": "out of range", "type": "limit"}],
            )
        limit = int(text)
    cursor = request.query.get("cursor") or None
    return limit, cursor


def json_model(
    model: BaseModel,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Render a response model."""
    return web.json_response(text=model.model_dump_json(), status=status, headers=headers)
