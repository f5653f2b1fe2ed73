"""The request schemas of `openapi.yaml`, written from the models the server validates with.

`python -m gateway.openapi` rewrites the block between the markers in `openapi.yaml`;
`tests/contract/test_document.py` fails when the committed file differs from what this
writes, so the document and the server cannot drift (decision 0012). A new request model
is one more line in `REQUEST_MODELS`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.apps.manifest import AppManifest
from gateway.connectors.models import ConnectorCreate, ConnectorUpdate, RunCreate
from gateway.routes.accounts import AccountCreate, AccountUpdate, ShareCreate
from gateway.routes.actions import ScopeSet
from gateway.routes.apps import AccountMappingSet, InstanceCreate
from gateway.routes.datasets import QueryCreate
from gateway.routes.domo import ActionParameters
from gateway.routes.identity import CustomerCreate, TokenCreate, UserCreate, UserPatch
from gateway.routes.jobs import JobCreate
from gateway.routes.oauth import LinkCreate
from gateway.routes.schedules import ScheduleCreate

# Every model `parse_body` is called with; the document names each by its class name.
REQUEST_MODELS: Final[tuple[type[BaseModel], ...]] = (
    CustomerCreate,
    UserCreate,
    UserPatch,
    TokenCreate,
    ConnectorCreate,
    ConnectorUpdate,
    RunCreate,
    AccountCreate,
    AccountUpdate,
    ShareCreate,
    LinkCreate,
    ScopeSet,
    AppManifest,
    InstanceCreate,
    AccountMappingSet,
    ActionParameters,
    QueryCreate,
    JobCreate,
    ScheduleCreate,
)

DOCUMENT: Final = Path(__file__).with_name("openapi.yaml")
BEGIN: Final = "    # BEGIN request schemas: `python -m gateway.openapi` writes them; do not edit\n"
END: Final = "    # END request schemas\n"
_INDENT: Final = " " * 4


def _tidy(schema: object) -> Any:
    """Drop pydantic's generated `title`s (noise in a document), keep everything else."""
    if isinstance(schema, Mapping):
        tidy: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs") and isinstance(value, Mapping):
                tidy[key] = {name: _tidy(item) for name, item in value.items()}
            else:
                tidy[key] = _tidy(value)
        return tidy
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    return schema


def request_schemas() -> dict[str, Any]:
    """Every request model's JSON schema and those it refers to, by name."""
    _, top = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    definitions: dict[str, Any] = top["$defs"]
    return {name: _tidy(definitions[name]) for name in sorted(definitions)}


def render(document: str) -> str:
    """`document` with the block between the markers replaced by the current schemas.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start = document.find(BEGIN)
    end = document.find(END)
    if start < 0 or end < start:
        raise ValueError("openapi.yaml has no request-schema markers under components/schemas")
    text = yaml.safe_dump(
        request_schemas(), sort_keys=False, allow_unicode=True, width=100, indent=2
    )
    block = "".join(_INDENT + line if line.strip() else line for line in text.splitlines(True))
    return document[: start + len(BEGIN)] + block + document[end:]


def main() -> int:
    """Rewrite the request schemas of `openapi.yaml` in place."""
    current = DOCUMENT.read_text(encoding="utf-8")
    updated = render(current)
    if updated != current:
        DOCUMENT.write_text(updated, encoding="utf-8")
        sys.stdout.write(f"{DOCUMENT}: request schemas updated\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
