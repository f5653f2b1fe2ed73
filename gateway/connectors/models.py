"""A connector's definition (SPEC 4.2, 4.3): the validated shapes of its JSON documents."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from annotated_types import Interval, MaxLen
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from gateway.connectors.errors import field_error
from gateway.egress import HostPattern
from gateway.text import (
    CONTROLS,
    FREE_TEXT,
    NO_NUL,
    ONE_LINE,
    SPACES,
    Identifier,
    Matches,
    Name,
    SchemaNote,
)
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


# The patterns are what the document states; each is a subset of what the validator after
# it accepts, so the two together accept exactly what the pattern says (decision 0012).
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LAST_LABEL: Final = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # never a number
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4: Final = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_PORT: Final = (
    r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
_H16: Final = r"[0-9A-Fa-f]{1,4}"
_IPV6: Final = (
    rf"(?:(?:{_H16}:){{7}}{_H16}|(?:{_H16}:){{1,7}}:|(?:{_H16}:){{1,6}}:{_H16}"
    rf"|(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}|(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}"
    rf"|(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}|(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}"
    rf"|{_H16}:(?::{_H16}){{1,6}}|:(?:(?::{_H16}){{1,7}}|:))"
)
HOST_PATTERN: Final = (
    rf"^(?:(?:\*\.)?(?:{_LABEL}\.){{0,8}}{_LAST_LABEL}|{_IPV4}|\[{_IPV6}\])"
    rf"(?::{_PORT})?$"
)
URL_PATTERN: Final = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:(?:{_LABEL}\.){{0,8}}{_LAST_LABEL}|{_IPV4})(?::[0-9]{{1,5}})?"
    rf"(?:[/?][^#{CONTROLS}{SPACES}]*)?$"
)

Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"), ONE_LINE]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]
ParameterName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^/]+$"), ONE_LINE
]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"), ONE_LINE]
HostText = Annotated[
    str,
    StringConstraints(max_length=300),
    ONE_LINE,
    AfterValidator(_host_pattern),
    Matches(HOST_PATTERN, "must be an ASCII host name (IDN as xn--), IPv4 or [IPv6], :port"),
]
HttpUrl = Annotated[
    str,
    StringConstraints(max_length=2000),
    ONE_LINE,
    AfterValidator(_http_url),
    Matches(URL_PATTERN, "must be an http(s) URL of an ASCII host name, no credentials"),
]
Short = Annotated[str, StringConstraints(min_length=1, max_length=500), ONE_LINE]
HelpText = Annotated[str, StringConstraints(max_length=2000), FREE_TEXT]


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
    extra_params: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE], Short
    ] = Field(default_factory=dict, max_length=50)


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

    model_config = ConfigDict(
        json_schema_extra={
            "description": "A dropdown takes distinct `options`; no other type takes any",
            "if": {"properties": {"type": {"const": "dropdown"}}},
            "then": {"required": ["options"], "properties": {"options": {"minItems": 1}}},
            "else": {"properties": {"options": {"maxItems": 0}}},
        }
    )

    name: ParameterName
    type: ParameterType
    required: bool = False
    options: Annotated[list[Label], MaxLen(500), SchemaNote(uniqueItems=True)] = Field(
        default_factory=list
    )
    help: HelpText = ""

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> Parameter:
        if self.type is ParameterType.DROPDOWN and not self.options:
            raise ValueError("a dropdown parameter needs options")
        if self.type is not ParameterType.DROPDOWN and self.options:
            raise ValueError("only dropdown parameters take options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        return self


def _whole(value: object) -> object:
    # JSON Schema calls 512.0 an integer; strict pydantic would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WHOLE: Final = BeforeValidator(_whole)


class ConnectorLimits(Definition):
    """Per-connector limits (SPEC 3.1); a missing value is the gateway's default."""

    wall_time_s: float | None = Field(default=None, gt=0, le=3600)
    memory_mb: Annotated[int, Interval(ge=16, le=512), WHOLE] | None = None
    http_calls: Annotated[int, Interval(ge=0, le=100_000), WHOLE] | None = None
    response_bytes: Annotated[int, Interval(ge=1024, le=100 * MiB), WHOLE] | None = None
    log_bytes: Annotated[int, Interval(ge=1024, le=10 * MiB), WHOLE] | None = None
    result_rows: Annotated[int, Interval(ge=1, le=100_000), WHOLE] | None = None


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


Description = Annotated[str, StringConstraints(max_length=10_000), FREE_TEXT]
_DISTINCT: Final = "Names are distinct (account fields: also ignoring case)"
AccountFields = Annotated[
    list[AccountField], MaxLen(MAX_LIST), SchemaNote(uniqueItems=True, description=_DISTINCT)
]
HostList = Annotated[list[HostText], MaxLen(MAX_LIST)]
Parameters = Annotated[
    list[Parameter], MaxLen(MAX_LIST), SchemaNote(uniqueItems=True, description=_DISTINCT)
]
Reports = Annotated[list[Label], MaxLen(MAX_LIST), SchemaNote(uniqueItems=True)]


class ConnectorCreate(_DefinitionParts):
    """`POST /api/v1/connectors`."""

    kind: ConnectorKind
    name: Name
    key: Key
    description: Description = ""
    auth: AuthConfig = Field(default_factory=lambda: NoAuth(method="none"))
    account_fields: AccountFields = Field(default_factory=list)
    allowed_hosts: HostList = Field(default_factory=list)
    parameters: Parameters = Field(default_factory=list)
    reports: Reports = Field(default_factory=list)
    limits: ConnectorLimits = Field(default_factory=ConnectorLimits)


def _absent_is_unchanged(schema: JsonDict) -> None:
    # A missing field keeps the stored value (no default to state) and null is refused, so
    # each property is its type alone; the model keeps `| None` for readable error locations.
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, field in properties.items():
        if not isinstance(field, dict):
            continue
        field.pop("default", None)
        branches = field.get("anyOf")
        if isinstance(branches, list):
            kept = [b for b in branches if b != {"type": "null"}]
            if len(kept) == 1 and isinstance(kept[0], dict):
                field.pop("anyOf")
                properties[name] = {**kept[0], **field}


class ConnectorUpdate(_DefinitionParts):
    """`PATCH /api/v1/connectors/{guid}`: the fields given replace the stored ones.

    None of them may be null; an empty object changes nothing and answers the connector
    as it is.
    """

    model_config = ConfigDict(json_schema_extra=_absent_is_unchanged)

    kind: ConnectorKind | None = None
    name: Name | None = None
    key: Key | None = None
    description: Description | None = None
    auth: AuthConfig | None = None
    account_fields: AccountFields | None = None
    allowed_hosts: HostList | None = None
    parameters: Parameters | None = None
    reports: Reports | None = None
    limits: ConnectorLimits | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ConnectorUpdate:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self


CredentialValue = Annotated[str, StringConstraints(max_length=64 * 1024), NO_NUL]


class RunCreate(Definition):
    """`POST /api/v1/connectors/{guid}/runs`: a development run."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"not": {"required": ["account_id", "credentials"]}},
                {
                    "if": {"properties": {"mode": {"const": "discovery"}}, "required": ["mode"]},
                    "then": {
                        "required": ["parameter"],
                        "properties": {"parameter": {"type": "string"}},
                    },
                    "else": {"not": {"required": ["parameter"]}},
                },
            ]
        }
    )

    mode: RunMode = RunMode.PROCESS
    account_id: Identifier | None = Field(
        default=None, description="A stored account the caller may use (not with `credentials`)"
    )
    credentials: dict[Label, CredentialValue] | None = Field(
        default=None,
        max_length=MAX_LIST,
        description=(
            "Account fields for this run only (never stored): the auth method's standard fields"
            " and the connector's `account_fields`; any other field is refused (422)"
        ),
    )
    report: Label | None = Field(default=None, description="One of the connector's `reports`")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_LIST,
        description="Values of declared parameters (checked against their types)",
    )
    parameter: ParameterName | None = Field(
        default=None, description="The discovery parameter whose script a discovery run runs"
    )

    @model_validator(mode="after")
    def _one_account_source(self) -> RunCreate:
        # "Given" means present in the body, null or not: the document says the same.
        given = self.model_fields_set
        if {"account_id", "credentials"} <= given:
            raise ValueError("give account_id or credentials, not both")
        if self.mode is RunMode.DISCOVERY and self.parameter is None:
            raise ValueError("a discovery run names its discovery parameter in `parameter`")
        if self.mode is not RunMode.DISCOVERY and "parameter" in given:
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
