"""The app manifest (`manifest.json`): what the gateway checks, and everything else kept."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.connectors.models import Key
from gateway.text import ONE_LINE, Name

MAX_ALIASES: Final = 100

Alias = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$"),
    ONE_LINE,
    Field(description="Letters, digits, `_`, `.`, `-` (it is a path segment of the mapping)"),
]
Version = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]


class ManifestPart(BaseModel):
    """A part of the manifest: checked where the gateway relies on it, unknown keys kept.

    Domo keeps keys it does not know (its CLI adds `id`, `fileName`, `proxyId`, ...), and so
    does the gateway, so manifests written for Domo upload unchanged (decision 0015).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")


def _one_of(data: object, names: tuple[str, str]) -> object:
    """Refuse an object that gives both of two alternative names."""
    if isinstance(data, dict) and all(name in data for name in names):
        raise ValueError(f"give either {names[0]!r} or {names[1]!r}, not both")
    return data


def _either_provider_name(schema: dict[str, Any]) -> None:
    """The document says what the server does: one of the provider's two names, required."""
    schema["required"] = ["alias"]
    schema["oneOf"] = [{"required": ["dataProviderKey"]}, {"required": ["dataProviderType"]}]


class AccountAlias(ManifestPart):
    """An `accountMapping` entry: the alias the app uses and the provider its account needs."""

    model_config = ConfigDict(json_schema_extra=_either_provider_name)

    alias: Alias
    provider_key: Key = Field(
        validation_alias=AliasChoices("dataProviderKey", "dataProviderType"),
        serialization_alias="dataProviderKey",
        description="A connector key visible to the customer; `dataProviderType` is another name",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_provider_name(cls, data: object) -> object:
        return _one_of(data, ("dataProviderKey", "dataProviderType"))


class DatasetAlias(ManifestPart):
    """A `datasetsMapping` entry (`{"alias", "dataSetId", "fields"}`; read by SPEC 4.4)."""

    alias: Alias


class AppCollection(ManifestPart):
    """A `collections` entry (an AppDB collection; read by SPEC 4.4)."""

    name: Name


class AppSize(ManifestPart):
    """The card's size in grid units."""

    width: float | None = None
    height: float | None = None


class AppManifest(ManifestPart):
    """`manifest.json`, as a JSON body of `POST /api/v1/apps` or the file of an app zip."""

    model_config = ConfigDict(
        json_schema_extra={"not": {"required": ["datasetsMapping", "mapping"]}}
    )

    name: Name
    version: Version
    account_mapping: list[AccountAlias] = Field(
        default_factory=list, alias="accountMapping", max_length=MAX_ALIASES
    )
    datasets_mapping: list[DatasetAlias] | None = Field(
        default=None,
        validation_alias=AliasChoices("datasetsMapping", "mapping"),
        serialization_alias="datasetsMapping",
        description="`mapping` is another name",
    )
    collections: list[AppCollection] | None = None
    size: AppSize | None = None
    fullpage: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_datasets_name(cls, data: object) -> object:
        return _one_of(data, ("datasetsMapping", "mapping"))

    @field_validator("account_mapping")
    @classmethod
    def _unique_aliases(cls, entries: list[AccountAlias]) -> list[AccountAlias]:
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if entry.alias in seen:
                raise ValueError(f"entry {index}: alias {entry.alias!r} is declared twice")
            seen.add(entry.alias)
        return entries

    def document(self) -> dict[str, Any]:
        """The manifest to store: canonical names, unknown keys as they came."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_manifest(raw: bytes) -> AppManifest:
    """Parse `manifest.json` bytes.

    Raises:
        ValidationError: not JSON, or a manifest that breaks the rules.
    """
    return AppManifest.model_validate_json(raw)


__all__ = ["AccountAlias", "AppManifest", "ValidationError", "parse_manifest"]
