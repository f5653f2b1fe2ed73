"""What the connector service hands out, and how stored rows become it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.connectors.models import (
    AccountField,
    AuthConfig,
    ConnectorCreate,
    ConnectorKind,
    ConnectorLimits,
    ConnectorStatus,
    ConnectorUpdate,
    IconSlot,
    Parameter,
    Scope,
    ScriptKind,
)
from gateway.connectors.tables import connector_icons, connector_scripts
from runtime.model import JsonValue

_AUTH: Final[TypeAdapter[AuthConfig]] = TypeAdapter(AuthConfig)


@dataclass(frozen=True, slots=True)
class ScriptInfo:
    """A stored script without its source."""

    kind: ScriptKind
    param: str
    sha256: str
    size: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Script:
    """A stored script."""

    info: ScriptInfo
    source: str


@dataclass(frozen=True, slots=True)
class IconInfo:
    """A stored icon without its bytes."""

    slot: IconSlot
    width: int
    height: int
    sha256: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Icon:
    """A stored icon."""

    info: IconInfo
    png: bytes


@dataclass(frozen=True, slots=True)
class Connector:
    """A connector definition as stored; never holds the client secret."""

    id: str
    guid: str
    customer_id: str
    owner_id: str
    kind: ConnectorKind
    name: str
    key: str
    description: str
    auth: AuthConfig
    client_secret_set: bool
    account_fields: tuple[AccountField, ...]
    allowed_hosts: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    reports: tuple[str, ...]
    limits: ConnectorLimits
    scope: Scope
    status: ConnectorStatus
    created_at: datetime
    updated_at: datetime
    scripts: tuple[ScriptInfo, ...] = ()
    icons: tuple[IconInfo, ...] = ()

    def parameter(self, name: str) -> Parameter | None:
        """The declared parameter called `name`."""
        return next((p for p in self.parameters if p.name == name), None)


def definition_values(body: ConnectorCreate | ConnectorUpdate, given: set[str]) -> dict[str, Any]:
    """Column values of the definition fields in `given` (documents as JSON)."""
    values: dict[str, Any] = {}
    for name in given:
        value = getattr(body, name)
        if name == "auth":
            values["auth"] = value.model_dump(mode="json", exclude={"client_secret"})
        elif name == "account_fields":
            values[name] = [
                {**f.model_dump(mode="json"), "label": f.label or f.name} for f in value
            ]
        elif name in ("parameters", "limits"):
            values[name] = _dump(value)
        elif name in ("allowed_hosts", "reports"):
            values[name] = list(value)
        else:
            values[name] = value.value if name == "kind" else value
    return values


def _dump(value: Any) -> JsonValue:
    if isinstance(value, list):
        return [item.model_dump(mode="json") for item in value]
    return value.model_dump(mode="json")


# The columns a published version snapshots (`connector_versions.definition`): everything a
# run reads of the connector, but the sealed client secret, which stays on the connector.
DEFINITION_COLUMNS: Final = (
    "kind",
    "name",
    "key",
    "description",
    "auth",
    "account_fields",
    "allowed_hosts",
    "parameters",
    "reports",
    "limits",
)


def definition_document(row: Row[*tuple[Any, ...]]) -> dict[str, JsonValue]:
    """The definition columns of a connector row, as the JSON document a version keeps."""
    return {name: row._mapping[name] for name in DEFINITION_COLUMNS}


def _definition_fields(document: Mapping[Any, Any]) -> dict[str, Any]:
    """The `Connector` fields of a definition document (a row, or a version's snapshot)."""
    return {
        "kind": ConnectorKind(document["kind"]),
        "name": document["name"],
        "key": document["key"],
        "description": document["description"],
        "auth": _AUTH.validate_python(document["auth"], strict=False),
        "account_fields": tuple(
            AccountField.model_validate(f, strict=False) for f in document["account_fields"]
        ),
        "allowed_hosts": tuple(document["allowed_hosts"]),
        "parameters": tuple(
            Parameter.model_validate(p, strict=False) for p in document["parameters"]
        ),
        "reports": tuple(document["reports"]),
        "limits": ConnectorLimits.model_validate(document["limits"], strict=False),
    }


def with_definition(connector: Connector, document: Mapping[str, Any]) -> Connector:
    """`connector` as a published version defined it (identity, owner and scope stay live)."""
    return replace(connector, **_definition_fields(document), scripts=(), icons=())


def connector_from_row(
    row: Row[*tuple[Any, ...]], scripts: Sequence[ScriptInfo], icons: Sequence[IconInfo]
) -> Connector:
    return Connector(
        id=row.id,
        guid=row.guid,
        customer_id=row.customer_id,
        owner_id=row.owner_id,
        **_definition_fields(row._mapping),
        client_secret_set=row.client_secret_ciphertext is not None,
        scope=Scope(row.scope),
        status=ConnectorStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        scripts=tuple(scripts),
        icons=tuple(icons),
    )


def script_info_from_row(row: Row[*tuple[Any, ...]]) -> ScriptInfo:
    return ScriptInfo(ScriptKind(row.kind), row.param, row.sha256, row.size, row.updated_at)


def icon_info_from_row(row: Row[*tuple[Any, ...]]) -> IconInfo:
    return IconInfo(IconSlot(row.slot), row.width, row.height, row.sha256, row.updated_at)


async def scripts_of(
    connection: AsyncConnection, ids: Sequence[str]
) -> dict[str, tuple[ScriptInfo, ...]]:
    if not ids:
        return {}
    query = (
        select(
            connector_scripts.c.connector_id,
            connector_scripts.c.kind,
            connector_scripts.c.param,
            connector_scripts.c.sha256,
            connector_scripts.c.size,
            connector_scripts.c.updated_at,
        )
        .where(connector_scripts.c.connector_id.in_(ids))
        .order_by(connector_scripts.c.kind, connector_scripts.c.param)
    )
    found: dict[str, list[ScriptInfo]] = {}
    for row in await connection.execute(query):
        found.setdefault(row.connector_id, []).append(script_info_from_row(row))
    return {key: tuple(value) for key, value in found.items()}


async def icons_of(
    connection: AsyncConnection, ids: Sequence[str]
) -> dict[str, tuple[IconInfo, ...]]:
    if not ids:
        return {}
    query = (
        select(
            connector_icons.c.connector_id,
            connector_icons.c.slot,
            connector_icons.c.width,
            connector_icons.c.height,
            connector_icons.c.sha256,
            connector_icons.c.updated_at,
        )
        .where(connector_icons.c.connector_id.in_(ids))
        .order_by(connector_icons.c.slot)
    )
    found: dict[str, list[IconInfo]] = {}
    for row in await connection.execute(query):
        found.setdefault(row.connector_id, []).append(icon_info_from_row(row))
    return {key: tuple(value) for key, value in found.items()}
