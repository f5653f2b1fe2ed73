"""A connector's definition (SPEC 4.2, 4.3): the validated shapes of its JSON documents."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.connectors.errors import field_error
from gateway.egress import HostPattern
from runtime.model import MiB, RunMode

MAX_LIST: Final = 100


class ConnectorKind(StrEnum):
    """What a connector is for (SPEC 2)."""

    ACTION = "action"
    WRITEBACK = "writeback"
    CONNECTOR = "connector"


class Scope(StrEnum):
    """Who may run an action (SPEC 2, 5)."""

    PERSONAL = "personal"
    CUSTOMER = "customer"
    GLOBAL = "global"


class ConnectorStatus(StrEnum):
    """Where a connector is in review (SPEC 8)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ScriptKind(StrEnum):
    """A connector's scripts: one auth, one process, one discovery script per parameter."""

    AUTH = "auth"
    PROCESS = "process"
    DISCOVERY = "discovery"


class IconSlot(StrEnum):
    """The four images a connector shows (SPEC 4.2)."""

    ICON = "icon"
    ICON_PLAIN = "icon_plain"
    LOGO = "logo"
    BANNER = "banner"


ICON_SIZES: Final[dict[IconSlot, tuple[int, int]]] = {
    IconSlot.ICON: (512, 512),
    IconSlot.ICON_PLAIN: (512, 512),
    IconSlot.LOGO: (512, 512),
    IconSlot.BANNER: (1024, 512),
}


class ParameterType(StrEnum):
    """Parameter types (SPEC 4.3)."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DROPDOWN = "dropdown"
    TEXT = "text"
    DISCOVERY = "discovery"


class Definition(BaseModel):
    """Base of the definition models: strict, immutable, unknown fields refused."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def _printable(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _host_pattern(value: str) -> str:
    HostPattern.parse(value)  # raises ValueError naming the entry
    return value


def _http_url(value: str) -> str:
    # Messages never repeat the URL: it might carry credentials.
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ValueError("not an http(s) URL with a host")
    if parts.username is not None or parts.fragment or any(c.isspace() for c in value):
        raise ValueError("an http(s) URL must not hold credentials, a fragment or spaces")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_printable),
]
ParameterName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^/]+$"),
    AfterValidator(_printable),
]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
HostText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    AfterValidator(_host_pattern),
]
HttpUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_http_url)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500)]


# --- auth ---------------------------------------------------------------------------------


class NoAuth(Definition):
    """No credentials."""

    method: Literal["none"]


class BasicAuth(Definition):
    """`username` and `password`."""

    method: Literal["basic"]


class ApiKeyAuth(Definition):
    """One `apikey`."""

    method: Literal["apikey"]


class OAuth2Auth(Definition):
    """An OAuth 2.0 authorization-code client; `client_secret` is write-only."""

    method: Literal["oauth2"]
    authorization_url: HttpUrl
    token_url: HttpUrl
    client_id: Short
    client_secret: SecretStr | None = Field(default=None, max_length=2000)
    scopes: list[Short] = Field(default_factory=list, max_length=MAX_LIST)
    extra_params: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], Short] = (
        Field(default_factory=dict, max_length=50)
    )


AuthConfig = Annotated[NoAuth | BasicAuth | ApiKeyAuth | OAuth2Auth, Field(discriminator="method")]

# Names `metadata.account` gives its own meaning (SPEC 3.2): no custom field may take them.
RESERVED_FIELDS: Final = frozenset(
    name.lower()
    for name in (
        "username", "password", "apikey", "accesstoken", "refreshtoken", "clientKey",
        "clientSecret", "authorizationURL", "accessTokenURL", "scope",
    )
)  # fmt: skip


# --- account fields, parameters, limits -------------------------------------------------


class AccountField(Definition):
    """A custom account field (SPEC 4.3: `secret` and `required` default to false)."""

    name: FieldName
    label: Label | None = None
    secret: bool = False
    required: bool = False

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_FIELDS:
            raise ValueError(f"{value!r} is a standard account field")
        return value


class Parameter(Definition):
    """A declared parameter of an action or a report."""

    name: ParameterName
    type: ParameterType
    required: bool = False
    options: list[Label] = Field(default_factory=list, max_length=500)
    help: Annotated[str, StringConstraints(max_length=2000)] = ""

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> Parameter:
        if self.type is ParameterType.DROPDOWN and not self.options:
            raise ValueError("a dropdown parameter needs options")
        if self.type is not ParameterType.DROPDOWN and self.options:
            raise ValueError("only dropdown parameters take options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        return self


class ConnectorLimits(Definition):
    """Per-connector limits (SPEC 3.1); a missing value is the gateway's default."""

    wall_time_s: float | None = Field(default=None, gt=0, le=3600)
    memory_mb: int | None = Field(default=None, ge=16, le=512)
    http_calls: int | None = Field(default=None, ge=0, le=100_000)
    response_bytes: int | None = Field(default=None, ge=1024, le=100 * MiB)
    log_bytes: int | None = Field(default=None, ge=1024, le=10 * MiB)
    result_rows: int | None = Field(default=None, ge=1, le=100_000)


def _distinct(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


class _DefinitionParts(Definition):
    """What create and update have in common, and the rules across fields."""

    @field_validator("account_fields", check_fields=False)
    @classmethod
    def _distinct_fields(cls, value: list[AccountField] | None) -> list[AccountField] | None:
        if value is not None:
            _distinct([f.name.lower() for f in value], "account field")
        return value

    @field_validator("parameters", check_fields=False)
    @classmethod
    def _distinct_parameters(cls, value: list[Parameter] | None) -> list[Parameter] | None:
        if value is not None:
            _distinct([p.name for p in value], "parameter")
        return value

    @field_validator("reports", check_fields=False)
    @classmethod
    def _distinct_reports(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _distinct(value, "report")
        return value


Description = Annotated[str, StringConstraints(max_length=10_000)]


class ConnectorCreate(_DefinitionParts):
    """`POST /api/v1/connectors`."""

    kind: ConnectorKind
    name: Name
    key: Key
    description: Description = ""
    auth: AuthConfig = Field(default_factory=lambda: NoAuth(method="none"))
    account_fields: list[AccountField] = Field(default_factory=list, max_length=MAX_LIST)
    allowed_hosts: list[HostText] = Field(default_factory=list, max_length=MAX_LIST)
    parameters: list[Parameter] = Field(default_factory=list, max_length=MAX_LIST)
    reports: list[Label] = Field(default_factory=list, max_length=MAX_LIST)
    limits: ConnectorLimits = Field(default_factory=ConnectorLimits)


class ConnectorUpdate(_DefinitionParts):
    """`PATCH /api/v1/connectors/{guid}`: the fields given replace the stored ones."""

    kind: ConnectorKind | None = None
    name: Name | None = None
    key: Key | None = None
    description: Description | None = None
    auth: AuthConfig | None = None
    account_fields: list[AccountField] | None = Field(default=None, max_length=MAX_LIST)
    allowed_hosts: list[HostText] | None = Field(default=None, max_length=MAX_LIST)
    parameters: list[Parameter] | None = Field(default=None, max_length=MAX_LIST)
    reports: list[Label] | None = Field(default=None, max_length=MAX_LIST)
    limits: ConnectorLimits | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ConnectorUpdate:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self


class RunCreate(Definition):
    """`POST /api/v1/connectors/{guid}/runs`: a development run."""

    mode: RunMode = RunMode.PROCESS
    account_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    credentials: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=100)],
            Annotated[str, StringConstraints(max_length=64 * 1024)],
        ]
        | None
    ) = Field(default=None, max_length=MAX_LIST)
    report: Label | None = None
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=MAX_LIST)
    parameter: ParameterName | None = None

    @model_validator(mode="after")
    def _one_account_source(self) -> RunCreate:
        if self.account_id is not None and self.credentials is not None:
            raise ValueError("give account_id or credentials, not both")
        if self.mode is RunMode.DISCOVERY and self.parameter is None:
            raise ValueError("a discovery run names its discovery parameter in `parameter`")
        if self.mode is not RunMode.DISCOVERY and self.parameter is not None:
            raise ValueError("`parameter` is only for discovery runs")
        return self


# --- values given for a run ---------------------------------------------------------------

_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_HINT: Final = 'must be yyyy-MM-dd or {"start": yyyy-MM-dd, "end": yyyy-MM-dd}'


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _typefield_error(parameter: Parameter, value: object) -> str | None:
    """Why `value` does not suit `parameter`, or None."""
    kind = parameter.type
    if kind in (ParameterType.STRING, ParameterType.TEXT):
        return None if isinstance(value, str) else "must be a string"
    if kind is ParameterType.DROPDOWN:
        if value in parameter.options:
            return None
        return "must be one of " + ", ".join(repr(o) for o in parameter.options)
    if kind is ParameterType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if kind is ParameterType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if kind is ParameterType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if kind is ParameterType.DATE:
        if _is_date(value):
            return None
        if isinstance(value, dict) and set(value) == {"start", "end"}:
            return None if _is_date(value["start"]) and _is_date(value["end"]) else _DATE_HINT
        return _DATE_HINT
    # A tree-discovery parameter is an array of strings; an option list gives one string.
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    ):
        return None
    return "must be a string or an array of strings"


def parameter_errors(
    declared: Sequence[Parameter], values: Mapping[str, object], *, complete: bool
) -> list[dict[str, Any]]:
    """Problem `errors` for parameter `values` against the `declared` parameters.

    Every value must belong to a declared parameter and suit its type; with `complete`,
    every required parameter must have a value.
    """
    by_name = {p.name: p for p in declared}
    errors: list[dict[str, Any]] = []
    for name, value in values.items():
        parameter = by_name.get(name)
        if parameter is None:
            errors.append(
                field_error(["parameters", name], "is not a declared parameter", "unknown")
            )
            continue
        message = _typefield_error(parameter, value) if value is not None else None
        if message is not None:
            errors.append(field_error(["parameters", name], message, "type"))
    if complete:
        for parameter in declared:
            if parameter.required and values.get(parameter.name) is None:
                errors.append(field_error(["parameters", parameter.name], "is required", "missing"))
    return errors
